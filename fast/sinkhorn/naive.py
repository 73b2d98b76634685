"""Naive torch baseline of op ``sinkhorn``: the scaling-domain iterations of Cuturi 2013 as a plain-torch user
writes them, in the input dtype (``K = exp(-C/eps)``, ``u = a / K v``, ``v = b / K^T u``).

The tolerance policy judges a candidate kernel by ``err(candidate) <= rho * err(naive) + floor``; this function
defines ``naive`` for op ``sinkhorn``.  Where exp(-C/eps) underflows or overflows in the dtype (C/eps beyond ~17 in
float16, ~88 in float32 and bfloat16) it returns NaN or a wrong plan, as the algorithm does; a non-finite baseline
error counts as 0, so the candidate must then meet the floors alone.
"""

from __future__ import annotations

import torch

__all__ = ["sinkhorn"]


def sinkhorn(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float, n_iters: int) -> torch.Tensor:
    """``P = diag(u) K diag(v)`` after ``n_iters`` sweeps ``u = a / (K v)``, ``v = b / (K^T u)`` from ``v = 1``, all in
    C's dtype.  C [B, n, m], a [B, n], b [B, m] -> P [B, n, m].
    Source: Cuturi 2013 (arXiv:1306.0895), Algorithm 1; Peyré & Cuturi 2019, eq. 4.15."""
    K = torch.exp(-C / eps)
    v = torch.ones_like(b)
    u = torch.ones_like(a)
    for _ in range(int(n_iters)):
        u = a / (K @ v[..., :, None])[..., 0]
        v = b / (K.transpose(-1, -2) @ u[..., :, None])[..., 0]
    return u[..., :, None] * K * v[..., None, :]
