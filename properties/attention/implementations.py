"""Implementations of op ``softmax_attention`` that the report and the catalogue check: the naive baseline, the float64
oracle rounded once, torch SDPA (default and MATH backends) and our Triton ``triton_flash`` / ``triton_flash[tma]``
(the same kernels with their looped tiles loaded through TMA descriptors).

The Triton rows are registered only when Triton is importable (it is an optional dependency). Without CUDA the
kernels run in Triton's CPU interpreter (selected by :mod:`veriformer.fast._triton.env`), slowly but with the GPU's
arithmetic (operands rounded to the input dtype's grid, float32 accumulation); with CUDA they run on the device of
the tensors ``check`` passes.
"""

from __future__ import annotations

from typing import Any

import torch

from veriformer import reference as ref
from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.attention import naive
from veriformer.implementations import Implementation, register_implementation
from veriformer.torchio import to_numpy

__all__ = ["oracle_attention", "torch_sdpa", "torch_sdpa_math"]


def oracle_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
                     window: int | None = None, sinks: int = 0, mask: torch.Tensor | None = None,
                     return_lse: bool = False) -> Any:
    """The float64 oracle wrapped as a torch kernel (result rounded once to q's dtype; lse in float32 for half
    inputs, as flash-attention returns it)."""
    m = None if mask is None else (mask.cpu().numpy() if mask.dtype == torch.bool else to_numpy(mask))
    o, lse = ref.softmax_attention(q, k, v, scale=scale, causal=causal, window=window, sinks=sinks, mask=m,
                                   return_lse=True)
    o_t = torch.from_numpy(o).to(device=q.device, dtype=q.dtype)
    if not return_lse:
        return o_t
    wide = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    return o_t, torch.from_numpy(lse).to(device=q.device, dtype=wide)


def torch_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.scaled_dot_product_attention`` adapted to the end-aligned causal convention
    (``causal_lower_right`` when S != T) with native GQA (``enable_gqa``) and boolean/additive masks."""
    T, S = q.shape[2], k.shape[2]
    attn_mask: Any = mask
    if causal:
        vis = torch.from_numpy(ref.visibility_mask(T, S, causal=True)).to(q.device)
        if mask is None:
            attn_mask = vis
        elif mask.dtype == torch.bool:
            attn_mask = vis & mask
        else:
            attn_mask = mask.masked_fill(~vis, float("-inf"))
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, scale=scale, enable_gqa=k.shape[1] != q.shape[1])


def torch_sdpa_math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`torch_sdpa` restricted to SDPA's MATH backend (the reference composite of matmul, softmax, matmul),
    so the report checks both of torch's CPU backends (the default picks its fused CPU flash kernel)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return torch_sdpa(q, k, v, causal=causal, scale=scale, mask=mask)


_ALL = frozenset({"causal", "gqa", "window", "sinks", "mask", "lse"})

for _impl in [
    Implementation("naive_torch", "softmax_attention", naive.softmax_attention, _ALL, grad=True,
                   note="the baseline itself (ratio 1 by construction)"),
    Implementation("oracle_in_torch", "softmax_attention", oracle_attention, _ALL,
                   note="float64 oracle rounded once: the best any kernel can do"),
    Implementation("torch_sdpa", "softmax_attention", torch_sdpa, frozenset({"causal", "gqa", "mask"}),
                   grad=True, note="torch.nn.functional.scaled_dot_product_attention, lower-right causal"),
    Implementation("torch_sdpa[math]", "softmax_attention", torch_sdpa_math, frozenset({"causal", "gqa", "mask"}),
                   grad=True, note="the same through SDPBackend.MATH"),
]:
    register_implementation(_impl)


if HAVE_TRITON:
    from veriformer.fast.attention.flash import attention as _attention
    from veriformer.fast.attention.flash import config_override as _config_override

    def _attention_tma(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> Any:
        """:func:`veriformer.fast.attention` with its looped tiles streamed through TMA descriptors."""
        with _config_override(fwd={"TMA": 1}, bwd={"TMA": 1}):
            return _attention(q, k, v, **kwargs)

    register_implementation(Implementation(
        name="triton_flash", op="softmax_attention", fn=_attention, triton=True,
        features=frozenset({"causal", "gqa", "window", "sinks", "lse"}), grad=True,
        note="Triton FlashAttention-2 forward + backward (fp32 accumulation, block skipping for causal/window/"
             "sinks, in-kernel GQA, masked head-dim padding for any D <= 256); CPU interpreter without CUDA"))
    register_implementation(Implementation(
        name="triton_flash[tma]", op="softmax_attention", fn=_attention_tma, triton=True,
        features=frozenset({"causal", "gqa", "window", "sinks"}), grad=True,
        note="the same kernels with the looped tiles (K/V forward and dQ, Q/dO in dK/dV) loaded through Hopper "
             "TMA descriptors (config_override TMA=1; pointer loads where a layout does not allow TMA); not the "
             "default until timed on a GPU"))
