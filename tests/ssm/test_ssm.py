"""Pinned values (computed here in float64/mpmath), SciPy and mamba cross-checks, and bad-input errors of
the state-space oracles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import scipy.special
import torch

from veriformer import reference as ref
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.reference import MP, InputError

S3, S5, S7 = np.sqrt(3.0), np.sqrt(5.0), np.sqrt(7.0)


def _bilinear_legs4() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    A, B = ref.hippo_legs(4)
    Ad, Bd = ref.discretize(A, B, 0.1, "bilinear")
    return A, B, Ad, Bd


# -- HiPPO -----------------------------------------------------------------------------------------------------


def test_legs_and_legt_pinned() -> None:
    A, B = ref.hippo_legs(4)
    np.testing.assert_allclose(A, [[-1, 0, 0, 0], [-1.7320508076, -2, 0, 0],
                                   [-2.2360679775, -3.8729833462, -3, 0],
                                   [-2.6457513111, -4.5825756950, -5.9160797831, -4]], atol=1e-10)
    np.testing.assert_allclose(B, [1, S3, S5, S7], rtol=1e-15)
    At, Bt = ref.hippo_legt(4, 2.0)  # S4's transition('legt')
    np.testing.assert_allclose(At[0], [-0.5, 0.8660254038, -1.1180339887, 1.3228756555], atol=1e-10)
    np.testing.assert_allclose(At[3], [-1.3228756555, -2.2912878475, -2.9580398915, -3.5], atol=1e-10)
    np.testing.assert_allclose(Bt, 0.5 * np.array([1, S3, S5, S7]), rtol=1e-15)
    # Su's square-root-free form: row 3 = [-7, -7, -7, -4]; S4's internal M: row 3 = [-1, -3, -5, -4]
    np.testing.assert_allclose(ref.hippo_legs(4, "sqrt_free")[0][3], [-7, -7, -7, -4], rtol=1e-15)
    np.testing.assert_allclose(ref.hippo_legs(4, "s4_internal")[0][3], [-1, -3, -5, -4], rtol=1e-15)
    # S4's 'lmu' = D (LMU form, w = 1) D with D = diag((-1)^n)
    Al, _ = ref.hippo_lmu(4, 1.0)
    D = np.diag((-1.0) ** np.arange(4))
    assert np.all(np.diag(D @ Al @ D) == -(2 * np.arange(4) + 1.0))


def _s4_transition(measure: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """state-spaces/s4 ``src/models/hippo/hippo.py::transition`` (legt, lmu, legs), transcribed."""
    Q = np.arange(N, dtype=np.float64)
    j, i = np.meshgrid(Q, Q)
    if measure == "legt":
        R = (2 * Q + 1) ** 0.5
        A = -(R[:, None] * np.where(i < j, (-1.0) ** (i - j), 1) * R[None, :])
        return 0.5 * A, 0.5 * R
    if measure == "lmu":
        R = (2 * Q + 1)[:, None]
        return np.where(i < j, -1, (-1.0) ** (i - j + 1)) * R, (-1.0) ** Q * R[:, 0]
    col, row = np.meshgrid(Q, Q)
    M = -(np.where(row >= col, 2 * Q + 1, 0) - np.diag(Q))
    T = np.sqrt(np.diag(2 * Q + 1))
    return T @ M @ np.linalg.inv(T), np.diag(T).copy()


@pytest.mark.parametrize("N", [1, 2, 5, 16])
def test_hippo_matches_s4_transition(N: int) -> None:
    A, B = _s4_transition("legs", N)
    np.testing.assert_allclose(ref.hippo_legs(N)[0], A, atol=1e-13)
    np.testing.assert_allclose(ref.hippo_legs(N)[1], B, atol=1e-15)
    np.testing.assert_allclose(ref.hippo_legs(N, "s4_internal")[0], np.linalg.inv(np.diag(B)) @ A @ np.diag(B),
                               atol=1e-12)
    A, B = _s4_transition("legt", N)
    np.testing.assert_allclose(ref.hippo_legt(N, 2.0)[0], A, atol=1e-15)
    np.testing.assert_allclose(ref.hippo_legt(N, 2.0)[1], B, atol=1e-15)
    A, B = _s4_transition("lmu", N)
    D = np.diag((-1.0) ** np.arange(N))
    Al, Bl = ref.hippo_lmu(N, 1.0)
    np.testing.assert_allclose(D @ Al @ D, A, atol=0)
    np.testing.assert_allclose(D @ Bl, B, atol=0)


def test_legs_nplr_pinned_and_growth() -> None:
    _, Lam, _, _ = ref.hippo_legs_nplr(4)
    np.testing.assert_allclose(np.sort(Lam.imag), [-4.603293007067, -0.556501115084, 0.556501115084,
                                                   4.603293007067], atol=1e-11)
    np.testing.assert_allclose(Lam.real, -0.5, atol=1e-14)
    growth = [float(np.abs(ref.hippo_legs_nplr(n)[1].imag).max()) for n in (8, 16, 32, 64)]
    np.testing.assert_allclose(growth, [19.86, 80.97, 325.4, 1303.3], rtol=2e-3)


def test_legs_resolvent_pinned_and_mpmath() -> None:
    np.testing.assert_allclose(ref.legendre_moments(1.0, 5), [0.5, 1 / (2 * S3), 0, 0, 0], atol=1e-17)
    np.testing.assert_allclose(ref.legendre_moments(2.0, 5), [1 / 3, 1 / (2 * S3), 1 / (6 * S5), 0, 0], atol=1e-17)
    for p in (0.0, 1.0, 2.0, 3.0, 7.0, 2.5):
        exact = ref.legendre_moments(p, 10, backend=MP(50))
        np.testing.assert_allclose(ref.hippo_legs_resolvent(p, 10), exact, atol=1e-14)
        A, B = ref.hippo_legs(10)
        np.testing.assert_allclose(np.linalg.solve(p * np.eye(10) - A, B), exact, atol=1e-13)


def test_legs_moment_closed_form_against_quadrature() -> None:
    """The closed form of int_0^1 r^p phi_n(r) dr against Gauss-Legendre quadrature (smooth integrand)."""
    x, w = np.polynomial.legendre.leggauss(60)
    r, w = (x + 1) / 2, w / 2
    for p in (0.0, 2.5, 7.0):
        phi = np.array([np.sqrt(2 * n + 1) * scipy.special.eval_legendre(n, 2 * r - 1) for n in range(8)])
        np.testing.assert_allclose(phi @ (w * r**p), ref.legendre_moments(p, 8), atol=1e-12)


def test_legs_matvec_and_solve_at_n50() -> None:
    v = np.random.default_rng(0).standard_normal(50)
    A, _ = ref.hippo_legs(50)
    assert np.abs(ref.hippo_legs_matvec(v) - A @ v).max() < 1e-12
    z = ref.hippo_legs_solve(0.3, v)
    np.testing.assert_allclose(z, np.linalg.solve(np.eye(50) - 0.3 * A, v), atol=1e-10)


# -- discretisation ---------------------------------------------------------------------------------------------


def test_bilinear_legs_pinned() -> None:
    _, _, Ad, Bd = _bilinear_legs4()
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(Ad).real), [2 / 3, 17 / 23, 9 / 11, 19 / 21], rtol=1e-14)
    np.testing.assert_allclose(Ad, [[0.904761904762, 0, 0, 0], [-0.149961108880, 0.818181818182, 0, 0],
                                    [-0.159929574901, -0.306164691400, 0.739130434783, 0],
                                    [-0.141923418719, -0.271694211163, -0.428701433558, 0.666666666667]], atol=1e-12)
    np.testing.assert_allclose(Bd, [2 / 21, 0.149961108880, 0.159929574901, 0.141923418719], atol=1e-12)
    np.testing.assert_allclose(Bd, np.eye(4)[0] - Ad[:, 0], atol=1e-16)


@pytest.mark.parametrize("method,scipy_method,alpha", [
    ("forward_euler", "euler", None), ("forward_euler", "forward_diff", None),
    ("backward_euler", "backward_diff", None), ("bilinear", "bilinear", None), ("bilinear", "tustin", None),
    ("gbt", "gbt", 0.3), ("zoh", "zoh", None)])
def test_discretize_matches_scipy_and_records_its_output_map(method: str, scipy_method: str,
                                                             alpha: float | None) -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 5)) - 2 * np.eye(5)
    B, C = rng.standard_normal((5, 1)), rng.standard_normal((1, 5))
    Ad, Bd = ref.discretize(A, B, 0.2, method, alpha=alpha)
    Ad_s, Bd_s, Cd_s, Dd_s, _ = scipy.signal.cont2discrete((A, B, C, np.zeros((1, 1))), 0.2, method=scipy_method,
                                                           alpha=alpha)
    np.testing.assert_allclose(Ad, Ad_s, atol=2e-15)
    np.testing.assert_allclose(Bd, Bd_s, atol=2e-15)
    al = {"forward_euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5, "gbt": alpha}.get(method)
    if method == "zoh" or al == 0.0:
        np.testing.assert_array_equal(Cd_s, C)
    else:  # SciPy maps the output too (S4 keeps C): Cd = C (I - alpha dt A)^-1, Dd = alpha C Bd
        np.testing.assert_allclose(Cd_s, C @ np.linalg.inv(np.eye(5) - al * 0.2 * A), atol=1e-14)
        np.testing.assert_allclose(Dd_s, al * C @ Bd_s, atol=1e-14)


def test_zoh_singular_and_nilpotent_A() -> None:
    B = np.array([1.0, -2.0])
    Ad, Bd = ref.discretize(np.zeros((2, 2)), B, 0.7, "zoh")
    np.testing.assert_allclose(Ad, np.eye(2), atol=0)
    np.testing.assert_allclose(Bd, 0.7 * B, rtol=1e-15)
    N = np.array([[0.0, 1.0], [0.0, 0.0]])  # e^{tN} = I + tN, int_0^dt e^{sN} ds = dt I + dt^2/2 N
    Ad, Bd = ref.discretize(N, B, 0.5, "zoh")
    np.testing.assert_allclose(Ad, [[1, 0.5], [0, 1]], atol=1e-16)
    np.testing.assert_allclose(Bd, 0.5 * B + 0.125 * N @ B, atol=1e-16)
    np.testing.assert_allclose(ref.expm(3.0 * N), scipy.linalg.expm(3.0 * N), atol=1e-15)


def test_forward_euler_unstable_and_local_error_figures() -> None:
    A, B = ref.hippo_legs(4)
    Ad, _ = ref.discretize(A, B, 0.6, "forward_euler")
    assert abs(np.abs(np.linalg.eigvals(Ad)).max() - 1.4) < 1e-12  # |1 - 4 * 0.6|
    errs = [np.abs(ref.discretize(A, B, h, "bilinear")[0] - scipy.linalg.expm(h * A)).max() for h in (0.1, 0.05, 0.025)]
    np.testing.assert_allclose(errs, [1.66e-2, 2.67e-3, 3.8e-4], rtol=1e-2)  # bilinear local error O(dt^3)
    assert errs[0] / errs[1] > 6.0 and errs[1] / errs[2] > 6.9  # tending to 8 = 2^3 (pre-asymptotic at h = 0.1)


# -- S4 kernels --------------------------------------------------------------------------------------------------


K_PINNED = [0.147976683293, 0.122582550398, 0.106431052890, 0.094716089603, 0.084983835929, 0.076096127972,
            0.067615802102, 0.059451466521]


def test_s4_kernel_pinned_all_routes() -> None:
    _A, B, Ad, Bd = _bilinear_legs4()
    C = np.array([1, 0.5, -0.25, 0.125])
    K = ref.ssm_kernel_powers(Ad, Bd, C, 8)
    np.testing.assert_allclose(K, K_PINNED, atol=1e-12)
    Ct = ref.c_tilde(Ad, C, 8)
    np.testing.assert_allclose(ref.ssm_kernel_gf(Ad, Bd, Ct, 8), K, atol=1e-15)
    V, Lam, Pt, _ = ref.hippo_legs_nplr(4)
    Kd = ref.dplr_kernel(Lam, Pt[:, None], Pt[:, None], V.conj().T @ B, Ct @ V, 0.1, 8)
    np.testing.assert_allclose(Kd.real, K, atol=1e-15)
    assert np.abs(Kd.imag).max() < 1e-15
    # Nyquist bin: Khat(-1) = (dt/2) Ct B
    assert abs(np.fft.fft(K)[4] - 0.054161139719135) < 1e-14
    assert abs(0.05 * Ct @ B - 0.054161139719135) < 1e-14
    np.testing.assert_allclose(ref.ssm_kernel_powers(Ad, Bd, C, 8, backend=MP(40)), K, atol=1e-16)


def test_s4_kernel_odd_and_short_lengths() -> None:
    _A, B, Ad, Bd = _bilinear_legs4()
    C = np.array([1, 0.5, -0.25, 0.125])
    V, Lam, Pt, _ = ref.hippo_legs_nplr(4)
    for L in (1, 2, 3, 7):  # L < N and odd L
        K = ref.ssm_kernel_powers(Ad, Bd, C, L)
        Ct = ref.c_tilde(Ad, C, L)
        np.testing.assert_allclose(ref.ssm_kernel_gf(Ad, Bd, Ct, L), K, atol=1e-15)
        Kd = ref.dplr_kernel(Lam, Pt[:, None], Pt[:, None], V.conj().T @ B, Ct @ V, 0.1, L)
        np.testing.assert_allclose(Kd.real, K, atol=1e-15)


def test_circular_convolution_is_not_linear_convolution() -> None:
    rng = np.random.default_rng(0)
    u, K = rng.standard_normal(16), np.array(K_PINNED + K_PINNED)
    linear = ref.causal_convolution(u, K)
    np.testing.assert_allclose(ref.fft_convolution(u, K), linear, atol=1e-15)
    np.testing.assert_allclose(linear, np.convolve(K, u)[:16], atol=1e-15)
    circular = np.fft.irfft(np.fft.rfft(K) * np.fft.rfft(u), 16)
    wrap = np.array([sum(K[j] * u[k - j + 16] for j in range(k + 1, 16)) for k in range(16)])
    np.testing.assert_allclose(circular - linear, wrap, atol=1e-14)
    assert np.abs(circular - linear).max() > 0.1


def test_legs_step_response_sums_to_c0() -> None:
    """LTI LegS: sum_j K_j -> C e_0 (Ad e0 + Bd = e0 makes the step-response fixed point e0)."""
    _, _, Ad, Bd = _bilinear_legs4()
    C = np.array([1, 0.5, -0.25, 0.125])
    assert abs(ref.ssm_kernel_powers(Ad, Bd, C, 4000).sum() - 1.0) < 1e-13


def test_s4d_pinned_and_against_s4_code_formula() -> None:
    lam = np.array([[-0.5 + 0j, -0.5 + 1j * np.pi]])
    C = np.array([[0.7 - 0.2j, -0.3 + 0.5j]])
    K = ref.s4d_kernel(np.log([0.1]), lam, np.ones((1, 2)), C, 8)
    np.testing.assert_allclose(K[0], [0.063908611742, 0.038623579110, 0.024151662896, 0.020255916950,
                                      0.025740777974, 0.038656053091, 0.056553624588, 0.076767338680], atol=1e-12)
    Kt = naive_ssm.s4d_kernel(torch.tensor(np.log([0.1])), torch.tensor(lam), torch.ones(1, 2, dtype=torch.complex128),
                              torch.tensor(C), 8)
    np.testing.assert_allclose(Kt.numpy(), K, atol=1e-16)


# -- RTF ---------------------------------------------------------------------------------------------------------


def test_rtf_pinned_and_repo_first_tap() -> None:
    _, _, Ad, Bd = _bilinear_legs4()
    C = np.array([1, 0.5, -0.25, 0.125])
    a, b = ref.rtf_coefficients(Ad, Bd, ref.c_tilde(Ad, C, 8))
    np.testing.assert_allclose(a, [-3.128740824393, 3.655122655123, -1.889641759207, 0.364765669113], atol=1e-11)
    np.testing.assert_allclose(b, [0.096317267671, -0.223108125714, 0.176096900146, -0.048161899647], atol=1e-11)
    np.testing.assert_allclose(a, np.poly(Ad)[1:], atol=1e-14)
    np.testing.assert_allclose(ref.rtf_kernel(a, b, 8), K_PINNED, atol=1e-12)
    # repo convention: numerator padded with a leading 0, h0 added to the spectrum -> the first tap carries
    # the aliasing term C A^{L-1} B (RTF paper / ruke1ire/RTF delay convention), for the companion system with
    # C = b (I - A^L)^-1
    h0, L = 0.3, 8
    bp = np.zeros(L)
    bp[1:5] = b
    ap = np.zeros(L)
    ap[0], ap[1:5] = 1.0, a
    k_repo = np.fft.irfft(np.fft.rfft(bp) / np.fft.rfft(ap) + h0, L)
    Ac, e1, _ = ref.companion(a, b)
    Ci = ref.rtf_inference_c(a, b, L)
    taps = ref.ssm_kernel_powers(Ac, e1, Ci, L)
    np.testing.assert_allclose(k_repo[1:], taps[:-1], atol=1e-13)
    np.testing.assert_allclose(k_repo[0], h0 + taps[-1], atol=1e-13)


# -- selective scan and SSD ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bc", ["constant", "variable", "grouped", "complex"])
def test_selective_scan_matches_mamba_ref_float64(bc: str) -> None:
    rng = np.random.default_rng(7)
    b, d, n, L = 2, 4, 3, 11
    u, delta = rng.standard_normal((b, d, L)), rng.uniform(-1, 1, (b, d, L))
    A = -np.exp(rng.standard_normal((d, n)))
    if bc == "constant":
        B, C = rng.standard_normal((d, n)), rng.standard_normal((d, n))
    elif bc == "variable":
        B, C = rng.standard_normal((b, n, L)), rng.standard_normal((b, n, L))
    elif bc == "grouped":
        B, C = rng.standard_normal((b, 2, n, L)), rng.standard_normal((b, 2, n, L))
    else:
        A = A + 1j * rng.standard_normal((d, n))
        B, C = rng.standard_normal((b, n, 2 * L)), rng.standard_normal((b, n, 2 * L))
    D, z, db = rng.standard_normal(d), rng.standard_normal((b, d, L)), rng.uniform(-0.5, 0.5, d)
    o, s = ref.selective_scan(u, delta, A, B, C, D, z, db, True, True)
    t = {k: torch.tensor(v) for k, v in dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=db).items()}
    ot, st = naive_ssm.selective_scan_ref(t["u"], t["delta"], t["A"], t["B"], t["C"], t["D"], t["z"],
                                          t["delta_bias"], True, True)
    np.testing.assert_allclose(ot.numpy(), o, atol=1e-13)
    np.testing.assert_allclose(st.numpy(), s, atol=1e-13)
    o2 = ref.selective_scan_assoc(u, delta, A, B, C, D, z, db, True)
    np.testing.assert_allclose(o2, o, atol=1e-13)


def test_selective_scan_euler_B_differs_from_zoh_at_second_order() -> None:
    """Mamba's Bd = delta B vs exact ZOH (delta A)^-1 (e^{delta A} - I) delta B: the gap shrinks like delta^2."""
    A, B = np.array([[-1.3]]), np.array([[0.7]])
    gaps = []
    for dt in (0.1, 0.05, 0.025):
        _, bz = ref.discretize(A, B[0], dt, "zoh")
        gaps.append(abs(bz[0] - dt * B[0, 0]))
    assert 3.8 < gaps[0] / gaps[1] < 4.2 and 3.8 < gaps[1] / gaps[2] < 4.2


