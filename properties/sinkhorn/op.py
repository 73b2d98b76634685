"""Op ``sinkhorn``: ``fn(C, a, b, *, eps, n_iters) -> P``.

C [B, n, m], a [B, n], b [B, m] float; P [B, n, m] the entropic transport plan after ``n_iters`` log-domain (or
scaling-domain: the same iterates) sweeps, each a row update then a column update, started from g = 0 (v = 1), so
``P^T 1 = b``.  Semantics: :func:`veriformer.reference.sinkhorn_log`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.sinkhorn import naive
from veriformer.ops import Alternatives, OpSpec, register_op
from veriformer.properties.sinkhorn import regions
from veriformer.properties.sinkhorn import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["SINKHORN"]



def _cond(n_iters: int) -> float:
    """Condition of the plan's rounding: 2 + 2 sqrt(sweeps) (independent roundings per sweep add in quadrature; at
    small eps the sweep contracts too little to damp them)."""
    return 2.0 + 2.0 * float(np.sqrt(n_iters))


register_tolerance(Tolerance("op.sinkhorn", rho=2.0, floor_ulps=4.0, reason=(
    "P_ij = exp((f_i + g_j - C_ij)/eps): an absolute error d in the exponent's three summands (each up to "
    "|C|/eps, |f|/eps, |g|/eps in size) is a relative error d of P_ij.  Each sweep rounds the potentials again; a "
    "sweep is 1-Lipschitz in the sup norm but at small eps contracts little, so the roundings of L sweeps add up, "
    "in quadrature when independent (Higham & Mary 2019).  So the conditioned floor is 4 ulp of the accumulator "
    "(float32 for half inputs) x (2 + 2 sqrt(L)) at s_ij = P_ij (max|C| + max|f| + max|g|)/eps (maxima per batch "
    "element: each log-sum-exp mixes a whole row or column), plus 4 ulp at P_ij "
    "(the final rounding to the dtype; subnormal outputs at the subnormal spacing).  Measured for the torch "
    "log-domain kernel in float32: at most 0.57 (2 + 2 sqrt(L)) u_float32 s_ij beyond one ulp of P_ij over 300 "
    "drawn cases (max|C|/eps up to 16000, 1-50 sweeps; a floor margin of about 0.15).  Judged against the naive "
    "scaling iterations in the dtype, which return "
    "NaN once exp(-C/eps) underflows a whole row (C/eps beyond ~17 in float16, ~88 in float32): a NaN baseline "
    "counts as error 0, so there the kernel must meet the floors alone.")))
register_tolerance(Tolerance("op.sinkhorn.grad", rho=2.0, floor_ulps=8.0, reason=(
    "The VJP dC of the unrolled sweeps: sums of products of P (or the row/column softmaxes) with the cotangent, "
    "each carrying the forward's relative error; floor at their sizes as op.sinkhorn, twice the ulps.")))


def _call(fn: Any, t: dict[str, Any], case: strat.SinkhornCase, opts: dict[str, Any]) -> Any:
    return fn(t["C"], t["a"], t["b"], eps=case.eps, n_iters=case.n_iters)


def _gold(case: strat.SinkhornCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> np.ndarray:
    return ref.sinkhorn_log(a["C"], a["a"], a["b"], eps=case.eps, n_iters=case.n_iters)


def _gold_vjp(case: strat.SinkhornCase, a: dict[str, np.ndarray], g: dict[str, np.ndarray],
              opts: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"C": ref.sinkhorn_vjp(a["C"], a["a"], a["b"], g["out"], eps=case.eps, n_iters=case.n_iters)}


def _conditioning(case: strat.SinkhornCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray] | None,
                  opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Per element: condition 2 + 2 sqrt(n_iters) (see the tolerance row), summand size s_ij = P_ij (max|C| + max|f|
    + max|g|)/eps (maxima per batch element: every log-sum-exp of a sweep mixes the whole row or column) and
    root-sum-square P_ij (the output's own rounding).  For dC: the cotangent-weighted sizes |G| s plus the row and
    column sums of |G| s that the unrolled VJP adds back."""
    P, f, g, _ = ref.sinkhorn_log(a["C"], a["a"], a["b"], eps=case.eps, n_iters=case.n_iters,
                                  return_potentials=True)
    R = np.abs(a["C"]).max((-2, -1)) + np.abs(f).max(-1) + np.abs(g).max(-1)
    s = P * R[..., None, None] / case.eps
    out: dict[str, tuple[Any, ...]] = {"out": (_cond(case.n_iters), s, P)}
    if cots is not None:
        w = np.abs(cots["out"]) * s / case.eps
        sw = w + w.sum(-1, keepdims=True) + w.sum(-2, keepdims=True)
        out["dC"] = (2 * _cond(case.n_iters), sw, sw)
    return out


def _alternatives(case: strat.SinkhornCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> Alternatives:
    """Known other conventions: the plan after a final row update (P 1 = a exact), one sweep fewer or more, eps
    read as 2 eps (entropy with a factor 1/2), and OTK's plan scaled by m (marginals m/n and 1)."""
    C, am, bm, L = a["C"], a["a"], a["b"], case.n_iters
    P = ref.sinkhorn_log(C, am, bm, eps=case.eps, n_iters=L)
    out: Alternatives = [
        ("the plan after a final row update (P 1 = a exact instead of P^T 1 = b)",
         {"out": P * (am / P.sum(-1))[..., :, None]}),
        ("one sweep more (n_iters + 1)", {"out": ref.sinkhorn_log(C, am, bm, eps=case.eps, n_iters=L + 1)}),
        ("eps doubled (the entropy weighted by eps/2 elsewhere)",
         {"out": ref.sinkhorn_log(C, am, bm, eps=2 * case.eps, n_iters=L)}),
        ("OTK's scaled plan m P (marginals m/n and 1)", {"out": case.m * P}),
    ]
    if L > 1:
        out.append(("one sweep fewer (n_iters - 1)", {"out": ref.sinkhorn_log(C, am, bm, eps=case.eps, n_iters=L - 1)}))
    return out


def _sweep(size: int, seed: int) -> strat.SinkhornCase:
    """A square problem of side ``size``, eps = 0.05 x the cost's size, 20 sweeps."""
    return strat.SinkhornCase(B=1, n=size, m=size, eps=0.05, n_iters=20, cost="sqdist", seed=seed)


SINKHORN = register_op(OpSpec(
    name="sinkhorn",
    convention="fn(C, a, b, *, eps, n_iters) -> P; C [B,n,m], a [B,n], b [B,m]; n_iters sweeps (row update, then "
               "column update) from g = 0, so P^T 1 = b",
    source="Cuturi 2013 (arXiv:1306.0895); Peyré & Cuturi 2019 (arXiv:1803.00567) §4.2-4.4",
    features=frozenset(),
    options={},
    strategy=lambda features, dtype, opts: strat.sinkhorn_cases(max_ratio=None, shift=None, max_n=16),
    call=_call,
    gold=_gold,
    gold_vjp=_gold_vjp,
    baseline=lambda opts: naive.sinkhorn,
    differentiable=("C",),
    size=lambda case: case.n * case.m,
    tolerance="op.sinkhorn",
    conditioning=_conditioning,
    sweep=_sweep,
    sweep_sizes=(16, 64, 256),
    alternatives=_alternatives,
    regions=regions.SINKHORN_REGIONS,
    corners=regions.sinkhorn_corners,
))
