"""Implementations of op ``vq_attention`` in the report and the catalogue: the naive baseline, the float64 oracle
rounded once and our linear-time kernel ``fast_vq_attention``, :func:`veriformer.fast.vq.linear_time.vq_attention`
with a block size of 4 so that the strategy's sequences (T <= 20) span several blocks and the compressed cache is
exercised (causal cases); gradients are the straight-through VJP (dq through the compressed cache; dk, dv from the
flash-attention dK/dV kernel at k_hat).

The kernel is registered only when Triton is importable. Without CUDA the kernels run in Triton's CPU interpreter.
"""

from __future__ import annotations

import functools

import torch

from veriformer import reference as ref
from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.vq import naive
from veriformer.implementations import Implementation, register_implementation

__all__ = ["oracle_vq_attention"]

def oracle_vq_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *,
                        causal: bool, scale: float) -> torch.Tensor:
    """The float64 dense VQ oracle wrapped as a torch kernel (rounded once to q's dtype)."""
    o = ref.vq_attention(q, k, v, codebook, causal=causal, scale=scale)
    return torch.as_tensor(o, device=q.device, dtype=q.dtype)


register_implementation(Implementation(
    "naive_torch", "vq_attention", naive.vq_attention, grad=True,
    note="nearest code in the input dtype, straight-through, torch.softmax (the baseline itself)"))
register_implementation(Implementation(
    "oracle_in_torch", "vq_attention", oracle_vq_attention, note="float64 oracle rounded once"))


BLOCK_SIZE = 4

if HAVE_TRITON:
    from veriformer.fast.vq.linear_time import vq_attention as _vq_attention

    register_implementation(Implementation(
        name="fast_vq_attention", op="vq_attention", triton=True,
        fn=functools.partial(_vq_attention, block_size=BLOCK_SIZE), grad=True,
        note=f"Triton: nearest code (expansion form, near-ties refined in float64), per-code value sums and "
             f"counts prefix-summed over blocks of W={BLOCK_SIZE}, causal in-block part + compressed cache "
             f"merged with one max; straight-through backward: dq via the cache (linear), dk/dv by the flash "
             f"dK/dV kernel at k_hat"))
