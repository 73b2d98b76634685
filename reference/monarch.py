"""Monarch matrices (Dao et al. 2022, arXiv:2204.00595; Su kexue.fm/archives/10249): float64 / mpmath oracles.

Layout (the one of HazyResearch/fly ``blockdiag_butterfly_multiply``, version 3 of its reference):

* ``x [..., n_in]`` with ``n_in = k * p``;
* ``w1 [k, q, p]``: the right factor R, k blocks of q x p (out x in, ``F.linear`` convention);
* ``w2 [l, s, r]``: the left factor L, l blocks of s x r with ``l * r = k * q``;
* ``y [..., l * s]``.

``y = P_(l, s) L P_(r, l) R x`` where the perfect shuffle ``P_(a, b) z = z.reshape(a, b).T.reshape(a b)``
(fly: ``'b (r l) -> b (l r)'`` between the factors and ``'b (l s) -> b (s l)'`` at the output).  For n = m^2 and
k = q = p = l = s = r = m this is Su's ``M = P L P R`` with P = P^T = P^-1.

The Monarch case proper (rank-1 slabs, projection, DFT) has ``q = l`` and ``r = k``: w1 [k, l, p], w2 [l, s, k],
and the four-index identity ``M[s1 l + l1, k1 p + p1] = w2[l1, s1, k1] * w1[k1, l1, p1]``: the slab
``S^(l1, k1)[s1, p1] = A[s1 l + l1, k1 p + p1]`` of a Monarch matrix has rank one, so the Frobenius projection
takes the best rank-1 SVD of each of the l k slabs independently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "monarch_dense",
    "monarch_dft_factors",
    "monarch_matmul",
    "monarch_matmul_vjp",
    "monarch_project",
    "monarch_shuffle",
    "monarch_slab_singular_values",
    "monarch_slabs",
]


def monarch_shuffle(a: int, b: int) -> np.ndarray:
    """Index array ``idx`` of the perfect shuffle P_(a, b): ``(P z)[i] = z[idx[i]]`` with
    ``P z = z.reshape(a, b).T.reshape(a b)``, i.e. ``(P z)[j a + i] = z[i b + j]``.  P_(b, a) is its inverse;
    P_(m, m) is a symmetric involution.  Source: Su kexue.fm/archives/10249; fly ``rearrange 'b (r l) -> b (l r)'``.
    """
    require(isinstance(a, (int, np.integer)) and a >= 1, "monarch_shuffle", "a", "a positive int", a)
    require(isinstance(b, (int, np.integer)) and b >= 1, "monarch_shuffle", "b", "a positive int", b)
    return np.arange(a * b).reshape(a, b).T.reshape(-1)


def _factors(w1: Any, w2: Any, func: str, allow_complex: bool = True) -> tuple[np.ndarray, np.ndarray]:
    f1 = as_float64(w1, func, "w1", ndim=3, allow_complex=allow_complex)
    f2 = as_float64(w2, func, "w2", ndim=3, allow_complex=allow_complex)
    k, q, _p = f1.shape
    l_, _s, r = f2.shape
    require(min(f1.shape) >= 1, func, "w1", "of shape [k, q, p] with positive sizes", f"shape {f1.shape}")
    require(min(f2.shape) >= 1, func, "w2", "of shape [l, s, r] with positive sizes", f"shape {f2.shape}")
    require(l_ * r == k * q, func, "w2", f"of shape [l, s, r] with l * r = k * q = {k * q}", f"shape {f2.shape}")
    if f1.dtype != object:
        require_finite(f1, func, "w1")
        require_finite(f2, func, "w2")
    return f1, f2


@oracle
def monarch_matmul(x: Any, w1: Any, w2: Any, *, backend: Backend = F64) -> np.ndarray:
    """``y = P_(l,s) L P_(r,l) R x`` for x [..., k p], w1 [k, q, p], w2 [l, s, r] (l r = k q); y [..., l s].

    Computed the fast way (two batched block products and two reshapes, O(n^1.5) for square blocks):
    ``u[.., k1, q1] = sum_p w1[k1, q1, p] x[.., k1, p]``; ``v = u.reshape(r, l)`` transposed to [l, r];
    ``y[.., s1, l1] = sum_r w2[l1, s1, r] v[.., l1, r]``.  Complex factors (the DFT) are accepted.
    Source: Dao et al. 2022 (Monarch), eq. (1); fly ``blockdiag_butterfly_multiply``.
    """
    f1, f2 = _factors(w1, w2, "monarch_matmul")
    xa = as_float64(x, "monarch_matmul", "x", allow_complex=True)
    k, _q, p = f1.shape
    l_, s, r = f2.shape
    require(xa.ndim >= 1 and xa.shape[-1] == k * p, "monarch_matmul", "x", f"of shape [..., k p] = [..., {k * p}]",
            f"shape {xa.shape}")
    if xa.dtype != object:
        require_finite(xa, "monarch_matmul", "x")
    xp = backend
    batch = xa.shape[:-1]
    xb = xp.asarray(xa.reshape(-1, k, p))
    a1, a2 = xp.asarray(f1), xp.asarray(f2)
    u = xp.matmul(a1[None], xb[..., None])[..., 0]  # [B, k, q]
    v = np.swapaxes(u.reshape(-1, r, l_), 1, 2)  # [B, l, r]: the middle shuffle
    y = xp.matmul(a2[None], v[..., None])[..., 0]  # [B, l, s]
    y = np.swapaxes(y, 1, 2).reshape(*batch, s * l_)  # the output shuffle
    return xp.to_float64(y)


@oracle
def monarch_dense(w1: Any, w2: Any, *, backend: Backend = F64) -> np.ndarray:
    """The dense matrix M [l s, k p] of the Monarch product (``y = M x``), built column by column from
    :func:`monarch_matmul` applied to the identity.  Source: Dao et al. 2022, eq. (1)."""
    f1, _ = _factors(w1, w2, "monarch_dense")
    n_in = f1.shape[0] * f1.shape[2]
    eye = np.eye(n_in)
    return monarch_matmul(eye, w1, w2, backend=backend).T


def _slab_sizes(a: np.ndarray, k: int, l_: int, func: str) -> tuple[int, int]:
    require(isinstance(k, (int, np.integer)) and k >= 1 and a.shape[1] % k == 0, func, "k",
            f"a positive divisor of n_in = {a.shape[1]}", k)
    require(isinstance(l_, (int, np.integer)) and l_ >= 1 and a.shape[0] % l_ == 0, func, "l",
            f"a positive divisor of n_out = {a.shape[0]}", l_)
    return a.shape[1] // k, a.shape[0] // l_


def monarch_slabs(a: Any, k: int, l: int) -> np.ndarray:
    """The l k slabs of a dense A [l s, k p]: ``S[l1, k1, s1, p1] = A[s1 l + l1, k1 p + p1]`` (shape [l, k, s, p]).
    A Monarch matrix has rank-1 slabs.  Source: Su kexue.fm/archives/10249 (four-index form); fly
    ``blockdiag_butterfly_project`` (``'(p k) (r s) -> k r p s'``)."""
    A = as_float64(a, "monarch_slabs", "a", ndim=2, allow_complex=True)
    p, s = _slab_sizes(A, k, l, "monarch_slabs")
    return A.reshape(s, l, k, p).transpose(1, 2, 0, 3)


def monarch_slab_singular_values(a: Any, k: int, l: int) -> np.ndarray:
    """Singular values of every slab, shape [l, k, min(s, p)], descending.  The projection error is
    ``||A - proj(A)||_F^2 = sum over slabs of sum_{i >= 2} sigma_i^2``."""
    return np.linalg.svd(monarch_slabs(a, k, l), compute_uv=False)


def monarch_project(a: Any, k: int, l: int) -> tuple[np.ndarray, np.ndarray]:
    """Frobenius-optimal projection of a dense A [l s, k p] onto Monarch matrices with w1 [k, l, p] (R: k blocks
    l x p) and w2 [l, s, k] (L: l blocks s x k): the best rank-1 approximation ``sigma_1 u v^T`` of each slab
    ``S^(l1, k1)``, split as ``w2[l1, :, k1] = sqrt(sigma_1) u``, ``w1[k1, l1, :] = sqrt(sigma_1) v``.  Returns
    (w1, w2); the factors carry a per-slab scale and sign gauge, so compare ``monarch_dense`` of them.
    Source: Dao et al. 2022, Theorem 1 (projection); Su kexue.fm/archives/10249; fly
    ``blockdiag_butterfly_project``."""
    A = as_float64(a, "monarch_project", "a", ndim=2, allow_complex=True)
    require_finite(A, "monarch_project", "a")
    S = monarch_slabs(A, k, l)
    U, sig, Vh = np.linalg.svd(S, full_matrices=False)
    root = np.sqrt(sig[..., 0])
    left = U[..., :, 0] * root[..., None]  # [l, k, s]
    right = Vh[..., 0, :] * root[..., None]  # [l, k, p]
    w2 = left.transpose(0, 2, 1)  # [l, s, k]
    w1 = right.transpose(1, 0, 2)  # [k, l, p]
    return np.ascontiguousarray(w1), np.ascontiguousarray(w2)


@oracle
def monarch_dft_factors(k: int, l: int, *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monarch factors of the DFT of size n = k l (numpy convention ``F[a, b] = exp(-2 pi i a b / n)``):
    returns (w1 [k, l, l], w2 [l, k, k], perm [n]) with ``monarch_matmul(x[..., perm], w1, w2) = fft(x)``, i.e.
    ``monarch_dense(w1, w2) = F[:, perm]`` (the column-permuted DFT is exactly Monarch; Cooley-Tukey):

    * ``perm[k1 l + p1] = p1 k + k1`` (perm = P_(l, k));
    * ``w2[l1, s1, k1] = exp(-2 pi i s1 k1 / k)`` (every L block is F_k);
    * ``w1[k1, l1, p1] = exp(-2 pi i l1 k1 / n) exp(-2 pi i l1 p1 / l)`` (twiddle times F_l).

    Derivation: row ``s1 l + l1`` times column ``p1 k + k1`` is ``s1 p1 n + s1 k1 l + l1 p1 k + l1 k1``.
    Entries are complex (complex128, or mpc under ``MP``).  Source: Dao et al. 2022, section 3 (FFT as Monarch);
    Su kexue.fm/archives/10249; fly ``tests/ops/test_blockdiag_butterfly_projection.py`` (dft[:, perm]).
    """
    require(isinstance(k, (int, np.integer)) and k >= 1, "monarch_dft_factors", "k", "a positive int", k)
    require(isinstance(l, (int, np.integer)) and l >= 1, "monarch_dft_factors", "l", "a positive int", l)
    xp = backend
    n = k * l
    two_pi = 2 * xp.pi
    k1 = np.arange(k)
    l1 = np.arange(l)
    # phases as exact rationals of 2 pi: reduce the integer products mod the denominator first
    ph2 = (l1[:, None, None] * 0 + (np.arange(k)[:, None] * k1[None, :]) % k)  # [l, s1, k1]
    w2 = xp.expi(-two_pi * xp.asarray(ph2.astype(np.float64)) / k)
    ph1 = (l1[None, :, None] * k1[:, None, None] + (l1[None, :, None] * l1[None, None, :]) % l * k) % n
    w1 = xp.expi(-two_pi * xp.asarray(ph1.astype(np.float64)) / n)  # [k, l, p]
    perm = monarch_shuffle(l, k)
    return xp.to_float64(w1), xp.to_float64(w2), perm


