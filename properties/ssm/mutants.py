"""Planted bugs in discretisation, HiPPO and S4 oracles (the laws in ``ssm_laws`` must catch each one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "ssm"

# -- discretisation ---------------------------------------------------------------------------------------------


@mutant("ssm.zoh_B_is_dt_B", family=FAMILY, replaces="discretize",
        caught_by=["ssm.zoh_block_expm"])
def zoh_b_dt(A: Any, B: Any, dt: float, method: str = "bilinear", alpha: float | None = None, **kw: Any) -> Any:
    """ZOH with the Euler input map Bd = dt B (Mamba's simplification used where exact ZOH is claimed)."""
    Ad, Bd = ref.discretize(A, B, dt, method, alpha=alpha, **kw)
    if method == "zoh":
        Bd = dt * np.asarray(B, dtype=Bd.dtype)
    return Ad, Bd


@mutant("ssm.bilinear_B_without_inverse", family=FAMILY, replaces="discretize",
        caught_by=["ssm.discretize_legs_fixed_point", "ssm.s4_bilinear_closed_form"])
def bilinear_b_plain(A: Any, B: Any, dt: float, method: str = "bilinear", alpha: float | None = None,
                     **kw: Any) -> Any:
    """Bilinear (and every gbt with alpha > 0) input map Bd = dt B, forgetting the (I - alpha dt A)^-1 factor:
    B discretised with the forward-Euler scheme while A uses Tustin."""
    Ad, Bd = ref.discretize(A, B, dt, method, alpha=alpha, **kw)
    if method in ("bilinear", "gbt", "backward_euler"):
        Bd = dt * np.asarray(B, dtype=Bd.dtype)
    return Ad, Bd


@mutant("ssm.bilinear_is_backward_euler", family=FAMILY, replaces="discretize",
        caught_by=["ssm.discretize_local_error_order", "ssm.discretize_matches_scipy"])
def bilinear_backward(A: Any, B: Any, dt: float, method: str = "bilinear", alpha: float | None = None,
                      **kw: Any) -> Any:
    """"Bilinear" implemented as (I - dt A)^-1 (the half missing on both sides): only first-order accurate."""
    if method == "bilinear":
        return ref.discretize(A, B, dt, "backward_euler", **kw)
    return ref.discretize(A, B, dt, method, alpha=alpha, **kw)


@mutant("ssm.discretize_float32_solve", family=FAMILY, replaces="discretize",
        caught_by=["ssm.discretize_mpmath_certificate"])
def discretize_f32(A: Any, B: Any, dt: float, method: str = "bilinear", alpha: float | None = None, *,
                   backend: Any = ref.F64) -> Any:
    """The float64 oracle computed in float32 (a float32 solve / exponential), mpmath path untouched."""
    if not backend.is_float64:
        return ref.discretize(A, B, dt, method, alpha=alpha, backend=backend)
    A32 = np.asarray(A, np.float32).astype(np.float64)
    Ad, Bd = ref.discretize(A32, np.asarray(B, np.float32).astype(np.float64), float(np.float32(dt)), method,
                            alpha=alpha)
    return Ad.astype(np.float32).astype(np.float64), Bd.astype(np.float32).astype(np.float64)


# -- HiPPO -----------------------------------------------------------------------------------------------------


@mutant("ssm.legs_diagonal_minus_n", family=FAMILY, replaces="hippo_legs",
        caught_by=["ssm.hippo_legs_structure", "ssm.hippo_legs_legendre_moments"])
def legs_diag(N: int, form: str = "s4", **kw: Any) -> Any:
    """LegS diagonal -n instead of -(n+1) (the diag(0..N-1) term dropped from the compact form... twice)."""
    A, B = ref.hippo_legs(N, form, **kw)
    return A + np.eye(N), B


@mutant("ssm.legs_matvec_exclusive_cumsum", family=FAMILY, replaces="hippo_legs_matvec",
        caught_by=["ssm.hippo_legs_matvec"])
def matvec_exclusive(v: Any, **kw: Any) -> Any:
    """O(N) product with an exclusive prefix sum (k < n instead of k <= n)."""
    x = np.asarray(v, np.float64)
    s = np.sqrt(2 * np.arange(x.size) + 1.0)
    cs = np.concatenate([[0.0], np.cumsum(s * x)[:-1]])
    return np.arange(x.size) * x - s * cs


@mutant("ssm.legs_solve_wrong_denominator", family=FAMILY, replaces="hippo_legs_solve",
        caught_by=["ssm.hippo_legs_solve"])
def solve_denominator(lam: float, v: Any, **kw: Any) -> Any:
    """O(N) solve with denominator 1 + lam n (the + lam from the diagonal's -(n+1) forgotten)."""
    x = np.asarray(v, np.float64)
    s = np.sqrt(2 * np.arange(x.size) + 1.0)
    prev, out = 0.0, np.zeros(x.size)
    for n in range(x.size):
        cur = ((1 - lam * n) * prev + s[n] * x[n]) / (1 + lam * n)
        out[n] = (cur - prev) / s[n]
        prev = cur
    return out


@mutant("ssm.legendre_moments_unnormalised", family=FAMILY, replaces="legendre_moments",
        caught_by=["ssm.hippo_legs_legendre_moments", "ssm.hippo_legs_mpmath_certificate"])
def moments_unnormalised(p: float, N: int, **kw: Any) -> Any:
    """Moments of P_n(2r-1) without the sqrt(2n+1) of the orthonormal basis."""
    m = ref.legendre_moments(p, N, **kw)
    return np.asarray(m, np.float64) / np.sqrt(2 * np.arange(N) + 1.0)


@mutant("ssm.legs_resolvent_float32", family=FAMILY, replaces="hippo_legs_resolvent",
        caught_by=["ssm.hippo_legs_mpmath_certificate"])
def resolvent_f32(p: float, N: int, **kw: Any) -> Any:
    """Forward substitution in float32."""
    A, B = ref.hippo_legs(N)
    M = (p * np.eye(N) - A).astype(np.float32)
    x = np.zeros(N, np.float32)
    for n in range(N):
        x[n] = (np.float32(B[n]) - M[n, :n] @ x[:n]) / M[n, n]
    return x.astype(np.float64)


@mutant("ssm.legt_sign_not_alternating", family=FAMILY, replaces="hippo_legt",
        caught_by=["ssm.hippo_legt_rank2_skew", "ssm.hippo_forms_are_similarities"])
def legt_no_alternation(N: int, w: float = 1.0, **kw: Any) -> Any:
    """LegT upper triangle without the (-1)^(n-k) factor."""
    A, B = ref.hippo_legt(N, w, **kw)
    return -np.abs(A), B


@mutant("ssm.sqrt_free_scaling_squared", family=FAMILY, replaces="legs_form_scaling",
        caught_by=["ssm.hippo_forms_are_similarities"])
def scaling_squared(N: int, form: str, **kw: Any) -> Any:
    """Similarity T = diag(2n+1) used for the square-root-free form (T applied twice)."""
    t = ref.legs_form_scaling(N, form, **kw)
    return t * t if form == "sqrt_free" else t


@mutant("ssm.nplr_transpose_not_adjoint", family=FAMILY, replaces="hippo_legs_nplr",
        caught_by=["ssm.hippo_legs_nplr"])
def nplr_transpose(N: int) -> Any:
    """Pt = V^T p instead of V^* p (conjugation forgotten in the rotated low-rank term)."""
    V, Lam, _Pt, p = ref.hippo_legs_nplr(N)
    return V, Lam, V.T @ p, p


@mutant("ssm.expm_taylor_without_scaling", family=FAMILY, replaces="expm",
        caught_by=["ssm.hippo_legs_warped_legendre"])
def expm_no_scaling(M: Any, **kw: Any) -> Any:
    """Matrix exponential by a degree-8 Taylor series without scaling and squaring (fine for ||M|| << 1 only)."""
    M = np.asarray(M)
    term, out = np.eye(M.shape[0], dtype=M.dtype), np.eye(M.shape[0], dtype=M.dtype)
    for k in range(1, 9):
        term = term @ M / k
        out = out + term
    return out


# -- S4 kernels --------------------------------------------------------------------------------------------------


@mutant("ssm.kernel_power_off_by_one", family=FAMILY, replaces="ssm_kernel_powers",
        caught_by=["ssm.s4_convolution_forms_agree"])
def kernel_off_by_one(Ad: Any, Bd: Any, C: Any, L: int, **kw: Any) -> Any:
    """K_j = C Ad^(j+1) Bd (Su's x_{k+1} convention mixed with S4's x_k one: one power too many)."""
    return ref.ssm_kernel_powers(Ad, np.asarray(Ad) @ np.asarray(Bd), C, L, **kw)


@mutant("ssm.fft_convolution_unpadded", family=FAMILY, replaces="fft_convolution",
        caught_by=["ssm.s4_convolution_forms_agree"])
def fft_circular(u: Any, K: Any) -> Any:
    """FFT convolution without zero padding (n = L): a circular convolution that wraps the tail around."""
    u, K = np.asarray(u, np.float64), np.asarray(K, np.float64)
    L = u.shape[-1]
    return np.fft.irfft(np.fft.rfft(K, L) * np.fft.rfft(u, L), L)


@mutant("ssm.recurrence_output_before_update", family=FAMILY, replaces="ssm_recurrence",
        caught_by=["ssm.s4_convolution_forms_agree"])
def recurrence_late(Ad: Any, Bd: Any, C: Any, u: Any, D: float = 0.0, **kw: Any) -> Any:
    """y_k = C x_{k-1}: the output read before the state update (a one-step delay)."""
    y, x = ref.ssm_recurrence(Ad, Bd, C, u, D, **kw)
    y = np.concatenate([[0.0], y[:-1]]) + D * np.asarray(u)
    return y, x


@mutant("ssm.roots_of_unity_wrong_sign", family=FAMILY, replaces="ssm_kernel_gf",
        caught_by=["ssm.s4_kernel_roots_of_unity"])
def gf_wrong_sign(Ad: Any, Bd: Any, Ct: Any, L: int) -> Any:
    """Generating function sampled at exp(+2 pi i l / L) but inverted with numpy's ifft (sign convention
    mismatch): the kernel comes out time-reversed (circularly)."""
    K = ref.ssm_kernel_gf(Ad, Bd, Ct, L)
    return np.roll(K[::-1], 1)


@mutant("ssm.generating_function_untruncated", family=FAMILY, replaces="ssm_generating_function",
        caught_by=["ssm.s4_generating_function"])
def gf_untruncated(Ad: Any, Bd: Any, C: Any, z: Any, L: int | None = None, **kw: Any) -> Any:
    """The (I - z^L Ad^L) factor dropped: the infinite generating function returned for the truncated one."""
    return ref.ssm_generating_function(Ad, Bd, C, z, None, **kw)


@mutant("ssm.c_tilde_power_L_minus_1", family=FAMILY, replaces="c_tilde",
        caught_by=["ssm.s4_c_tilde_doubling_roundtrip"])
def c_tilde_short(Ad: Any, C: Any, L: int, **kw: Any) -> Any:
    """Ct = C (I - Ad^(L-1)) (off-by-one length)."""
    if L == 1:
        return np.asarray(C, np.float64) * 0.0  # Ad^0 = I
    return ref.c_tilde(Ad, C, L - 1, **kw)


@mutant("ssm.c_from_c_tilde_column_solve", family=FAMILY, replaces="c_from_c_tilde",
        caught_by=["ssm.s4_c_tilde_doubling_roundtrip"])
def c_column_solve(Ad: Any, Ct: Any, L: int, **kw: Any) -> Any:
    """C recovered by a column solve (I - Ad^L) c = Ct instead of the row solve c (I - Ad^L) = Ct
    (the transposition in ruke1ire/RTF rtf.py ``get_C``)."""
    A = np.asarray(Ad)
    return np.linalg.solve(np.eye(A.shape[0]) - np.linalg.matrix_power(A, L), np.asarray(Ct))


@mutant("ssm.woodbury_sign", family=FAMILY, replaces="woodbury_inverse", caught_by=["ssm.woodbury_identity"])
def woodbury_sign(Minv: Any, U: Any, V: Any) -> Any:
    """Woodbury with the capacitance I + V^* M^-1 U (the sign of the (M + U V^*) form used for M - U V^*)."""
    Mi, Uu, Vh = np.asarray(Minv), np.asarray(U), np.asarray(V).conj().T
    return Mi + Mi @ Uu @ np.linalg.solve(np.eye(Uu.shape[1]) + Vh @ Mi @ Uu, Vh @ Mi)


@mutant("ssm.dplr_q_not_conjugated", family=FAMILY, replaces="dplr_kernel",
        caught_by=["ssm.s4_dplr_cauchy_woodbury"])
def dplr_no_conj(Lam: Any, P: Any, Q: Any, B: Any, Ct: Any, dt: float, L: int) -> Any:
    """Cauchy sums with Q entering unconjugated (k_QB = sum Q_n B_n / D_n)."""
    return ref.dplr_kernel(Lam, P, np.asarray(Q).conj(), B, Ct, dt, L)


@mutant("ssm.s4d_zoh_B_is_dt_B", family=FAMILY, replaces="s4d_kernel", caught_by=["ssm.s4d_vandermonde"])
def s4d_wrong_b(log_dt: Any, A: Any, B: Any, C: Any, L: int, method: str = "zoh", **kw: Any) -> Any:
    """S4D ZOH kernel with Bd = dt B (B discretised by Euler while A uses ZOH)."""
    if method != "zoh":
        return ref.s4d_kernel(log_dt, A, B, C, L, method, **kw)
    A = np.asarray(A, complex)
    dt = np.exp(np.asarray(log_dt))[:, None]
    scale = dt * A / (np.exp(dt * A) - 1)  # (exp(dtA) - 1)/A * scale = dt
    return ref.s4d_kernel(log_dt, A, np.asarray(B) * scale, C, L, method, **kw)


@mutant("ssm.s4d_missing_conjugate_half", family=FAMILY, replaces="s4d_kernel",
        caught_by=["ssm.s4d_vandermonde"])
def s4d_half(log_dt: Any, A: Any, B: Any, C: Any, L: int, method: str = "zoh", **kw: Any) -> Any:
    """Re sum instead of 2 Re sum: the implied conjugate eigenvalues are forgotten."""
    K = ref.s4d_kernel(log_dt, A, B, C, L, method, **kw)
    return np.asarray(K, np.float64) / 2 if kw.get("backend", ref.F64).is_float64 else K


@mutant("ssm.kernel_powers_float32", family=FAMILY, replaces="ssm_kernel_powers",
        caught_by=["ssm.s4_kernel_mpmath_certificate"])
def kernel_f32(Ad: Any, Bd: Any, C: Any, L: int, *, backend: Any = ref.F64) -> Any:
    """Kernel powers accumulated in float32 (mpmath path untouched)."""
    if not backend.is_float64:
        return ref.ssm_kernel_powers(Ad, Bd, C, L, backend=backend)
    A = np.asarray(Ad, np.float32)
    x = np.asarray(Bd, np.float32)
    c = np.asarray(C, np.float32)
    out = []
    for _ in range(L):
        out.append(np.float32(c @ x))
        x = A @ x
    return np.array(out, np.float64)
