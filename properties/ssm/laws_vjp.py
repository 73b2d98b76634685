"""Laws of the state-space VJPs (:mod:`veriformer.reference.ssm.vjp`): each analytic VJP, dotted with a random
direction, equals the directional derivative of <cotangent, forward> by central differences in mpmath.

Method (all three laws): inputs x, direction dx, cotangents c; ``lhs = sum_i vjp(x, c)_i dx_i`` in float64;
``rhs = (f(x + h dx) - f(x - h dx)) / 2h`` with ``f = <c, forward(x)>`` evaluated at 50 digits, h = 1e-15
(truncation ~ h^2 |f'''| ~ 1e-30, rounding ~ 1e-50/h = 1e-35: rhs is exact to float64 resolution).  The
allowed error is ``terms * u * sum_i mass_i |dx_i|`` with ``mass`` the summand masses of the VJP
(``absolute=True``: every factor of the backward replaced by its absolute value), so cancellation in a
gradient entry does not loosen the test and a wrong term of relative size >> terms * u fails it.

Sizes are tiny (L <= 6 scan steps, <= 16 kernel taps): mpmath object arrays.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mpmath
import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.ssm.strategies import S4DCase, ScanCase, SSDCase, s4d_cases, scan_cases, ssd_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
FAMILY = "ssm"
H_STEP = 1e-15
SRC = "chain rule (reverse-mode adjoint); central differences in mpmath at 50 digits"


def _directional(lhs_terms: dict[str, np.ndarray], mass: dict[str, np.ndarray], dx: dict[str, np.ndarray],
                 f: Any, terms: float, what: str) -> Agreement:
    """Agreement of <vjp, dx> with the mpmath central difference of f(sign * h) (f returns an mpf)."""
    lhs = float(sum(float(np.sum(lhs_terms[n] * dx[n])) for n in dx))
    scale = float(sum(float(np.sum(np.abs(mass[n]) * np.abs(dx[n]))) for n in dx)) + 1e-300
    with mpmath.workdps(50):
        h = mpmath.mpf(H_STEP)
        rhs = float((f(h) - f(-h)) / (2 * h))
    return Agreement(lhs, rhs, what, terms=terms, scale=scale, tolerance="law.certificate")


def _shift(mp: Any, a: dict[str, np.ndarray], dx: dict[str, np.ndarray], s: Any) -> dict[str, Any]:
    out = {k: v for k, v in a.items()}
    for n in dx:
        out[n] = mp.asarray(a[n]) + s * mp.asarray(dx[n])
    return out


# -- SSD ---------------------------------------------------------------------------------------------------------


@law("ssm.ssd_vjp_directional", family=FAMILY, kind="certificate", max_examples=10,
     source=SRC + "; Dao & Gu 2024 (SSD); reference.ssd_vjp")
def ssd_vjp_directional(ref: Any, case: SSDCase = ssd_cases(max_chunks=3),
                        dir_seed: int = st.integers(0, 2**31)) -> Agreement:
    """<ssd_vjp(dY, dH), dx> == d/dh [<dY, Y(x + h dx)> + <dH, H_final(x + h dx)>] for X, A, B, C and the
    initial state (directions in A keep A <= 0), mild, zero and steep decays; rounding budget
    8 (l + n + p + 16) u times the summand mass along dx."""
    case = dataclasses.replace(case, b=1, h=1, p=min(case.p, 2), n=min(case.n, 2), chunks=min(case.chunks, 3),
                               chunk_size=min(case.chunk_size, 2))
    a = case.arrays()
    rng = np.random.default_rng(dir_seed)
    gy = rng.standard_normal(a["X"].shape)
    gh = rng.standard_normal((case.b, case.h, case.p, case.n))
    names = [n for n in ("X", "A", "B", "C", "initial_states") if n in a]
    dx = {n: rng.standard_normal(a[n].shape) for n in names}
    dx["A"] = -np.abs(dx["A"]) * np.minimum(1.0, -a["A"])  # A +- h dA stays <= 0 (0 where A == 0)
    h0 = a.get("initial_states")
    g = ref.ssd_vjp(a["X"], a["A"], a["B"], a["C"], gy, h0, gh)
    m = ref.ssd_vjp(a["X"], a["A"], a["B"], a["C"], gy, h0, gh, absolute=True)
    key = {n: "d" + n for n in names}
    mp = MP(50, exact_output=True)

    def f(s: Any) -> Any:
        x = _shift(mp, a, dx, s)
        Y, H = ref.ssd_recurrence(x["X"], x["A"], x["B"], x["C"], x.get("initial_states"), backend=mp)
        return mpmath.fsum((mp.asarray(gy) * Y).reshape(-1)) + mpmath.fsum((mp.asarray(gh) * H).reshape(-1))

    return _directional({n: g[key[n]] for n in names}, {n: m[key[n]] for n in names}, dx, f,
                        8 * (case.length + case.n + case.p + 16), "<ssd_vjp, dx> == directional derivative")


# -- selective scan ----------------------------------------------------------------------------------------------


def _scan_kw(case: ScanCase, a: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {k: a[k] for k in ("D", "z", "delta_bias") if k in a}
    kw["delta_softplus"] = case.softplus
    return kw


@law("ssm.selective_scan_vjp_directional", family=FAMILY, kind="certificate", max_examples=12,
     source=SRC + "; mamba selective_scan_ref; reference.selective_scan_vjp")
def selective_scan_vjp_directional(ref: Any, case: ScanCase = scan_cases(max_L=6),
                                   softplus: bool = st.booleans(),
                                   dir_seed: int = st.integers(0, 2**31)) -> Agreement:
    """<selective_scan_vjp(dout, dlast), dx> == d/dh [<dout, out(x + h dx)> + <dlast, x_L(x + h dx)>] over u,
    delta, A, B, C, D, z, delta_bias (constant, variable and grouped B/C; softplus on or off); rounding budget
    16 (L + n + 8) u times the summand mass along dx."""
    case = dataclasses.replace(case, b=1, d=min(case.d, 2), n=min(case.n, 4), L=min(case.L, 6),
                               groups=min(case.groups, 2), softplus=softplus, use_bias=case.use_bias or softplus)
    if case.bc == "grouped" and case.d % case.groups:
        case = dataclasses.replace(case, groups=1)
    a = case.arrays()
    rng = np.random.default_rng(dir_seed)
    gout = rng.standard_normal(a["u"].shape)
    glast = rng.standard_normal((case.b, case.d, case.n))
    names = [n for n in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias") if n in a]
    dx = {n: rng.standard_normal(a[n].shape) for n in names}
    kw = _scan_kw(case, a)
    g = ref.selective_scan_vjp(a["u"], a["delta"], a["A"], a["B"], a["C"], grad_out=gout, grad_last_state=glast,
                               **kw)
    m = ref.selective_scan_vjp(a["u"], a["delta"], a["A"], a["B"], a["C"], grad_out=gout, grad_last_state=glast,
                               absolute=True, **kw)
    mp = MP(50, exact_output=True)

    def f(s: Any) -> Any:
        x = _shift(mp, a, dx, s)
        o, last = ref.selective_scan(x["u"], x["delta"], x["A"], x["B"], x["C"], return_last_state=True,
                                     backend=mp, **_scan_kw(case, x))
        return mpmath.fsum((mp.asarray(gout) * o).reshape(-1)) + mpmath.fsum((mp.asarray(glast) * last).reshape(-1))

    return _directional({n: g["d" + n] for n in names}, {n: m["d" + n] for n in names}, dx, f,
                        16 * (case.L + case.n + 8), "<selective_scan_vjp, dx> == directional derivative")


# -- S4D kernel --------------------------------------------------------------------------------------------------


def _s4d_kernel_mp(log_dt: Any, A: Any, B: Any, C: Any, L: int) -> np.ndarray:
    """``K[h, l] = 2 Re sum_n C B (e^{dt A} - 1)/A e^{l dt A}`` in mpmath (inputs: object arrays of mpf/mpc),
    written out here so the forward is independent of the oracle's float64 input conversion."""
    H, N2 = np.shape(A)
    K = np.empty((H, L), dtype=object)
    for hh in range(H):
        dt = mpmath.exp(log_dt[hh])
        W = [C[hh, n] * B[hh, n] * (mpmath.exp(dt * A[hh, n]) - 1) / A[hh, n] for n in range(N2)]
        for l in range(L):
            K[hh, l] = 2 * mpmath.re(mpmath.fsum(W[n] * mpmath.exp(l * dt * A[hh, n]) for n in range(N2)))
    return K


