"""Laws of discretisation, HiPPO and S4 kernels (Gu et al. 2020, 2022; Su posts 10114-10162).

Rounding budgets: a dense solve of (I - alpha dt A) x = r has relative error ~ n u cond(I - alpha dt A)
(Higham 2002, thm 7.2), so solve-based agreements use ``terms = n * cond``; a kernel K_j = C Ad^j Bd after j
matrix-vector products has absolute error ~ j n u ||C|| max_j ||Ad^j|| ||Ad|| ||Bd|| (the non-normal growth of
the powers enters through max ||Ad^j||, measured in the law).  Matrix norms and condition numbers are Frobenius
ones: upper bounds of the 2-norm quantities that need no SVD (the laws run hundreds of times under shrinking).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound, Rate
from veriformer.properties.ssm.strategies import SystemCase, system_cases
from veriformer.reference import MP
from veriformer.reference._optional import optional_module
from veriformer.registry import law

U = 2.0**-53
FAMILY = "ssm"
SRC_DISC = "Su 重温SSM (二) (kexue.fm/archives/10137); SciPy cont2discrete"
SRC_HIPPO = "Gu et al. 2020 (HiPPO); S4 src/models/hippo/hippo.py"
SRC_S4 = "Gu et al. 2022 (S4); Su 重温SSM (三) (kexue.fm/archives/10162); S4 kernels/ssm.py, s4d.py"
SCIPY_METHOD = {"forward_euler": "euler", "backward_euler": "backward_diff", "bilinear": "bilinear", "zoh": "zoh",
                "gbt": "gbt"}
METHODS = ("forward_euler", "backward_euler", "bilinear", "gbt", "zoh")


def _maxabs(*xs: Any) -> float:
    return max(float(np.max(np.abs(x))) if np.size(x) else 0.0 for x in xs)


def _alpha(method: str, alpha: float) -> float | None:
    return alpha if method == "gbt" else None


def _alpha_value(method: str, alpha: float) -> float:
    return {"forward_euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5, "zoh": 1.0}.get(method, alpha)


def _disc_terms(A: np.ndarray, dt: float, method: str, alpha: float) -> float:
    """n * cond of the solved matrix (gbt family) or of the expm (zoh: n (1 + ||dt A||) e^{2 ||dt A||})."""
    n = A.shape[0]
    if method == "zoh":
        nrm = float(np.abs(dt * A).sum(axis=1).max())
        return 8 * (n + 2) * (1 + nrm) * np.exp(min(2 * nrm, 50))
    M = np.eye(n) - _alpha_value(method, alpha) * dt * A
    return 8 * n * float(np.linalg.cond(M, 1))


# -- discretisation ---------------------------------------------------------------------------------------------


@law("ssm.discretize_matches_scipy", family=FAMILY, source=SRC_DISC)
def discretize_matches_scipy(ref: Any, case: SystemCase = system_cases(lengths=(1,)),
                             method: str = st.sampled_from(METHODS),
                             alpha: float = st.sampled_from((0.0, 0.25, 0.5, 0.9, 1.0))) -> list[Agreement]:
    """(Ad, Bd) of every method equal scipy.signal.cont2discrete's (euler, backward_diff, bilinear, gbt with
    alpha, zoh; singular A included): SciPy's Ad, Bd follow the same table (its Cd, Dd differ for gbt)."""
    a = case.arrays()
    A, B = a["A"], a["B"]
    Ad, Bd = ref.discretize(A, B, case.dt, method, alpha=_alpha(method, alpha))
    sys = (A, B[:, None], np.ones((1, case.N)), np.zeros((1, 1)))
    Ad_s, Bd_s, *_ = optional_module("scipy.signal").cont2discrete(sys, case.dt, method=SCIPY_METHOD[method],
                                                alpha=alpha if method == "gbt" else None)
    t = _disc_terms(A, case.dt, method, alpha)
    sc = max(1.0, _maxabs(Ad_s))
    return [Agreement(Ad, Ad_s, f"Ad[{method}] == scipy", terms=t, scale=sc),
            Agreement(Bd, Bd_s[:, 0], f"Bd[{method}] == scipy", terms=t, scale=sc * max(_maxabs(B) * case.dt, 1e-300))]


