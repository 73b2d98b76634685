"""Known alternative conventions and planted-bug signatures of op ``softmax_attention``, for the "likely cause" line of
a failed check: when a case fails, ``check()`` compares the candidate's output with the gold answer under each
alternative and names the one it matches ("your output matches layout='half' ...").

Each function takes (case, float64 arrays as rounded to the dtype, op options) and returns ``[(description, {output
name: alternative gold})]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.ops import Alternatives

__all__ = ["attention_alternatives"]


def attention_alternatives(case: Any, a: dict[str, np.ndarray], opts: dict[str, Any]) -> Alternatives:
    """Scale 1/D, 1 or 1/sqrt(D) instead of the one passed; causal mask top-left aligned instead of end-aligned;
    a window that does not count the query's own key (w + 1 keys) or that counts one fewer."""
    base = {"causal": case.causal, "window": case.window, "sinks": case.sinks, "mask": a.get("mask")}
    D, sc = case.D, case.scale_value
    out: Alternatives = []
    for desc, s in ((f"scale 1/D = {1 / D:.4g}", 1 / D), ("scale 1 (no scaling)", 1.0),
                    (f"scale 1/sqrt(D) = {D**-0.5:.4g}", D**-0.5)):
        if abs(s - sc) > 1e-12 * abs(sc):
            out.append((f"{desc} instead of the scale passed ({sc:.4g})",
                        {"out": ref.softmax_attention(a["q"], a["k"], a["v"], scale=s, **base)}))
    if case.causal and case.T < case.S and case.window is None:
        top_left = np.tril(np.ones((case.T, case.S), dtype=bool))[None, None]
        m = top_left if a.get("mask") is None else (a["mask"].astype(bool) & top_left)
        if a.get("mask") is None or a["mask"].dtype == bool:
            out.append(("a causal mask aligned top-left (query i sees keys 0..i) instead of end-aligned (keys up "
                        "to i + S - T)", {"out": ref.softmax_attention(a["q"], a["k"], a["v"], scale=sc,
                                                                       mask=m, sinks=0)}))
    if case.window is not None:
        for w, desc in ((case.window + 1, "a window of w + 1 keys (not counting the query's own key)"),
                        (max(case.window - 1, 1), "a window of w - 1 keys")):
            if w != case.window:
                out.append((desc, {"out": ref.softmax_attention(a["q"], a["k"], a["v"], scale=sc,
                                                                **{**base, "window": w})}))
    return out