@law("ssm.s4d_kernel_vjp_directional", family=FAMILY, kind="certificate", max_examples=10,
     source=SRC + "; S4 models/s4/s4d.py; reference.s4d_kernel_vjp")
def s4d_kernel_vjp_directional(ref: Any, case: S4DCase = s4d_cases(max_L=16),
                               dir_seed: int = st.integers(0, 2**31)) -> Agreement:
    """<s4d_kernel_vjp(dK), dx> == d/dh <dK, K(x + h dx)> over log_dt and the real and imaginary parts of A, B,
    C (the op's real inputs); rounding budget 8 (L + N2 + 16)(1 + (L - 1) max|dt A|) u times the summand mass
    along dx (the phase l dt A of e^{l dt A} carries a relative error u, an absolute error u l |dt A|)."""
    case = dataclasses.replace(case, H=min(case.H, 2), N2=min(case.N2, 4), L=min(case.L, 16))
    a = case.arrays()
    rng = np.random.default_rng(dir_seed)
    gk = rng.standard_normal((case.H, case.L))
    names = ("log_dt", "A_re", "A_im", "B_re", "B_im", "C_re", "C_im")
    dx = {n: rng.standard_normal(a[n].shape) for n in names}

    def cplx(x: dict[str, Any], n: str) -> Any:
        return x[n + "_re"] + 1j * x[n + "_im"]

    args = (a["log_dt"], cplx(a, "A"), cplx(a, "B"), cplx(a, "C"), case.L)
    g = ref.s4d_kernel_vjp(*args, gk)
    m = ref.s4d_kernel_vjp(*args, gk, absolute=True)
    mp = MP(50, exact_output=True)

    def f(s: Any) -> Any:
        x = _shift(mp, a, dx, s)
        parts = {n: (x[n + "_re"], x[n + "_im"]) for n in "ABC"}
        A_, B_, C_ = (np.vectorize(mpmath.mpc, otypes=[object])(*parts[n]) for n in "ABC")
        K = _s4d_kernel_mp(x["log_dt"], A_, B_, C_, case.L)
        return mpmath.fsum((mp.asarray(gk) * K).reshape(-1))

    phase = 1.0 + (case.L - 1) * float(np.abs(np.exp(a["log_dt"])[:, None] * cplx(a, "A")).max())
    return _directional({n: g["d" + n] for n in names}, {n: m["d" + n] for n in names}, dx, f,
                        8 * (case.L + case.N2 + 16) * phase, "<s4d_kernel_vjp, dx> == directional derivative")
