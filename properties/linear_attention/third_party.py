"""flash-linear-attention (``fla``) kernels as rows of op ``linear_attention`` (fla-core 0.6.0 checked on CPU):

* ``fla.fused_recurrent_simple_gla``: CUDA, or the CPU interpreter (forward and backward run; gradients are
  checked only with CUDA to keep the catalogue fast).  On CPU Triton has no active driver and fla's autotuned
  kernels call ``triton.runtime.driver.active.get_benchmarker()``; the shared
  :func:`veriformer.properties.third_party.install_interpreter_driver` puts a stand-in driver there.
* ``fla.chunk_simple_gla`` and ``fla.chunk_lightning_attn``: CUDA only (in the interpreter fla's
  ``chunk_fwd_kernel_h`` calls ``.to(tl.int64)`` on a ``range`` loop index, a Python int there).

The adapters map arguments only (exact zero padding of odd K/V, dtype widening); each takes the kernel as its
first argument so the tests can check the mapping with our own torch baselines in its place.
Source: fla-org/flash-linear-attention ``fla/ops/simple_gla``, ``fla/ops/lightning_attn``.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import torch

from veriformer.fast._triton.env import HAVE_TRITON, interpreting, require_triton
from veriformer.implementations import Implementation, register_implementation
from veriformer.properties.third_party import CUDA as _CUDA
from veriformer.properties.third_party import fit_output, found, install_interpreter_driver, on_cuda
from veriformer.properties.third_party import pad_last as _pad_last
from veriformer.reference._validate import require

__all__ = ["HAVE_FLA", "fla_chunk_lightning_attn", "fla_chunk_simple_gla", "fla_fused_recurrent_simple_gla",
           "lightning_as_linear_attention", "simple_gla_as_linear_attention"]

HAVE_FLA = found("fla") and HAVE_TRITON




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


@functools.cache
def _fla() -> types.SimpleNamespace:
    """Import fla's kernels (once), with the interpreter's driver stand-in on CPU."""
    require_triton("veriformer fla rows")
    install_interpreter_driver()
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


_LA = frozenset({"gate", "initial_state"})
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
