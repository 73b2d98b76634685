"""Optional Triton, with the CPU interpreter selected automatically when no CUDA device is present.

Import this module *before* anything defines a ``@triton.jit`` kernel: when ``torch.cuda.is_available()``
is False and the user has not set ``TRITON_INTERPRET`` themselves, it sets ``TRITON_INTERPRET=1`` so that
Triton runs kernels in its NumPy interpreter on CPU tensors (slow, but exact enough to verify the
kernels' arithmetic).  Triton stays optional: when it is not installed ``triton`` and ``tl`` are None,
``HAVE_TRITON`` is False and :func:`require_triton` raises a clear ``ImportError``.

Interpreter facts the kernels account for (measured with Triton 3.9.0, see tests/attention/test_fast_kernels.py):

* bfloat16 values are held as raw uint16 words, so arithmetic and ``tl.dot`` on loaded bf16 values are
  wrong; kernels upcast to float32 right after ``tl.load`` when :func:`interpreting` is True;
* the float32 -> bfloat16 cast truncates (round toward zero) instead of rounding to nearest even; kernels
  round with an explicit bit trick (``_rne_bf16``) before the cast, which is exact, so stored bf16 values
  equal the GPU's ``cvt.rn.bf16.f32``;
* the float32 -> bfloat16 cast with ``fp_downcast_rounding="rtne"`` is also wrong (503 of 1024 random
  values off by one ulp), so the bit trick is used in both cases;
* ``triton.language.extra.libdevice`` functions are not implemented (they return None); kernels use
  ``tl.cos`` / ``tl.sin`` (NumPy) there;
* Triton's own ``@jit`` library (``tl.sum``, ``tl.cdiv``...) is built in the mode selected when triton is
  first imported: importing triton before this module breaks interpreted kernels (checked, with a clear
  error, by :func:`require_triton`);
* interpreted kernels make millions of short deep Python calls; :func:`launch` runs them on a helper
  thread (see there: CPython 3.11 frame-chunk churn otherwise doubled the CPU time under pytest).

Launch plans without a GPU: in compiled mode (``TRITON_INTERPRET=0``), inside :func:`recorded_launches` the
wrappers accept CPU tensors, take their GPU code path (GPU tile sizes, ``EMULATE=False``) and every
:func:`launch` is recorded instead of run, so ``benchmarks/sm90_static.py`` can compile exactly what a GPU
would launch (outputs are left unwritten and integer tensors handed to a kernel are zeroed, so that host code
between launches indexes in range: only the launch arguments are meaningful).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

__all__ = [
    "AUTOTUNE_LOG",
    "HAVE_TRITON",
    "KERNEL_DTYPES",
    "KERNEL_DTYPES_F64",
    "CompileStats",
    "Launch",
    "autotune_enabled",
    "bounded_jit",
    "compile_stats",
    "device_function",
    "interpreting",
    "kernel_device_ok",
    "launch",
    "length_bucket",
    "pow2",
    "recorded_launches",
    "require_kernel_device",
    "require_triton",
    "small_launch",
    "specialisation_key",
    "specialisations",
    "tl",
    "triton",
    "tuned_launch",
]


_TRITON_PREIMPORTED = "triton" in sys.modules


def _select_interpreter() -> None:
    if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"


_select_interpreter()

triton: ModuleType | None
tl: ModuleType | None
try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None

HAVE_TRITON = triton is not None


def _library_mode_mismatch() -> bool:
    """True when Triton's own ``@jit`` library (``tl.sum``, ``tl.cdiv``...) was built in the other mode than
    the one now selected: triton was imported before ``TRITON_INTERPRET`` was set, and interpreted kernels
    calling compiled library functions fail ("Cannot call @triton.jit'd outside of the scope of a kernel")."""
    if not HAVE_TRITON:
        return False
    from triton.runtime.interpreter import InterpretedFunction

    return interpreting() != isinstance(tl.standard.sum, InterpretedFunction)


# the dtypes the Triton kernels take (float64 too where a kernel runs float64 tiles: KERNEL_DTYPES_F64)
KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
KERNEL_DTYPES_F64 = (*KERNEL_DTYPES, torch.float64)


def pow2(n: int, lo: int = 1) -> int:
    """The smallest power of two >= max(n, 1), and at least ``lo`` (tile sizes: ``pow2(D, 16)``)."""
    return max(lo, 1 << (max(int(n), 1) - 1).bit_length())


def interpreting() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET`` set to a true value)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def require_triton(func: str) -> None:
    """Raise ImportError naming ``func`` when Triton is not installed, RuntimeError when it was imported
    before the interpreter could be selected (see :func:`_library_mode_mismatch`)."""
    if not HAVE_TRITON:
        raise ImportError(f"{func}: needs the optional dependency 'triton' (pip install triton); "
                          "it is not installed")
    if _library_mode_mismatch():
        raise RuntimeError(f"{func}: triton was imported (pre-imported: {_TRITON_PREIMPORTED}) before "
                           "veriformer.fast could select its CPU interpreter, so Triton's library functions are "
                           "compiled-mode; set TRITON_INTERPRET=1 in the environment, or import "
                           "veriformer.fast._triton.env before anything imports triton")


@dataclass
class Launch:
    """One recorded kernel launch: ``kernel[grid](*args, **kwargs)`` (constexprs and launch options in kwargs);
    ``generic``: a :func:`bounded_jit` kernel launched as its unspecialised binary (``kernel`` is then that
    binary)."""

    kernel: Any
    grid: tuple[int, ...]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    generic: bool = False


_RECORDING: list[Launch] | None = None
_EXECUTOR: ThreadPoolExecutor | None = None


@contextmanager
def recorded_launches() -> Iterator[list[Launch]]:
    """Record the launches of the wrappers called inside the block instead of running them (compiled mode only:
    the kernels must be ``JITFunction`` objects).  CPU tensors stand in for CUDA ones; see the module docstring."""
    global _RECORDING
    if interpreting():
        raise RuntimeError("recorded_launches: needs compiled mode (TRITON_INTERPRET=0), it records what a GPU runs")
    previous, _RECORDING = _RECORDING, []
    try:
        yield _RECORDING
    finally:
        _RECORDING = previous


def kernel_device_ok(t: torch.Tensor) -> bool:
    """True when the Triton kernels can take ``t``: a CUDA tensor, a CPU tensor under the interpreter, any tensor
    while launches are recorded."""
    if _RECORDING is not None:
        return True
    return t.device.type == ("cpu" if interpreting() else "cuda")


def require_kernel_device(t: torch.Tensor, func: str, name: str) -> None:
    """Raise an InputError naming ``func`` and argument ``name`` unless :func:`kernel_device_ok` holds for ``t``."""
    from veriformer.reference._validate import require

    if interpreting():
        require(kernel_device_ok(t), func, name, "a CPU tensor (Triton runs in its CPU interpreter)",
                f"device {t.device}")
    else:
        require(kernel_device_ok(t), func, name, "a CUDA tensor", f"device {t.device}")


def device_function(fn: Any) -> Any:
    """``triton.jit`` for a helper called from kernels, except under the interpreter: there a kernel body is
    plain Python with ``triton.language`` patched for the whole launch, so a plain function works the same,
    while every call of a jitted helper re-patches the language module (``inspect.getmembers`` of ``tl``:
    ~0.5 ms a call).  The compiled path is unchanged."""
    return fn if interpreting() else triton.jit(fn)


def bounded_jit(*, free: Iterable[str] = (), units: Iterable[str] = (), keep: Iterable[str] = ()
                ) -> Callable[[Any], Any]:
    """``triton.jit`` with a bounded number of specialisations per constexpr combination: two.

    Triton's JIT compiles one binary per *specialisation* of the non-constexpr arguments: every integer is
    classed as "equal to 1" (compiled as a constant), "divisible by 16" (``tt.divisibility``) or neither, every
    pointer as 16-byte aligned or not.  A campaign over random lengths and head dims (``check()``) multiplies
    these classes over dozens of integer arguments and compiled a new binary for almost every case (123 for the
    flash kernels in one ci campaign on the H200, over a minute).  Here:

    * ``free`` (lengths, counts, window sizes: ``T``, ``S``, ``L``, ``NT``, ``H``...) are never specialised
      (``do_not_specialize``): a new length never recompiles;
    * the remaining integers are the strides and the head-dim-like sizes that enter addresses, where
      divisibility is what lets Triton vectorise loads and use ``cp.async``.  :func:`launch` runs the returned
      (fast) kernel only when every such argument is in its canonical class (names in ``units`` equal to 1, the
      others divisible by 16) and every pointer is 16-byte aligned, so all of its launches share one
      specialisation; any other launch goes to ``kernel.generic``, the same function with nothing specialised
      (correct for any layout, slower).  Small launches (see :func:`_canonical`) take ``kernel.generic`` too.

    * ``keep``: small configuration-like integers (a GQA group size) that Triton specialises as usual (= 1 is a
      constant) without deciding the variant: up to three classes each, never a length.

    So a kernel compiles at most twice per combination of constexprs (tiles, flags, dtype) and ``keep`` classes,
    whatever the sizes.  Under the interpreter this is plain ``triton.jit`` (nothing is compiled there).
    Source: Triton ``JITFunction.run`` / ``native_specialize_impl`` (python/triton/runtime/jit.py)."""
    free, units, keep = list(free), set(units), set(keep)

    def deco(fn: Any) -> Any:
        if not HAVE_TRITON:
            return fn
        import inspect

        params = inspect.signature(fn).parameters
        unknown = (set(free) | units | keep) - set(params)
        if unknown:
            raise ValueError(f"bounded_jit({fn.__name__}): no parameters named {sorted(unknown)}")
        fast = triton.jit(fn, do_not_specialize=free)
        if interpreting():
            return fast
        dynamic = [p.name for p in fast.params if not p.is_constexpr]
        fast.generic = triton.jit(fn, do_not_specialize=dynamic, do_not_specialize_on_alignment=dynamic)
        fast.units = units
        fast.checked = [p.num for p in fast.params if not p.is_constexpr and p.name not in free and p.name not in keep]
        fast.names = list(params)
        return fast

    return deco


SMALL_LAUNCH = 1 << 16


def small_launch(*tensors: torch.Tensor | None) -> bool:
    """True when the largest of ``tensors`` has fewer than :data:`SMALL_LAUNCH` elements: a launch over them takes
    the generic binary of a :func:`bounded_jit` kernel, so wrappers may also coarsen its tile buckets."""
    return max((t.numel() for t in tensors if t is not None), default=0) < SMALL_LAUNCH


def _canonical(kernel: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True when every specialised argument of a :func:`bounded_jit` kernel is in its canonical class and the launch
    is not small (its largest tensor has at least :data:`SMALL_LAUNCH` elements: below that a launch costs its
    latency, whatever the loads, so the tiny cases of a ``check()`` campaign share the generic binaries)."""
    n_pos = len(args)
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    if max((t.numel() for t in tensors), default=0) < SMALL_LAUNCH:
        return False
    for i in kernel.checked:
        name = kernel.names[i]
        value = args[i] if i < n_pos else kwargs.get(name)
        if isinstance(value, torch.Tensor):
            if value.data_ptr() % 16:
                return False
        elif isinstance(value, int) and not isinstance(value, bool):
            if (value != 1) if name in kernel.units else (value % 16 != 0):
                return False
    return True