@oracle
def monarch_matmul_vjp(g: Any, x: Any, w1: Any, w2: Any, *, backend: Backend = F64) -> dict[str, np.ndarray]:
    """Gradients of ``<g, monarch_matmul(x, w1, w2)>``: {"x": [..., k p], "w1": [k, q, p], "w2": [l, s, r]}.

    Backward of the fast form: undo the output shuffle (``gv[.., l1, s1] = g[.., s1 l + l1]``), then
    ``dw2[l1] = sum_batch gv[.., l1, :]^T v[.., l1, :]``, ``dv = gv w2``, undo the middle shuffle (dv [l, r] back to
    du [k, q]), ``dw1[k1] = sum_batch du[.., k1, :]^T x[.., k1, :]``, ``dx = du w1``.  Multilinear with
    non-negative structure: applied to |g|, |x|, |w1|, |w2| it returns the sums of |summands| of each gradient.
    Source: Dao et al. 2022; fly ``BlockdiagButterflyMultiply.backward``.
    """
    f1, f2 = _factors(w1, w2, "monarch_matmul_vjp")
    xa = as_float64(x, "monarch_matmul_vjp", "x", allow_complex=True)
    k, q, p = f1.shape
    l_, s, r = f2.shape
    require(xa.ndim >= 1 and xa.shape[-1] == k * p, "monarch_matmul_vjp", "x",
            f"of shape [..., k p] = [..., {k * p}]", f"shape {xa.shape}")
    ga = as_float64(g, "monarch_matmul_vjp", "g", allow_complex=True)
    require(ga.shape == (*xa.shape[:-1], l_ * s), "monarch_matmul_vjp", "g", f"of shape [..., l s] = [..., {l_ * s}]",
            f"shape {ga.shape}")
    xp = backend
    xb = xp.asarray(xa.reshape(-1, k, p))
    a1, a2 = xp.asarray(f1), xp.asarray(f2)
    u = xp.matmul(a1[None], xb[..., None])[..., 0]  # [B, k, q]
    v = np.swapaxes(u.reshape(-1, r, l_), 1, 2)  # [B, l, r]
    gv = np.swapaxes(xp.asarray(ga.reshape(-1, s, l_)), 1, 2)  # [B, l, s]
    dw2 = xp.sum(gv[..., :, None] * v[..., None, :], axis=0)  # [l, s, r]
    dv = xp.matmul(gv[:, :, None, :], a2[None])[:, :, 0, :]  # [B, l, r]
    du = np.swapaxes(dv, 1, 2).reshape(-1, k, q)  # [B, k, q]
    dw1 = xp.sum(du[..., :, None] * xb[..., None, :], axis=0)  # [k, q, p]
    dx = xp.matmul(du[:, :, None, :], a1[None])[:, :, 0, :].reshape(xa.shape)
    return {"x": xp.to_float64(dx), "w1": xp.to_float64(dw1), "w2": xp.to_float64(dw2)}
