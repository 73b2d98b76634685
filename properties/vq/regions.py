"""Edge regions of the vq ops' input spaces and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.regions import Regions, needs
from veriformer.properties.vq.strategies import VQCase

__all__ = [
    "VQ_REGIONS",
    "vq_corners",
]


VQ_REGIONS = Regions({
    "T=1": (needs(), lambda c: c.T == 1),
    "causal": (needs(), lambda c: c.causal),
    "one code for every key": (needs(), lambda c: c.one_code),
    "shared codebook": (needs(), lambda c: c.shared_codebook),
    "codebook of 1": (needs(), lambda c: c.C == 1),
    "non-default scale": (needs(), lambda c: c.scale is not None),
})


def vq_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[VQCase]:
    return [VQCase(B=1, H=2, T=9, D=8, Dv=3, C=5, shared_codebook=True, causal=True, scale=1.0, seed=701),
            VQCase(B=1, H=1, T=1, D=4, Dv=8, C=1, one_code=True, seed=702)]
