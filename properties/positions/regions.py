"""Edge regions of op ``rerope_attention``'s input space and the corner cases that reach them in every campaign
(see ``veriformer.properties.regions``)."""

from __future__ import annotations

import math
from typing import Any

from veriformer.properties.positions.strategies import ReropeCase
from veriformer.properties.regions import Regions, needs

__all__ = ["REROPE_REGIONS", "rerope_corners"]

REROPE_REGIONS = Regions({
    "T=1 (decode)": (needs(), lambda c: c.T == 1),
    "window 0 (every pair rectified)": (needs(), lambda c: c.window == 0),
    "window >= S (plain RoPE)": (needs(), lambda c: c.window >= c.S),
    "seam inside the sequence": (needs(), lambda c: 0 < c.window < c.S),
    "Leaky (finite k > 1)": (needs(), lambda c: math.isfinite(c.leak) and c.leak > 1),
    "S >= 256": (needs(), lambda c: c.S >= 256),
    "GQA (Hkv < H)": (needs("gqa"), lambda c: c.Hkv is not None and c.Hkv < c.H),
})


def rerope_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[ReropeCase]:
    gqa = [ReropeCase(T=9, S=40, D=16, window=8, leak=16.0, H=4, Hkv=1, seed=504)] if "gqa" in features else []
    return [*gqa, ReropeCase(T=1, S=300, D=64, window=64, leak=16.0, seed=501),
            ReropeCase(T=40, S=300, D=32, window=128, leak=math.inf, seed=502),
            ReropeCase(T=17, S=17, D=8, window=0, leak=2.0, seed=503)]
