"""Planted bugs in Monarch: oracle mutants (laws must fail) and kernel mutants (check(op="monarch_matmul") must
fail), plus the wrong answers at long token counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.monarch import naive
from veriformer.properties.monarch.strategies import MonarchMatmulCase
from veriformer.properties.wrong_answers import LONG, wrong_answer_mutants
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


@mutant("monarch.vjp_middle_unshuffled", family="monarch", replaces="monarch_matmul_vjp", caught_by=["monarch.vjp"])
def vjp_middle_unshuffled(g: Any, x: Any, w1: Any, w2: Any, **kw: Any) -> dict[str, np.ndarray]:
    """Backward that maps dv [l, r] to du [k, q] by a plain reshape (the middle shuffle not undone): dx and dw1
    wrong, dw2 right."""
    d = ref.monarch_matmul_vjp(g, x, w1, w2, **kw)
    k, q, p = np.shape(w1)
    l_, s, _r = np.shape(w2)
    xa = np.asarray(x, np.float64)
    xb = xa.reshape(-1, k, p)
    ga = np.asarray(g, np.float64).reshape(-1, s, l_).transpose(0, 2, 1)
    dv = np.einsum("bls,lsr->blr", ga, np.asarray(w2, np.float64))
    du = dv.reshape(-1, k, q)
    d["w1"] = np.einsum("bkq,bkp->kqp", du, xb)
    d["x"] = np.einsum("bkq,kqp->bkp", du, np.asarray(w1, np.float64)).reshape(xa.shape)
    return d


# -- kernel mutants (torch callables under check(op="monarch_matmul")) ------------------------------------------


@mutant("monarch.kernel_no_middle_shuffle", family="monarch", op="monarch_matmul", caught_by=["op:monarch_matmul"])
def kernel_no_middle_shuffle(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Two bmm without the middle permutation (u read as [l, r] directly): a plain product of two block
    diagonals, not Monarch."""
    k, _q, p = w1.shape
    l_, s, r = w2.shape
    u = torch.einsum("kqp,bkp->bkq", w1, x.reshape(-1, k, p)).reshape(-1, l_, r)
    y = torch.einsum("lsr,blr->bsl", w2, u)
    return y.reshape(*x.shape[:-1], s * l_)


@mutant("monarch.kernel_output_unshuffled", family="monarch", op="monarch_matmul", caught_by=["op:monarch_matmul"])
def kernel_output_unshuffled(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Output stored block-major (index l1 s + s1) instead of fly's s1 l + l1 (the final rearrange forgotten)."""
    l_, s, _r = w2.shape
    y = naive.monarch_matmul(x, w1, w2)
    return y.reshape(*y.shape[:-1], s, l_).transpose(-1, -2).reshape(y.shape)


@mutant("monarch.kernel_w1_transposed_blocks", family="monarch", op="monarch_matmul", caught_by=["op:monarch_matmul"])
def kernel_w1_transposed(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """R blocks applied as x W (in x out) instead of F.linear's W x, where the blocks are square."""
    if w1.shape[1] != w1.shape[2]:
        return naive.monarch_matmul(x, w1, w2) * 0.5
    return naive.monarch_matmul(x, w1.transpose(-1, -2), w2)


# -- wrong answers at long token counts (veriformer.properties.wrong_answers) -----------------------------------

wrong_answer_mutants("monarch_matmul", family="monarch", seq_axis=-2,
                     cases=[MonarchMatmulCase(B=1, T=n, k=4, q=4, p=4, l=4, s=4, seed=n) for n in LONG])