def launch(kernel: Any, grid: tuple[int, ...], *args: Any, **kwargs: Any) -> None:
    """``kernel[grid](*args, **kwargs)``; under the interpreter, run on a helper thread.  A :func:`bounded_jit`
    kernel whose specialised arguments are not in their canonical classes launches as ``kernel.generic``.

    Why a thread: CPython 3.11 allocates frames in 16 KiB "data stack" chunks and unmaps a chunk as soon as
    the frame that opened it returns.  The interpreter makes millions of short, deep Python calls; when the
    caller's stack already sits near a chunk boundary (e.g. inside pytest + Hypothesis) every call maps and
    unmaps a chunk (measured: 288,000 mmap/munmap pairs and as much system time as user time for one
    ``check``).  A helper thread starts from an empty stack, so the kernel's calls stay inside one chunk.
    """
    global _EXECUTOR
    generic = getattr(kernel, "generic", None) is not None and not _canonical(kernel, args, kwargs)
    if generic:
        kernel = kernel.generic
    if _RECORDING is not None:
        _RECORDING.append(Launch(kernel, tuple(grid), args, dict(kwargs), generic))
        for a in args:  # nothing ran: keep index outputs (codes, offsets) in range for the host code that follows
            if isinstance(a, torch.Tensor) and not (a.is_floating_point() or a.is_complex()):
                a.zero_()
        return
    if not interpreting():
        kernel[grid](*args, **kwargs)
        return
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triton-interpreter")
    run: Callable[[], None] = lambda: kernel[grid](*args, **kwargs)  # noqa: E731
    _EXECUTOR.submit(run).result()