@law("ssm.zoh_block_expm", family=FAMILY, source=SRC_DISC + "; scipy.linalg.expm")
def zoh_block_expm(ref: Any, case: SystemCase = system_cases(kinds=("stable", "legs"), lengths=(1,))) \
        -> list[Agreement]:
    """ZOH by the block exponential: Ad = e^{dt A} (scipy.linalg.expm) and Bd = A^-1 (e^{dt A} - I) B for
    invertible A."""
    a = case.arrays()
    A, B, dt = a["A"], a["B"], case.dt
    Ad, Bd = ref.discretize(A, B, dt, "zoh")
    E = optional_module("scipy.linalg").expm(dt * A)
    Bd_int = np.linalg.solve(A, (E - np.eye(case.N)) @ B)
    t = _disc_terms(A, dt, "zoh", 0.0)
    # the right-hand side cancels in e^{dt A} - I: its error is ~ u ||A^-1|| ||e^{dt A}|| ||B|| (not u |Bd|)
    sc_b = float(np.linalg.norm(np.linalg.inv(A)) * np.linalg.norm(E) * np.linalg.norm(B))
    return [Agreement(Ad, E, "Ad == expm(dt A)", terms=t, scale=max(1.0, _maxabs(E))),
            Agreement(Bd, Bd_int, "Bd == A^-1 (e^{dt A} - I) B", terms=t * float(np.linalg.cond(A, 1)),
                      scale=max(_maxabs(Bd_int), dt * _maxabs(B), sc_b))]


@law("ssm.discretize_legs_fixed_point", family=FAMILY, source=SRC_DISC + "; derived here: Ad e0 + Bd = e0 as A e0 = -B")
def legs_fixed_point(ref: Any, N: int = st.integers(1, 16), dt: float = st.sampled_from((1e-3, 0.1, 0.5, 1.0)),
                     method: str = st.sampled_from(METHODS), alpha: float = st.floats(0.0, 1.0)) -> Agreement:
    """For LTI LegS, A e_0 = -B, so every discretisation has Ad e_0 + Bd = e_0: constant input u = 1 has the
    fixed point e_0."""
    A, B = ref.hippo_legs(N)
    Ad, Bd = ref.discretize(A, B, dt, method, alpha=_alpha(method, alpha))
    e0 = np.zeros(N)
    e0[0] = 1.0
    return Agreement(Ad[:, 0] + Bd, e0, "Ad e0 + Bd == e0", terms=_disc_terms(A, dt, method, alpha), scale=1.0)


@law("ssm.discretize_local_error_order", family=FAMILY, kind="asymptotic", source=SRC_DISC
     + "; derived here: local error O(dt^3) bilinear, O(dt^2) Euler")
def local_error_order(ref: Any, case: SystemCase = system_cases(kinds=("stable", "legs", "legt"), max_N=6,
                                                                lengths=(1,)))\
        -> list[Rate]:
    """Local error against the exact e^{hA}: bilinear Ad is O(h^3) (a Pade(1,1) approximant), forward and
    backward Euler O(h^2), measured on h = h0 / 2^k with h0 = 0.2 / ||A||."""
    A = case.arrays()["A"]
    B = case.arrays()["B"]
    h0 = 0.2 / max(float(np.abs(A).sum(axis=1).max()), 1e-3)
    hs = h0 / 2.0 ** np.arange(4)
    claims = []
    exact = [optional_module("scipy.linalg").expm(h * A) for h in hs]
    for method, order in (("bilinear", 3), ("forward_euler", 2), ("backward_euler", 2)):
        errs = [float(np.abs(ref.discretize(A, B, h, method)[0] - E).max()) for h, E in zip(hs, exact, strict=True)]
        claims.append(Rate(hs, errs, order, f"||Ad[{method}](h) - e^(hA)|| = O(h^{order})"))
    return claims


@law("ssm.discretize_mpmath_certificate", family=FAMILY, kind="certificate", max_examples=12,
     source="mpmath 40 digits (mpmath.lu_solve, mpmath.expm); Higham 2002 thm 7.2")
def discretize_certificate(ref: Any, case: SystemCase = system_cases(max_N=4, lengths=(1,)),
                           method: str = st.sampled_from(METHODS)) -> list[Agreement]:
    """The float64 discretisation agrees with the same code in mpmath (40 digits) within n u cond (gbt family)
    or n u (1 + ||dt A||) e^{2||dt A||} (ZOH) at the size of the result."""
    a = case.arrays()
    A, B = a["A"], a["B"]
    kw = {"alpha": 0.3} if method == "gbt" else {}
    Ad, Bd = ref.discretize(A, B, case.dt, method, **kw)
    Am, Bm = ref.discretize(A, B, case.dt, method, backend=MP(40), **kw)
    t = _disc_terms(A, case.dt, method, 0.3)
    sc = max(1.0, _maxabs(Am))
    return [Agreement(Ad, Am, "Ad float64 == mpmath", terms=t, scale=sc, tolerance="law.certificate"),
            Agreement(Bd, Bm, "Bd float64 == mpmath", terms=t, scale=sc * max(case.dt * _maxabs(B), 1e-300),
                      tolerance="law.certificate")]


