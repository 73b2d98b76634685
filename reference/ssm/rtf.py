"""RTF (rational transfer function) view of an SSM: coefficients, state-free FFT kernel, companion realisation.

Su's convention (z = generating-function variable; S4 kernel K_j = C Ad^j Bd, Ct = C (I - Ad^L)):
``G_L(z) = Ct (I - z Ad)^-1 Bd = (b_1 + b_2 z + ... + b_d z^{d-1}) / (1 + a_1 z + ... + a_d z^d)`` with
``det(lam I - Ad) = lam^d + a_1 lam^{d-1} + ... + a_d`` and ``b`` the coefficients (high to low, the lam^d terms
cancel) of ``det(lam I - Ad + Bd Ct) - det(lam I - Ad)`` (rank-1 determinant lemma).

* State-free kernel: ``K = ifft(fft(b_pad) / fft(a_pad))`` with b_pad = (b_1..b_d, 0..), a_pad = (1, a_1..a_d, 0..),
  both of length L >= d + 1 (otherwise the coefficients wrap around); O(L log L) whatever d.
* Companion realisation: Ac has first row (-a_1, ..., -a_d) and ones on the subdiagonal, Bc = e_1, Ct = b; its
  recurrent (inference) output map is ``C = b (I - Ac^L)^-1`` (a *row* solve), and one step costs O(d):
  ``x_k = (u_k - <a, x_k-1>, x_k-1[0], ..., x_k-1[d-2])``, ``y_k = <C, x_k>``.

Characteristic polynomials use the Faddeev-LeVerrier recursion (runs in mpmath too); its float64 conditioning
is that of polynomial coefficients from eigenvalues: use d <= 8 in float64.

Sources: Su "重温SSM (四)" (kexue.fm/archives/10180); Parnichkun et al. 2024
(RTF, arXiv 2405.06147) Lemma 3.1; repo ruke1ire/RTF ``rtf.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.ssm.discretization import _eye, _matpow, _solve

__all__ = ["char_poly", "companion", "rtf_coefficients", "rtf_inference_c", "rtf_kernel", "rtf_recurrence"]


@oracle
def char_poly(M: Any, *, backend: Backend = F64) -> np.ndarray:
    """Coefficients (a_1, ..., a_d) of ``det(lam I - M) = lam^d + a_1 lam^{d-1} + ... + a_d`` by Faddeev-LeVerrier:
    ``M_1 = I``, ``c_k = -tr(M M_k) / k``, ``M_{k+1} = M M_k + c_k I`` (a_k = c_k).  M [d, d].
    Source: Faddeev & Faddeeva (1963)."""
    m = as_float64(M, "char_poly", "M", ndim=2, allow_complex=True)
    require(m.shape[0] == m.shape[1] and m.shape[0] >= 1, "char_poly", "M", "a non-empty square matrix",
            f"shape {m.shape}")
    require_finite(m, "char_poly", "M")
    xp = backend
    d = m.shape[0]
    A = xp.asarray(m)
    I = _eye(xp, d, A)
    Mk = I
    out = []
    for k in range(1, d + 1):
        AM = xp.matmul(A, Mk)
        ck = -xp.sum(np.array([AM[i, i] for i in range(d)], dtype=AM.dtype)) / k
        out.append(ck)
        Mk = AM + I * ck
    return xp.to_float64(np.array(out, dtype=object if not xp.is_float64 else None))


@oracle
def rtf_coefficients(Ad: Any, Bd: Any, Ct: Any, *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """``(a [d], b [d])`` of the rational transfer function of (Ad [d, d], Bd [d], Ct [d]) (module docstring):
    a = char_poly(Ad), b = char_poly(Ad - Bd Ct) - a.  Source: Su 重温SSM (四) (kexue.fm/archives/10180)."""
    func = "rtf_coefficients"
    a_ = as_float64(Ad, func, "Ad", ndim=2)
    d = a_.shape[0]
    b_ = as_float64(Bd, func, "Bd", ndim=1)
    c_ = as_float64(Ct, func, "Ct", ndim=1)
    require(a_.shape == (d, d) and b_.shape == (d,) and c_.shape == (d,), func, "Ad, Bd, Ct",
            "of shapes [d, d], [d], [d]", f"{a_.shape}, {b_.shape}, {c_.shape}")
    xp = backend
    from veriformer.reference.backends import MP

    ex = xp if xp.is_float64 else MP(xp.dps, exact_output=True)
    A, B, C = xp.asarray(a_), xp.asarray(b_), xp.asarray(c_)
    a = char_poly(a_, backend=ex)
    a2 = char_poly(A - B[:, None] * C[None, :], backend=ex)
    return xp.to_float64(a), xp.to_float64(a2 - a)


def _coeffs(func: str, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    aa = as_float64(a, func, "a", ndim=1)
    bb = as_float64(b, func, "b", ndim=1)
    require(aa.size >= 1 and bb.shape == aa.shape, func, "a, b", "non-empty and of equal shape [d]",
            f"{aa.shape}, {bb.shape}")
    require_finite(aa, func, "a")
    require_finite(bb, func, "b")
    return aa, bb


def rtf_kernel(a: Any, b: Any, L: int) -> np.ndarray:
    """State-free kernel ``K = ifft(fft(b_pad) / fft(a_pad))`` (float64), L >= d + 1; equals the truncated kernel
    of the companion system with C = b (I - Ac^L)^-1.  Source: Su kexue.fm/archives/10180; RTF paper section 3."""
    aa, bb = _coeffs("rtf_kernel", a, b)
    d = aa.size
    require(isinstance(L, int | np.integer) and L >= d + 1, "rtf_kernel", "L", f"an int >= d + 1 = {d + 1}", repr(L))
    ap = np.zeros(L)
    ap[0], ap[1:d + 1] = 1.0, aa
    bp = np.zeros(L)
    bp[:d] = bb
    return np.fft.ifft(np.fft.fft(bp) / np.fft.fft(ap)).real


def companion(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Companion realisation ``(Ac [d, d], Bc = e_1, Ct = b)``: first row -a, ones on the subdiagonal; its
    characteristic polynomial is lam^d + sum a_i lam^{d-i}.  Source: Su kexue.fm/archives/10180."""
    aa, bb = _coeffs("companion", a, b)
    d = aa.size
    Ac = np.zeros((d, d))
    Ac[0] = -aa
    Ac[np.arange(1, d), np.arange(d - 1)] = 1.0
    e1 = np.zeros(d)
    e1[0] = 1.0
    return Ac, e1, bb.copy()


