"""HiPPO matrices (LegS, LegT, LMU), their normalisations, O(N) operators and the NPLR form of LegS.

Indices n, k = 0..N-1; phi_n(r) = sqrt(2n+1) P_n(2r-1) is the orthonormal shifted Legendre basis on [0, 1].

* LegS (S4 normalisation = Su's lambda_n = sqrt 2 rescaling): ``A_nk = -sqrt((2n+1)(2k+1))`` for n > k,
  ``-(n+1)`` for n = k, 0 above the diagonal; ``B_n = sqrt(2n+1)``.  Compactly A = diag(0..N-1) - tril(v v^T),
  v_n = sqrt(2n+1).  ODE x' = (A x + B u) / t; the LTI (S4) form is x' = A x + B u.
* LegT (Su's sqrt 2 normalisation, window w): ``A_nk = -(1/w) sqrt((2n+1)(2k+1)) s_nk`` with s_nk = 1 for
  k < n and (-1)^(n-k) for k >= n; ``B_n = sqrt(2n+1)/w``.  S4's ``transition('legt')`` is w = 2.
* LMU (Su's lambda_n = 2/sqrt(2n+1)): ``A_nk = -((2n+1)/w) s_nk``, ``B_n = (2n+1)/w`` = the similarity
  diag(sqrt(2n+1)) of LegT.
* Other LegS normalisations are diagonal similarities ``(T A T^-1, T B)``: ``"sqrt_free"`` T = diag(sqrt(2n+1))
  (A_nk = -(2n+1) below the diagonal, B_n = 2n+1); ``"s4_internal"`` T = diag(1/sqrt(2n+1)) (S4's internal
  ``M``, entries -(2k+1) below the diagonal); ``"su_raw"`` T = sqrt(2) I (orthonormal on [-1, 1]: A unchanged,
  B_n = sqrt(2(2n+1))).

Sources: Gu et al. 2020 (HiPPO, arXiv 2008.07669); Su "重温SSM (一)/(二)" (kexue.fm/archives/10114,
10137); S4 ``src/models/hippo/hippo.py`` (``transition``, ``nplr``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "LEGS_FORMS",
    "hippo_legs",
    "hippo_legs_matvec",
    "hippo_legs_nplr",
    "hippo_legs_resolvent",
    "hippo_legs_solve",
    "hippo_legt",
    "hippo_lmu",
    "hippo_similarity",
    "legendre_moments",
    "legs_form_scaling",
]

LEGS_FORMS = ("s4", "sqrt_free", "s4_internal", "su_raw")


def _check_n(func: str, N: Any, max_n: int = 4096) -> int:
    require(isinstance(N, int | np.integer) and 1 <= N <= max_n, func, "N", f"an int in [1, {max_n}]", repr(N))
    return int(N)


def _sqrt_2n1(xp: Backend, N: int) -> np.ndarray:
    return xp.sqrt(xp.asarray(2.0 * np.arange(N) + 1.0))


@oracle
def hippo_legs(N: int, form: str = "s4", *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegS ``(A [N, N], B [N])`` in normalisation ``form`` (module docstring), entries from the closed
    forms.  Source: Su kexue.fm/archives/10114; S4 ``transition('legs')``."""
    func = "hippo_legs"
    N = _check_n(func, N)
    require(form in LEGS_FORMS, func, "form", f"one of {LEGS_FORMS}", repr(form))
    xp = backend
    A = xp.zeros((N, N))
    B = xp.zeros((N,))
    v = _sqrt_2n1(xp, N)
    two = xp.sqrt(xp.scalar(2.0))
    for n in range(N):
        B[n] = {"s4": v[n], "sqrt_free": v[n] * v[n], "s4_internal": xp.scalar(1.0), "su_raw": two * v[n]}[form]
        for k in range(n + 1):
            if k == n:
                A[n, k] = xp.scalar(-(n + 1.0))
            elif form == "sqrt_free":
                A[n, k] = xp.scalar(-(2.0 * n + 1.0))
            elif form == "s4_internal":
                A[n, k] = xp.scalar(-(2.0 * k + 1.0))
            else:
                A[n, k] = -v[n] * v[k]
    return xp.to_float64(A), xp.to_float64(B)


