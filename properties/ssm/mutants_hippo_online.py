"""Planted bugs in HiPPO online approximation: mirrored basis, LegT with Su's sign flip of odd states, the
exact LegS scheme with the step log-ratio upside down, Su's midpoint input weight as the trapezoid
scheme, a Bessel error with over-weighted states, and the official HiPPO code's LegS steps with a first-order log
step (ZOH) or an input term left unsolved (bilinear, backward)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "ssm"


@mutant("ssm.legs_basis_mirrored", family=FAMILY, replaces="legs_projection", caught_by=["ssm.legs_ode_residual"])
def legs_mirrored(u: Any, t: float, N: int, *, du: Any = None, dps: int = 30) -> Any:
    """The LegS state taken with phi_n(1 - r) (the measure read backwards in time): odd states flip sign."""
    out = ref.legs_projection(u, t, N, du=du, dps=dps)
    sign = (-1.0) ** np.arange(N)
    return tuple(o * sign for o in out) if isinstance(out, tuple) else out * sign


@mutant("ssm.legt_odd_states_flipped", family=FAMILY, replaces="legt_projection",
        caught_by=["ssm.legt_ode_residual_polynomial"])
def legt_flipped(u: Any, t: float, N: int, w: float = 1.0, *, du: Any = None, dps: int = 30) -> Any:
    """LegT states with the (-1)^n flip of the LMU convention (D A D with D = diag((-1)^n)) but the
    unflipped matrices."""
    out = ref.legt_projection(u, t, N, w, du=du, dps=dps)
    sign = (-1.0) ** np.arange(N)
    return tuple(o * sign for o in out) if isinstance(out, tuple) else out * sign


@mutant("ssm.legs_exact_scheme_log_ratio_inverted", family=FAMILY, replaces="legs_discrete_states",
        caught_by=["ssm.legs_exact_scheme_is_projection"])
def exact_inverted(u: Any, N: int, scheme: str = "exact") -> np.ndarray:
    """The exact scheme with e^{ln(k/(k+1)) A}: the state grows where it should decay."""
    if scheme != "exact":
        return ref.legs_discrete_states(u, N, scheme)
    from scipy.linalg import expm

    A, B = (np.asarray(m, np.float64) for m in ref.hippo_legs(N))
    u = np.asarray(u, np.float64)
    x = u[0] * np.eye(N)[0]
    out = [x]
    for k in range(1, len(u)):
        E = expm(np.log(k / (k + 1)) * A)
        x = E @ x + np.linalg.solve(A, (E - np.eye(N)) @ B) * u[k]
        out.append(x)
    return np.stack(out)


@mutant("ssm.legs_trapezoid_with_midpoint_weight", family=FAMILY, replaces="legs_discrete_states",
        caught_by=["ssm.legs_constant_input_fixed_point"])
def trapezoid_midpoint_weight(u: Any, N: int, scheme: str = "exact") -> np.ndarray:
    """Every scheme replaced by Su's midpoint formula (post 10137) (input weight 1/k instead of (1/k + 1/(k+1))/2)."""
    return ref.legs_discrete_states(u, N, "bilinear")


@mutant("ssm.legs_bessel_overweighted_states", family=FAMILY, replaces="legs_reconstruction_error",
        caught_by=["ssm.legs_bessel"])
def bessel_overweighted(u: Any, t: float, N: int, *, dps: int = 30) -> float:
    """||x||^2 weighted by (2n+1), as if the states were coefficients of the raw Legendre basis P_n(2r - 1)
    while the basis used is already orthonormal: the 'error' turns negative."""
    x = ref.legs_projection(u, t, N, dps=dps)
    energy = ref.legs_reconstruction_error(u, t, 1, dps=dps) + float(x[0] ** 2)
    return float(energy - np.sum(x**2 * (2 * np.arange(N) + 1)))


def _hippo_code_run(u: Any, N: int, step: Any, initial_state: Any) -> np.ndarray:
    x = np.zeros(N) if initial_state is None else np.asarray(initial_state, np.float64)
    out = []
    for i, ui in enumerate(np.asarray(u, np.float64)):
        At, Bt = step(i + 1)
        x = At @ x + Bt * ui
        out.append(x)
    return np.stack(out)


@mutant("ssm.legs_hippo_code_zoh_first_order_log_step", family=FAMILY, replaces="legs_hippo_code_states",
        caught_by=["ssm.legs_hippo_code_zoh_is_delayed_projection"])
def hippo_code_zoh_first_order(u: Any, N: int, discretization: str = "bilinear", *,
                               initial_state: Any = None) -> np.ndarray:
    """ZOH with e^{A/t} in place of e^{ln(1 + 1/t) A} (the log-time step linearised): still consistent (constant
    states stay), but no longer the projection."""
    if discretization != "zoh":
        return ref.legs_hippo_code_states(u, N, discretization, initial_state=initial_state)
    from scipy.linalg import expm

    A, B = (np.asarray(m, np.float64) for m in ref.hippo_legs(N))

    def step(t: int) -> tuple[np.ndarray, np.ndarray]:
        E = expm(A / t)
        return E, np.linalg.solve(A, E @ B - B)

    return _hippo_code_run(u, N, step, initial_state)


@mutant("ssm.legs_hippo_code_input_term_unsolved", family=FAMILY, replaces="legs_hippo_code_states",
        caught_by=["ssm.legs_hippo_code_keeps_constant_state"])
def hippo_code_input_unsolved(u: Any, N: int, discretization: str = "bilinear", *,
                              initial_state: Any = None) -> np.ndarray:
    """Backward and bilinear steps with B_t = B/t, the implicit factor (I - alpha A/t)^{-1} applied to the state
    term only."""
    if discretization not in ("backward", "bilinear"):
        return ref.legs_hippo_code_states(u, N, discretization, initial_state=initial_state)

    def step(t: int) -> tuple[np.ndarray, np.ndarray]:
        At, _ = ref.legs_hippo_code_step(N, t, discretization)
        return At, np.asarray(ref.hippo_legs(N)[1], np.float64) / t

    return _hippo_code_run(u, N, step, initial_state)
