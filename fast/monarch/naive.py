"""Naive torch baseline of the Monarch product: what a plain-torch user writes (fly's ``BlockdiagButterflyMultiply``
forward): two ``torch.bmm`` and the permutations, in the input dtype.  The tolerance policy judges a kernel by
``err(candidate) <= rho * err(naive) + floor``; this function defines ``naive`` for op ``monarch_matmul``.
"""

from __future__ import annotations

import torch

__all__ = ["monarch_matmul"]


def monarch_matmul(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """y = P_(l,s) L P_(r,l) R x for x [..., k p], w1 [k, q, p] (R blocks, out x in), w2 [l, s, r] (L blocks,
    l r = k q); y [..., l s], in x's dtype (autograd through bmm).  Source: Dao et al. 2022 (Monarch), eq. (1);
    HazyResearch/fly ``src/models/layers/blockdiag_butterfly_multiply.py``."""
    k, q, p = w1.shape
    l_, s, r = w2.shape
    if x.shape[-1] != k * p or l_ * r != k * q:
        raise ValueError(f"monarch_matmul: argument 'x' must be [..., {k * p}] and w2 [l, s, r] with l r = {k * q}; "
                         f"got x {tuple(x.shape)}, w2 {tuple(w2.shape)}")
    batch = x.shape[:-1]
    xb = x.reshape(-1, k, p).transpose(0, 1)  # [k, B, p]
    u = torch.bmm(xb, w1.to(x.dtype).transpose(-1, -2))  # [k, B, q]
    u = u.transpose(0, 1).reshape(-1, r, l_).permute(2, 0, 1)  # [l, B, r]: the middle shuffle
    y = torch.bmm(u, w2.to(x.dtype).transpose(-1, -2))  # [l, B, s]
    return y.permute(1, 2, 0).reshape(*batch, s * l_)  # the output shuffle: index s1 l + l1