# -- HiPPO -----------------------------------------------------------------------------------------------------


@law("ssm.hippo_legs_structure", family=FAMILY, source=SRC_HIPPO)
def legs_structure(ref: Any, N: int = st.integers(1, 64)) -> list[Agreement]:
    """LegS: A = diag(0..N-1) - tril(v v^T) with v_n = sqrt(2n+1) (diagonal -(n+1), so the eigenvalues of the
    triangular A are -1..-N) and A e_0 = -B."""
    A, B = ref.hippo_legs(N)
    v = np.sqrt(2 * np.arange(N) + 1.0)
    return [Agreement(A, np.diag(np.arange(N, dtype=float)) - np.tril(np.outer(v, v)), "A == diag(n) - tril(vv^T)",
                      terms=2, scale=2 * N),
            Agreement(np.diag(A), -np.arange(1.0, N + 1), "diag A == -(n+1)", atol=0.0, tolerance="law.defined"),
            Agreement(A[:, 0], -B, "A e0 == -B", terms=2, scale=2 * N)]


@law("ssm.hippo_legs_matvec", family=FAMILY,
     source=SRC_HIPPO + "; Su kexue.fm/archives/10137 (O(N) product)")
def legs_matvec(ref: Any, N: int = st.integers(1, 64), seed: int = st.integers(0, 2**32 - 1)) -> Agreement:
    """O(N) product (A v)_n = n v_n - sqrt(2n+1) cumsum(sqrt(2k+1) v_k)_n equals the dense A v."""
    v = np.random.default_rng(seed).standard_normal(N)
    A, _ = ref.hippo_legs(N)
    return Agreement(ref.hippo_legs_matvec(v), A @ v, "O(N) A v == dense A v", terms=2 * N + 4,
                     scale=float(np.abs(A).max() * np.abs(v).sum()))


@law("ssm.hippo_legs_solve", family=FAMILY,
     source=SRC_HIPPO + "; Su kexue.fm/archives/10137 (O(N) solve of (I - lam A) z = v)")
def legs_solve(ref: Any, N: int = st.integers(1, 64), lam: float = st.sampled_from((0.0, 1e-3, 0.05, 0.5, 2.0)),
               seed: int = st.integers(0, 2**32 - 1)) -> Agreement:
    """The O(N) recursion for (I - lam A) z = v has a small residual: (I - lam A) z == v."""
    v = np.random.default_rng(seed).standard_normal(N)
    A, _ = ref.hippo_legs(N)
    z = ref.hippo_legs_solve(lam, v)
    M = np.eye(N) - lam * A
    return Agreement(M @ z, v, "(I - lam A) z == v", terms=8 * N + 8,
                     scale=float(np.abs(M).sum(axis=1).max() * np.abs(z).max()) + _maxabs(v))


@law("ssm.hippo_legs_legendre_moments", family=FAMILY,
     source=SRC_HIPPO + "; derived here: (pI - A)^-1 B = int_0^1 r^p phi(r) dr")
def legs_moments(ref: Any, N: int = st.integers(1, 16),
                 p: float = st.one_of(st.sampled_from((0.0, 1.0, 2.0, 3.0, 7.0, 2.5)), st.floats(-0.9, 12.0))) \
        -> Agreement:
    """(p I - A)^-1 B = int_0^1 r^p phi(r) dr for every p > -1: u(t) = t^p has the exact LegS state
    t^p (p I - A)^-1 B (closed-form shifted-Legendre moments)."""
    A, B = ref.hippo_legs(N)
    x = np.linalg.solve(p * np.eye(N) - A, B)
    m = ref.legendre_moments(p, N)
    cond = float(np.linalg.cond(p * np.eye(N) - A, 1))
    return Agreement(x, m, "(pI - A)^-1 B == Legendre moments", terms=4 * N * cond + 4 * N,
                     scale=max(_maxabs(m), 1.0 / (p + 1)))


@law("ssm.hippo_legs_mpmath_certificate", family=FAMILY, kind="certificate", max_examples=12,
     source=SRC_HIPPO + "; mpmath 40 digits (object arrays)")
