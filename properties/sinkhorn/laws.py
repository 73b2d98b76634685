"""Laws of entropic optimal transport by Sinkhorn-Knopp (Cuturi 2013, arXiv:1306.0895; Peyré & Cuturi 2019,
"Computational Optimal Transport", arXiv:1803.00567, ch. 4).  Entropy convention: H(P) = -sum P (log P - 1)
(Peyré & Cuturi 2019, eq. 4.1); a sweep is a row update then a column update, from g = 0."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound, Rate
from veriformer.properties.sinkhorn.strategies import SinkhornCase, sinkhorn_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
PC = "Peyré & Cuturi 2019 (arXiv:1803.00567)"
SRC = f"{PC} §4.2-4.4; Cuturi 2013 (arXiv:1306.0895)"


def _kw(case: SinkhornCase, **over: Any) -> dict[str, Any]:
    return {"eps": case.eps, "n_iters": case.n_iters, **over}


def _exp_terms(C: np.ndarray, f: np.ndarray, g: np.ndarray, eps: float) -> float:
    """Rounding budget of exp((f + g - C)/eps): the argument carries an absolute error of a few u (|f| + |g| + |C|)/eps,
    which exp turns into the same relative error."""
    return 4.0 * (float(np.abs(C).max()) + float(np.abs(f).max()) + float(np.abs(g).max())) / eps


@law("sinkhorn.marginals", family="sinkhorn", source=SRC + " (P^T 1 = b after each column update)")
def marginals(ref: Any, case: SinkhornCase = sinkhorn_cases()) -> list[Any]:
    """After any number of sweeps (each ending with the column update) P^T 1 = b to rounding and P >= 0; run to
    tolerance 1e-9 (at most 3000 sweeps, eps >= max|C|/12), P 1 = a to that tolerance as well."""
    a = case.arrays()
    P, f, g, _ = ref.sinkhorn_log(a["C"], a["a"], a["b"], return_potentials=True, **_kw(case))
    t = case.n + 8 + _exp_terms(a["C"], f, g, case.eps)
    out: list[Any] = [Agreement(P.sum(-2), a["b"], "P^T 1 == b", terms=t, scale=float(a["b"].max())),
                      Bound(-P, 0.0, "P >= 0")]
    if case.ratio <= 12:
        Pc = ref.sinkhorn_log(a["C"], a["a"], a["b"], eps=case.eps, n_iters=3000, tol=1e-9)
        out.append(Bound(np.abs(Pc.sum(-1) - a["a"]), 1e-9, "|P 1 - a| <= tol at convergence"))
    return out


@law("sinkhorn.log_equals_scaling", family="sinkhorn", source=SRC + " (eq. 4.15 vs 4.43-4.44)")
def log_equals_scaling(ref: Any, case: SinkhornCase = sinkhorn_cases(max_ratio=50)) -> Agreement:
    """The log-domain iterations f = eps log u, g = eps log v give the same plan as the scaling iterations when
    max|C|/eps <= 50 (no underflow): the two forms round differently, by a few u (n + m + |C|/eps) per sweep."""
    a = case.arrays()
    P, f, g, _ = ref.sinkhorn_log(a["C"], a["a"], a["b"], return_potentials=True, **_kw(case))
    Ps = ref.sinkhorn_scaling(a["C"], a["a"], a["b"], **_kw(case))
    t = (case.n + case.m + 8 + _exp_terms(a["C"], f, g, case.eps)) * min(case.n_iters, 8)
    return Agreement(Ps, P, "scaling plan == log plan", terms=t, scale=float(P.max()))


@law("sinkhorn.log_domain_underflow", family="sinkhorn",
     source=f"{PC} §4.4 (log-domain stabilisation); Schmitzer 2019 (arXiv:1610.06519)")
def log_domain_underflow(ref: Any, case: SinkhornCase = sinkhorn_cases(max_ratio=None, min_ratio=800,
                                                                       shift=True)) -> list[Any]:
    """Where every C_ij/eps exceeds ~745 (C + 10 amp at small eps) exp(-C/eps) underflows in float64 and the scaling
    form divides 0 by 0; the log form stays finite and equals the plan of C - 10 amp (a constant shift of the cost
    leaves the plan unchanged), within the rounding of the shifted cost, u |C + shift| / eps relative."""
    a = case.arrays()
    P = ref.sinkhorn_log(a["C"], a["a"], a["b"], **_kw(case))
    P0, f, g, _ = ref.sinkhorn_log(a["C"] - case.shift, a["a"], a["b"], return_potentials=True, **_kw(case))
    t = (case.n + case.m + 8 + _exp_terms(a["C"], f, g, case.eps)) * min(case.n_iters, 8)
    return [Bound(np.isnan(P).astype(float), 0.0, "log plan has no NaN"),
            Agreement(P, P0, "plan(C + c) == plan(C), log domain, C/eps beyond exp's range", terms=t,
                      scale=float(P0.max()))]


@law("sinkhorn.invariances", family="sinkhorn", source=SRC + "; Peyré & Cuturi 2019 Remark 4.11 (cost shifts)")
def invariances(ref: Any, case: SinkhornCase = sinkhorn_cases(max_ratio=50),
                k: int = st.integers(-3, 3), perm_seed: int = st.integers(0, 2**31)) -> list[Agreement]:
    """At every iterate (the sweep starts with the row update, from g = 0): C_ij + alpha_i gives the same plan,
    (2^k C, 2^k eps) gives the same plan, and permuting the rows of (C, a) permutes the rows of P.  A column shift
    C_ij + beta_j changes the iterates (the first row update sees it) but not the fixed point: checked at
    convergence (tolerance 1e-12) when max|C|/eps <= 12."""
    a = case.arrays()
    C, am, bm = a["C"], a["a"], a["b"]
    rng = np.random.default_rng(perm_seed)
    P, f, g, _ = ref.sinkhorn_log(C, am, bm, return_potentials=True, **_kw(case))
    al, be = rng.standard_normal(am.shape) * case.amp, rng.standard_normal(bm.shape) * case.amp
    Psh = ref.sinkhorn_log(C + al[..., :, None], am, bm, **_kw(case))
    Psc = ref.sinkhorn_log(C * 2.0**k, am, bm, eps=case.eps * 2.0**k, n_iters=case.n_iters)
    pi = rng.permutation(case.n)
    Ppi = ref.sinkhorn_log(C[..., pi, :], am[..., pi], bm, **_kw(case))
    big = float(np.abs(C).max()) + float(np.abs(f).max()) + float(np.abs(g).max()) + 8 * case.amp
    t = (case.n + case.m + 8 + 4 * big / case.eps) * min(case.n_iters, 8)
    tp = (case.n + case.m + 8 + _exp_terms(C, f, g, case.eps)) * min(case.n_iters, 8)
    sc = float(P.max())
    out = [Agreement(Psh, P, "plan(C + alpha 1^T) == plan(C), every iterate", terms=t, scale=sc),
           Agreement(Psc, P, "plan(2^k C, 2^k eps) == plan(C, eps)", terms=tp, scale=sc),
           Agreement(Ppi, P[..., pi, :], "plan(C[pi], a[pi]) == plan(C, a)[pi]", terms=tp, scale=sc)]
    if case.ratio <= 12:
        kw = {"eps": case.eps, "n_iters": 5000, "tol": 1e-12}
        Pc = ref.sinkhorn_log(C, am, bm, **kw)
        Pcs = ref.sinkhorn_log(C + al[..., :, None] + be[..., None, :], am, bm, **kw)
        out.append(Agreement(Pcs, Pc, "plan(C + alpha 1^T + 1 beta^T) == plan(C) at convergence",
                             atol=1e-10 * float(Pc.max()) + 1e-12, tolerance="law.defined"))
    return out


@law("sinkhorn.cross_ratio", family="sinkhorn", source=SRC + " (P = diag(u) K diag(v), Prop. 4.3)")
def cross_ratio(ref: Any, case: SinkhornCase = sinkhorn_cases(max_ratio=50)) -> Agreement:
    """Every iterate has the form diag(u) exp(-C/eps) diag(v): eps log P_ij + C_ij = f_i + g_j, so its double
    centring (the cross-ratios P_ik P_jl / (P_il P_jk) = exp(-(C_ik + C_jl - C_il - C_jk)/eps)) vanishes."""
    a = case.arrays()
    P, f, g, _ = ref.sinkhorn_log(a["C"], a["a"], a["b"], return_potentials=True, **_kw(case))
    with np.errstate(divide="ignore"):
        R = case.eps * np.log(P) + a["C"]
    R = R - R.mean(-1, keepdims=True) - R.mean(-2, keepdims=True) + R.mean((-2, -1), keepdims=True)
    scale = float(np.abs(a["C"]).max()) + float(np.abs(f).max()) + float(np.abs(g).max())
    return Agreement(R, np.zeros_like(R), "double centring of eps log P + C == 0", terms=16, scale=scale)


@law("sinkhorn.duality", family="sinkhorn", source=f"{PC} Prop. 4.4 and §4.2 (block coordinate ascent)")
def duality(ref: Any, case: SinkhornCase = sinkhorn_cases(max_n=6, max_ratio=12, max_B=2)) -> list[Any]:
    """The dual D(f, g) = <f, a> + <g, b> - eps sum exp((f + g - C)/eps) never decreases over the sweeps, stays below
    the primal <P, C> - eps H(P) of the converged plan (weak duality), and equals it at convergence (strong duality:
    <P, C> - eps H(P) = <f, a> + <g, b> - eps)."""
    a = case.arrays()
    C, am, bm, eps = a["C"], a["a"], a["b"], case.eps
    Ds = []
    for L in range(1, 9):
        _, f, g, _ = ref.sinkhorn_log(C, am, bm, eps=eps, n_iters=L, return_potentials=True)
        Ds.append(ref.entropic_ot_dual(f, g, C, am, bm, eps=eps))
    Ds = np.stack(Ds, -1)
    P, f, g, _ = ref.sinkhorn_log(C, am, bm, eps=eps, n_iters=3000, tol=1e-13, return_potentials=True)
    primal = ref.entropic_ot_primal(P, C, eps=eps)
    dual = ref.entropic_ot_dual(f, g, C, am, bm, eps=eps)
    scale = float(np.abs(C).max()) + float(np.abs(f).max()) + float(np.abs(g).max()) + eps * 8
    tol = 64 * U * scale * (case.n * case.m + 8)
    return [Bound(Ds[..., :-1] - Ds[..., 1:], 0.0, "D(sweep l) <= D(sweep l+1)", slack=tol),
            Bound(Ds, primal[..., None], "D <= OT_eps (weak duality)", slack=tol + 1e-12 * scale),
            Agreement(primal, dual, "<P,C> - eps H(P) == D(f, g) at convergence",
                      atol=tol + 1e-12 * scale, tolerance="law.defined")]


@law("sinkhorn.mpmath_certificate", family="sinkhorn", kind="certificate", max_examples=10,
     source="mpmath at 40 digits; Higham 2002 ch. 2-3; " + PC + " §4.4")
def mpmath_certificate(ref: Any, case: SinkhornCase = sinkhorn_cases(max_n=4, max_ratio=100,
                                                                     n_iters=(1, 2, 5, 10))) -> Agreement:
    """The float64 log-domain plan agrees with the same code in mpmath (40 digits) within 4 u L (n + m + 8 +
    4 (|C| + |f| + |g|)/eps) max P: each sweep (1-Lipschitz in the sup norm) adds a few u (|C| + |f| + |g|) to the
    potentials, and exp turns an error d in f + g into the relative error d / eps."""
    case = dataclasses.replace(case, B=1)
    a = case.arrays()
    _, f, g, _ = ref.sinkhorn_log(a["C"], a["a"], a["b"], return_potentials=True, **_kw(case))
    P = ref.sinkhorn_log(a["C"], a["a"], a["b"], **_kw(case))
    Pm = ref.sinkhorn_log(a["C"], a["a"], a["b"], backend=MP(40), **_kw(case))
    bound = 4 * U * case.n_iters * (case.n + case.m + 8 + _exp_terms(a["C"], f, g, case.eps)) * float(Pm.max())
    return Agreement(P, Pm, "float64 log plan == mpmath plan", atol=bound, tolerance="law.certificate")


def _planted(n: int, seed: int, gap: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    C = gap + rng.random((n, n))
    C[np.arange(n), rng.permutation(n)] = 0.0
    return C


@law("sinkhorn.eps_to_zero_assignment", family="sinkhorn", kind="asymptotic", max_examples=6,
     source=f"{PC} Prop. 4.1 (eps -> 0 limit); scipy.optimize.linear_sum_assignment")
def eps_to_zero(ref: Any, n: int = st.integers(2, 5), seed: int = st.integers(0, 2**31)) -> list[Any]:
    """For uniform square marginals and a cost with a planted optimal permutation (cost 0 on it, >= gap = 0.5
    elsewhere), n P_eps tends to the permutation matrix of ``linear_sum_assignment(C)`` like exp(-c/eps): the error
    fitted against h = exp(-1/eps) at eps = 0.3, 0.2, 0.14, 0.1 has order >= gap/2 (measured 0.62-0.67); and
    the cost <P_eps, C> decreases to the assignment's."""
    from scipy.optimize import linear_sum_assignment

    gap = 0.5
    C = _planted(n, seed, gap)
    r, c = linear_sum_assignment(C)
    Pm = np.zeros((n, n))
    Pm[r, c] = 1.0
    a = np.full(n, 1.0 / n)
    epss = np.array([0.3, 0.2, 0.14, 0.1])
    errs, costs = [], []
    for eps in epss:
        P = ref.sinkhorn_log(C, a, a, eps=float(eps), n_iters=1000, tol=1e-8)
        errs.append(float(np.abs(n * P - Pm).max()))
        costs.append(float(np.sum(P * C)))
    return [Rate(np.exp(-1 / epss), errs, order=gap / 2 + 0.1, slack=0.1,
                 what="max |n P_eps - Perm| = O(exp(-c/eps)), c >= gap/2"),
            Bound(np.diff(costs), 0.0, "<P_eps, C> decreases as eps -> 0", slack=1e-12),
            Bound(float(np.sum(Pm * C)) / n, costs[-1], "OT_0 <= <P_eps, C>", slack=1e-12)]