def test_ssd_forms_and_mamba_minimal_float64() -> None:
    rng = np.random.default_rng(11)
    b, l, h, p, n = 1, 32, 2, 3, 4
    X, A = rng.standard_normal((b, l, h, p)), -rng.uniform(0, 0.3, (b, l, h))
    B, C, h0 = rng.standard_normal((b, l, h, n)), rng.standard_normal((b, l, h, n)), rng.standard_normal((b, h, p, n))
    Y, H = ref.ssd_recurrence(X, A, B, C, h0)
    for Q in (1, 4, 8, 16, 32):
        Yc, Hc = ref.ssd_chunked(X, A, B, C, Q, h0)
        np.testing.assert_allclose(Yc, Y, atol=1e-13)
        np.testing.assert_allclose(Hc, H, atol=1e-13)
        Yt, Ht = naive_ssm.ssd_minimal(*(torch.tensor(v) for v in (X, A, B, C)), Q, torch.tensor(h0))
        np.testing.assert_allclose(Yt.numpy(), Y, atol=1e-13)
        np.testing.assert_allclose(Ht.numpy(), H, atol=1e-13)
    M = ref.ssd_mask(A)[0, 0] * (C[0, :, 0] @ B[0, :, 0].T)
    assert np.linalg.matrix_rank(M[16:, :16], tol=1e-10) == n
    assert np.linalg.matrix_rank(ref.ssd_mask(A)[0, 0][16:, :16], tol=1e-12) == 1