def legs_certificate(ref: Any, N: int = st.integers(1, 10),
                     p: float = st.sampled_from((0.0, 1.0, 2.0, 3.0, 7.0, 2.5, -0.5))) -> Agreement:
    """The float64 forward substitution for (pI - A)^-1 B agrees with the exact moments computed in mpmath at
    40 digits, within 8 N^2 u (entries of A are O(N), substitution runs n terms per row)."""
    x = ref.hippo_legs_resolvent(p, N)
    m = ref.legendre_moments(p, N, backend=MP(40))
    return Agreement(x, m, "float64 resolvent == mpmath moments", atol=8 * N * N * U * max(_maxabs(m), 1.0),
                     tolerance="law.certificate")


@law("ssm.hippo_forms_are_similarities", family=FAMILY, source=SRC_HIPPO + "; Su 10114")
def forms_similar(ref: Any, N: int = st.integers(1, 32), w: float = st.sampled_from((1.0, 2.0, 0.3, 1.7)))\
        -> list[Agreement]:
    """Every LegS normalisation (sqrt_free, s4_internal, su_raw) is the diagonal similarity (T A T^-1, T B) of
    the S4 form, and LMU is the similarity diag(sqrt(2n+1)) of LegT (same window)."""
    A, B = ref.hippo_legs(N)
    out = []
    for form in ref.LEGS_FORMS:
        Af, Bf = ref.hippo_legs(N, form)
        As, Bs = ref.hippo_similarity(A, B, ref.legs_form_scaling(N, form))
        out += [Agreement(Af, As, f"A[{form}] == T A T^-1", terms=4, scale=4.0 * N),
                Agreement(Bf, Bs, f"B[{form}] == T B", terms=4, scale=4.0 * N)]
    At, Bt = ref.hippo_legt(N, w)
    Al, Bl = ref.hippo_lmu(N, w)
    As, Bs = ref.hippo_similarity(At, Bt, np.sqrt(2 * np.arange(N) + 1.0))
    out += [Agreement(Al, As, "LMU A == T LegT T^-1", terms=6, scale=4.0 * N / w),
            Agreement(Bl, Bs, "LMU B == T LegT B", terms=6, scale=4.0 * N / w)]
    return out


@law("ssm.hippo_legt_rank2_skew", family=FAMILY, source=SRC_HIPPO + "; Gu et al. 2022 (S4)")
def legt_skew(ref: Any, N: int = st.integers(1, 64)) -> Agreement:
    """S4 LegT (w = 2) is a rank-2 correction from skew-symmetric: with p = sqrt(2n+1) split by index parity
    (p0 keeps odd, p1 keeps even indices), S = A + (p0 p0^T + p1 p1^T)/2 satisfies S + S^T = 0."""
    A, _ = ref.hippo_legt(N, 2.0)
    p = np.sqrt(2 * np.arange(N) + 1.0)
    p0, p1 = np.where(np.arange(N) % 2 == 1, p, 0.0), np.where(np.arange(N) % 2 == 0, p, 0.0)
    S = A + 0.5 * (np.outer(p0, p0) + np.outer(p1, p1))
    return Agreement(S + S.T, np.zeros((N, N)), "S + S^T == 0", terms=4, scale=2.0 * N)


@law("ssm.hippo_legs_nplr", family=FAMILY, source=SRC_HIPPO + "; S4 NPLR")
def legs_nplr(ref: Any, N: int = st.integers(1, 64)) -> list[Any]:
    """NPLR of LegS: V unitary, Re Lam = -1/2, and V (diag(Lam) - Pt Pt^*) V^* reconstructs A (error from the
    Hermitian eigensolver: backward stable, ~ N u ||A||)."""
    A, _ = ref.hippo_legs(N)
    V, Lam, Pt, p = ref.hippo_legs_nplr(N)
    rec = V @ (np.diag(Lam) - np.outer(Pt, Pt.conj())) @ V.conj().T
    nrm = float(np.linalg.norm(A)) + float(p @ p)
    return [Agreement(V.conj().T @ V, np.eye(N), "V^* V == I", terms=8 * N, scale=1.0),
            Agreement(Lam.real, np.full(N, -0.5), "Re Lam == -1/2", terms=8 * N, scale=nrm),
            Agreement(rec, A, "V (Lam - Pt Pt^*) V^* == A", terms=16 * N, scale=nrm),
            Bound(np.abs(rec.imag), 0.0, "reconstruction is real", slack=16 * N * U * nrm)]


