"""mamba-ssm (``mamba_ssm``, 2.3.2.post1 checked on CPU) kernels as rows of ops ``selective_scan``, ``ssd_scan`` and
``mamba_chunk_scan``:

* ``mamba.selective_scan_ref`` and ``mamba.ssd_minimal_discrete``: plain torch, on any device.
* ``mamba.selective_scan_fn``: CUDA and mamba's compiled extension ``selective_scan_cuda``.
* ``mamba.mamba_chunk_scan_combined``: CUDA only (its launcher enters ``torch.cuda.device(x.device.index)``); the
  one adapter that rounds: see :func:`ssd_via_chunk_scan`.
* ``mamba.mamba_chunk_scan_combined[native]``: the same kernel in its own convention, op ``mamba_chunk_scan``
  (the identity mapping: only the device moves of ``on_cuda``); CUDA only.

mamba_ssm's package ``__init__`` imports ``selective_scan_cuda``; a pure-Python install
(``MAMBA_SKIP_CUDA_BUILD=TRUE``) lacks it and then nothing of mamba_ssm imports.  :func:`_mamba` then puts an
empty stand-in module under that name for the duration of the import and removes it again; the
``selective_scan_fn`` row is registered only where the real extension is found.
Sources: state-spaces/mamba ``mamba_ssm/ops/selective_scan_interface.py``, ``mamba_ssm/modules/ssd_minimal.py``,
``mamba_ssm/ops/triton/ssd_combined.py``.
"""

from __future__ import annotations

import functools
import math
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

from veriformer.implementations import Implementation, register_implementation
from veriformer.properties.third_party import CUDA as _CUDA
from veriformer.properties.third_party import fit_output, found, on_cuda
from veriformer.reference._validate import require

__all__ = ["HAVE_MAMBA", "HAVE_SELECTIVE_SCAN_CUDA", "selective_scan_via_cuda_kernel", "selective_scan_via_ref",
           "ssd_via_chunk_scan", "ssd_via_minimal_discrete"]

HAVE_MAMBA = found("mamba_ssm")
HAVE_SELECTIVE_SCAN_CUDA = HAVE_MAMBA and found("selective_scan_cuda")




@functools.cache
def _mamba() -> types.SimpleNamespace:
    """Import mamba_ssm's scan functions (once).  Without the compiled ``selective_scan_cuda`` an empty
    stand-in module is registered under that name while mamba_ssm imports, then removed; ``selective_scan_fn``
    is then unusable (and not registered)."""
    stub = None
    if "selective_scan_cuda" not in sys.modules and not found("selective_scan_cuda"):
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


_SCAN_ALL = frozenset({"D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC", "grouped_BC"})

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
