"""Known alternative conventions and planted-bug signatures per op, for the "likely cause" line of a failed
check: when a case fails, ``check()`` compares the candidate's output with the gold answer under each
alternative and names the one it matches ("your output matches layout='half' ...").

Each function takes (case, float64 arrays as rounded to the dtype, op options) and returns
``[(description, {output name: alternative gold})]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref

__all__ = ["attention_alternatives", "linear_attention_alternatives", "rope_alternatives"]

Alternatives = list[tuple[str, dict[str, np.ndarray]]]


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
