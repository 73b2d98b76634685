"""Laws of HiPPO as online approximation (Gu et al. 2020; Su posts 10114, 10137 and the LegS
time-varying schemes): the LegS state of any smooth input solves x' = (A x + B u)/t; LegT's ODE is exact for
polynomial windows of degree < N; Bessel's inequality; the exact LegS scheme equals the projection of the
piecewise-constant input; constant inputs are fixed points of the exact and trapezoid schemes; the official
HiPPO code's LegS recurrences (HazyResearch/hippo-code) project the input delayed by one step and keep constant
states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.registry import law

FAMILY = "ssm"
SRC = ("Gu et al. 2020 (HiPPO, arXiv 2008.07669); Bessel's inequality; "
       "Su 重温SSM (一)/(二) (kexue.fm/archives/10114, 10137)")
U = 2.0**-53


@dataclass(frozen=True)
class SmoothInput:
    """u(s) = sum_i a_i sin(f_i s + p_i) + c: a smooth input with its derivative, evaluated in mpmath."""

    amps: tuple[float, ...]
    freqs: tuple[float, ...]
    phases: tuple[float, ...]
    offset: float

    def u(self, s: Any) -> Any:
        import mpmath

        return self.offset + sum(a * mpmath.sin(f * s + p) for a, f, p in zip(self.amps, self.freqs, self.phases,
                                                                              strict=True))

    def du(self, s: Any) -> Any:
        import mpmath

        return sum(a * f * mpmath.cos(f * s + p) for a, f, p in zip(self.amps, self.freqs, self.phases, strict=True))


@st.composite
def smooth_inputs(draw: Any) -> SmoothInput:
    n = draw(st.integers(1, 2))
    # amplitudes 0 or of order 1 (a 1e-212 input would make the check a test of mpmath's quadrature at 1e-212)
    fl = st.one_of(st.just(0.0), st.floats(0.01, 2.0), st.floats(-2.0, -0.01))
    return SmoothInput(tuple(draw(fl) for _ in range(n)), tuple(draw(st.floats(0.0, 3.0)) for _ in range(n)),
                       tuple(draw(st.floats(0.0, 6.3)) for _ in range(n)), draw(fl))


@dataclass(frozen=True)
class PolyInput:
    """u(s) = sum_j c_j s^j (degree len(c) - 1) and its derivative, evaluated in mpmath."""

    coeffs: tuple[float, ...]

    def u(self, s: Any) -> Any:
        return sum(c * s**j for j, c in enumerate(self.coeffs))

    def du(self, s: Any) -> Any:
        return sum(j * c * s ** (j - 1) for j, c in enumerate(self.coeffs) if j > 0)


@law("ssm.legs_ode_residual", family=FAMILY, kind="certificate", max_examples=6,
     source=SRC + " (derived: LegS ODE x' = (A x + B u)/t)")
def legs_ode_residual(ref: Any, inp: SmoothInput = smooth_inputs(), N: int = st.integers(1, 5),
                      t: float = st.floats(0.25, 6.0)) -> Agreement:
    """For any smooth u, x_n(t) = int_0^1 u(r t) phi_n(r) dr satisfies t x'(t) = A x(t) + B u(t) (LegS is exact
    for every input); x and x' = int r u'(r t) phi_n dr by 30-digit quadrature, so the residual is quadrature
    and final rounding only."""
    x, dx = ref.legs_projection(inp.u, t, N, du=inp.du)
    A, B = (np.asarray(m, np.float64) for m in ref.hippo_legs(N))
    u_t = float(inp.u(t))
    scale = float(np.abs(A).sum(axis=1).max() * np.abs(x).max() + np.abs(B).max() * abs(u_t) + t * np.abs(dx).max())
    return Agreement(t * dx, A @ x + B * u_t, f"LegS: t x' == A x + B u (N={N}, t={t:.3g})", terms=2 * N + 4,
                     scale=max(scale, 1e-300))


@law("ssm.legt_ode_residual_polynomial", family=FAMILY, kind="certificate", max_examples=6,
     source=SRC + " (LegT ODE, exact for degree < N)")
def legt_ode_residual(ref: Any, N: int = st.integers(1, 5), data: Any = st.data(),
                      w: float = st.floats(0.3, 3.0), t: float = st.floats(-2.0, 4.0)) -> Agreement:
    """For u a polynomial of degree < N on the window, x_n(t) = int_0^1 u(t - w + w r) phi_n(r) dr satisfies
    x' = A x + B u (LegT with window w) exactly; for other inputs only approximately (the derivation replaces
    u(t - w) by its reconstruction)."""
    coeffs = tuple(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=N, max_size=N), label="coeffs"))
    inp = PolyInput(coeffs)
    x, dx = ref.legt_projection(inp.u, t, N, w, du=inp.du)
    A, B = (np.asarray(m, np.float64) for m in ref.hippo_legt(N, w))
    u_t = float(inp.u(t))
    scale = float(np.abs(A).sum(axis=1).max() * np.abs(x).max() + np.abs(B).max() * abs(u_t) + np.abs(dx).max())
    return Agreement(dx, A @ x + B * u_t, f"LegT: x' == A x + B u for degree {N - 1} < N = {N}",
                     terms=2 * N + 4, scale=max(scale, 1e-300))


@law("ssm.legs_bessel", family=FAMILY, kind="certificate", max_examples=4, source=SRC + " (Bessel)")
def legs_bessel(ref: Any, inp: SmoothInput = smooth_inputs(), t: float = st.floats(0.5, 6.0)) -> Bound:
    """int_0^1 u(r t)^2 dr - ||x(t)||^2 is the squared reconstruction error: >= 0 and non-increasing in N
    (N = 1..5), up to the 20-digit quadrature."""
    errs = np.array([ref.legs_reconstruction_error(inp.u, t, N, dps=20) for N in range(1, 6)])
    energy = float(errs[0] + ref.legs_projection(inp.u, t, 1, dps=20)[0] ** 2)
    steps = np.concatenate([-errs, np.diff(errs)])  # -err <= 0 and err_{N+1} - err_N <= 0
    return Bound(steps, 0.0, "Bessel: 0 <= err(N+1) <= err(N)", slack=64 * U * max(energy, 1e-300))


def _samples(seed: int, K: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(K)


@law("ssm.legs_exact_scheme_is_projection", family=FAMILY, source=SRC + " (LegS time-varying schemes, exact)")
def legs_exact_scheme(ref: Any, N: int = st.integers(1, 8), K: int = st.integers(1, 24),
                      seed: int = st.integers(0, 2**31)) -> Agreement:
    """The exact LegS scheme x_{k+1} = e^{ln((k+1)/k) A} x_k + A^{-1}(e^{ln((k+1)/k) A} - I) B u_k (from x_1 = u_0 e_0)
    equals, at every step K, the closed-form LegS projection of the piecewise-constant input — independent of
    the step eps, which cancels."""
    u = _samples(seed, K)
    states = ref.legs_discrete_states(u, N, "exact")
    closed = np.stack([ref.legs_piecewise_constant_state(u[: k + 1], N) for k in range(K)])
    return Agreement(states, closed, f"exact scheme == projection of the step input (N={N}, K={K})",
                     terms=64 * N * (1 + np.log2(K)), scale=float(np.abs(u).max() * np.sqrt(2 * N)))


@law("ssm.legs_constant_input_fixed_point", family=FAMILY, source=SRC + " (derived: A e0 = -B)")
def legs_fixed_point(ref: Any, N: int = st.integers(1, 8), K: int = st.integers(2, 30),
                     c: float = st.floats(-3.0, 3.0), scheme: str = st.sampled_from(("exact", "trapezoid"))
                     ) -> Agreement:
    """A constant input c has the exact LegS state c e_0 (A e_0 = -B); the exact and trapezoid schemes keep it at
    every step.  (Su's midpoint formula, input weight 1/k, does not: tests/ssm/test_ssm.py records its drift.)"""
    states = ref.legs_discrete_states(np.full(K, c), N, scheme)
    target = np.zeros_like(states)
    target[:, 0] = c
    return Agreement(states, target, f"{scheme} scheme keeps c e_0 (N={N})", terms=64 * N * K,
                     scale=max(abs(c), 1e-300) * np.sqrt(2 * N))


_CODE_SRC = "HazyResearch/hippo-code model/hippo.py (HiPPO_LegS); Gu et al. 2020 appendix; " + SRC


@law("ssm.legs_hippo_code_zoh_is_delayed_projection", family=FAMILY, source=_CODE_SRC)
def legs_hippo_code_zoh_delayed(ref: Any, N: int = st.integers(1, 8), K: int = st.integers(1, 24),
                                seed: int = st.integers(0, 2**31)) -> Agreement:
    """The official HiPPO code's LegS ZOH recurrence (x_0 = 0, step t = i + 1 with e^{ln((t+1)/t) A}) equals, after
    every input i, the exact LegS projection of the piecewise-constant input *delayed by one step*
    (0, u_0, ..., u_i): its zero state stands at t = 1, so input i is held on [i+1, i+2)."""
    u = _samples(seed, K)
    states = ref.legs_hippo_code_states(u, N, "zoh")
    delayed = np.stack([ref.legs_piecewise_constant_state(np.concatenate([[0.0], u[: k + 1]]), N) for k in range(K)])
    return Agreement(states, delayed, f"hippo-code ZOH == projection of the delayed input (N={N}, K={K})",
                     terms=64 * N * (1 + np.log2(K + 1)), scale=float(np.abs(u).max() * np.sqrt(2 * N)))


@law("ssm.legs_hippo_code_keeps_constant_state", family=FAMILY, source=_CODE_SRC + " (derived: A e0 = -B)")
def legs_hippo_code_fixed_point(ref: Any, N: int = st.integers(1, 8), K: int = st.integers(1, 30),
                                c: float = st.floats(-3.0, 3.0),
                                disc: str = st.sampled_from(("forward", "backward", "bilinear", "zoh"))
                                ) -> Agreement:
    """Started at c e_0 (the exact state of a constant input c, A e_0 = -B), each of the official code's four LegS
    recurrences stays there under the input c: its step pair (A_t, B_t) is consistent (A_t e_0 c + B_t c = e_0 c),
    which Su's midpoint formula (post 10137), with input weight 1/k against A/(2k) and A/(2(k+1)), is not."""
    x0 = np.zeros(N)
    x0[0] = c
    states = ref.legs_hippo_code_states(np.full(K, c), N, disc, initial_state=x0)
    return Agreement(states, np.tile(x0, (K, 1)), f"hippo-code {disc} keeps c e_0 (N={N}, K={K})",
                     terms=64 * N * K, scale=max(abs(c), 1e-300) * np.sqrt(2 * N))
