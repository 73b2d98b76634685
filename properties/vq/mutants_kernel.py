"""Planted bugs in linear-time Transformer-VQ kernels: a correct forward whose backward loses part of dq."""

from __future__ import annotations

import torch

from veriformer.fast.vq import naive
from veriformer.registry import mutant

FAMILY = "vq"
_BLOCK = 4  # the block length the fast kernel is registered with


@mutant("vq.kernel_dq_without_cache", family=FAMILY, op="vq_attention", caught_by=["op:vq_attention"], grad=True,
        dtypes=("bfloat16", "float32"))
def dq_without_cache(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *, causal: bool,
                     scale: float) -> torch.Tensor:
    """The output is right, but dq flows only through the attention to the query's own block: the part through
    the compressed cache exp(q C^T) U (all earlier blocks, or every key when non-causal) is dropped — the bug a
    linear-time backward makes when it forgets the cache term of dq."""
    out = naive.vq_attention(q.detach(), k, v, codebook, causal=causal, scale=scale)
    _, k_hat = naive.vq_quantize(k, codebook)
    T = q.shape[2]
    blk = torch.arange(T, device=q.device) // _BLOCK
    vis = (blk[:, None] == blk[None, :]) & (torch.ones(T, T, dtype=torch.bool, device=q.device).tril() if causal
                                             else torch.ones(T, T, dtype=torch.bool, device=q.device))
    s = ((q @ k_hat.detach().transpose(-1, -2)) * scale).masked_fill(~vis, float("-inf"))
    local = torch.softmax(s, dim=-1).to(v.dtype) @ v.detach()
    return out + (local - local.detach())
