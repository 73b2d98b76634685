"""Softmax and log-sum-exp oracles (float64 / mpmath).

Formula: ``softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j`` (shift invariance
makes the max subtraction exact), ``logsumexp(x) = m + log sum_j exp(x_j - m)``.

Entries equal to ``-inf`` are masked out (weight 0).  A slice whose entries are all ``-inf`` has
``logsumexp = -inf`` and softmax 0 everywhere — the flash-attention convention for fully masked rows.
NaN and ``+inf`` are rejected.

Source: Su kexue.fm/archives/10145 (softmax properties); FlashAttention convention (fully masked rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require
from veriformer.reference.backends import F64, Backend, oracle

__all__ = ["logsumexp", "softmax"]


def _prepare(x: Any, func: str, axis: int) -> np.ndarray:
    a = as_float64(x, func, "x")
    require(not np.any(np.isnan(a)) and not np.any(a == np.inf), func, "x",
            "free of NaN and +inf (-inf marks a masked entry)", "a non-finite value")
    require(a.ndim >= 1, func, "x", "at least 1-dimensional", f"shape {a.shape}")
    require(-a.ndim <= axis < a.ndim, func, "axis", f"in [-{a.ndim}, {a.ndim})", axis)
    return a


def stable_terms(xp: Backend, x: np.ndarray, axis: int) -> tuple[Any, Any, Any]:
    """(m, e, l): the row max (-inf for an all-masked row), ``e = exp(x - m)`` with masked entries 0,
    and ``l = sum e``.  Shared by softmax, logsumexp and attention so all use one numerical recipe."""
    m = xp.max(x, axis=axis, keepdims=True)
    m_safe = xp.where(m == xp.neg_inf, 0.0, m)  # an all-masked row: avoid (-inf) - (-inf)
    e = xp.exp(x - m_safe)  # exp(-inf) = 0 for masked entries
    return m, e, xp.sum(e, axis=axis, keepdims=True)


@oracle
def softmax(x: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """Softmax along ``axis`` of any-rank ``x``: ``exp(x - max x) / sum exp(x - max x)``.

    ``-inf`` entries get probability 0; an all ``-inf`` slice gives all zeros.  Returns float64.
    Source: Bridle 1990; Su kexue.fm/archives/10145.
    """
    a = _prepare(x, "softmax", axis)
    xp = backend
    _, e, l = stable_terms(xp, xp.asarray(a), axis)
    p = xp.where(l > 0, e / xp.where(l > 0, l, 1.0), 0.0)
    return xp.to_float64(p)


@oracle
def logsumexp(x: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """``log sum_j exp(x_j)`` along ``axis`` computed as ``m + log sum exp(x - m)``; -inf for an all
    ``-inf`` slice.  Bounds: ``max x <= lse <= max x + log n``.  Source: Su kexue.fm/archives/10145."""
    a = _prepare(x, "logsumexp", axis)
    xp = backend
    m, _, l = stable_terms(xp, xp.asarray(a), axis)
    out = xp.where(l > 0, m + xp.log(xp.where(l > 0, l, 1.0)), xp.neg_inf)
    return np.squeeze(xp.to_float64(out), axis=axis)
