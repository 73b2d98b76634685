"""S4 kernels: powers, recurrence, truncated generating function, DPLR Cauchy + Woodbury, S4D Vandermonde,
and causal long convolution (float64 / mpmath).

Single-input single-output system per channel (S4 convention, x_{-1} = 0):
``x_k = Ad x_{k-1} + Bd u_k``, ``y_k = C x_k``; kernel ``K_j = C Ad^j Bd`` (j = 0..L-1) and
``y_k = sum_{j<=k} K_j u_{k-j}``.  Layouts: Ad [N, N], Bd [N], C [N] (real or complex), u [..., L], K [L].

Generating function: ``G_L(z) = sum_{j<L} K_j z^j = C (I - z^L Ad^L)(I - z Ad)^-1 Bd``; at the roots of unity
``omega_l = exp(-2 pi i l / L)`` (numpy's FFT sign) z^L = 1, so ``fft(K)_l = Ct (I - omega_l Ad)^-1 Bd`` with
``Ct = C (I - Ad^L)`` and K = ifft(.).  Using C in place of Ct gives the time-aliased kernel
``sum_m K_{k+mL} = C (I - Ad^L)^-1 Ad^k Bd``.  Doubling: ``Ct_{2L} = Ct_L (I + Ad^L)``.

S4D (diagonal, conjugate pairs implied): ``K_l = 2 Re sum_n C_n Bd_n Ad_n^l`` with ZOH
``Ad_n = exp(dt lam_n)``, ``Bd_n = (exp(dt lam_n) - 1)/lam_n B_n`` or bilinear
``Ad_n = (1 + dt lam_n/2)/(1 - dt lam_n/2)``, ``Bd_n = dt B_n/(1 - dt lam_n/2)``.

FFT-based oracles (``fft_convolution``, ``ssm_kernel_gf``, ``dplr_kernel``) are float64 only (object-array
FFTs are impractical); they are certified against the direct sums (``causal_convolution``,
``ssm_kernel_powers``), which run in mpmath too.

Sources: Gu et al. 2022 (S4, arXiv 2111.00396); Su "重温SSM (三)" (kexue.fm/archives/10162); S4 code
``src/models/sequence/kernels/ssm.py`` (``_setup_C``, ``_omega``), ``src/models/functional/cauchy.py``,
``models/s4/s4d.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.ssm.discretization import _eye, _matpow, _solve

__all__ = [
    "S4D_METHODS",
    "c_from_c_tilde",
    "c_tilde",
    "causal_convolution",
    "dplr_kernel",
    "expm1_complex",
    "fft_convolution",
    "s4d_kernel",
    "ssm_generating_function",
    "ssm_kernel_aliased",
    "ssm_kernel_gf",
    "ssm_kernel_powers",
    "ssm_recurrence",
    "woodbury_inverse",
]

S4D_METHODS = ("zoh", "bilinear")


def expm1_complex(z: Any) -> np.ndarray:
    """``e^z - 1`` for complex z without cancellation near 0 (NumPy's expm1 is real only):
    ``expm1(x) cos y - 2 sin^2(y/2) + i e^x sin y`` for z = x + iy.  Source: the identity cos y - 1 = -2 sin^2(y/2)."""
    zz = np.asarray(z, dtype=np.complex128)
    x, y = zz.real, zz.imag
    return (np.expm1(x) * np.cos(y) - 2 * np.sin(y / 2) ** 2) + 1j * (np.exp(x) * np.sin(y))


def _system(func: str, Ad: Any, Bd: Any, C: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = as_float64(Ad, func, "Ad", ndim=2, allow_complex=True)
    require(a.shape[0] == a.shape[1], func, "Ad", "a square matrix [N, N]", f"shape {a.shape}")
    n = a.shape[0]
    b = as_float64(Bd, func, "Bd", ndim=1, allow_complex=True)
    c = as_float64(C, func, "C", ndim=1, allow_complex=True)
    require(b.shape == (n,), func, "Bd", f"of shape [N] = ({n},)", f"shape {b.shape}")
    require(c.shape == (n,), func, "C", f"of shape [N] = ({n},)", f"shape {c.shape}")
    for x, name in ((a, "Ad"), (b, "Bd"), (c, "C")):
        require_finite(x, func, name)
    return a, b, c


def _length(func: str, L: Any) -> int:
    require(isinstance(L, int | np.integer) and L >= 1, func, "L", "an int >= 1", repr(L))
    return int(L)


@oracle
def ssm_kernel_powers(Ad: Any, Bd: Any, C: Any, L: int, *, backend: Backend = F64) -> np.ndarray:
    """``K_j = C Ad^j Bd`` for j = 0..L-1 by repeated multiplication (x_j = Ad x_{j-1}, x_0 = Bd).
    Returns [L] (complex only if an input is complex).  Source: Gu et al. 2022 (S4, convolution kernel)."""
    func = "ssm_kernel_powers"
    a, b, c = _system(func, Ad, Bd, C)
    L = _length(func, L)
    xp = backend
    A_, x, C_ = xp.asarray(a), xp.asarray(b), xp.asarray(c)
    out = []
    for _ in range(L):
        out.append(xp.sum(C_ * x))
        x = xp.matmul(A_, x)
    return xp.to_float64(np.array(out, dtype=object if not xp.is_float64 else None))


@oracle
def ssm_recurrence(Ad: Any, Bd: Any, C: Any, u: Any, D: float = 0.0, *,
                   backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """Run ``x_k = Ad x_{k-1} + Bd u_k``, ``y_k = C x_k + D u_k`` (x_{-1} = 0) over u [L].
    Returns ``(y [L], x_{L-1} [N])``.  Source: Gu et al. 2022 (S4 recurrent mode)."""
    func = "ssm_recurrence"
    a, b, c = _system(func, Ad, Bd, C)
    uu = as_float64(u, func, "u", ndim=1)
    require_finite(uu, func, "u")
    xp = backend
    A_, B_, C_, U = xp.asarray(a), xp.asarray(b), xp.asarray(c), xp.asarray(uu)
    x = B_ * 0
    ys = []
    for k in range(uu.size):
        x = xp.matmul(A_, x) + B_ * U[k]
        ys.append(xp.sum(C_ * x) + xp.scalar(D) * U[k])
    y = np.array(ys, dtype=object if not xp.is_float64 else None)
    return xp.to_float64(y), xp.to_float64(x)


def _conv_args(func: str, u: Any, K: Any) -> tuple[np.ndarray, np.ndarray]:
    uu = as_float64(u, func, "u")
    kk = as_float64(K, func, "K")
    require(uu.ndim >= 1 and uu.shape[-1] >= 1, func, "u", "of shape [..., L] with L >= 1", f"shape {uu.shape}")
    require(kk.ndim >= 1 and kk.shape[-1] == uu.shape[-1], func, "K",
            f"of shape [..., L] with L = {uu.shape[-1]} (the length of u)", f"shape {kk.shape}")
    require(kk.ndim <= uu.ndim and uu.shape[uu.ndim - kk.ndim:-1] == kk.shape[:-1], func, "K",
            f"of shape [..., L] matching the trailing dims of u {uu.shape} (no silent broadcast)", f"shape {kk.shape}")
    require_finite(uu, func, "u")
    require_finite(kk, func, "K")
    return uu, kk


@oracle
def causal_convolution(u: Any, K: Any, *, backend: Backend = F64) -> np.ndarray:
    """Direct causal convolution ``y_k = sum_{j=0}^{k} K_j u_{k-j}`` along the last axis (u [..., L], K [..., L]
    with K's leading dims equal to u's trailing leading dims, e.g. u [B, C, L], K [C, L]).
    O(L^2); mpmath uses exactly rounded sums.  Source: Gu et al. 2022 (S4)."""
    uu, kk = _conv_args("causal_convolution", u, K)
    xp = backend
    U, Kx = xp.asarray(uu), xp.asarray(kk)
    L = uu.shape[-1]
    if xp.is_float64:  # direct sums (np.convolve), one row at a time
        Kb = np.broadcast_to(kk, uu.shape)
        out = np.empty(uu.shape)
        for idx in np.ndindex(uu.shape[:-1]):
            out[idx] = np.convolve(Kb[idx], uu[idx])[:L]
        return out
    out = np.empty(uu.shape, dtype=object)
    Kb = np.broadcast_to(Kx, uu.shape)
    for idx in np.ndindex(uu.shape[:-1]):
        for k in range(L):
            out[(*idx, k)] = xp.sum(Kb[idx][: k + 1] * U[idx][k::-1])
    return xp.to_float64(out)


def fft_convolution(u: Any, K: Any) -> np.ndarray:
    """Causal convolution by FFT, zero-padded to n = 2L: ``irfft(rfft(K, n) rfft(u, n), n)[..., :L]``
    (float64 only).  Without the padding the product is a circular convolution (wrong).
    Source: S4 ``FFTConv``."""
    uu, kk = _conv_args("fft_convolution", u, K)
    L = uu.shape[-1]
    n = 2 * L
    return np.fft.irfft(np.fft.rfft(kk, n) * np.fft.rfft(uu, n), n)[..., :L]


@oracle
def ssm_generating_function(Ad: Any, Bd: Any, C: Any, z: Any, L: int | None = None, *,
                            backend: Backend = F64) -> np.ndarray:
    """``G_L(z) = C (I - z^L Ad^L)(I - z Ad)^-1 Bd = sum_{j<L} K_j z^j`` at complex points z [M]
    (the full ``C (I - z Ad)^-1 Bd`` when L is None).  Requires I - z Ad invertible.  Source: Su 10162."""
    func = "ssm_generating_function"
    a, b, c = _system(func, Ad, Bd, C)
    zz = as_float64(z, func, "z", ndim=1, allow_complex=True).astype(np.complex128)
    xp = backend
    n = a.shape[0]
    A_, B_, C_ = xp.asarray(a), xp.asarray(b), xp.asarray(c)
    Z = xp.asarray(zz)
    I = _eye(xp, n, A_ * 1j if xp.is_float64 else None)
    AL = _matpow(xp, A_, _length(func, L)) if L is not None else None
    out = []
    for zm in Z:
        x = _solve(xp, I - A_ * zm, B_)
        if AL is not None:
            x = x - xp.matmul(AL, x) * (zm ** int(L))
        out.append(xp.sum(C_ * x))
    return xp.to_float64(np.array(out, dtype=object if not xp.is_float64 else np.complex128))


@oracle
def c_tilde(Ad: Any, C: Any, L: int, *, backend: Backend = F64) -> np.ndarray:
    """``Ct = C (I - Ad^L)`` (row vector C [N]): the output map S4 trains for length L.  Source: Su 10162."""
    func = "c_tilde"
    a = as_float64(Ad, func, "Ad", ndim=2, allow_complex=True)
    c = as_float64(C, func, "C", ndim=1, allow_complex=True)
    require(a.shape == (c.size, c.size), func, "Ad", f"of shape [N, N] with N = {c.size}", f"shape {a.shape}")
    xp = backend
    A_, C_ = xp.asarray(a), xp.asarray(c)
    return xp.to_float64(C_ - xp.matmul(C_, _matpow(xp, A_, _length(func, L))))


@oracle
def c_from_c_tilde(Ad: Any, Ct: Any, L: int, *, backend: Backend = F64) -> np.ndarray:
    """``C = Ct (I - Ad^L)^-1`` (solve of (I - Ad^L)^T C^T = Ct^T); ill-conditioned when rho(Ad)^L ~ 1.
    Source: Su kexue.fm/archives/10162; S4 ``_setup_C``."""
    func = "c_from_c_tilde"
    a = as_float64(Ad, func, "Ad", ndim=2, allow_complex=True)
    c = as_float64(Ct, func, "Ct", ndim=1, allow_complex=True)
    require(a.shape == (c.size, c.size), func, "Ad", f"of shape [N, N] with N = {c.size}", f"shape {a.shape}")
    xp = backend
    A_, C_ = xp.asarray(a), xp.asarray(c)
    M = _eye(xp, c.size, A_) - _matpow(xp, A_, _length(func, L))
    return xp.to_float64(_solve(xp, M.T, C_))


def _roots(L: int) -> np.ndarray:
    return np.exp(-2j * np.pi * np.arange(L) / L)


def ssm_kernel_gf(Ad: Any, Bd: Any, Ct: Any, L: int) -> np.ndarray:
    """Kernel from the truncated generating function at all L roots of unity (float64 only):
    ``K = ifft(Ct (I - omega_l Ad)^-1 Bd)``, omega_l = exp(-2 pi i l/L), every bin l = 0..L-1 (odd L, the Nyquist
    bin and L < N included).  With ``Ct = c_tilde(Ad, C, L)`` this is K_j = C Ad^j Bd; with Ct = C it is the
    aliased kernel.  Real part returned for real inputs.  Source: Su 10162; S4."""
    func = "ssm_kernel_gf"
    a, b, c = _system(func, Ad, Bd, Ct)
    L = _length(func, L)
    n = a.shape[0]
    vals = np.array([c @ np.linalg.solve(np.eye(n) - w * a, b) for w in _roots(L)])
    K = np.fft.ifft(vals)
    return K if np.iscomplexobj(a) or np.iscomplexobj(b) or np.iscomplexobj(c) else K.real


def woodbury_inverse(Minv: Any, U: Any, V: Any) -> np.ndarray:
    """``(M - U V^*)^-1 = M^-1 + M^-1 U (I - V^* M^-1 U)^-1 V^* M^-1`` from M^-1 [n, n], U, V [n, r]
    (float64).  Source: Su "重温SSM (三)"."""
    func = "woodbury_inverse"
    Mi = as_float64(Minv, func, "Minv", ndim=2, allow_complex=True)
    Uu = as_float64(U, func, "U", ndim=2, allow_complex=True)
    Vv = as_float64(V, func, "V", ndim=2, allow_complex=True)
    n = Mi.shape[0]
    require(Mi.shape == (n, n), func, "Minv", "square", f"shape {Mi.shape}")
    require(Uu.shape[0] == n and Vv.shape == Uu.shape, func, "U, V", f"of equal shape [n={n}, r]",
            f"{Uu.shape}, {Vv.shape}")
    Vh = Vv.conj().T
    cap = np.eye(Uu.shape[1]) - Vh @ Mi @ Uu
    return Mi + Mi @ Uu @ np.linalg.solve(cap, Vh @ Mi)


def dplr_kernel(Lam: Any, P: Any, Q: Any, B: Any, Ct: Any, dt: float, L: int) -> np.ndarray:
    """Bilinear S4 kernel of the DPLR system ``A = diag(Lam) - P Q^*`` (rank r = P.shape[1]) by Cauchy sums and
    Woodbury (float64).  Inputs in the rotated basis: Lam [N], P, Q [N, r], continuous B [N], Ct [N] (= C-tilde).

    At each root of unity z = omega_l: ``Khat(z) = 2 Ct [ (2/dt)(1 - z) I - (1 + z) A ]^-1 B``, and with
    D = (2/dt)(1 - z) - (1 + z) Lam (diagonal) and U = (1 + z) P, Woodbury gives
    ``Khat = 2 [k_CB - k_CU (I + k_QU)^-1 k_QB]`` with Cauchy sums ``k_ab = sum_n a_n b_n / D_n`` (Q enters
    conjugated).  This form is regular at the Nyquist bin z = -1 (U = 0 there).  K = ifft(Khat); real part for a
    real underlying system.  Source: Su 10162; S4 ``SSMKernelDPLR`` (which uses the 2/(1+z) form)."""
    func = "dplr_kernel"
    lam = as_float64(Lam, func, "Lam", ndim=1, allow_complex=True).astype(np.complex128)
    n = lam.size
    Pp = as_float64(P, func, "P", ndim=2, allow_complex=True)
    Qq = as_float64(Q, func, "Q", ndim=2, allow_complex=True)
    Bb = as_float64(B, func, "B", ndim=1, allow_complex=True)
    Cc = as_float64(Ct, func, "Ct", ndim=1, allow_complex=True)
    require(Pp.shape[0] == n and Qq.shape == Pp.shape, func, "P, Q", f"of equal shape [N={n}, r]",
            f"{Pp.shape}, {Qq.shape}")
    require(Bb.shape == (n,) and Cc.shape == (n,), func, "B, Ct", f"of shape [N={n}]", f"{Bb.shape}, {Cc.shape}")
    require(isinstance(dt, float | int) and dt > 0, func, "dt", "a float > 0", repr(dt))
    L = _length(func, L)
    out = np.empty(L, dtype=np.complex128)
    for i, z in enumerate(_roots(L)):
        d = (2.0 / dt) * (1 - z) - (1 + z) * lam
        U = (1 + z) * Pp
        Qh = Qq.conj()
        k_cb = np.sum(Cc * Bb / d)
        k_cu = (Cc / d) @ U  # [r]
        k_qu = Qh.T @ (U / d[:, None])  # [r, r]
        k_qb = Qh.T @ (Bb / d)  # [r]
        out[i] = 2 * (k_cb - k_cu @ np.linalg.solve(np.eye(Pp.shape[1]) + k_qu, k_qb))
    return np.fft.ifft(out)


def _s4d_inputs(func: str, log_dt: Any, A: Any, B: Any, C: Any) -> tuple[np.ndarray, ...]:
    """Validated S4D parameters (shared by the kernel and its VJP): log_dt [H] float64 and A, B, C [H, N2]
    complex128, all finite, A without zeros (ZOH divides by A); errors name ``func`` and the argument."""
    ld = as_float64(log_dt, func, "log_dt", ndim=1)
    H = ld.size
    a = as_float64(A, func, "A", ndim=2, allow_complex=True).astype(np.complex128)
    b = as_float64(B, func, "B", ndim=2, allow_complex=True).astype(np.complex128)
    c = as_float64(C, func, "C", ndim=2, allow_complex=True).astype(np.complex128)
    for x, name in ((a, "A"), (b, "B"), (c, "C")):
        require(x.shape[0] == H and x.shape == a.shape, func, name, f"of shape [H={H}, N2] equal to A's {a.shape}",
                f"shape {x.shape}")
        require_finite(x, func, name)
    require_finite(ld, func, "log_dt")
    require(bool(np.all(a != 0)), func, "A", "nonzero (ZOH divides by A)", "a zero eigenvalue")
    return ld, a, b, c


@oracle
def s4d_kernel(log_dt: Any, A: Any, B: Any, C: Any, L: int, method: str = "zoh", *,
               backend: Backend = F64) -> np.ndarray:
    """S4D Vandermonde kernel ``K[h, l] = 2 Re sum_n C[h,n] Bd[h,n] Ad[h,n]^l`` (conjugate pairs implied).

    log_dt [H] (dt = exp(log_dt)), A, B, C [H, N2] complex (N2 = N/2 kept eigenvalues, Re A < 0 for stability);
    ``method="zoh"``: Ad = exp(dt A), Bd = (exp(dt A) - 1)/A B (e^z - 1 by :func:`expm1_complex` in float64),
    powers as exp(l dt A); ``"bilinear"``:
    Ad = (1 + dt A/2)/(1 - dt A/2), Bd = dt B/(1 - dt A/2), powers by repeated multiplication.  Returns K [H, L].
    Source: S4D (Gu et al. 2022); S4 ``s4d.py`` (``S4DKernel``: ``C * (exp(dtA) - 1) / A``, B absorbed in C)."""
    func = "s4d_kernel"
    require(method in S4D_METHODS, func, "method", f"one of {S4D_METHODS}", repr(method))
    ld, a, b, c = _s4d_inputs(func, log_dt, A, B, C)
    L = _length(func, L)
    xp = backend
    dt = xp.exp(xp.asarray(ld))[:, None]
    A_, B_, C_ = xp.asarray(a), xp.asarray(b), xp.asarray(c)
    dtA = A_ * dt
    ls = xp.asarray(np.arange(L, dtype=np.float64))
    if method == "zoh":
        # e^{dt A} - 1 without cancellation in float64 (|dt A| ~ 1e-4 would lose 4 digits); mpmath has digits to spare
        em1 = expm1_complex(dtA) if xp.is_float64 else xp.exp(dtA) - 1
        Bd = em1 / A_ * B_
        powers = xp.exp(dtA[..., None] * ls)  # [H, N2, L]
    else:
        den = 1 - dtA / 2
        Ad = (1 + dtA / 2) / den
        Bd = B_ * dt / den
        powers = np.empty((*a.shape, L), dtype=object if not xp.is_float64 else np.complex128)
        cur = Ad * 0 + 1
        for l in range(L):
            powers[..., l] = cur
            cur = cur * Ad
    K = xp.sum((C_ * Bd)[..., None] * powers, axis=1)
    return xp.to_float64(2 * xp.real(K))


def ssm_kernel_aliased(Ad: Any, Bd: Any, C: Any, L: int) -> np.ndarray:
    """Time-aliased kernel ``sum_{m>=0} K_{k+mL} = C (I - Ad^L)^-1 Ad^k Bd`` (k < L; float64; rho(Ad) < 1):
    what the roots-of-unity formula returns when C is used in place of C-tilde.  Derived here."""
    a, b, c = _system("ssm_kernel_aliased", Ad, Bd, C)
    L = _length("ssm_kernel_aliased", L)
    c_eff = np.linalg.solve((np.eye(a.shape[0]) - np.linalg.matrix_power(a, L)).T, c)
    return ssm_kernel_powers(a, b, c_eff, L)
