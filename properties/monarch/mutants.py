"""Planted bugs in the Monarch oracles (each must be caught by the laws named)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant


@mutant("monarch.shuffle_identity", family="monarch", replaces="monarch_shuffle", caught_by=["monarch.shuffle"])
def shuffle_identity(a: int, b: int) -> np.ndarray:
    """The 'shuffle' is the identity (reshape without the transpose)."""
    return np.arange(a * b)


@mutant("monarch.dense_without_output_shuffle", family="monarch", replaces="monarch_dense",
        caught_by=["monarch.four_index", "monarch.fast_equals_dense"])
def dense_no_output_shuffle(w1: Any, w2: Any, **kw: Any) -> np.ndarray:
    """Dense matrix built as L P R (the output permutation P_(l,s) forgotten)."""
    M = ref.monarch_dense(w1, w2, **kw)
    l_, s, _ = np.shape(w2)
    return M[ref.monarch_shuffle(s, l_)]  # P_(s,l) = P_(l,s)^-1 undoes the output shuffle


@mutant("monarch.matmul_middle_unshuffled", family="monarch", replaces="monarch_matmul",
        caught_by=["monarch.fast_equals_dense", "monarch.dft"])
def matmul_middle_unshuffled(x: Any, w1: Any, w2: Any, **kw: Any) -> np.ndarray:
    """Fast product that reads the middle vector as [l, r] without the transpose (u.reshape(l, r))."""
    w1 = np.asarray(w1)
    w2 = np.asarray(w2)
    xa = np.asarray(x)
    k, _q, p = w1.shape
    l_, s, r = w2.shape
    u = np.einsum("kqp,bkp->bkq", w1, xa.reshape(-1, k, p)).reshape(-1, l_, r)
    y = np.einsum("lsr,blr->bsl", w2, u)
    return y.reshape(*xa.shape[:-1], s * l_)


@mutant("monarch.project_first_column", family="monarch", replaces="monarch_project",
        caught_by=["monarch.projection_error", "monarch.projection_optimal"])
def project_first_column(a: Any, k: int, l: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-1 'projection' of each slab from its first column and first row (S[:, 0] S[0, :] / S[0, 0]),
    exact on Monarch matrices but not optimal."""
    S = ref.monarch_slabs(a, k, l)
    piv = S[..., :1, :1]
    piv = np.where(np.abs(piv) > 0, piv, 1.0)
    left = S[..., :, 0] / piv[..., 0]  # [l, k, s]
    right = S[..., 0, :]  # [l, k, p]
    return np.ascontiguousarray(right.transpose(1, 0, 2)), np.ascontiguousarray(left.transpose(0, 2, 1))


@mutant("monarch.project_slabs_transposed", family="monarch", replaces="monarch_project",
        caught_by=["monarch.projection_idempotent", "monarch.dft"])
def project_slabs_transposed(a: Any, k: int, l: int) -> tuple[np.ndarray, np.ndarray]:
    """Slabs cut with the roles of the row digits swapped (A[l1 s + s1, ...] instead of A[s1 l + l1, ...])."""
    A = np.asarray(a)
    return ref.monarch_project(A[ref.monarch_shuffle(A.shape[0] // l, l)], k, l)


@mutant("monarch.project_sigma_squared", family="monarch", replaces="monarch_project",
        caught_by=["monarch.projection_idempotent", "monarch.projection_error"])
def project_sigma_squared(a: Any, k: int, l: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-1 factors scaled by sigma_1 on both sides (sigma_1^2 u v^T instead of sigma_1 u v^T)."""
    w1, w2 = ref.monarch_project(a, k, l)
    root = np.sqrt(ref.monarch_slab_singular_values(a, k, l)[..., 0])  # [l, k]
    return w1 * root.T[:, :, None], w2 * root[:, None, :]


@mutant("monarch.dft_conjugate_twiddle", family="monarch", replaces="monarch_dft_factors",
        caught_by=["monarch.dft"])
def dft_conjugate_twiddle(k: int, l: int, **kw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twiddle factors exp(+2 pi i l1 k1 / n) (sign slip) in the R blocks."""
    w1, w2, perm = ref.monarch_dft_factors(k, l, **kw)
    n = k * l
    tw = np.exp(-2j * np.pi * np.outer(np.arange(k), np.arange(l)) / n)  # [k1, l1]
    return w1 / tw[:, :, None] ** 2, w2, perm


@mutant("monarch.dft_float32_twiddles", family="monarch", replaces="monarch_dft_factors",
        caught_by=["monarch.dft_mpmath_certificate"])
def dft_float32_twiddles(k: int, l: int, *, backend: Any = ref.F64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 oracle whose twiddles and DFT blocks are rounded through complex64."""
    w1, w2, perm = ref.monarch_dft_factors(k, l, backend=backend)
    if backend.is_float64:
        w1, w2 = w1.astype(np.complex64).astype(np.complex128), w2.astype(np.complex64).astype(np.complex128)
    return w1, w2, perm