@law("sinkhorn.entropic_gap", family="sinkhorn", source=f"{PC} Prop. 4.1 and eq. 4.7 (H(P) <= H(a) + H(b))")
def entropic_gap(ref: Any, case: SinkhornCase = sinkhorn_cases(max_n=6, max_ratio=12, max_B=1)) -> list[Bound]:
    """0 <= <P_eps, C> - OT_0 <= eps min(H_S(a), H_S(b)) (Shannon entropies) at convergence, OT_0 from
    ``scipy.optimize.linprog``: P_eps minimises <P, C> - eps H_S(P) over U(a, b), so <P_eps,C> - OT_0 <=
    eps (H_S(P_eps) - H_S(P_0)) <= eps (H_S(a) + H_S(b) - max(H_S(a), H_S(b)))."""
    from scipy.optimize import linprog

    a = case.arrays()
    C, am, bm = a["C"][0], a["a"][0], a["b"][0]
    n, m = C.shape
    A_eq = np.vstack([np.kron(np.eye(n), np.ones((1, m))), np.kron(np.ones((1, n)), np.eye(m))])
    lp = linprog(C.ravel(), A_eq=A_eq, b_eq=np.concatenate([am, bm]), bounds=(0, None), method="highs")
    ot0 = float(lp.fun)
    P = ref.sinkhorn_log(C, am, bm, eps=case.eps, n_iters=3000, tol=1e-11)
    gap = float(np.sum(P * C)) - ot0
    hs = min(-float(np.sum(am * np.log(am))), -float(np.sum(bm * np.log(bm))))
    slack = 1e-9 * (1 + float(np.abs(C).max()) * n) + 1e-11
    return [Bound(-gap, 0.0, "<P_eps, C> >= OT_0", slack=slack),
            Bound(gap, case.eps * hs, "<P_eps, C> - OT_0 <= eps min(H(a), H(b))", slack=slack)]