@oracle
def rtf_inference_c(a: Any, b: Any, L: int, *, backend: Backend = F64) -> np.ndarray:
    """Recurrent output map ``C = b (I - Ac^L)^-1`` of the companion system (row solve (I - Ac^L)^T C^T = b^T).
    Source: Su kexue.fm/archives/10180 (ruke1ire/RTF ``rtf.py`` ``get_C`` solves the column system instead)."""
    Ac, _, bb = companion(a, b)
    xp = backend
    A = xp.asarray(Ac)
    M = _eye(xp, Ac.shape[0]) - _matpow(xp, A, int(L))
    return xp.to_float64(_solve(xp, M.T, xp.asarray(bb)))


@oracle
def rtf_recurrence(a: Any, C: Any, u: Any, *, backend: Backend = F64) -> np.ndarray:
    """O(d) companion recurrence ``x_k = (u_k - <a, x_k-1>, x_k-1[:-1])``, ``y_k = <C, x_k>`` (x_-1 = 0) over
    u [L]; C is the inference output map (:func:`rtf_inference_c`).  Source: Su kexue.fm/archives/10180."""
    aa, cc = _coeffs("rtf_recurrence", a, C)
    uu = as_float64(u, "rtf_recurrence", "u", ndim=1)
    require_finite(uu, "rtf_recurrence", "u")
    xp = backend
    A, Cc, U = xp.asarray(aa), xp.asarray(cc), xp.asarray(uu)
    x = A * 0
    ys = []
    for k in range(uu.size):
        head = U[k] - xp.sum(A * x)
        x = np.concatenate([np.array([head], dtype=x.dtype), x[:-1]])
        ys.append(xp.sum(Cc * x))
    return xp.to_float64(np.array(ys, dtype=object if not xp.is_float64 else None))
