"""Discretisations of the LTI system x'(t) = A x(t) + B u(t) with piecewise-constant input (float64 / mpmath).

Layout: A [N, N], B [N] (single input) or [N, M]; the step ``dt`` is a positive float.  Every method returns
``(Ad, Bd)`` with the shapes of ``(A, B)``, used as ``x_k = Ad x_{k-1} + Bd u_k`` (S4 convention).

| method | Ad | Bd |
|---|---|---|
| ``"forward_euler"`` | I + dt A | dt B |
| ``"backward_euler"`` | (I - dt A)^-1 | dt (I - dt A)^-1 B |
| ``"bilinear"`` (Tustin, S4) | (I - dt A/2)^-1 (I + dt A/2) | dt (I - dt A/2)^-1 B |
| ``"gbt"`` (``alpha`` in [0, 1]) | (I - alpha dt A)^-1 (I + (1-alpha) dt A) | dt (I - alpha dt A)^-1 B |
| ``"zoh"`` (exact for piecewise-constant u) | e^{dt A} | (int_0^dt e^{sA} ds) B = A^-1 (e^{dt A} - I) B |

ZOH is computed from the block exponential ``expm(dt [[A, B], [0, 0]]) = [[Ad, Bd], [0, I]]``, which is valid
for singular A.  The float64 exponential is our own scaling-and-squaring Taylor series (independent of SciPy's
Pade route, so the two can check each other); the mpmath path uses ``mpmath.expm`` on an ``mpmath.matrix``
and ``mpmath.lu_solve`` for the solves (object arrays are converted to mpmath matrices for those two steps).

SciPy conventions (``scipy.signal.cont2discrete``, SciPy 1.17, read from its source): method names
``"gbt"`` (needs ``alpha``), ``"bilinear"``/``"tustin"`` (= gbt 0.5), ``"euler"``/``"forward_diff"`` (= gbt 0),
``"backward_diff"`` (= gbt 1), ``"zoh"`` (block expm).  Its Ad, Bd equal the table; for the gbt family it
also maps the output, ``Cd = C (I - alpha dt A)^-1`` and ``Dd = D + alpha C Bd``, which S4 does not do.

Sources: Zhang et al. 2007 (generalised bilinear transform); Su, "重温SSM (二)" (kexue.fm/archives/10137); S4 code
``src/models/sequence/kernels/ssm.py`` (bilinear); SciPy ``signal/_lti_conversion.py``.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = ["DISCRETIZATIONS", "discretize", "expm"]

DISCRETIZATIONS = ("forward_euler", "backward_euler", "bilinear", "gbt", "zoh")


# -- small dense linear algebra in either backend ---------------------------------------------------------


def _to_mp(a: np.ndarray) -> Any:
    return mpmath.matrix(np.asarray(a, dtype=object).tolist())


def _from_mp(m: Any, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty((m.rows, m.cols), dtype=object)
    for i in range(m.rows):
        for j in range(m.cols):
            out[i, j] = m[i, j]
    return out.reshape(shape)


def _eye(xp: Backend, n: int, like: Any = None) -> np.ndarray:
    if xp.is_float64:
        return np.eye(n, dtype=np.complex128 if like is not None and np.iscomplexobj(like) else np.float64)
    out = xp.zeros((n, n))
    for i in range(n):
        out[i, i] = mpmath.mpf(1)
    return out


def _solve(xp: Backend, M: Any, R: Any) -> np.ndarray:
    """M^-1 R for square M [n, n] and R [n] or [n, k] (LU with partial pivoting in either backend)."""
    if xp.is_float64:
        return np.linalg.solve(M, R)
    R = np.asarray(R, dtype=object)
    cols = R.reshape(R.shape[0], -1)
    Mm = _to_mp(M)
    out = np.empty(cols.shape, dtype=object)
    for j in range(cols.shape[1]):
        x = mpmath.lu_solve(Mm, mpmath.matrix(cols[:, j].tolist()))
        for i in range(cols.shape[0]):
            out[i, j] = x[i]
    return out.reshape(R.shape)


def _matpow(xp: Backend, M: Any, k: int) -> np.ndarray:
    """M^k by repeated squaring (k >= 0)."""
    out = _eye(xp, M.shape[0], M)
    base = M
    while k:
        if k & 1:
            out = xp.matmul(out, base)
        base = xp.matmul(base, base)
        k >>= 1
    return out


def _expm_f64(M: np.ndarray) -> np.ndarray:
    """e^M by scaling and squaring with a degree-18 Taylor series (||M / 2^s||_1 <= 1/2: truncation < 1e-20)."""
    norm = float(np.abs(M).sum(axis=0).max()) if M.size else 0.0
    s = max(0, int(np.ceil(np.log2(norm / 0.5)))) if norm > 0.5 else 0
    X = M / 2.0**s
    term = np.eye(M.shape[0], dtype=M.dtype)
    out = term.copy()
    for k in range(1, 19):
        term = term @ X / k
        out = out + term
    for _ in range(s):
        out = out @ out
    return out


@oracle
def expm(M: Any, *, backend: Backend = F64) -> np.ndarray:
    """Matrix exponential e^M of a square real or complex M [n, n].

    float64: scaling and squaring of a degree-18 Taylor series (our own, not SciPy's Pade); mpmath:
    ``mpmath.expm`` at the backend's precision.  Source: Moler & Van Loan, "Nineteen dubious ways" (2003),
    method 3 (Taylor with scaling and squaring)."""
    func = "expm"
    a = as_float64(M, func, "M", ndim=2, allow_complex=True)
    require(a.shape[0] == a.shape[1], func, "M", "a square matrix", f"shape {a.shape}")
    require_finite(a, func, "M")
    xp = backend
    if xp.is_float64:
        return _expm_f64(a)
    return xp.to_float64(_from_mp(mpmath.expm(_to_mp(xp.asarray(a))), a.shape))


def _check_system(func: str, A: Any, B: Any) -> tuple[np.ndarray, np.ndarray]:
    a = as_float64(A, func, "A", ndim=2, allow_complex=True)
    require(a.shape[0] == a.shape[1], func, "A", "a square matrix [N, N]", f"shape {a.shape}")
    b = as_float64(B, func, "B", ndim=(1, 2), allow_complex=True)
    require(b.shape[0] == a.shape[0], func, "B", f"of shape [N] or [N, M] with N = {a.shape[0]}",
            f"shape {b.shape}")
    require_finite(a, func, "A")
    require_finite(b, func, "B")
    return a, b


@oracle
def discretize(A: Any, B: Any, dt: float, method: str = "bilinear", alpha: float | None = None, *,
               backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """``(Ad, Bd)`` of x' = A x + B u for step ``dt`` by ``method`` (see the module table).

    A [N, N], B [N] or [N, M] (real or complex); ``alpha`` only for ``method="gbt"`` (0 forward Euler,
    1/2 bilinear, 1 backward Euler).  ZOH uses the block exponential (valid for singular A).
    Source: Su kexue.fm/archives/10137; S4 ``ssm.py`` (bilinear); SciPy ``cont2discrete``."""
    func = "discretize"
    a, b = _check_system(func, A, B)
    require(method in DISCRETIZATIONS, func, "method", f"one of {DISCRETIZATIONS}", repr(method))
    require(isinstance(dt, float | int | np.floating) and np.isfinite(dt) and dt > 0, func, "dt",
            "a finite float > 0", repr(dt))
    if method == "gbt":
        require(alpha is not None and 0.0 <= float(alpha) <= 1.0, func, "alpha", "a float in [0, 1] for gbt",
                repr(alpha))
    else:
        require(alpha is None, func, "alpha", f"None for method {method!r} (only gbt takes alpha)", repr(alpha))
    xp = backend
    n = a.shape[0]
    A_, B_ = xp.asarray(a), xp.asarray(b)
    h = xp.scalar(dt)
    if method == "zoh":
        B2 = B_.reshape(n, -1)
        m = B2.shape[1]
        top = np.concatenate([A_ * h, B2 * h], axis=1)
        block = np.concatenate([top, xp.zeros((m, n + m)) if not np.iscomplexobj(top) else
                                np.zeros((m, n + m), dtype=top.dtype)], axis=0)
        E = expm(xp.to_float64(block) if xp.is_float64 else block, backend=_exact(xp))
        return xp.to_float64(E[:n, :n]), xp.to_float64(E[:n, n:].reshape(b.shape))
    al = {"forward_euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5}.get(method, alpha)
    I = _eye(xp, n, a)
    al_ = xp.scalar(float(al)) if xp.is_float64 else mpmath.mpf(float(al))
    lhs = I - A_ * (al_ * h)
    rhs = I + A_ * ((1 - al_) * h)
    Ad = _solve(xp, lhs, rhs)
    Bd = _solve(xp, lhs, B_ * h)
    return xp.to_float64(Ad), xp.to_float64(Bd)


def _exact(xp: Backend) -> Backend:
    """The backend itself, with exact (unrounded) outputs for an mpmath backend, so chained oracles keep
    full precision internally."""
    if xp.is_float64:
        return xp
    from veriformer.reference.backends import MP

    return MP(xp.dps, exact_output=True)
