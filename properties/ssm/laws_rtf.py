"""Laws of the rational-transfer-function (RTF) view (Su kexue.fm/archives/10180; Parnichkun et al. 2024).

Budgets: characteristic-polynomial coefficients from Faddeev-LeVerrier carry an absolute error ~ d u
binom(d, k) ||Ad||^k; we bound it by ``coef = d 2^d (1 + ||Ad||)^d u`` (we measured 1.7e-11 root error at
d = 8, hence d <= 8 here).  A kernel from coefficients then errs by coef x (1 + sum |b|) x max_l 1/|fft(a_pad)_l|
(the conditioning of the division by the denominator on the unit circle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.ssm.strategies import SystemCase, system_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
FAMILY = "ssm"
SRC = "Su 重温SSM (四) (kexue.fm/archives/10180); Parnichkun et al. 2024 (RTF)"
_SYS = system_cases(kinds=("legs", "stable"), max_N=8, lengths=(9, 16, 33, 64))


def _setup(ref: Any, case: SystemCase, method: str = "bilinear") -> tuple[np.ndarray, ...]:
    x = case.arrays()
    Ad, Bd = ref.discretize(x["A"], x["B"], case.dt, method)
    return Ad, Bd, x["C"], x["u"]


def _coef_err(Ad: np.ndarray) -> float:
    d = Ad.shape[0]
    return 8 * d * 2.0**d * (1 + float(np.linalg.norm(Ad))) ** d * U


def _denominator(a: np.ndarray, L: int) -> float:
    ap = np.zeros(L)
    ap[0], ap[1:a.size + 1] = 1.0, a
    with np.errstate(divide="ignore"):  # a zero of a(z) on the roots of unity: inf, rejected by the law
        return float(1.0 / np.abs(np.fft.fft(ap)).min())


@law("ssm.rtf_rational_identity", family=FAMILY, source=SRC + " (rank-1 determinant lemma)")
def rtf_rational(ref: Any, case: SystemCase = _SYS, r: float = st.floats(0.0, 1.0),
                 theta: float = st.floats(-np.pi, np.pi)) -> Agreement:
    """Ct (I - z Ad)^-1 Bd == (b_1 + ... + b_d z^{d-1}) / (1 + a_1 z + ... + a_d z^d) at complex z, |z| <= 1."""
    Ad, Bd, C, _ = _setup(ref, case)
    Ct = ref.c_tilde(Ad, C, case.L)
    a, b = ref.rtf_coefficients(Ad, Bd, Ct)
    z = r * np.exp(1j * theta)
    num = np.polyval(b[::-1], z)
    den = np.polyval(np.concatenate([[1.0], a])[::-1], z)
    G = ref.ssm_generating_function(Ad, Bd, Ct, np.array([z]))
    err = _coef_err(Ad) * (1 + float(np.abs(Ct) @ np.abs(Bd))) * (1 + np.abs(num / den)) / abs(den)
    cond = float(np.linalg.cond(np.eye(case.N) - z * Ad, "fro"))
    return Agreement(G, np.array([num / den]), "G(z) == b(z) / a(z)",
                     atol=err + 16 * case.N * cond * U * float(np.abs(G).max() + np.linalg.norm(Ct) * np.linalg.norm(
                         np.linalg.solve(np.eye(case.N) - z * Ad, Bd))))


@law("ssm.rtf_kernel_equals_s4", family=FAMILY, source=SRC + " (K = ifft(fft(b)/fft(a)))")
def rtf_kernel_s4(ref: Any, case: SystemCase = _SYS, method: str = st.sampled_from(("bilinear", "zoh"))) -> Agreement:
    """The state-free kernel ifft(fft(b_pad)/fft(a_pad)) with (a, b) from (Ad, Bd, Ct = C (I - Ad^L)) equals the
    S4 kernel C Ad^j Bd (d <= 8, L >= d + 1)."""
    Ad, Bd, C, _ = _setup(ref, case, method)
    L = case.L
    a, b = ref.rtf_coefficients(Ad, Bd, ref.c_tilde(Ad, C, L))
    # the identity needs det(I - Ad z) != 0 at the L-th roots of unity; with Ad ~ I (LegS at dt = 1e-3) the float64
    # coefficients put a zero there (1/min|a(z)| = inf): outside the conditioning limits, so not drawn
    assume(_denominator(a, L) < 1e8)
    K = ref.ssm_kernel_powers(Ad, Bd, C, L)
    err = _coef_err(Ad) * (1 + float(np.abs(b).sum()) + float(np.abs(C).sum())) * _denominator(a, L) ** 2
    return Agreement(ref.rtf_kernel(a, b, L), K, "RTF kernel == S4 kernel",
                     atol=err * (1 + np.log2(L)) * (1 + float(np.abs(K).max())) * 4)


@law("ssm.rtf_companion_realisation", family=FAMILY, source=SRC + " (companion form)")
def rtf_companion(ref: Any, d: int = st.integers(1, 8), L: int = st.sampled_from((9, 16, 33)),
                  seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """For coefficients with sum |a| = 0.9 (stable): char_poly(companion) == a; the companion kernel with the
    inference map C = b (I - Ac^L)^-1 equals the RTF kernel; the O(d) recurrence equals the causal convolution."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(d)
    a *= 0.9 / np.abs(a).sum()
    b = rng.standard_normal(d)
    Ac, Bc, _bb = ref.companion(a, b)
    K = ref.rtf_kernel(a, b, L)
    C = ref.rtf_inference_c(a, b, L)
    u = rng.standard_normal(L)
    y = ref.rtf_recurrence(a, C, u)
    sc = float(np.abs(b).sum()) * 10 * _denominator(a, L) ** 2
    return [Agreement(ref.char_poly(Ac), a, "char_poly(companion(a)) == a", terms=4 * d * d, scale=1.0),
            Agreement(ref.ssm_kernel_powers(Ac, Bc, C, L), K, "companion kernel == RTF kernel", terms=16 * d * L,
                      scale=sc),
            Agreement(y, ref.causal_convolution(u, K), "O(d) recurrence == convolution", terms=16 * d * L,
                      scale=sc * float(np.abs(u).sum()))]


