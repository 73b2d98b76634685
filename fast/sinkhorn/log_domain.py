"""Batched log-domain Sinkhorn in torch (op ``sinkhorn``): float32 arithmetic for float16/bfloat16/float32 inputs
(float64 for float64), the plan rounded once to the input dtype.

Potentials are kept in units of eps (x = f/eps, y = g/eps) and the cost is divided by eps once (M = -C/eps), so a
sweep is two ``logsumexp`` reductions with no further division:

    x_i = log a_i - LSE_j(y_j + M_ij),   y_j = log b_j - LSE_i(x_i + M_ij),   P_ij = exp(x_i + y_j + M_ij)

``torch.logsumexp`` subtracts the maximum, so nothing overflows or underflows at any C/eps (the scaling form fails
beyond C/eps ~ 88 in float32).  Differentiable by autograd through the unrolled sweeps.  A Triton kernel would
fuse a sweep's two reductions; on CPU its gain cannot be shown, so this module stays in torch.

Source: Peyré & Cuturi 2019 (arXiv:1803.00567), §4.4, eq. 4.43-4.44; Cuturi 2013 (arXiv:1306.0895).
"""

from __future__ import annotations

import torch

__all__ = ["sinkhorn_log"]


def _check(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float, n_iters: int) -> None:
    if C.ndim != 3:
        raise ValueError(f"sinkhorn_log: argument 'C' must be of shape [B, n, m]; got shape {tuple(C.shape)}")
    B, n, m = C.shape
    if tuple(a.shape) != (B, n):
        raise ValueError(f"sinkhorn_log: argument 'a' must be of shape [B, n] = ({B}, {n}); got {tuple(a.shape)}")
    if tuple(b.shape) != (B, m):
        raise ValueError(f"sinkhorn_log: argument 'b' must be of shape [B, m] = ({B}, {m}); got {tuple(b.shape)}")
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0 or eps == float("inf"):
        raise ValueError(f"sinkhorn_log: argument 'eps' must be a positive finite number; got {eps!r}")
    if isinstance(n_iters, bool) or not isinstance(n_iters, int) or n_iters < 1:
        raise ValueError(f"sinkhorn_log: argument 'n_iters' must be an int >= 1; got {n_iters!r}")


def sinkhorn_log(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float, n_iters: int) -> torch.Tensor:
    """Plan ``P = exp((f_i + g_j - C_ij)/eps)`` after ``n_iters`` log-domain sweeps (row update, then column update,
    from g = 0), so ``P^T 1 = b`` up to rounding.  C [B, n, m], a [B, n], b [B, m] -> P [B, n, m] in C's dtype.
    Source: Peyré & Cuturi 2019, §4.4, eq. 4.43-4.44."""
    _check(C, a, b, eps, n_iters)
    work = torch.float64 if C.dtype == torch.float64 else torch.float32
    M = C.to(work) / -float(eps)
    la, lb = torch.log(a.to(work)), torch.log(b.to(work))
    y = torch.zeros_like(lb)
    x = torch.zeros_like(la)
    for _ in range(n_iters):
        x = la - torch.logsumexp(M + y[..., None, :], dim=-1)
        y = lb - torch.logsumexp(M + x[..., :, None], dim=-2)
    return torch.exp(M + x[..., :, None] + y[..., None, :]).to(C.dtype)
