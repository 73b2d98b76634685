"""Known alternative conventions of op ``linear_attention`` for the "likely cause" line of a failed check (see
``veriformer.properties.attention.alternatives`` for the format)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.ops import Alternatives

__all__ = ["linear_attention_alternatives"]


def linear_attention_alternatives(case: Any, a: dict[str, np.ndarray], opts: dict[str, Any]) -> Alternatives:
    """Scale ignored (1) or K^-1/2 instead of the one passed; gates read as decays (exp not applied); the state
    transposed ([V, K] instead of [K, V])."""
    kw = {"g": a.get("g"), "initial_state": a.get("initial_state"), "output_final_state": case.output_final_state}
    out: Alternatives = []

    def gold(**over: Any) -> dict[str, np.ndarray]:
        o, S = ref.linear_attention(a["q"], a["k"], a["v"], **{**kw, "scale": case.scale_value, **over})
        return {"o": o} if S is None else {"o": o, "final_state": S}

    for desc, s in (("scale 1 (scale ignored)", 1.0), (f"scale K^-1/2 = {case.K**-0.5:.4g}", case.K**-0.5)):
        if abs(s - case.scale_value) > 1e-12:
            out.append((f"{desc} instead of the scale passed ({case.scale_value:.4g})", gold(scale=s)))
    if a.get("g") is not None:
        g = a["g"]
        out.append(("g read as a decay factor (log(1 + g) as log-decay) instead of a log-decay",
                    gold(g=np.log(np.clip(1.0 + g, 1e-300, None)))))
    if case.output_final_state and case.K == case.V:
        o = gold()
        out.append(("the final state transposed ([V, K] instead of [K, V])",
                    {"o": o["o"], "final_state": np.swapaxes(o["final_state"], -1, -2)}))
    return out
