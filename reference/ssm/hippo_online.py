"""HiPPO as online function approximation: the LegS / LegT projection states of a given input, the
time-varying LegS discretisations of Su, and the squared reconstruction error (Bessel).

Basis: ``phi_n(r) = sqrt(2n+1) P_n(2r - 1)``, orthonormal on [0, 1] (the S4 normalisation of
:mod:`veriformer.reference.ssm.hippo`).  Indices n = 0..N-1.

* LegS (uniform measure on [0, t]): ``x_n(t) = int_0^1 u(r t) phi_n(r) dr``; it solves
  ``x'(t) = (A x(t) + B u(t)) / t`` exactly for every input (A, B from :func:`hippo_legs`), and
  ``x_n'(t) = int_0^1 r u'(r t) phi_n(r) dr``.
* LegT (uniform measure on the window [t - w, t]): ``x_n(t) = int_0^1 u(t - w + w r) phi_n(r) dr``; it solves
  ``x' = A x + B u`` (A, B from :func:`hippo_legt`) only when u restricted to the window is a polynomial of
  degree < N (the derivation replaces u(t - w) by its reconstruction).
* Bessel: ``int_0^1 u(r t)^2 dr - ||x(t)||^2`` is the squared L2 error of the degree < N reconstruction
  ``sum_n x_n(t) phi_n(r)``: >= 0 and non-increasing in N.
* Piecewise-constant input ``u(s) = u_j`` on ``[j eps, (j + 1) eps)``: at ``t = K eps`` the LegS state has the
  closed form ``x_n = sum_{j<K} u_j sqrt(2n+1) [Q_n((j+1)/K) - Q_n(j/K)]``, Q_n an antiderivative of
  P_n(2r - 1) (``Q_n = (P_{n+1} - P_{n-1})(2r - 1) / (2 (2n + 1))``); eps cancels.
* Time-varying LegS schemes, t_k = k eps, from ``x_1 = u_0 e_0`` (the exact state after the first interval:
  constant input c has state c e_0 because A e_0 = -B); k = 0 is singular, so steps start at k = 1:
  - ``"exact"`` (via tau = ln t, ZOH in tau): ``x_{k+1} = e^{ln((k+1)/k) A} x_k + A^{-1}(e^{ln((k+1)/k) A} - I) B u_k``;
    equal to the piecewise-constant closed form above.
  - ``"bilinear"`` (Su's midpoint formula, post 10137): ``x_{k+1} = (I - A/(2(k+1)))^{-1}[(I + A/(2k)) x_k
    + (1/k) B u_k]``.
  - ``"trapezoid"`` (derived here: the trapezoid rule on both terms of x' = (A x + B u)/t):
    ``x_{k+1} = (I - A/(2(k+1)))^{-1}[(I + A/(2k)) x_k + (1/(2k) + 1/(2(k+1))) B u_k]``.
  That input weight 1/k is not the trapezoid weight: its constant-input state drifts from c e_0
  (law ``ssm.legs_constant_input_fixed_point``).  Su's post does use 1/k: his first-order eps/t for ln((t+eps)/t).
* The official HiPPO code's ``HiPPO_LegS`` (HazyResearch/hippo-code ``model/hippo.py``; :func:`legs_hippo_code_states`):
  ``x_0 = 0`` and, for input i (0-based) with ``t = i + 1``, ``x_{i+1} = A_t x_i + B_t u_i`` where ``A/t, B/t`` are
  discretised with unit step by ``"forward"`` (``I + A/t``, ``B/t``), ``"backward"`` (``(I - A/t)^{-1}``,
  ``(I - A/t)^{-1} B/t``), ``"bilinear"`` (``(I - A/(2t))^{-1}(I + A/(2t))``, ``(I - A/(2t))^{-1} B/t``: one t on
  both sides, unlike Su's midpoint formula) or ``"zoh"`` (``e^{ln((t+1)/t) A}``, ``A^{-1}(A_t - I) B``).  Its zero
  state stands at t = 1, so input i is held on ``[i+1, i+2)``: the ZOH states are exactly the LegS projection
  of the input *delayed by one step* (a zero first interval), not of the input itself (law
  ``ssm.legs_hippo_code_zoh_is_delayed_projection``).  Every one of its four pairs (A_t, B_t) keeps ``c e_0``
  for a constant input c, the consistency Su's midpoint formula lacks (law
  ``ssm.legs_hippo_code_keeps_constant_state``).

Sources: Gu et al. 2020 (HiPPO) sections 2-3 and appendix, and its code (HazyResearch/hippo-code);
Su "重温SSM (一)/(二)" (kexue.fm/archives/10114, 10137);
the ODE-residual, Bessel and timescale checks are derived here from those definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.polynomial import legendre as npleg

from veriformer.reference._optional import optional_module
from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.ssm.hippo import _check_n, hippo_legs

__all__ = [
    "HIPPO_CODE_DISCRETIZATIONS",
    "LEGS_SCHEMES",
    "legs_discrete_states",
    "legs_hippo_code_states",
    "legs_hippo_code_step",
    "legs_piecewise_constant_state",
    "legs_projection",
    "legs_reconstruction_error",
    "legt_projection",
]

LEGS_SCHEMES = ("exact", "bilinear", "trapezoid")
HIPPO_CODE_DISCRETIZATIONS = ("forward", "backward", "bilinear", "zoh")


def _mp() -> Any:
    import mpmath

    return mpmath


def _phi(mp: Any, n: int, r: Any) -> Any:
    return mp.sqrt(2 * n + 1) * mp.legendre(n, 2 * r - 1)


def _time(func: str, t: Any, name: str = "t") -> float:
    require(isinstance(t, float | int | np.floating) and not isinstance(t, bool) and np.isfinite(t) and t > 0,
            func, name, "a finite float > 0", repr(t))
    return float(t)


def _quad_states(u: Callable[[Any], Any], arg: Callable[[Any, Any], Any], t: float, N: int, dps: int,
                 weight: Callable[[Any], Any] | None = None) -> np.ndarray:
    mp = _mp()
    with mp.workdps(dps):
        tt = mp.mpf(t)
        out = []
        for n in range(N):
            def f(r: Any, n: int = n) -> Any:
                val = u(arg(tt, r)) * _phi(mp, n, r)
                return val * weight(r) if weight is not None else val

            out.append(float(mp.quad(f, [0, 1])))
    return np.array(out)


def legs_projection(u: Callable[[Any], Any], t: float, N: int, *, du: Callable[[Any], Any] | None = None,
                    dps: int = 30) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """LegS state ``x_n(t) = int_0^1 u(r t) phi_n(r) dr`` [N] by mpmath quadrature at ``dps`` digits
    (``u`` takes and returns mpmath numbers); with ``du`` (u's derivative) also ``x'(t)`` =
    ``int_0^1 r u'(r t) phi_n(r) dr``, returned as ``(x, dx)``.  Source: HiPPO (LegS, arXiv 2008.07669)."""
    func = "legs_projection"
    require(callable(u), func, "u", "a callable of one mpmath number", type(u).__name__)
    t = _time(func, t)
    N = _check_n(func, N, max_n=64)
    x = _quad_states(u, lambda tt, r: r * tt, t, N, dps)
    if du is None:
        return x
    require(callable(du), func, "du", "None or a callable (the derivative of u)", type(du).__name__)
    return x, _quad_states(du, lambda tt, r: r * tt, t, N, dps, weight=lambda r: r)


def legt_projection(u: Callable[[Any], Any], t: float, N: int, w: float = 1.0, *,
                    du: Callable[[Any], Any] | None = None,
                    dps: int = 30) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """LegT state ``x_n(t) = int_0^1 u(t - w + w r) phi_n(r) dr`` [N] (window [t - w, t]) by mpmath
    quadrature; with ``du`` also ``x'(t) = int_0^1 u'(t - w + w r) phi_n(r) dr``.  Matches
    :func:`hippo_legt` (w): ``x' = A x + B u`` holds exactly for polynomial u of degree < N.
    Source: HiPPO (LegT); Su kexue.fm/archives/10114."""
    func = "legt_projection"
    require(callable(u), func, "u", "a callable of one mpmath number", type(u).__name__)
    t = float(as_float64(t, func, "t", ndim=0))
    require(np.isfinite(t), func, "t", "a finite float", repr(t))
    w = _time(func, w, "w")
    N = _check_n(func, N, max_n=64)
    x = _quad_states(u, lambda tt, r: tt - w + w * r, t, N, dps)
    if du is None:
        return x
    require(callable(du), func, "du", "None or a callable (the derivative of u)", type(du).__name__)
    return x, _quad_states(du, lambda tt, r: tt - w + w * r, t, N, dps)


def legs_reconstruction_error(u: Callable[[Any], Any], t: float, N: int, *, dps: int = 30) -> float:
    """``int_0^1 u(r t)^2 dr - ||x(t)||^2`` (Bessel): the squared L2 error on [0, 1] of the LegS
    reconstruction ``sum_{n<N} x_n(t) phi_n(r)`` of ``r -> u(r t)``, evaluated in mpmath before rounding.
    Source: Bessel's inequality (pinned here: u = e^{-t} cos 2t, t = 5: 5.10e-2 at N = 2 ... 7.8e-10 at N = 12)."""
    func = "legs_reconstruction_error"
    require(callable(u), func, "u", "a callable of one mpmath number", type(u).__name__)
    t = _time(func, t)
    N = _check_n(func, N, max_n=64)
    mp = _mp()
    with mp.workdps(dps):
        tt = mp.mpf(t)
        energy = mp.quad(lambda r: u(r * tt) ** 2, [0, 1])
        xs = [mp.quad(lambda r, n=n: u(r * tt) * _phi(mp, n, r), [0, 1]) for n in range(N)]
        return float(energy - mp.fsum(x * x for x in xs))


def _inputs(func: str, u: Any) -> np.ndarray:
    uu = as_float64(u, func, "u", ndim=1)
    require(uu.shape[0] >= 1, func, "u", "a sequence of at least one sample", f"shape {uu.shape}")
    require_finite(uu, func, "u")
    return uu


def _q(n: int, r: np.ndarray) -> np.ndarray:
    """Antiderivative of P_n(2r - 1) in r, zero at r = 0."""
    c = np.zeros(n + 1)
    c[n] = 1.0
    return npleg.legval(2 * r - 1, npleg.legint(c, lbnd=-1)) / 2


def legs_piecewise_constant_state(u: Any, N: int) -> np.ndarray:
    """Exact LegS state [N] at t = K eps of the piecewise-constant input ``u_j`` on ``[j eps, (j+1) eps)``,
    j < K = len(u): ``x_n = sum_j u_j sqrt(2n+1) [Q_n((j+1)/K) - Q_n(j/K)]`` (module docstring; eps cancels).
    Source: HiPPO LegS projection; Su kexue.fm/archives/10137 (input held constant per step)."""
    func = "legs_piecewise_constant_state"
    uu = _inputs(func, u)
    N = _check_n(func, N, max_n=64)
    K = uu.shape[0]
    edges = np.arange(K + 1) / K
    return np.array([np.sqrt(2 * n + 1) * float(np.dot(uu, np.diff(_q(n, edges)))) for n in range(N)])


def legs_discrete_states(u: Any, N: int, scheme: str = "exact") -> np.ndarray:
    """States [K, N] of a time-varying LegS scheme (module docstring) for samples u_0..u_{K-1}; row k is the
    state at t_{k+1} after consuming u_0..u_k, starting from ``x_1 = u_0 e_0``.  ``scheme`` in
    :data:`LEGS_SCHEMES`.  float64 (``scipy.linalg.expm`` for the exact scheme).
    Source: Su kexue.fm/archives/10137 ("exact" via tau = ln t, "bilinear" the post's midpoint
    scheme); "trapezoid" derived here."""
    func = "legs_discrete_states"
    uu = _inputs(func, u)
    N = _check_n(func, N, max_n=64)
    require(scheme in LEGS_SCHEMES, func, "scheme", f"one of {LEGS_SCHEMES}", repr(scheme))
    A, B = (np.asarray(m, np.float64) for m in hippo_legs(N))
    eye = np.eye(N)
    x = uu[0] * eye[0]
    out = [x]
    for k in range(1, uu.shape[0]):
        if scheme == "exact":
            E = optional_module("scipy.linalg").expm(np.log((k + 1) / k) * A)
            x = E @ x + np.linalg.solve(A, (E - eye) @ B) * uu[k]
        else:
            weight = 1.0 / k if scheme == "bilinear" else 0.5 / k + 0.5 / (k + 1)
            x = np.linalg.solve(eye - A / (2 * (k + 1)), (eye + A / (2 * k)) @ x + weight * B * uu[k])
        out.append(x)
    return np.stack(out)


def legs_hippo_code_step(N: int, t: int, discretization: str = "bilinear") -> tuple[np.ndarray, np.ndarray]:
    """The official HiPPO code's LegS step matrices ``(A_t [N, N], B_t [N])`` at time t >= 1 (module docstring):
    the LTI pair ``(A/t, B/t)`` discretised with unit step by ``discretization`` in
    :data:`HIPPO_CODE_DISCRETIZATIONS`, with the exact ``ln((t+1)/t)`` log-time step for ``"zoh"``.  float64.
    Source: HazyResearch/hippo-code ``model/hippo.py`` (``HiPPO_LegS.__init__``: ``A_stacked[t - 1]``,
    ``B_stacked[t - 1]``); Gu et al. 2020 appendix (LegS discretisation)."""
    func = "legs_hippo_code_step"
    N = _check_n(func, N, max_n=64)
    require(isinstance(t, int | np.integer) and not isinstance(t, bool) and t >= 1, func, "t", "an int >= 1",
            repr(t))
    require(discretization in HIPPO_CODE_DISCRETIZATIONS, func, "discretization",
            f"one of {HIPPO_CODE_DISCRETIZATIONS}", repr(discretization))
    A, B = (np.asarray(m, np.float64) for m in hippo_legs(N))
    eye = np.eye(N)
    At, Bt = A / t, B / t
    if discretization == "forward":
        return eye + At, Bt
    if discretization == "backward":
        return np.linalg.solve(eye - At, eye), np.linalg.solve(eye - At, Bt)
    if discretization == "bilinear":
        return np.linalg.solve(eye - At / 2, eye + At / 2), np.linalg.solve(eye - At / 2, Bt)
    E = optional_module("scipy.linalg").expm(np.log1p(1.0 / t) * A)
    return E, np.linalg.solve(A, E @ B - B)


def legs_hippo_code_states(u: Any, N: int, discretization: str = "bilinear", *,
                           initial_state: Any = None) -> np.ndarray:
    """States [K, N] of the official HiPPO code's ``HiPPO_LegS`` for samples u_0..u_{K-1}: from ``x_0`` (zeros,
    or ``initial_state`` [N]), ``x_{i+1} = A_t x_i + B_t u_i`` with ``t = i + 1`` (:func:`legs_hippo_code_step`);
    row i is ``x_{i+1}``.  With ``"zoh"`` row i equals ``legs_piecewise_constant_state([0, u_0, ..., u_i], N)``
    (the one-step delay of the module docstring).  float64.
    Source: HazyResearch/hippo-code ``model/hippo.py`` (``HiPPO_LegS.forward``, sequential unroll)."""
    func = "legs_hippo_code_states"
    uu = _inputs(func, u)
    N = _check_n(func, N, max_n=64)
    if initial_state is None:
        x = np.zeros(N)
    else:
        x = as_float64(initial_state, func, "initial_state", ndim=1)
        require(x.shape == (N,), func, "initial_state", f"of shape [N={N}]", f"shape {x.shape}")
        require_finite(x, func, "initial_state")
    out = []
    for i, ui in enumerate(uu):
        At, Bt = legs_hippo_code_step(N, i + 1, discretization)
        x = At @ x + Bt * ui
        out.append(x)
    return np.stack(out)
