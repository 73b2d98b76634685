"""Edge regions of the attention ops' input spaces and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.attention.strategies import MAX_LOGIT, AttentionCase
from veriformer.properties.regions import Regions, needs

__all__ = [
    "ATTENTION_REGIONS",
    "attention_corners",
]


ATTENTION_REGIONS = Regions({
    "T=1": (needs(), lambda c: c.T == 1),
    "S=1": (needs(), lambda c: c.S == 1),
    "T<S": (needs(), lambda c: c.T < c.S),
    "T=S": (needs(), lambda c: c.T == c.S),
    "causal T<S": (needs("causal"), lambda c: c.causal and 1 < c.T < c.S),
    "gqa": (needs("gqa"), lambda c: c.H > c.Hkv),
    "window>=S": (needs("window"), lambda c: c.window is not None and c.window >= c.S),
    "window=1": (needs("window"), lambda c: c.window == 1),
    "sinks with causal": (needs("sinks", "window", "causal"), lambda c: c.sinks > 0 and c.causal),
    "fully masked rows": (needs("mask"), lambda c: c.mask is not None),
    "additive mask": (needs("mask"), lambda c: c.mask == "additive"),
    "huge logits": (needs(), lambda c: c.amp >= 100),
    "non-default scale": (needs(), lambda c: c.scale is not None),
})


def attention_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[AttentionCase]:
    """Four cases that together reach every region their features allow."""
    causal = "causal" in features
    hkv = 1 if "gqa" in features else 2
    win = "window" in features
    sinks = 2 if "sinks" in features and win else 0
    amp = min(1e4, MAX_LOGIT[dtype])
    return [
        AttentionCase(B=1, H=2, Hkv=hkv, T=5, S=11, D=8, Dv=8, causal=causal, window=3 if win else None,
                      sinks=sinks, seed=101),
        AttentionCase(B=1, H=2, Hkv=2, T=6, S=6, D=16, Dv=8, causal=causal, window=9 if win else None,
                      mask="bool" if "mask" in features else None, scale=0.3, seed=102),
        AttentionCase(B=2, H=2, Hkv=hkv, T=1, S=1, D=4, Dv=4, window=1 if win else None, amp=amp, seed=103),
        AttentionCase(B=1, H=2, Hkv=2, T=3, S=9, D=8, Dv=8, causal=causal,
                      mask="additive" if "mask" in features else None, amp=8.0, seed=104),
    ]