def test_ssd_steep_and_zero_decay() -> None:
    rng = np.random.default_rng(12)
    X, B, C = rng.standard_normal((1, 16, 1, 2)), rng.standard_normal((1, 16, 1, 3)), rng.standard_normal((1, 16, 1, 3))
    steep = -rng.uniform(500, 5000, (1, 16, 1))
    Yc, _ = ref.ssd_chunked(X, steep, B, C, 4)
    assert np.all(np.isfinite(Yc))
    np.testing.assert_allclose(Yc[0, :, 0], X[0, :, 0] * np.sum(B[0, :, 0] * C[0, :, 0], -1)[:, None], atol=1e-13)
    zero = np.zeros((1, 16, 1))  # no decay: y_t = sum_{s<=t} (C_t . B_s) x_s
    want = np.einsum("tn,sn,sp->tsp", C[0, :, 0], B[0, :, 0], X[0, :, 0])
    want = np.array([want[t, : t + 1].sum(0) for t in range(16)])
    np.testing.assert_allclose(ref.ssd_chunked(X, zero, B, C, 8)[0][0, :, 0], want, atol=1e-13)


def test_segsum_stable_vs_unstable() -> None:
    """Relative error on the segments below the diagonal: the stable (masked cumsum) segsum vs cs_t - cs_s."""
    a = -np.random.default_rng(5).uniform(0, 1, 64) * 1e3
    exact = ref.segsum(a, backend=MP(40))
    t, s = np.tril_indices(64, -1)
    cs = np.cumsum(a)
    rel_stable = np.abs(ref.segsum(a)[t, s] - exact[t, s]) / np.abs(exact[t, s])
    rel_unstable = np.abs((cs[t] - cs[s]) - exact[t, s]) / np.abs(exact[t, s])
    assert rel_stable.max() < 8 * 2.0**-53 * 64
    assert rel_unstable.max() > 10 * rel_stable.max()


