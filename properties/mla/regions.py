"""Edge regions of op ``mla_decode``'s input space and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.mla.strategies import MlaDecodeCase
from veriformer.properties.regions import Regions, needs

__all__ = ["MLA_REGIONS", "mla_corners"]

MLA_REGIONS = Regions({
    "T=1 (decode)": (needs(), lambda c: c.T == 1),
    "T > S (queries with no visible key)": (needs(), lambda c: c.T > c.S),
    "DeepSeek-V2 widths (d_c 512, d_r 64)": (needs(), lambda c: c.d_c == 512 and c.d_r == 64),
    "S > 64 (several key tiles and splits)": (needs(), lambda c: c.S > 64),
    "large logits (amp >= 10)": (needs(), lambda c: c.amp >= 10),
})


def mla_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[MlaDecodeCase]:
    """Three cases that together reach every region."""
    return [MlaDecodeCase(B=1, T=1, H=16, S=70, d_c=512, d_r=64, d_nope=128, seed=501),
            MlaDecodeCase(B=2, T=4, H=2, S=3, d_c=16, d_r=8, d_nope=16, amp=10.0, seed=502),
            MlaDecodeCase(B=1, T=2, H=5, S=33, d_c=32, d_r=16, d_nope=128, amp=3.0, seed=503)]