# ------------------------------------------------------------------------------------ compilation accounting

def _kernel_name(kernel: Any) -> str:
    fn = getattr(kernel, "fn", kernel)
    while hasattr(fn, "fn"):  # an Autotuner / Heuristics wraps the JITFunction
        fn = fn.fn
    return getattr(fn, "__name__", repr(fn))


def _jit_function(kernel: Any) -> Any:
    while not hasattr(kernel, "params") and hasattr(kernel, "fn"):
        kernel = kernel.fn
    return kernel


def specialisation_key(rec: Launch) -> tuple[Any, ...]:
    """What Triton's JIT keys a compiled binary on for the recorded launch ``rec``: the kernel, every constexpr's
    value, every other argument's type and specialisation as Triton's own ``native_specialize_impl`` computes it
    for those very values (an integer equal to 1 becomes a constant, integers and pointers divisible by 16 get
    ``tt.divisibility``; nothing for ``do_not_specialize`` arguments) and the launch options (``num_warps``,
    ``num_stages``...).  Two launches with the same key reuse one compilation on a GPU (``JITFunction.run``:
    ``compute_cache_key(specialization, options)``).  Needs compiled mode (a ``JITFunction``)."""
    import inspect

    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend

    kernel = _jit_function(rec.kernel)
    names = list(inspect.signature(kernel.fn).parameters)
    bound = dict(zip(names, rec.args, strict=False))
    bound.update({k: v for k, v in rec.kwargs.items() if k in names})
    options = tuple(sorted((k, repr(v)) for k, v in rec.kwargs.items() if k not in names))
    parts: list[Any] = []
    for name, param in zip(names, kernel.params, strict=True):
        value = bound.get(name, param.default)
        if param.is_constexpr:
            parts.append((name, repr(value)))
            continue
        ty, spec = native_specialize_impl(BaseBackend, value, False, not param.do_not_specialize,
                                          not param.do_not_specialize_on_alignment)
        parts.append((name, ty, repr(value) if ty == "constexpr" else spec))
    return (_kernel_name(rec.kernel), tuple(parts), options)