@law("ssm.hippo_legs_warped_legendre", family=FAMILY, source=SRC_HIPPO + "; S4 (warped Legendre)")
def legs_warped_legendre(ref: Any, N: int = st.integers(1, 12), s: float = st.floats(0.0, 3.0)) -> Agreement:
    """Impulse response of the LTI LegS system: e^{sA} B = e^{-s} phi(e^{-s}), i.e. component n is
    e^{-s} sqrt(2n+1) P_n(2 e^{-s} - 1) (exponentially warped Legendre polynomials)."""
    A, B = ref.hippo_legs(N)
    r = np.exp(-s)
    n = np.arange(N)
    want = r * np.sqrt(2 * n + 1) * optional_module("scipy.special").eval_legendre(n, 2 * r - 1)
    nrm = float(np.abs(s * A).sum(axis=1).max())
    return Agreement(ref.expm(s * A) @ B, want, "e^{sA} B == e^{-s} phi(e^{-s})",
                     terms=8 * (N + 2) * (1 + nrm) ** 2, scale=float(np.sqrt(2 * N)))


# -- S4 kernels --------------------------------------------------------------------------------------------------


def _stable_system(ref: Any, case: SystemCase, method: str = "bilinear") -> tuple[np.ndarray, ...]:
    a = case.arrays()
    Ad, Bd = ref.discretize(a["A"], a["B"], case.dt, method)
    return Ad, Bd, a["C"], a["u"]


def _kernel_budget(Ad: np.ndarray, Bd: np.ndarray, C: np.ndarray, L: int) -> tuple[float, float]:
    """(terms, scale) for K_j = C Ad^j Bd, j < L: terms ~ L N, scale ~ ||C|| max_j ||Ad^j|| (1 + ||Ad||) ||Bd||."""
    n = Ad.shape[0]
    P, mx = np.eye(n), 1.0
    for _ in range(L):
        P = P @ Ad
        mx = max(mx, float(np.linalg.norm(P)))
    scale = float(np.linalg.norm(C) * mx * (1 + np.linalg.norm(Ad)) * np.linalg.norm(Bd))
    return 4.0 * (L + 1) * (n + 1), max(scale, 1e-300)


@law("ssm.s4_convolution_forms_agree", family=FAMILY, source=SRC_S4 + " (recurrence = convolution)")
def s4_convolution_forms(ref: Any, case: SystemCase = system_cases(kinds=("legs", "legt", "stable"), max_N=12),
                         method: str = st.sampled_from(("bilinear", "zoh"))) -> list[Agreement]:
    """Recurrence y_k = C x_k == causal convolution with K_j = C Ad^j Bd == FFT convolution padded to 2L."""
    Ad, Bd, C, u = _stable_system(ref, case, method)
    K = ref.ssm_kernel_powers(Ad, Bd, C, case.L)
    y, _ = ref.ssm_recurrence(Ad, Bd, C, u)
    yc = ref.causal_convolution(u, K)
    yf = ref.fft_convolution(u, K)
    t, sc = _kernel_budget(Ad, Bd, C, case.L)
    su = sc * float(np.abs(u).sum())
    return [Agreement(y, yc, "recurrence == direct convolution", terms=t, scale=su),
            Agreement(yf, yc, "padded FFT == direct convolution", terms=t + 8 * np.log2(2 * case.L) + 8, scale=su)]


