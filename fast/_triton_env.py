"""Optional Triton, with the CPU interpreter selected automatically when no CUDA device is present.

Import this module *before* anything defines a ``@triton.jit`` kernel: when ``torch.cuda.is_available()``
is False and the user has not set ``TRITON_INTERPRET`` themselves, it sets ``TRITON_INTERPRET=1`` so that
Triton runs kernels in its NumPy interpreter on CPU tensors (slow, but exact enough to verify the
kernels' arithmetic).  Triton stays optional: when it is not installed ``triton`` and ``tl`` are None,
``HAVE_TRITON`` is False and :func:`require_triton` raises a clear ``ImportError``.

Interpreter facts the kernels account for (measured with Triton 3.9.0, see tests/test_fast_kernels.py):

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

__all__ = ["HAVE_TRITON", "Launch", "device_function", "interpreting", "kernel_device_ok", "launch",
           "recorded_launches", "require_kernel_device", "require_triton", "tl", "triton"]


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
                           "veriformer.fast._triton_env before anything imports triton")


@dataclass
class Launch:
    """One recorded kernel launch: ``kernel[grid](*args, **kwargs)`` (constexprs and launch options in kwargs)."""

    kernel: Any
    grid: tuple[int, ...]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


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


def launch(kernel: Any, grid: tuple[int, ...], *args: Any, **kwargs: Any) -> None:
    """``kernel[grid](*args, **kwargs)``; under the interpreter, run on a helper thread.

    Why a thread: CPython 3.11 allocates frames in 16 KiB "data stack" chunks and unmaps a chunk as soon as
    the frame that opened it returns.  The interpreter makes millions of short, deep Python calls; when the
    caller's stack already sits near a chunk boundary (e.g. inside pytest + Hypothesis) every call maps and
    unmaps a chunk (measured: 288,000 mmap/munmap pairs and as much system time as user time for one
    ``check``).  A helper thread starts from an empty stack, so the kernel's calls stay inside one chunk.
    """
    global _EXECUTOR
    if _RECORDING is not None:
        _RECORDING.append(Launch(kernel, tuple(grid), args, dict(kwargs)))
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
