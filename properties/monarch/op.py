"""Op ``monarch_matmul``: ``fn(x, w1, w2) -> y`` in the layout of HazyResearch/fly ``blockdiag_butterfly_multiply``:
x [B, T, k p], w1 [k, q, p] (R: k blocks q x p, out x in), w2 [l, s, r] (L: l blocks s x r, l r = k q),
y [B, T, l s] = P_(l,s) L P_(r,l) R x.  Semantics: :mod:`veriformer.reference.monarch`."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.monarch import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.monarch import regions
from veriformer.properties.monarch import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["MONARCH_MATMUL"]

register_tolerance(Tolerance("op.monarch_matmul", rho=2.0, floor_ulps=4.0, reason=(
    "Two chained block products: each output is a sum of r products w2 v, each v a sum of p products w1 x, "
    "rounded once in the middle to the input dtype by the naive bmm (kept in float32 by a fused kernel); 4 ulp at "
    "the element, 4 ulp at the root-sum-square of its r p summands w2 w1 x (independent roundings add in "
    "quadrature) and condition 1 at their sum of magnitudes in the accumulator's precision.")))
register_tolerance(Tolerance("op.monarch_matmul.grad", rho=2.0, floor_ulps=8.0, reason=(
    "dx, dw1, dw2 are the same two chained block products run backwards (dw sums over the B T tokens as well): "
    "8 ulp, twice the forward floor, at the element and at the root-sum-square of its summands.")))


def _conditioning(case: strat.MonarchMatmulCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray] | None,
                  opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """The product is multilinear with non-negative structure: the oracle on |x|, |w1|, |w2| gives each output's
    sum of |summands|, and on x^2, w1^2, w2^2 the sum of squared summands (root-sum-square after sqrt)."""
    x, w1, w2 = a["x"], a["w1"], a["w2"]
    out: dict[str, tuple[Any, ...]] = {
        "out": (1.0, ref.monarch_matmul(np.abs(x), np.abs(w1), np.abs(w2)),
                np.sqrt(ref.monarch_matmul(x * x, w1 * w1, w2 * w2)))}
    if cots is not None:
        g = cots["out"]
        m = ref.monarch_matmul_vjp(np.abs(g), np.abs(x), np.abs(w1), np.abs(w2))
        q = ref.monarch_matmul_vjp(g * g, x * x, w1 * w1, w2 * w2)
        out.update({f"d{n}": (1.0, m[n], np.sqrt(q[n])) for n in ("x", "w1", "w2")})
    return out


def _sweep(size: int, seed: int) -> strat.MonarchMatmulCase:
    """Square Monarch with n = size (m = sqrt(n) blocks of m x m), 64 tokens."""
    m = max(1, round(size**0.5))
    return strat.MonarchMatmulCase(B=1, T=64, k=m, q=m, p=m, l=m, s=m, seed=seed)


MONARCH_MATMUL = register_op(OpSpec(
    name="monarch_matmul",
    convention="fn(x, w1, w2) -> y; x [B,T,k*p], w1 [k,q,p], w2 [l,s,r] (l*r = k*q), y [B,T,l*s] = "
               "P_(l,s) blockdiag(w2) P_(r,l) blockdiag(w1) x (fly blockdiag_butterfly_multiply layout)",
    source="Dao et al. 2022 (Monarch, arXiv:2204.00595); HazyResearch/fly blockdiag_butterfly_multiply",
    features=frozenset(),
    options={},
    strategy=lambda features, dtype, opts: strat.monarch_matmul_cases(),
    call=lambda fn, t, case, opts: fn(t["x"], t["w1"], t["w2"]),
    gold=lambda case, a, opts: ref.monarch_matmul(a["x"], a["w1"], a["w2"]),
    gold_vjp=lambda case, a, g, opts: ref.monarch_matmul_vjp(g["out"], a["x"], a["w1"], a["w2"]),
    baseline=lambda opts: naive.monarch_matmul,
    differentiable=("x", "w1", "w2"),
    size=lambda case: case.n_in,
    tolerance="op.monarch_matmul",
    conditioning=_conditioning,
    sweep=_sweep,
    sweep_sizes=(16, 64, 256, 1024),
    regions=regions.MONARCH_REGIONS,
    corners=regions.monarch_corners,
))