@law("ssm.s4_kernel_roots_of_unity", family=FAMILY, source=SRC_S4 + " (C-tilde)")
def s4_roots_of_unity(ref: Any, case: SystemCase = system_cases(kinds=("legs", "legt", "stable"), max_N=12),
                      method: str = st.sampled_from(("bilinear", "zoh"))) -> list[Agreement]:
    """ifft of Ct (I - omega_l Ad)^-1 Bd over all L roots of unity (odd L, Nyquist, L < N) with
    Ct = C (I - Ad^L) is K; with C itself it is the time-aliased kernel sum_m K_{k+mL}."""
    Ad, Bd, C, _ = _stable_system(ref, case, method)
    L = case.L
    K = ref.ssm_kernel_powers(Ad, Bd, C, L)
    Kg = ref.ssm_kernel_gf(Ad, Bd, ref.c_tilde(Ad, C, L), L)
    t, sc = _kernel_budget(Ad, Bd, C, L)
    ws = np.exp(-2j * np.pi * np.arange(L) / L)
    cond = max(float(np.linalg.cond(np.eye(case.N) - w * Ad, "fro")) for w in ws)
    # Ct = C (I - Ad^L) carries an absolute error ~ L N u ||C|| ||Ad^L||, magnified by ||(I - w Ad)^-1|| ||Bd||
    res = max(float(np.linalg.norm(np.linalg.inv(np.eye(case.N) - w * Ad))) for w in ws)
    AL = np.linalg.matrix_power(Ad, L)
    sc_g = float(np.linalg.norm(C) * (1 + np.linalg.norm(AL)) * res * np.linalg.norm(Bd))
    t2 = t + 8 * case.N * cond + 8 * np.log2(L + 1)
    out = [Agreement(Kg, K, "ifft(Ct (I - w Ad)^-1 Bd) == K", terms=t2, scale=max(sc, sc_g))]
    Ka = ref.ssm_kernel_aliased(Ad, Bd, C, L)
    ka = float(np.linalg.norm(np.linalg.inv(np.eye(case.N) - AL))) * (1 + float(np.linalg.norm(AL)))
    out.append(Agreement(ref.ssm_kernel_gf(Ad, Bd, C, L), Ka, "C in place of Ct gives the aliased kernel",
                         terms=t2 + 8 * case.N * ka, scale=max(sc, sc_g) * ka))
    return out


@law("ssm.s4_generating_function", family=FAMILY, source=SRC_S4 + " (generating function)")
def s4_generating_function(ref: Any, case: SystemCase = system_cases(kinds=("legs", "legt", "stable"), max_N=8),
                           r: float = st.floats(0.0, 1.0), theta: float = st.floats(-np.pi, np.pi)) -> Agreement:
    """Truncated generating function: C (I - z^L Ad^L)(I - z Ad)^-1 Bd == sum_{j<L} K_j z^j at any complex
    z with |z| <= 1 (a polynomial identity)."""
    Ad, Bd, C, _ = _stable_system(ref, case)
    z = r * np.exp(1j * theta)
    K = ref.ssm_kernel_powers(Ad, Bd, C, case.L)
    poly = np.sum(K * z ** np.arange(case.L))
    t, sc = _kernel_budget(Ad, Bd, C, case.L)
    cond = float(np.linalg.cond(np.eye(case.N) - z * Ad, "fro"))
    return Agreement(ref.ssm_generating_function(Ad, Bd, C, np.array([z]), case.L), np.array([poly]),
                     "G_L(z) == sum K_j z^j", terms=t + 8 * case.N * cond, scale=sc * case.L)