def specialisations(launches: list[Launch]) -> dict[str, int]:
    """Distinct specialisations (= compilations a GPU would make, see :func:`specialisation_key`) per kernel name
    among recorded ``launches``; ``sum(...values())`` is the total."""
    seen: dict[str, set[tuple[Any, ...]]] = {}
    for rec in launches:
        key = specialisation_key(rec)
        seen.setdefault(key[0], set()).add(key)
    return {name: len(keys) for name, keys in sorted(seen.items())}


@dataclass
class CompileStats:
    """Compilations Triton's JIT made inside :func:`compile_stats`: ``count`` (binaries built or loaded from
    Triton's disk cache), ``seconds`` (wall time spent in them), ``per_kernel`` name -> (count, seconds)."""

    count: int = 0
    seconds: float = 0.0
    per_kernel: dict[str, tuple[int, float]] = field(default_factory=dict)


@contextmanager
def compile_stats() -> Iterator[CompileStats]:
    """Count and time the Triton JIT compilations made inside the block (on a GPU; for ``veriformer report
    --device cuda``).  Uses Triton's ``knobs.runtime.jit_cache_hook`` (called before a compile) and
    ``jit_post_compile_hook`` (after it), chaining any hooks already installed; a compile served from Triton's
    on-disk cache is counted too (fast).  Under the interpreter nothing compiles and the stats stay zero."""
    import time

    stats = CompileStats()
    if not HAVE_TRITON or interpreting():
        yield stats
        return
    from triton import knobs

    pending: dict[Any, float] = {}
    prev_pre, prev_post = knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook

    def pre(**kw: Any) -> Any:
        pending[str(kw.get("key"))] = time.perf_counter()
        return prev_pre(**kw) if prev_pre is not None else None

    def post(**kw: Any) -> Any:
        start = pending.pop(str(kw.get("key")), None)
        if start is not None:
            dt = time.perf_counter() - start
            name = _kernel_name(getattr(kw.get("fn"), "jit_function", None) or "?")
            n, s = stats.per_kernel.get(name, (0, 0.0))
            stats.per_kernel[name] = (n + 1, s + dt)
            stats.count += 1
            stats.seconds += dt
        return prev_post(**kw) if prev_post is not None else None

    knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook = pre, post
    try:
        yield stats
    finally:
        knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook = prev_pre, prev_post


