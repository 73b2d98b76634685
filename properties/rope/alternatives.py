"""Known alternative conventions of op ``rope`` for the "likely cause" line of a failed check (see
``veriformer.properties.attention.alternatives`` for the format)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.ops import Alternatives

__all__ = ["rope_alternatives"]


def rope_alternatives(case: Any, a: dict[str, np.ndarray], opts: dict[str, Any]) -> Alternatives:
    """Other pairing, positions from 1, positions negated (inverse rotation), rotary_dim ignored."""
    layout, rd = opts["layout"], opts["rotary_dim"]
    other = "interleaved" if layout == "half" else "half"
    out: Alternatives = [
        (f"layout={other!r} (you called check with layout={layout!r})",
         {"out": ref.rope(a["x"], a["positions"], base=case.base, layout=other, rotary_dim=rd)}),
        ("positions counted from 1 (n + 1)",
         {"out": ref.rope(a["x"], a["positions"] + 1, base=case.base, layout=layout, rotary_dim=rd)}),
        ("the inverse rotation (angle -n theta, sin sign flipped)",
         {"out": ref.rope(a["x"], -a["positions"], base=case.base, layout=layout, rotary_dim=rd)}),
    ]
    if rd is not None:
        out.append(("rotary_dim ignored (every channel rotated)",
                    {"out": ref.rope(a["x"], a["positions"], base=case.base, layout=layout)}))
    return out