# -- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,needle", [
    (lambda: ref.discretize(np.eye(2), np.ones(2), 0.1, "tustin"), "'method'"),
    (lambda: ref.discretize(np.eye(2), np.ones(2), 0.1, "bilinear", alpha=0.5), "'alpha'"),
    (lambda: ref.discretize(np.eye(2), np.ones(2), 0.1, "gbt"), "'alpha'"),
    (lambda: ref.discretize(np.eye(2), np.ones(3), 0.1), "'B'"),
    (lambda: ref.discretize(np.eye(2), np.ones(2), -0.1), "'dt'"),
    (lambda: ref.hippo_legs(0), "'N'"),
    (lambda: ref.legendre_moments(-1.0, 3), "'p'"),
    (lambda: ref.ssm_kernel_powers(np.eye(2), np.ones(2), np.ones(3), 4), "'C'"),
    (lambda: ref.causal_convolution(np.ones((2, 3, 5)), np.ones((2, 5))), "'K'"),
    (lambda: ref.s4d_kernel(np.zeros(2), np.ones((1, 2)) * -1j, np.ones((1, 2)), np.ones((1, 2)), 4), "'A'"),
    (lambda: ref.rtf_kernel(np.ones(4), np.ones(4), 4), "'L'"),
    (lambda: ref.selective_scan(np.ones((1, 2, 3)), np.ones((1, 2, 3)), -np.ones((2, 4)), np.ones((1, 4, 2)),
                                np.ones((1, 4, 3))), "'B'"),
    (lambda: ref.ssd_chunked(np.ones((1, 6, 1, 2)), np.zeros((1, 6, 1)), np.ones((1, 6, 1, 2)),
                             np.ones((1, 6, 1, 2)), 4), "'chunk_size'"),
    (lambda: ref.ssd_recurrence(np.ones((1, 6, 1, 2)), np.ones((1, 6, 1)), np.ones((1, 6, 1, 2)),
                                np.ones((1, 6, 1, 2))), "'A'"),
])
def test_bad_input_names_the_argument(call: object, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        call()  # type: ignore[operator]
