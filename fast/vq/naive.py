"""Naive torch baseline of Transformer-VQ (op ``vq_attention``): quantise the keys (straight-through), then dense
masked softmax attention in the input dtype."""

from __future__ import annotations

import torch

__all__ = ["vq_attention", "vq_quantize"]


def vq_quantize(k: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest code by squared distance ``||k - c_s||^2`` (computed as a difference, in k's dtype); ties go
    to the first index (``argmin``).  k [B, H, T, D], codebook [H or 1, C, D] -> (z [B, H, T] int64,
    straight-through k_hat = sg(c_z) + (k - sg(k)), forward value bitwise c_z, d k_hat / d k = I)."""
    cb = codebook.to(k.dtype)
    d = ((k.detach()[..., :, None, :] - cb[None, :, None, :, :]) ** 2).sum(-1)  # [B, H, T, C]
    z = d.argmin(-1)
    cz = torch.gather(cb.expand(k.shape[0], k.shape[1], *cb.shape[1:]), 2,
                      z[..., None].expand(*z.shape, k.shape[-1]))
    return z, cz.detach() + (k - k.detach())


def vq_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *, causal: bool,
                 scale: float) -> torch.Tensor:
    """Transformer-VQ attention, dense form in the input dtype: keys quantised by :func:`vq_quantize`
    (straight-through), then ``softmax(scale q k_hat^T + causal mask) v`` with ``torch.softmax``.
    q, k [B, H, T, D], v [B, H, T, Dv], codebook [H or 1, C, D] -> o [B, H, T, Dv].
    Source: Lingle 2023 (Transformer-VQ, arXiv 2309.16354)."""
    _, k_hat = vq_quantize(k, codebook)
    s = (q @ k_hat.transpose(-1, -2)) * scale
    if causal:
        T = q.shape[2]
        vis = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        s = s.masked_fill(~vis, float("-inf"))
    return torch.softmax(s, dim=-1).to(v.dtype) @ v
