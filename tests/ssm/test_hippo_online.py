"""HiPPO online approximation: the spec's pinned Bessel values, the drift of the spec's midpoint LegS
formula under constant input, the official HiPPO code's LegS conventions, and argument errors (the laws run in the
catalogue)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from veriformer import reference as ref
from veriformer.reference import InputError


def _u(s: object) -> object:
    return mpmath.exp(-s) * mpmath.cos(2 * s)


@pytest.mark.parametrize(("N", "pinned"), [(2, 5.10e-2), (4, 9.15e-3), (8, 3.24e-6)])
def test_bessel_reconstruction_error_pinned_values(N: int, pinned: float) -> None:
    """LegS Bessel error (Bessel's inequality) for u = e^{-t} cos 2t at t = 5 (values given to 3 digits)."""
    err = ref.legs_reconstruction_error(_u, 5.0, N, dps=25)
    assert err == pytest.approx(pinned, rel=2e-3)


def test_spec_midpoint_formula_drifts_from_the_constant_input_state() -> None:
    """The spec's LegS midpoint formula (input weight 1/k) moves a constant input's state away from c e_0, the
    exact state; the trapezoid weight (1/k + 1/(k+1))/2 keeps it.  The drift decays only slowly (0.23 at the
    first step, 0.033 after 64 for N = 4): this records it."""
    c, N, K = 1.0, 4, 64
    mid = ref.legs_discrete_states(np.full(K, c), N, "bilinear")
    trap = ref.legs_discrete_states(np.full(K, c), N, "trapezoid")
    target = np.eye(N)[0] * c
    drift = np.abs(mid - target).max(axis=1)
    assert drift[1] > 0.2 and 0.02 < drift[-1] < drift[1] / 4 and np.all(np.diff(drift[1:]) < 0)
    assert np.abs(trap - target).max() < 1e-13


def test_exact_scheme_is_independent_of_the_step_and_matches_piecewise_projection() -> None:
    u = np.random.default_rng(3).standard_normal(17)
    np.testing.assert_allclose(ref.legs_discrete_states(u, 6, "exact")[-1], ref.legs_piecewise_constant_state(u, 6),
                               rtol=0, atol=1e-13)


def test_hippo_code_legs_matches_its_matrices_and_converges_at_first_order() -> None:
    """HazyResearch/hippo-code HiPPO_LegS: step t is the pair (A/t, B/t) discretised with unit step (checked against
    the generic discretize() of the LTI pair); its bilinear recurrence, with 1/t frozen at the step's start,
    approaches the exact (ZOH) states only at first order in 1/K: measured gaps 0.061, 0.0115, 0.0013 at
    K = 10, 100, 1000 for a constant input, N = 4 (about 10x per decade at large K)."""
    A, B = (np.asarray(m, np.float64) for m in ref.hippo_legs(5))
    for t in (1, 7):
        for disc, method in (("forward", "forward_euler"), ("backward", "backward_euler"), ("bilinear", "bilinear"),
                             ("zoh", "zoh")):
            At, Bt = ref.legs_hippo_code_step(5, t, disc)
            dt = float(np.log1p(1.0 / t)) if disc == "zoh" else 1.0 / t  # ZOH in log-time: tau step ln((t+1)/t)
            Ad, Bd = ref.discretize(A, B, dt, method)
            np.testing.assert_allclose(At, Ad, rtol=0, atol=1e-13)
            np.testing.assert_allclose(Bt, np.ravel(Bd), rtol=0, atol=1e-13)
    gaps = []
    for K in (10, 100, 1000):
        u = np.ones(K)
        gaps.append(np.abs(ref.legs_hippo_code_states(u, 4, "bilinear")[-1]
                           - ref.legs_hippo_code_states(u, 4, "zoh")[-1]).max())
    assert gaps[0] == pytest.approx(0.0607, rel=0.01) and 8 < gaps[1] / gaps[2] < 12


def test_arguments_are_named_in_errors() -> None:
    with pytest.raises(InputError, match="scheme"):
        ref.legs_discrete_states([1.0, 2.0], 3, "euler")
    with pytest.raises(InputError, match="'u'"):
        ref.legs_discrete_states([], 3)
    with pytest.raises(InputError, match="'t'"):
        ref.legs_projection(_u, 0.0, 3)
    with pytest.raises(InputError, match="'w'"):
        ref.legt_projection(_u, 1.0, 3, -1.0)
    with pytest.raises(InputError, match="'N'"):
        ref.legs_piecewise_constant_state([1.0], 0)
    with pytest.raises(InputError, match="'u'"):
        ref.legs_projection(3.0, 1.0, 3)
    with pytest.raises(InputError, match="discretization"):
        ref.legs_hippo_code_states([1.0], 3, "trapezoid")
    with pytest.raises(InputError, match="initial_state"):
        ref.legs_hippo_code_states([1.0], 3, initial_state=np.zeros(2))
    with pytest.raises(InputError, match="'t'"):
        ref.legs_hippo_code_step(3, 0)