@law("sinkhorn.eps_to_infinity", family="sinkhorn", kind="asymptotic",
     source=f"{PC} Prop. 4.1 (eps -> infinity gives a b^T); first-order term by expanding exp(-C/eps)")
def eps_to_infinity(ref: Any, case: SinkhornCase = sinkhorn_cases(max_n=8, max_B=1)) -> list[Any]:
    """As eps -> infinity P_eps -> a b^T, and eps (P_eps - a b^T) -> -a_i b_j (C_ij - (C b)_i - (C^T a)_j + a^T C b)
    with an error O(1/eps): fitted order >= 0.75 over eps = (10, 100, 1000) x (max C - min C)."""
    a = case.arrays()
    C, am, bm = a["C"][0], a["a"][0], a["b"][0]
    R = float(C.max() - C.min()) or 1.0
    first = -am[:, None] * bm[None, :] * (C - (C @ bm)[:, None] - (am @ C)[None, :] + am @ C @ bm)
    epss = np.array([10.0, 100.0, 1000.0]) * R
    errs, lim = [], []
    for eps in epss:
        P = ref.sinkhorn_log(C, am, bm, eps=float(eps), n_iters=200, tol=1e-15)
        errs.append(float(np.abs(eps * (P - np.outer(am, bm)) - first).max()) / R + 1e-300)
        lim.append(float(np.abs(P - np.outer(am, bm)).max()))
    out: list[Any] = [Bound(lim[-1], 2.0 * R / epss[-1], "|P_eps - a b^T| <= 2 (max C - min C)/eps")]
    if max(errs) > 1e-9:  # n = 1 or m = 1: the plan is a b^T at every eps (nothing to fit)
        out.append(Rate(1 / epss, errs, order=1.0, what="eps (P - a b^T) - first-order term = O(1/eps)"))
    else:
        out.append(Bound(max(errs), 1e-9, "eps (P - a b^T) == first-order term (n = 1 or m = 1: both 0)"))
    return out