@law("ssm.s4_bilinear_closed_form", family=FAMILY, source=SRC_S4 + " (bilinear)")
def s4_bilinear_closed_form(ref: Any, case: SystemCase = system_cases(kinds=("legs", "legt", "stable"), max_N=8,
                                                                      lengths=(1, 2, 3, 4, 7, 8, 16))) -> list[Any]:
    """For bilinear (Ad, Bd) with the continuous B: fft(K)_l = 2 Ct [(2/dt)(1 - z) I - (1 + z) A]^-1 B at
    z = omega_l, regular at the Nyquist bin, where (z = -1 exactly) it equals (dt/2) Ct B."""
    a = case.arrays()
    A, B, C, dt, L, N = a["A"], a["B"], a["C"], case.dt, case.L, case.N
    Ad, Bd = ref.discretize(A, B, dt, "bilinear")
    Ct = ref.c_tilde(Ad, C, L)
    Khat = np.fft.fft(ref.ssm_kernel_powers(Ad, Bd, C, L))
    zs = np.exp(-2j * np.pi * np.arange(L) / L)
    if L % 2 == 0:
        zs[L // 2] = -1.0
    closed = np.array([2 * Ct @ np.linalg.solve((2 / dt) * (1 - z) * np.eye(N) - (1 + z) * A, B) for z in zs])
    t, sc = _kernel_budget(Ad, Bd, C, L)
    Ms = [(2 / dt) * (1 - z) * np.eye(N) - (1 + z) * A for z in zs]
    cond = max(float(np.linalg.cond(M, "fro")) for M in Ms)
    res = max(float(np.linalg.norm(np.linalg.inv(M))) for M in Ms)
    AL = np.linalg.matrix_power(Ad, L)
    sc_g = 2 * float(np.linalg.norm(C) * (1 + np.linalg.norm(AL)) * res * np.linalg.norm(B))
    out: list[Any] = [Agreement(closed, Khat, "fft(K) == 2 Ct[(2/dt)(1-z) - (1+z)A]^-1 B",
                                terms=t * L + 8 * N * cond, scale=max(sc, sc_g))]
    if L % 2 == 0:
        out.append(Agreement(closed[L // 2], (dt / 2) * Ct @ B, "Nyquist bin == (dt/2) Ct B", terms=8 * N,
                             scale=dt * float(np.abs(Ct) @ np.abs(B))))
    return out


@law("ssm.s4_dplr_cauchy_woodbury", family=FAMILY, source=SRC_S4 + "; S4 cauchy.py")
def s4_dplr(ref: Any, N: int = st.integers(1, 16), dt: float = st.sampled_from((1e-3, 0.01, 0.1, 0.5, 1.0)),
            L: int = st.sampled_from((1, 2, 3, 7, 8, 16, 64)), seed: int = st.integers(0, 2**32 - 1)) -> Agreement:
    """LegS in the rotated basis (A = V (Lam - Pt Pt^*) V^*): the Cauchy-sum + Woodbury kernel of
    (Lam, Pt, Pt, V^* B, Ct V) equals the dense bilinear kernel C Ad^j Bd."""
    A, B = ref.hippo_legs(N)
    C = np.random.default_rng(seed).standard_normal(N)
    Ad, Bd = ref.discretize(A, B, dt, "bilinear")
    K = ref.ssm_kernel_powers(Ad, Bd, C, L)
    V, Lam, Pt, _ = ref.hippo_legs_nplr(N)
    Ct = ref.c_tilde(Ad, C, L)
    Kd = ref.dplr_kernel(Lam, Pt[:, None], Pt[:, None], V.conj().T @ B, Ct @ V, dt, L)
    t, sc = _kernel_budget(Ad, Bd, C, L)
    zs = np.exp(-2j * np.pi * np.arange(L) / L)
    res = max(float(np.linalg.norm(np.linalg.inv((2 / dt) * (1 - z) * np.eye(N) - (1 + z) * A))) for z in zs)
    # Ct = C (I - Ad^L) cancels for slow modes: its absolute error ~ u ||C|| (1 + ||Ad^L||), magnified by the
    # resolvent 2 ||[(2/dt)(1 - z) - (1 + z) A]^-1|| ||B||
    sc_g = 2 * float(np.linalg.norm(C) * (1 + np.linalg.norm(np.linalg.matrix_power(Ad, L))) * res
                     * np.linalg.norm(B))
    return Agreement(Kd, K, "Cauchy + Woodbury kernel == C Ad^j Bd", terms=t + 64 * N * N, scale=max(sc, sc_g))


@law("ssm.woodbury_identity", family=FAMILY, source="Su 重温SSM (三) (kexue.fm/archives/10162)")
def woodbury(ref: Any, n: int = st.integers(1, 12), r: int = st.integers(1, 3),
             seed: int = st.integers(0, 2**32 - 1)) -> Agreement:
    """(M - U V^*)^-1 = M^-1 + M^-1 U (I - V^* M^-1 U)^-1 V^* M^-1 for complex M with cond(M) <= 1e3."""
    rng = np.random.default_rng(seed)
    M = np.diag(rng.uniform(1.0, 10.0, n)) + 0.1 * (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    Uu = 0.3 * (rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r)))
    Vv = 0.3 * (rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r)))
    direct = np.linalg.inv(M - Uu @ Vv.conj().T)
    cond = float(np.linalg.cond(M, "fro")) * float(np.linalg.cond(M - Uu @ Vv.conj().T, "fro"))
    return Agreement(ref.woodbury_inverse(np.linalg.inv(M), Uu, Vv), direct, "Woodbury == direct inverse",
                     terms=16 * n * cond, scale=_maxabs(direct))


@law("ssm.s4_c_tilde_doubling_roundtrip", family=FAMILY, source=SRC_S4 + " (S4 _setup_C)")
def s4_c_tilde(ref: Any, case: SystemCase = system_cases(kinds=("legs", "stable"), max_N=8)) -> list[Agreement]:
    """Doubling Ct_{2L} = Ct_L (I + Ad^L), and C -> Ct -> C round-trips (rho(Ad) < 1, cond(I - Ad^L) bounded)."""
    Ad, _, C, _ = _stable_system(ref, case)
    L, N = case.L, case.N
    AL = np.linalg.matrix_power(Ad, L)
    Ct, Ct2 = ref.c_tilde(Ad, C, L), ref.c_tilde(Ad, C, 2 * L)
    pw = max(float(np.linalg.norm(np.linalg.matrix_power(Ad, j))) for j in range(1, 2 * L + 1))
    sc = float(np.linalg.norm(C)) * (1 + pw) ** 2
    # forming I - Ad^L loses u ||Ad^L|| absolutely; the solve magnifies it by ||(I - Ad^L)^-1||
    ka = float(np.linalg.norm(np.linalg.inv(np.eye(N) - AL))) * (1 + float(np.linalg.norm(AL)))
    return [Agreement(Ct2, Ct @ (np.eye(N) + AL), "Ct_2L == Ct_L (I + Ad^L)", terms=16 * N * (L + 1), scale=sc),
            Agreement(ref.c_from_c_tilde(Ad, Ct, L), C, "C -> Ct -> C", terms=16 * N * (L + 1) * ka, scale=sc)]