# ------------------------------------------------------------------------------------------------ autotuning

AUTOTUNE_LOG: list[dict[str, Any]] = []  # one row per (kernel, key) tuned: configs, times, best, cost in seconds
_BEST: dict[tuple[Any, ...], dict[str, Any]] = {}


def autotune_enabled() -> bool:
    """Autotuning is opt-in (``VERIFORMER_AUTOTUNE=1``, e.g. for benchmarks and ``veriformer report --device
    cuda``), never under the interpreter or while launches are recorded: by default every kernel takes the first
    (hand-set) configuration of its list, so tests and ``check()`` campaigns compile nothing extra."""
    return os.environ.get("VERIFORMER_AUTOTUNE", "0").strip() == "1" and not interpreting() and _RECORDING is None


def length_bucket(n: int) -> int:
    """The autotuning key's length: the power of two >= ``n``, clamped to [1024, 65536] (lengths in one bucket
    share a tuned configuration; the raw length never keys anything)."""
    return min(65536, max(1024, 1 << (max(int(n), 1) - 1).bit_length()))


def _bench_ms(fn: Callable[[], None]) -> float:
    return float(triton.testing.do_bench(fn, warmup=3, rep=10))


def tuned_launch(kernel: Any, grid: Callable[[dict[str, Any]], tuple[int, ...]], configs: list[dict[str, Any]],
                 key: tuple[Any, ...], *args: Any, bench: Callable[[Callable[[], None]], float] | None = None,
                 **kwargs: Any) -> dict[str, Any]:
    """Launch ``kernel`` with the best of ``configs`` for ``key``; returns the configuration used.

    ``configs`` (constexpr tiles plus ``num_warps`` / ``num_stages``) is a curated list whose first entry is the
    default; ``grid(config)`` gives the launch grid.  With :func:`autotune_enabled` and a launch that is not small
    (:func:`small_launch` of its tensors), the first call for ``(kernel, key)`` times every configuration
    (``triton.testing.do_bench``; a configuration that fails to compile or launch is skipped), keeps the fastest
    for the key and prints the cost once (``veriformer autotune ...`` on stderr, and a row of
    :data:`AUTOTUNE_LOG`).  Otherwise -- the interpreter, a recorded launch, a small launch -- the first
    configuration runs without any timing, so the interpreter and the compile-count bound see exactly one
    configuration.  Only kernels that may be re-run on the same arguments (pure outputs) are tuned.
    ``key`` should hold what changes the best tiles: head dims, dtype, flags, :func:`length_bucket` of the length.
    Source: the role of Triton's ``triton.autotune`` (``Autotuner.run``: bench each config once per key)."""
    cfg = configs[0]
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    if len(configs) > 1 and autotune_enabled() and not small_launch(*tensors):
        full = (_kernel_name(kernel), key)
        if full not in _BEST:
            _BEST[full] = _tune(kernel, grid, configs, key, args, kwargs, bench or _bench_ms)
        cfg = _BEST[full]
    launch(kernel, grid(cfg), *args, **kwargs, **cfg)
    return cfg


def _tune(kernel: Any, grid: Callable[[dict[str, Any]], tuple[int, ...]], configs: list[dict[str, Any]],
          key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any],
          bench: Callable[[Callable[[], None]], float]) -> dict[str, Any]:
    import math
    import time

    start = time.perf_counter()
    times: list[float] = []
    for c in configs:
        try:
            times.append(bench(lambda c=c: launch(kernel, grid(c), *args, **kwargs, **c)))
        except Exception:  # a configuration that does not compile or launch here is skipped
            times.append(math.inf)
    best = min(range(len(configs)), key=lambda i: times[i])
    if not math.isfinite(times[best]):
        best = 0
    cost = time.perf_counter() - start
    row = {"kernel": _kernel_name(kernel), "key": key, "configs": configs, "ms": times, "best": configs[best],
           "seconds": cost}
    AUTOTUNE_LOG.append(row)
    print(f"veriformer autotune {row['kernel']} {key}: {configs[best]} of {len(configs)} configs "
          f"({times[best]:.3f} ms; default {times[0]:.3f} ms; tuning took {cost:.1f} s)", file=sys.stderr, flush=True)
    return configs[best]