@law("ssm.rtf_zero_init_is_fir", family=FAMILY, source=SRC + " (zero init a = 0)")
def rtf_fir(ref: Any, d: int = st.integers(1, 8), L: int = st.integers(9, 40),
            seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """a = 0: the companion matrix is nilpotent, the kernel is the FIR filter (b_1, ..., b_d, 0, ...) and the
    inference map equals b."""
    b = np.random.default_rng(seed).standard_normal(d)
    want = np.zeros(L)
    want[:d] = b
    return [Agreement(ref.rtf_kernel(np.zeros(d), b, L), want, "kernel == (b, 0, ...)", terms=8 * np.log2(L),
                      scale=float(np.abs(b).sum())),
            Agreement(ref.rtf_inference_c(np.zeros(d), b, L), b, "C == b", atol=0.0, tolerance="law.defined")]


@law("ssm.rtf_similarity_invariance", family=FAMILY, source=SRC + " (RTF Lemma 3.1)")
def rtf_similarity(ref: Any, case: SystemCase = _SYS, seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """(a, b) do not depend on the realisation: x -> T x (Ad -> T Ad T^-1, Bd -> T Bd, Ct -> Ct T^-1) leaves them
    unchanged (T well conditioned)."""
    Ad, Bd, C, _ = _setup(ref, case)
    Ct = ref.c_tilde(Ad, C, case.L)
    T = np.eye(case.N) + 0.2 * np.random.default_rng(seed).standard_normal((case.N, case.N)) / np.sqrt(case.N)
    Ti = np.linalg.inv(T)
    a, b = ref.rtf_coefficients(Ad, Bd, Ct)
    a2, b2 = ref.rtf_coefficients(T @ Ad @ Ti, T @ Bd, Ct @ Ti)
    ct = float(np.linalg.cond(T, "fro"))
    err = _coef_err(Ad) * ct**2 * (1 + float(np.abs(Ct).sum() * np.abs(Bd).sum()))
    return [Agreement(a2, a, "a invariant", atol=err), Agreement(b2, b, "b invariant", atol=err)]


@law("ssm.rtf_montel_stability", family=FAMILY, source=SRC + " (Montel bound; ruke1ire/RTF l1_montel)")
def rtf_montel(ref: Any, d: int = st.integers(1, 8), seed: int = st.integers(0, 2**32 - 1)) -> Bound:
    """sum |a_i| < 1 implies every pole (eigenvalue of the companion matrix) has modulus < 1: a random a scaled
    to sum |a| = 0.99 gives max |root| < 1."""
    a = np.random.default_rng(seed).standard_normal(d)
    a *= 0.99 / np.abs(a).sum()
    Ac, _, _ = ref.companion(a, np.ones(d))
    return Bound(np.abs(np.linalg.eigvals(Ac)).max(), 1.0 - 1e-12, "max |root| < 1")


@law("ssm.rtf_mpmath_certificate", family=FAMILY, kind="certificate", max_examples=10,
     source=SRC + "; mpmath 40 digits (Faddeev-LeVerrier on object arrays)")
def rtf_certificate(ref: Any, case: SystemCase = system_cases(kinds=("legs", "stable"), max_N=5,
                                                              lengths=(9,))) -> list[Agreement]:
    """Float64 (a, b) agree with the same Faddeev-LeVerrier recursion in mpmath within d 2^d (1 + ||Ad||)^d u."""
    Ad, Bd, C, _ = _setup(ref, case)
    Ct = ref.c_tilde(Ad, C, case.L)
    a, b = ref.rtf_coefficients(Ad, Bd, Ct)
    am, bm = ref.rtf_coefficients(Ad, Bd, Ct, backend=MP(40))
    err = _coef_err(Ad) * (1 + float(np.abs(Ct) @ np.abs(Bd)))
    return [Agreement(a, am, "a float64 == mpmath", atol=err, tolerance="law.certificate"),
            Agreement(b, bm, "b float64 == mpmath", atol=err, tolerance="law.certificate")]