@law("ssm.s4d_vandermonde", family=FAMILY, source=SRC_S4 + "; S4D (Gu et al. 2022)")
def s4d_vandermonde(ref: Any, H: int = st.integers(1, 2), N2: int = st.integers(1, 6),
                    L: int = st.sampled_from((1, 2, 7, 8, 64)), method: str = st.sampled_from(("zoh", "bilinear")),
                    seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """S4D: 2 Re sum_n C_n Bd_n Ad_n^l equals the powers kernel of the full complex diagonal system
    (eigenvalues and their conjugates, discretised by the same method); the full sum is real."""
    rng = np.random.default_rng(seed)
    lam = -rng.uniform(0.05, 1.0, (H, N2)) + 1j * rng.uniform(-8, 8, (H, N2))
    B = rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))
    C = rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))
    log_dt = rng.uniform(np.log(1e-3), np.log(0.5), H)
    K = ref.s4d_kernel(log_dt, lam, B, C, L, method)
    out = []
    for h in range(H):
        lf = np.concatenate([lam[h], lam[h].conj()])
        Ad, Bd = ref.discretize(np.diag(lf), np.concatenate([B[h], B[h].conj()]), float(np.exp(log_dt[h])), method)
        Kf = ref.ssm_kernel_powers(Ad, Bd, np.concatenate([C[h], C[h].conj()]), L)
        sc = float(np.sum(np.abs(np.concatenate([C[h], C[h]])) * np.abs(Bd)))
        t = 16 * (L + 2 * N2 + 4) * (1 + float(np.exp(log_dt[h]) * np.abs(lam[h]).max()) * L)
        out += [Agreement(K[h], Kf.real, f"Vandermonde == powers (channel {h})", terms=t, scale=sc),
                Agreement(Kf.imag, np.zeros(L), "conjugate-pair sum is real", terms=t, scale=sc)]
    return out


@law("ssm.s4_kernel_mpmath_certificate", family=FAMILY, kind="certificate", max_examples=10,
     source=SRC_S4 + "; mpmath 30 digits (object arrays)")
def s4_certificate(ref: Any, case: SystemCase = system_cases(kinds=("legs", "stable"), max_N=4,
                                                             lengths=(1, 3, 8)),
                   seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """The float64 powers kernel and S4D Vandermonde kernel agree with the same code in mpmath (30 digits)
    within the rounding budget of L matrix-vector products (powers) and of exp(l dt lam) with an argument
    of size l |dt lam| (Vandermonde)."""
    Ad, Bd, C, _ = _stable_system(ref, case)
    K = ref.ssm_kernel_powers(Ad, Bd, C, case.L)
    Km = ref.ssm_kernel_powers(Ad, Bd, C, case.L, backend=MP(30))
    t, sc = _kernel_budget(Ad, Bd, C, case.L)
    rng = np.random.default_rng(seed)
    lam = -rng.uniform(0.05, 1.0, (1, 2)) + 1j * rng.uniform(-8, 8, (1, 2))
    Cs = rng.standard_normal((1, 2)) + 1j * rng.standard_normal((1, 2))
    ld = np.log(np.array([0.1]))
    Kv = ref.s4d_kernel(ld, lam, np.ones((1, 2)), Cs, case.L)
    Kvm = ref.s4d_kernel(ld, lam, np.ones((1, 2)), Cs, case.L, backend=MP(30))
    sv = float(np.sum(np.abs(Cs) * np.abs((np.exp(0.1 * lam) - 1) / lam)))
    return [Agreement(K, Km, "powers kernel float64 == mpmath", terms=t, scale=sc, tolerance="law.certificate"),
            Agreement(Kv, Kvm, "S4D kernel float64 == mpmath", terms=16 * (4 + case.L * 0.1 * 8), scale=sv,
                      tolerance="law.certificate")]
