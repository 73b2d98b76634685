"""Edge regions of the linear_attention ops' input spaces and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.linear_attention.strategies import LinearAttentionCase
from veriformer.properties.regions import Regions, needs

__all__ = [
    "LINEAR_ATTENTION_REGIONS",
    "linear_attention_corners",
]


LINEAR_ATTENTION_REGIONS = Regions({
    "T=1": (needs(), lambda c: c.T == 1),
    "several chunks plus a partial one": (needs(), lambda c: c.T > 64 and c.T % 64 != 0),
    "no gate": (needs(), lambda c: c.gate is None),
    "mild decay": (needs("gate"), lambda c: c.gate is not None and c.gate <= 0.1),
    "strong decay": (needs("gate"), lambda c: c.gate is not None and c.gate >= 5.0),
    "initial state": (needs("initial_state"), lambda c: c.initial_state),
    "final state": (needs(), lambda c: c.output_final_state),
    "non-default scale": (needs(), lambda c: c.scale is not None),
})


def linear_attention_corners(features: frozenset[str], dtype: str,
                             opts: dict[str, Any]) -> list[LinearAttentionCase]:
    gate = "gate" in features
    init = "initial_state" in features
    return [
        LinearAttentionCase(B=1, T=130, H=1, K=4, V=4, gate=0.05 if gate else None, initial_state=init,
                            output_final_state=True, scale=0.5, seed=201),
        LinearAttentionCase(B=2, T=1, H=2, K=8, V=4, initial_state=init, seed=202),
        LinearAttentionCase(B=1, T=20, H=2, K=4, V=8, gate=5.0 if gate else None, output_final_state=True,
                            seed=203),
    ]