@oracle
def legs_form_scaling(N: int, form: str, *, backend: Backend = F64) -> np.ndarray:
    """Diagonal t [N] of the similarity T = diag(t) taking the S4 LegS form to ``form``:
    ``A_form = T A T^-1``, ``B_form = T B``.  Source: Su kexue.fm/archives/10114."""
    N = _check_n("legs_form_scaling", N)
    require(form in LEGS_FORMS, "legs_form_scaling", "form", f"one of {LEGS_FORMS}", repr(form))
    xp = backend
    v = _sqrt_2n1(xp, N)
    t = {"s4": v / v, "sqrt_free": v, "s4_internal": 1 / v,
         "su_raw": v / v * xp.sqrt(xp.scalar(2.0))}[form]
    return xp.to_float64(t)


def _legt_sign(n: int, k: int) -> int:
    return 1 if k < n else (-1) ** ((n - k) % 2)


@oracle
def hippo_legt(N: int, w: float = 1.0, *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegT ``(A, B)`` for window ``w`` in Su's sqrt 2 normalisation (module docstring); S4's
    ``transition('legt')`` is ``w = 2``.  Source: Su kexue.fm/archives/10114."""
    func = "hippo_legt"
    N = _check_n(func, N)
    require(isinstance(w, float | int) and np.isfinite(w) and w > 0, func, "w", "a finite float > 0", repr(w))
    xp = backend
    v = _sqrt_2n1(xp, N)
    inv_w = 1 / xp.scalar(w)
    A = xp.zeros((N, N))
    for n in range(N):
        for k in range(N):
            A[n, k] = -inv_w * v[n] * v[k] * _legt_sign(n, k)
    return xp.to_float64(A), xp.to_float64(v * inv_w)


@oracle
def hippo_lmu(N: int, w: float = 1.0, *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """LMU form of LegT: ``A_nk = -((2n+1)/w) s_nk``, ``B_n = (2n+1)/w`` (s_nk as in :func:`hippo_legt`).
    S4's ``'lmu'`` is D (this with w = 1) D with D = diag((-1)^n).  Source: Su 10114 (lambda_n = 2/sqrt(2n+1))."""
    func = "hippo_lmu"
    N = _check_n(func, N)
    require(isinstance(w, float | int) and np.isfinite(w) and w > 0, func, "w", "a finite float > 0", repr(w))
    xp = backend
    inv_w = 1 / xp.scalar(w)
    A = xp.zeros((N, N))
    B = xp.zeros((N,))
    for n in range(N):
        B[n] = xp.scalar(2.0 * n + 1.0) * inv_w
        for k in range(N):
            A[n, k] = -xp.scalar(2.0 * n + 1.0) * inv_w * _legt_sign(n, k)
    return xp.to_float64(A), xp.to_float64(B)


def hippo_similarity(A: Any, B: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal similarity ``(T A T^-1, T B)`` with T = diag(t): the same system in rescaled coordinates
    (A [N, N], B [N], t [N] nonzero).  Derived here (normalisations are diagonal similarities)."""
    func = "hippo_similarity"
    a = as_float64(A, func, "A", ndim=2)
    b = as_float64(B, func, "B", ndim=1)
    s = as_float64(t, func, "t", ndim=1)
    require(a.shape == (s.size, s.size) and b.shape == (s.size,), func, "A, B, t", "of shapes [N, N], [N], [N]",
            f"{a.shape}, {b.shape}, {s.shape}")
    require(bool(np.all(s != 0)), func, "t", "nonzero", "a zero entry")
    return s[:, None] * a / s[None, :], s * b


def _vector(func: str, v: Any) -> np.ndarray:
    a = as_float64(v, func, "v", ndim=1)
    require(a.size >= 1, func, "v", "non-empty", "size 0")
    require_finite(a, func, "v")
    return a


@oracle
def hippo_legs_matvec(v: Any, *, backend: Backend = F64) -> np.ndarray:
    """O(N) LegS product ``(A v)_n = n v_n - sqrt(2n+1) sum_{k<=n} sqrt(2k+1) v_k`` (v [N]).
    Source: Su kexue.fm/archives/10137 ("Computational Efficiency"; A = diag(0..N-1) - tril(v v^T))."""
    a = _vector("hippo_legs_matvec", v)
    xp = backend
    s = _sqrt_2n1(xp, a.size)
    x = xp.asarray(a)
    acc = xp.scalar(0.0)
    out = xp.zeros((a.size,))
    for n in range(a.size):
        acc = acc + s[n] * x[n]
        out[n] = xp.scalar(float(n)) * x[n] - s[n] * acc
    return xp.to_float64(out)


@oracle
def hippo_legs_solve(lam: float, v: Any, *, backend: Backend = F64) -> np.ndarray:
    """O(N) solve of ``(I - lam A) z = v`` for LegS A (lam >= 0, v [N]):
    ``S_n = ((1 - lam n) S_{n-1} + sqrt(2n+1) v_n) / (1 + lam (n + 1))``, ``z_n = (S_n - S_{n-1}) / sqrt(2n+1)``
    where S_n = sum_{k<=n} sqrt(2k+1) z_k (S_{-1} = 0).  Source: Su 10137 (from the compact form,
    row n reads (1 - lam n) z_n + lam sqrt(2n+1) S_n = v_n; substitute z_n = (S_n - S_{n-1}) / sqrt(2n+1))."""
    func = "hippo_legs_solve"
    a = _vector(func, v)
    require(isinstance(lam, float | int) and np.isfinite(lam) and lam >= 0, func, "lam", "a finite float >= 0",
            repr(lam))
    xp = backend
    s = _sqrt_2n1(xp, a.size)
    x = xp.asarray(a)
    lm = xp.scalar(lam)
    prev = xp.scalar(0.0)
    out = xp.zeros((a.size,))
    for n in range(a.size):
        cur = ((1 - lm * n) * prev + s[n] * x[n]) / (1 + lm * (n + 1))
        out[n] = (cur - prev) / s[n]
        prev = cur
    return xp.to_float64(out)


def _check_p(func: str, p: Any) -> float:
    require(isinstance(p, float | int | np.floating) and np.isfinite(p) and p > -1, func, "p", "a float > -1",
            repr(p))
    return float(p)


@oracle
def legendre_moments(p: float, N: int, *, backend: Backend = F64) -> np.ndarray:
    """``m_n = int_0^1 r^p phi_n(r) dr = sqrt(2n+1) prod_{k<n} (p - k) / prod_{k=1}^{n+1} (p + k)``
    (n < N, p > -1), the closed form of the shifted-Legendre moments (Rodrigues' formula, n-fold integration
    by parts).  Derived here (LegS state of u = t^p)."""
    func = "legendre_moments"
    p = _check_p(func, p)
    N = _check_n(func, N)
    xp = backend
    pp = xp.scalar(p)
    s = _sqrt_2n1(xp, N)
    out = xp.zeros((N,))
    num = xp.scalar(1.0)
    den = pp + 1
    for n in range(N):
        out[n] = s[n] * num / den
        num = num * (pp - n)
        den = den * (pp + n + 2)
    return xp.to_float64(out)


@oracle
def hippo_legs_resolvent(p: float, N: int, *, backend: Backend = F64) -> np.ndarray:
    """``(p I - A)^-1 B`` for LegS by forward substitution on the lower-triangular p I - A (p > -1).
    Equals :func:`legendre_moments` exactly: u(t) = t^p has the exact LegS state t^p (p I - A)^-1 B.
    Derived here (insert u = t^p in the LegS projection)."""
    func = "hippo_legs_resolvent"
    p = _check_p(func, p)
    N = _check_n(func, N)
    xp = backend
    A, B = hippo_legs(N, backend=_exact(xp))
    A, B = xp.asarray(A), xp.asarray(B)
    pp = xp.scalar(p)
    x = xp.zeros((N,))
    for n in range(N):
        acc = B[n]
        for k in range(n):
            acc = acc + A[n, k] * x[k]
        x[n] = acc / (pp - A[n, n])
    return xp.to_float64(x)


def _exact(xp: Backend) -> Backend:
    if xp.is_float64:
        return xp
    from veriformer.reference.backends import MP

    return MP(xp.dps, exact_output=True)


def hippo_legs_nplr(N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NPLR/DPLR form of LegS (float64 only: it needs a Hermitian eigensolver).

    With p_n = sqrt(n + 1/2), S = A + p p^T + I/2 is exactly skew-symmetric, so -iS = V diag(w) V^* (``eigh``,
    V unitary) and ``A = V (diag(Lam) - Pt Pt^*) V^*`` with ``Lam = -1/2 + i w``, ``Pt = V^* p``.
    Returns ``(V [N, N] complex, Lam [N] complex, Pt [N] complex, p [N] real)``.  Conditioning: cond(V) = 1;
    max|w| grows like N^2.  Source: Gu et al. 2022 (S4, arXiv 2111.00396) NPLR; S4 ``hippo.nplr``."""
    N = _check_n("hippo_legs_nplr", N, 1024)
    A, _ = hippo_legs(N)
    p = np.sqrt(np.arange(N) + 0.5)
    S = A + np.outer(p, p) + 0.5 * np.eye(N)
    S = 0.5 * (S - S.T)  # exact up to the rounding of the entries
    w, V = np.linalg.eigh(-1j * S)
    return V, -0.5 + 1j * w, V.conj().T @ p, p
