"""Edge regions of op ``monarch_matmul``'s input space and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.monarch.strategies import MonarchMatmulCase
from veriformer.properties.regions import Regions, needs

__all__ = ["MONARCH_REGIONS", "monarch_corners"]


MONARCH_REGIONS = Regions({
    "n = 1": (needs(), lambda c: c.n_in == 1),
    "single block (k = 1 or l = 1)": (needs(), lambda c: c.k == 1 or c.l == 1),
    "rectangular blocks (q != l)": (needs(), lambda c: c.q != c.l),
    "n_out != n_in": (needs(), lambda c: c.n_out != c.n_in),
    "large amplitude": (needs(), lambda c: c.amp >= 100),
})


def monarch_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[MonarchMatmulCase]:
    return [MonarchMatmulCase(B=1, T=1, k=1, q=1, p=1, l=1, s=1, seed=501),
            MonarchMatmulCase(B=2, T=3, k=4, q=3, p=2, l=6, s=5, amp=100.0, seed=502),
            MonarchMatmulCase(B=1, T=5, k=8, q=8, p=8, l=8, s=8, seed=503)]
