"""Edge regions of the rope ops' input spaces and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.regions import Regions, needs
from veriformer.properties.rope.strategies import RopeCase

__all__ = [
    "ROPE_REGIONS",
    "rope_corners",
]


ROPE_REGIONS = Regions({
    "T=1": (needs(), lambda c: c.T == 1),
    "positions >= 65536": (needs(), lambda c: (c.positions == "offset" and c.offset >= 65536)
                           or (c.positions in ("random", "signed") and c.max_position >= 65536)),
    "negative positions": (needs(), lambda c: c.positions == "signed"),
    "decode offset": (needs(), lambda c: c.positions == "offset"),
    "large amplitude": (needs(), lambda c: c.amp >= 100),
})


def rope_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[RopeCase]:
    rd = opts.get("rotary_dim")
    D = max(16, rd or 0)
    return [RopeCase(B=1, H=1, T=1, D=D, positions="offset", offset=10**6, rotary_dim=rd, seed=401,
                     layout=opts.get("layout", "half")),
            RopeCase(B=1, H=2, T=6, D=D, positions="signed", max_position=10**6, amp=300.0, rotary_dim=rd,
                     seed=402, layout=opts.get("layout", "half"))]