@law("sinkhorn.hilbert_contraction", family="sinkhorn", kind="asymptotic",
     source="Franklin & Lorenz 1989 (Linear Algebra Appl. 114/115); " + PC + " Theorem 4.2 and Remark 4.12")
def hilbert_contraction(ref: Any, case: SinkhornCase = sinkhorn_cases(max_n=8, max_ratio=8, max_B=1)) -> Bound:
    """Each sweep contracts the Hilbert projective distance to the fixed point: d_H(v^{l+1}, v*) <= lambda^2
    d_H(v^l, v*), lambda = tanh(Delta / 4 eps), Delta = max_{ijkl} (C_ik + C_jl - C_il - C_jk), with
    d_H(v, v') = max log(v/v') - min log(v/v') = (max(g - g') - min(g - g'))/eps; v* from a run to tolerance 1e-14.
    Ratios are taken while d_H > 1e-9 (above the fixed point's rounding)."""
    a = case.arrays()
    C, am, bm, eps = a["C"], a["a"], a["b"], case.eps
    _, _, gs, _ = ref.sinkhorn_log(C, am, bm, eps=eps, n_iters=5000, tol=1e-14, return_potentials=True)
    d = []
    for L in range(1, 7):
        _, _, g, _ = ref.sinkhorn_log(C, am, bm, eps=eps, n_iters=L, return_potentials=True)
        d.append(float(np.ptp(g - gs)) / eps)
    C0 = C[0]
    cross = C0[:, None, :, None] + C0[None, :, None, :] - C0[:, None, None, :] - C0[None, :, :, None]
    lam2 = float(np.tanh(float(cross.max()) / (4 * eps)) ** 2)
    d = np.array(d)
    live = d[:-1] > 1e-9
    ratios = np.where(live, d[1:] / np.where(live, d[:-1], 1.0), 0.0)
    return Bound(ratios, lam2, "d_H(v^{l+1}, v*) / d_H(v^l, v*) <= tanh(Delta/4 eps)^2", slack=1e-6)
