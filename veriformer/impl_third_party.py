"""Third-party kernels in the report and the catalogue: flash-linear-attention (``fla``, op ``linear_attention``)
and mamba-ssm (``mamba_ssm``, ops ``selective_scan``, ``ssd_scan`` and ``mamba_chunk_scan``).

Every row is registered only where its package is installed (``importlib.util.find_spec``) and only where it
can run: Triton kernels with a CUDA device, or in Triton's CPU interpreter where that was shown to work.  The
packages themselves are imported lazily, at the first call of a row: ``import fla.ops`` imports all of fla's
~60 op families and ``mamba_ssm`` imports ``transformers`` (6 s and 5 s on the development machine), which
every ``import veriformer`` would otherwise pay.  A row whose package is installed but does not import fails
its check with the ImportError as the reason.

The callables follow the op conventions through adapters only (argument mapping, exact dtype widening, exact
zero padding, device moves); no adapter changes the arithmetic of the kernel, except the one documented
rounding of ``mamba.mamba_chunk_scan_combined`` (see :func:`ssd_via_chunk_scan`).  Each adapter takes the
kernel as its first argument so the tests can check the mapping with our own torch baselines in its place.

Rows and where they run (fla-core 0.6.0, mamba-ssm 2.3.2.post1, triton 3.9, torch 2.13, checked on CPU):

* ``fla.fused_recurrent_simple_gla``: CUDA, or the CPU interpreter (forward and backward run; gradients are
  checked only with CUDA to keep the catalogue fast).  On CPU Triton has no active driver and fla's autotuned
  kernels call ``triton.runtime.driver.active.get_benchmarker()``; :func:`_install_interpreter_driver` puts a
  stand-in driver there whose benchmarker times nothing (the autotuner then keeps its first config) and whose
  every other attribute raises the same "no driver" error as before.
* ``fla.chunk_simple_gla`` and ``fla.chunk_lightning_attn``: CUDA only (in the interpreter fla's
  ``chunk_fwd_kernel_h`` calls ``.to(tl.int64)`` on a ``range`` loop index, a Python int there).
* ``mamba.selective_scan_ref`` and ``mamba.ssd_minimal_discrete``: plain torch, on any device.
* ``mamba.selective_scan_fn``: CUDA and mamba's compiled extension ``selective_scan_cuda``.
* ``mamba.mamba_chunk_scan_combined``: CUDA only (its launcher enters ``torch.cuda.device(x.device.index)``).
* ``mamba.mamba_chunk_scan_combined[native]``: the same kernel in its own convention, op ``mamba_chunk_scan``
  (the identity mapping: only the device moves of :func:`on_cuda`); CUDA only.

mamba_ssm's package ``__init__`` imports ``selective_scan_cuda``; a pure-Python install
(``MAMBA_SKIP_CUDA_BUILD=TRUE``) lacks it and then nothing of mamba_ssm imports.  :func:`_mamba` then puts an
empty stand-in module under that name for the duration of the import and removes it again; the
``selective_scan_fn`` row is registered only where the real extension is found.

Sources: fla-org/flash-linear-attention ``fla/ops/simple_gla``, ``fla/ops/lightning_attn``;
state-spaces/mamba ``mamba_ssm/ops/selective_scan_interface.py``, ``mamba_ssm/modules/ssd_minimal.py``,
``mamba_ssm/ops/triton/ssd_combined.py``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

from .fast._triton_env import HAVE_TRITON, interpreting, require_triton
from .implementations import Implementation, register_implementation
from .ops import get_op
from .reference._validate import require

__all__ = ["HAVE_FLA", "HAVE_MAMBA", "HAVE_SELECTIVE_SCAN_CUDA", "fit_output", "lightning_as_linear_attention",
           "on_cuda", "selective_scan_via_cuda_kernel", "selective_scan_via_ref", "simple_gla_as_linear_attention",
           "ssd_via_chunk_scan", "ssd_via_minimal_discrete"]


def _found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


HAVE_FLA = _found("fla") and HAVE_TRITON
HAVE_MAMBA = _found("mamba_ssm")
HAVE_SELECTIVE_SCAN_CUDA = HAVE_MAMBA and _found("selective_scan_cuda")
_CUDA = torch.cuda.is_available()


# -- generic adapters ------------------------------------------------------------------------------------------


def fit_output(t: torch.Tensor | None, like: torch.Tensor, op: str, output: str) -> torch.Tensor | None:
    """``t`` as the op accepts output ``output``: unchanged when its dtype is ``like``'s, or float32 for half
    ``like`` when the op lists the output in ``OpSpec.wide_outputs`` (fla and mamba keep states in float32);
    otherwise rounded once to ``like.dtype`` (what the op's convention then demands)."""
    if t is None or t.dtype == like.dtype:
        return t
    if (output in get_op(op).wide_outputs and t.dtype == torch.float32
            and like.dtype in (torch.float16, torch.bfloat16)):
        return t
    return t.to(like.dtype)


def on_cuda(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a CUDA-only kernel for ``check(..., device="cpu")`` (the catalogue): CPU tensor arguments are
    moved to the current CUDA device and tensor results moved back (``Tensor.to`` is differentiable, so
    gradients flow to the CPU inputs).  Tensors already on CUDA, or any tensors on a machine without CUDA,
    pass through; the arithmetic is the kernel's."""

    def move(x: Any, device: torch.device | str) -> Any:
        if isinstance(x, torch.Tensor):
            return x.to(device)
        if isinstance(x, tuple | list):
            return type(x)(move(y, device) for y in x)
        return x

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if first is None or first.is_cuda or not torch.cuda.is_available():
            return fn(*args, **kwargs)
        home = first.device
        res = fn(*(move(a, "cuda") for a in args), **{k: move(v, "cuda") for k, v in kwargs.items()})
        return move(res, home)

    return wrapper


def _pad_last(x: torch.Tensor | None, dim: int, to: int) -> torch.Tensor | None:
    """Zero-pad dimension ``dim`` of ``x`` to size ``to`` (exact: the extra entries multiply zeros)."""
    if x is None or x.shape[dim] == to:
        return x
    pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + [0, to - x.shape[dim]]
    return torch.nn.functional.pad(x, pad)


# -- fla: linear_attention ---------------------------------------------------------------------------------------


def simple_gla_as_linear_attention(kernel: Callable[..., Any], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                   *, g: torch.Tensor | None = None, scale: float,
                                   initial_state: torch.Tensor | None = None, output_final_state: bool = False,
                                   pad_even: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Op ``linear_attention`` through fla's simple-GLA signature ``kernel(q, k, v, g=, scale=, initial_state=,
    output_final_state=)`` (``chunk_simple_gla``, ``fused_recurrent_simple_gla``): the conventions are the
    same (q, k [B, T, H, K], v [B, T, H, V], per-token log-gates g [B, T, H], state [B, H, K, V];
    ``S_t = exp(g_t) S_{t-1} + k_t v_t^T``, ``o_t = scale q_t^T S_t``), so this is the identity mapping.

    ``pad_even``: zero-pad an odd K or V to the next even size and slice the results back.  fla's chunked
    backward (``chunk_bwd_dv``) asserts even K and V for 16-bit inputs; padding q, k (and the initial state's
    rows) with zero columns adds exact zeros to every dot product, and zero value columns give zero outputs
    that are sliced off, so the kernel's results on the real entries are unchanged.
    Source: fla ``fla/ops/simple_gla/chunk.py``, ``fused_recurrent.py``; fla ``fla/ops/common/chunk_o.py``.
    """
    K, V = q.shape[-1], v.shape[-1]
    Kp, Vp = (K + K % 2, V + V % 2) if pad_even else (K, V)
    h0 = initial_state
    if (Kp, Vp) != (K, V):
        q, k = _pad_last(q, -1, Kp), _pad_last(k, -1, Kp)
        v = _pad_last(v, -1, Vp)
        if h0 is not None:
            h0 = _pad_last(_pad_last(h0, -2, Kp), -1, Vp)
    o, S = kernel(q, k, v, g=g, scale=scale, initial_state=h0, output_final_state=output_final_state)
    if (Kp, Vp) != (K, V):
        o = o[..., :V]
        S = None if S is None else S[..., :K, :V]
    if not output_final_state:
        S = None
    return o, fit_output(S, q, "linear_attention", "final_state")


def lightning_as_linear_attention(kernel: Callable[..., Any], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                  *, g: torch.Tensor | None = None, scale: float,
                                  initial_state: torch.Tensor | None = None, output_final_state: bool = False,
                                  pad_even: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Op ``linear_attention`` without gates through fla's ``chunk_lightning_attn(q, k, v, layer_idx,
    num_layers, scale=, initial_state=, output_final_state=)``.

    Lightning attention decays head h by the fixed slope ``gamma_h = -(8/H)(1 - layer_idx/num_layers) h`` per
    token (it calls ``chunk_simple_gla`` with ``g_gamma``); no choice of layer maps the op's per-token gates
    onto that schedule, so the row has no ``"gate"`` feature and ``g`` must be None.  With
    ``layer_idx = num_layers = 1`` every slope is ``-0.0``: decay ``exp(-0) = 1`` exactly, plain causal linear
    attention ``o_t = scale q_t^T (S0 + sum_{s<=t} k_s v_s^T)`` through the kernel's g_gamma path.
    ``pad_even`` as in :func:`simple_gla_as_linear_attention`.  Source: fla ``fla/ops/lightning_attn/chunk.py``.
    """
    require(g is None, "lightning_as_linear_attention", "g",
            "None (lightning attention has fixed per-head slopes, not per-token gates)", "a tensor")

    def call(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: None, scale: float,
             initial_state: torch.Tensor | None, output_final_state: bool) -> Any:
        return kernel(q, k, v, layer_idx=1, num_layers=1, scale=scale, initial_state=initial_state,
                      output_final_state=output_final_state)

    return simple_gla_as_linear_attention(call, q, k, v, g=None, scale=scale, initial_state=initial_state,
                                          output_final_state=output_final_state, pad_even=pad_even)


class _InterpreterDriver:
    """Stand-in for ``triton.runtime.driver.active`` on a machine with no GPU driver, for the interpreter.

    Only ``get_benchmarker`` is provided: it returns a benchmarker that does not run the kernel and reports
    equal timings, so ``triton.autotune`` keeps the first config (the interpreter's timings mean nothing
    anyway).  Every other attribute raises RuntimeError like the missing driver did, so code that probes the
    driver (fla's device detection) sees what it saw before."""

    def get_benchmarker(self) -> Callable[..., list[float]]:
        return lambda kernel_call, quantiles=None, **kw: [0.0, 0.0, 0.0]

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no active Triton driver (veriformer interpreter stand-in has no {name!r})")


def _install_interpreter_driver() -> None:
    """Install :class:`_InterpreterDriver` when Triton interprets and has no driver (no-op otherwise)."""
    from triton.runtime import driver

    if not interpreting() or isinstance(getattr(driver, "_active", None), _InterpreterDriver):
        return
    try:
        driver.active  # noqa: B018 - probes for a real driver
    except RuntimeError:
        driver.set_active(_InterpreterDriver())  # type: ignore[arg-type]


@functools.cache
def _fla() -> types.SimpleNamespace:
    """Import fla's kernels (once), with the interpreter's driver stand-in on CPU."""
    require_triton("veriformer fla rows")
    _install_interpreter_driver()
    from fla.ops.lightning_attn import chunk_lightning_attn
    from fla.ops.simple_gla import chunk_simple_gla, fused_recurrent_simple_gla

    return types.SimpleNamespace(chunk_simple_gla=chunk_simple_gla, chunk_lightning_attn=chunk_lightning_attn,
                                 fused_recurrent_simple_gla=fused_recurrent_simple_gla)


def _fla_kernel(name: str) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        return getattr(_fla(), name)(*args, **kwargs)

    return kernel


def fla_chunk_simple_gla(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                         scale: float, initial_state: torch.Tensor | None = None,
                         output_final_state: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla ``chunk_simple_gla`` in op ``linear_attention`` (odd K/V zero-padded, see
    :func:`simple_gla_as_linear_attention`)."""
    return simple_gla_as_linear_attention(_fla_kernel("chunk_simple_gla"), q, k, v, g=g, scale=scale,
                                          initial_state=initial_state, output_final_state=output_final_state,
                                          pad_even=True)


def fla_fused_recurrent_simple_gla(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                                   g: torch.Tensor | None = None, scale: float,
                                   initial_state: torch.Tensor | None = None,
                                   output_final_state: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla ``fused_recurrent_simple_gla`` in op ``linear_attention`` (identity mapping)."""
    return simple_gla_as_linear_attention(_fla_kernel("fused_recurrent_simple_gla"), q, k, v, g=g, scale=scale,
                                          initial_state=initial_state, output_final_state=output_final_state)


def fla_chunk_lightning_attn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                             scale: float, initial_state: torch.Tensor | None = None,
                             output_final_state: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla ``chunk_lightning_attn`` (layer 1 of 1: zero slopes) in op ``linear_attention`` without gates."""
    return lightning_as_linear_attention(_fla_kernel("chunk_lightning_attn"), q, k, v, g=g, scale=scale,
                                         initial_state=initial_state, output_final_state=output_final_state,
                                         pad_even=True)


# -- mamba: selective_scan, ssd_scan ------------------------------------------------------------------------------


@functools.cache
def _mamba() -> types.SimpleNamespace:
    """Import mamba_ssm's scan functions (once).  Without the compiled ``selective_scan_cuda`` an empty
    stand-in module is registered under that name while mamba_ssm imports, then removed; ``selective_scan_fn``
    is then unusable (and not registered)."""
    stub = None
    if "selective_scan_cuda" not in sys.modules and not _found("selective_scan_cuda"):
        stub = types.ModuleType("selective_scan_cuda", "veriformer stand-in: mamba_ssm built without CUDA")
        sys.modules["selective_scan_cuda"] = stub
    try:
        from mamba_ssm.modules.ssd_minimal import ssd_minimal_discrete
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn, selective_scan_ref
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    finally:
        if stub is not None and sys.modules.get("selective_scan_cuda") is stub:
            del sys.modules["selective_scan_cuda"]
    return types.SimpleNamespace(selective_scan_fn=selective_scan_fn, selective_scan_ref=selective_scan_ref,
                                 ssd_minimal_discrete=ssd_minimal_discrete,
                                 mamba_chunk_scan_combined=mamba_chunk_scan_combined)


def _mamba_kernel(name: str) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        return getattr(_mamba(), name)(*args, **kwargs)

    return kernel


def selective_scan_via_ref(kernel: Callable[..., Any], u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor,
                           B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None = None,
                           z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
                           delta_softplus: bool = False, return_last_state: bool = False) -> Any:
    """Op ``selective_scan`` through mamba's ``selective_scan_ref`` signature (the op's own): u, delta
    [b, d, L], A [d, n], B/C [d, n] or [b, n, L] or [b, g, n, L], D/delta_bias [d], z [b, d, L];
    ``x_l = exp(delta_l A) x_{l-1} + delta_l B_l u_l``, ``y_l = C_l . x_l (+ D u_l)(* silu(z_l))``.
    The identity mapping; mamba returns last_state [b, d, n] in float32, passed through where the op accepts
    a wide last_state (:func:`fit_output`).  Source: mamba ``selective_scan_interface.py``."""
    res = kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if not return_last_state:
        return res
    out, last = res
    return out, fit_output(last, u, "selective_scan", "last_state")


def selective_scan_via_cuda_kernel(kernel: Callable[..., Any], u: torch.Tensor, delta: torch.Tensor,
                                   A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None = None,
                                   z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
                                   delta_softplus: bool = False, return_last_state: bool = False) -> Any:
    """Op ``selective_scan`` through mamba's ``selective_scan_fn`` (CUDA extension), which requires the
    "weights" in float32: A, D, delta_bias, and B/C when they are not input-dependent ([d, n]).  Those are
    widened with ``.float()`` (exact for float16/bfloat16/float32 inputs); u, delta, z and variable B/C stay
    in the input dtype as the kernel requires.  Otherwise as :func:`selective_scan_via_ref`.
    Source: mamba ``csrc/selective_scan/selective_scan.cpp`` (TORCH_CHECKs on weight_type)."""

    def wide(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.float()

    B = wide(B) if B.dim() == 2 else B
    C = wide(C) if C.dim() == 2 else C
    return selective_scan_via_ref(kernel, u, delta, wide(A), B, C, wide(D), z, wide(delta_bias), delta_softplus,
                                  return_last_state)


def ssd_via_minimal_discrete(kernel: Callable[..., Any], X: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                             C: torch.Tensor, chunk_size: int,
                             initial_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Op ``ssd_scan`` through mamba's ``ssd_minimal_discrete(X, A, B, C, block_len, initial_states)``: the
    layouts are the op's (X [b, l, h, p], A [b, l, h], B/C [b, l, h, n]) except the initial state, which
    mamba concatenates to its per-chunk states [b, c, h, p, n] and so takes as [b, 1, h, p, n]; the op's
    [b, h, p, n] gets that axis (a view).  Source: mamba ``mamba_ssm/modules/ssd_minimal.py``."""
    h0 = None if initial_states is None else initial_states.unsqueeze(1)
    Y, final = kernel(X, A, B, C, chunk_size, initial_states=h0)
    return Y, fit_output(final, X, "ssd_scan", "final_state")  # type: ignore[return-value]


_X_LIMIT = 2.0**13  # largest |x'| the adapter lets through (float16 holds 65504)


def ssd_via_chunk_scan(kernel: Callable[..., Any], X: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                       C: torch.Tensor, chunk_size: int,
                       initial_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Op ``ssd_scan`` through mamba's ``mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size,
    initial_states=, return_final_states=True)``.

    The op is the discrete SSD ``h_t = exp(a_t) h_{t-1} + B_t X_t^T``, ``Y_t = C_t h_t`` with per-token
    log-decays a [b, l, h] <= 0.  The kernel takes a per-head A_h [h] and per-token dt [b, l, h] and scales
    both the decay and the input by dt: ``h_t = exp(dt_t A_h) h_{t-1} + dt_t B_t x_t^T``.  Mapping, per head:

    * all a = 0 (no decay): A_h = 0, dt = 1, x = X — exact;
    * all a < 0: A_h = -2^k, dt = -a / 2^k in float32 (exact: a power-of-two scaling of a half-precision
      value), so the kernel's ``dt A_h = a`` exactly; x = X / dt, computed in float64 and rounded once to the
      input dtype (the one rounding this adapter adds: relative <= 2^-11 for float16, 2^-8 for bfloat16, per
      summand, inside the op's 4-ulp floor).  2^k is the largest power of two keeping |x| <= 2^13;
    * a head mixing zero and negative a cannot be mapped (dt = 0 would also zero the input): InputError.

    B/C per head map to ``ngroups = nheads``; states are [b, h, p, n] on both sides; mamba returns the final
    state in float32 (:func:`fit_output`).  Source: mamba ``mamba_ssm/ops/triton/ssd_combined.py``.
    """
    func = "ssd_via_chunk_scan"
    a = -A.detach().double()  # [b, l, h], >= 0
    require(bool((a >= 0).all()), func, "A", "<= 0 (log-decays)", "positive entries")
    zero = (a == 0).flatten(0, 1).all(dim=0)  # [h]
    mixed = (a == 0).flatten(0, 1).any(dim=0) & ~zero
    require(not bool(mixed.any()), func, "A",
            "per head either all zero or all negative (mamba's dt scales the input too, dt = 0 would drop it)",
            f"heads {mixed.nonzero().flatten().tolist()} mixing zeros and negatives")
    ratio = (X.detach().double().abs().amax(dim=-1) / torch.where(a == 0, 1.0, a)).flatten(0, 1).amax(dim=0)
    k = torch.tensor([0.0 if z or r == 0 else math.floor(math.log2(_X_LIMIT / float(r)))
                      for z, r in zip(zero.tolist(), ratio.tolist(), strict=True)], dtype=torch.float64)
    s = torch.exp2(k).to(A.device)  # [h]
    dt64 = torch.where(zero, 1.0, a / s)
    dt = dt64.float()
    A_h = torch.where(zero, 0.0, -s).float()
    x = (X.double() / dt64[..., None]).to(X.dtype)
    out, final = kernel(x, dt, A_h, B, C, chunk_size, initial_states=initial_states, return_final_states=True)
    return out, fit_output(final, X, "ssd_scan", "final_state")  # type: ignore[return-value]


# -- registrations -------------------------------------------------------------------------------------------------

_LA = frozenset({"gate", "initial_state"})
_SCAN_ALL = frozenset({"D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC", "grouped_BC"})
_WHERE = "CUDA" if _CUDA else "CPU interpreter (driver stand-in for fla's autotuner)"

if HAVE_FLA and (_CUDA or interpreting()):
    register_implementation(Implementation(
        "fla.fused_recurrent_simple_gla", "linear_attention", on_cuda(fla_fused_recurrent_simple_gla), _LA,
        grad=_CUDA,
        note="fla fused_recurrent_simple_gla: token recurrence, float32 state, final_state float32; identity "
             f"mapping; {_WHERE}" + ("" if _CUDA else "; gradients not checked on CPU (slow in the interpreter)")))
if HAVE_FLA and _CUDA:
    register_implementation(Implementation(
        "fla.chunk_simple_gla", "linear_attention", on_cuda(fla_chunk_simple_gla), _LA, grad=True,
        note="fla chunk_simple_gla (chunk 64, float32 gate cumsum and state); odd K/V zero-padded to even "
             "(its 16-bit backward asserts even sizes); CUDA only (interpreter: int loop index .to())"))
    register_implementation(Implementation(
        "fla.chunk_lightning_attn", "linear_attention", on_cuda(fla_chunk_lightning_attn),
        frozenset({"initial_state"}), grad=True,
        note="fla chunk_lightning_attn with layer_idx = num_layers = 1 (all slopes -0: decay exactly 1; "
             "its per-head slope schedule cannot express per-token gates, so no 'gate'); odd K/V zero-padded"))
if HAVE_MAMBA:
    register_implementation(Implementation(
        "mamba.selective_scan_ref", "selective_scan", functools.partial(selective_scan_via_ref,
                                                                         _mamba_kernel("selective_scan_ref")),
        _SCAN_ALL | {"complex_A"}, grad=True,
        note="mamba selective_scan_ref: plain torch, float32 inside (also for float64 inputs), last_state float32; "
             "any device"))
    register_implementation(Implementation(
        "mamba.ssd_minimal_discrete", "ssd_scan", functools.partial(ssd_via_minimal_discrete,
                                                                     _mamba_kernel("ssd_minimal_discrete")),
        frozenset({"initial_states"}), grad=True,
        note="mamba ssd_minimal_discrete (Listing 1 of Dao & Gu 2024): plain torch in the input dtype; "
             "initial state given as [b, 1, h, p, n]; any device"))
if HAVE_MAMBA and _CUDA:
    register_implementation(Implementation(
        "mamba.mamba_chunk_scan_combined", "ssd_scan",
        on_cuda(functools.partial(ssd_via_chunk_scan, _mamba_kernel("mamba_chunk_scan_combined"))),
        frozenset({"initial_states"}),
        note="mamba Triton SSD: per-head A = -2^k, dt = -a/2^k (exact), x = X/dt rounded once to the input "
             "dtype (the adapter's one rounding), ngroups = nheads; heads mixing zero and negative log-decays "
             "are rejected; final state float32; CUDA only"))
    register_implementation(Implementation(
        "mamba.mamba_chunk_scan_combined[native]", "mamba_chunk_scan",
        on_cuda(_mamba_kernel("mamba_chunk_scan_combined")),
        frozenset({"D", "z", "dt_bias", "dt_softplus", "initial_states", "return_final_states", "grouped"}),
        grad=True,
        note="mamba Triton SSD in its own convention (x, dt, A [h], B/C [b, l, g, n], D, z, dt_bias, "
             "initial_states, dt_softplus, return_final_states): identity mapping, CPU tensors moved to CUDA "
             "and back; final state float32; CUDA only"))
if HAVE_SELECTIVE_SCAN_CUDA and _CUDA:
    register_implementation(Implementation(
        "mamba.selective_scan_fn", "selective_scan",
        on_cuda(functools.partial(selective_scan_via_cuda_kernel, _mamba_kernel("selective_scan_fn"))),
        _SCAN_ALL | {"complex_A"}, grad=True,
        note="mamba selective_scan_fn (CUDA extension): A, D, delta_bias and fixed B/C widened to float32 "
             "(exact; the kernel requires float32 weights); last_state float32"))
