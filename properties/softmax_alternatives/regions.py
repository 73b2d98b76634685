"""Edge regions of ops ``sparsemax`` and ``entmax15`` and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.regions import Regions, needs
from veriformer.properties.softmax_alternatives.strategies import ProbMapCase

__all__ = ["PROB_MAP_REGIONS", "prob_map_corners"]

PROB_MAP_REGIONS = Regions({
    "n=1": (needs(), lambda c: c.n == 1),
    "ties": (needs(), lambda c: c.ties in ("grid", "top_tie") and c.n >= 2),
    "all equal": (needs(), lambda c: c.ties == "all_equal" and c.n >= 2),
    "huge scores (|z| >= 1e4)": (needs(), lambda c: c.amp >= 1e4 or abs(c.shift) >= 1e4),
    "dense (amp <= 0.3)": (needs(), lambda c: c.amp <= 0.3 and c.ties != "all_equal" and c.n >= 2),
    "long (n >= 1024)": (needs(), lambda c: c.n >= 1024),
})


def prob_map_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[ProbMapCase]:
    """n = 1; grid ties at unit scale; all equal at a shift of 1e4; huge spread; a dense long row."""
    return [ProbMapCase(lead=1, rows=3, n=1, amp=1.0, shift=3.0, seed=501),
            ProbMapCase(lead=2, rows=2, n=9, amp=1.0, ties="grid", seed=502),
            ProbMapCase(lead=1, rows=2, n=6, amp=1.0, shift=1e4, ties="all_equal", seed=503),
            ProbMapCase(lead=1, rows=2, n=17, amp=1e4, shift=-1e4, ties="top_tie", seed=504),
            ProbMapCase(lead=1, rows=1, n=1024, amp=0.3, shift=1e4, seed=505)]
