"""Naive torch baseline of softmax attention: what a careful plain-torch user writes, computed in the input dtype.

The tolerance policy judges a candidate kernel by ``err(candidate) <= rho * err(naive) + floor``; these
functions define ``naive``.  They follow the op calling conventions of ``veriformer.check``.
"""

from __future__ import annotations

import torch

from veriformer.reference.attention import visibility_mask

__all__ = ["softmax_attention"]


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                      scale: float | None = None, window: int | None = None, sinks: int = 0,
                      mask: torch.Tensor | None = None,
                      return_lse: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention in the input dtype: q [B, H, T, D], k/v [B, Hkv, S, D] -> o [B, H, T, Dv].

    ``softmax(scale * q k^T + mask) v`` with ``torch.softmax`` (which subtracts the row max); kv heads
    repeated with ``repeat_interleave`` (GQA); rows with no visible key give 0.  ``return_lse=True`` also
    returns ``torch.logsumexp`` of the masked logits [B, H, T] in the input dtype (-inf for empty rows).
    Visibility (causal end-aligned, window, sinks) as :func:`veriformer.reference.visibility_mask`.
    Source: Vaswani et al. 2017; the plain PyTorch formula.
    """
    H, T, D = q.shape[1], q.shape[2], q.shape[3]
    S, group = k.shape[2], q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scale = D**-0.5 if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    visible = torch.from_numpy(visibility_mask(T, S, causal=causal, window=window, sinks=sinks))
    visible = visible.to(q.device).expand(q.shape[0], H, T, S)
    if mask is not None:
        if mask.dtype == torch.bool:
            visible = visible & mask
        else:
            s = s + mask.to(s.dtype)
            visible = visible & (mask != float("-inf"))
    s = s.masked_fill(~visible, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.where(visible.any(dim=-1, keepdim=True), p, torch.zeros((), dtype=p.dtype, device=p.device))
    o = p.to(v.dtype) @ v
    return (o, torch.logsumexp(s, dim=-1)) if return_lse else o
