"""Edge regions of op ``sinkhorn``'s input space and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.regions import Regions, needs
from veriformer.properties.sinkhorn.strategies import SinkhornCase

__all__ = ["SINKHORN_REGIONS", "sinkhorn_corners"]


SINKHORN_REGIONS = Regions({
    "n=1": (needs(), lambda c: c.n == 1),
    "m=1": (needs(), lambda c: c.m == 1),
    "rectangular": (needs(), lambda c: c.n != c.m),
    "tiny eps (max|C|/eps >= 500)": (needs(), lambda c: c.ratio >= 500),
    "exp(-C/eps) underflows in float64 (shifted cost, C/eps > 745)": (
        needs(), lambda c: c.shift > 0 and (c.shift - (0.0 if c.cost == "uniform" else 4 * c.amp)) / c.eps > 745),
    "one sweep": (needs(), lambda c: c.n_iters == 1),
    "random marginals": (needs(), lambda c: c.marginals == "random"),
})


def sinkhorn_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[SinkhornCase]:
    return [SinkhornCase(B=2, n=5, m=3, eps=0.002, n_iters=20, cost="gauss", marginals="random", seed=501),
            SinkhornCase(B=1, n=1, m=7, eps=0.5, n_iters=5, cost="sqdist", marginals="random", seed=502),
            SinkhornCase(B=1, n=6, m=1, eps=0.1, n_iters=1, cost="uniform", seed=503),
            SinkhornCase(B=1, n=8, m=8, eps=0.01, n_iters=50, cost="uniform", shift=10.0, seed=504)]
