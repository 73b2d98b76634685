"""Op ``softmax_attention``: ``fn(q, k, v, *, causal: bool, scale: float, **features) -> o``.

q [B, H, T, D], k/v [B, Hkv, S, D(v)], o [B, H, T, Dv].  Features a callable may declare: ``causal``
(causal=True may be drawn), ``gqa`` (Hkv < H), ``window`` (int), ``sinks`` (int), ``mask`` (bool or additive
float [B|1, H|1, T, S]).  Semantics: :mod:`veriformer.reference.attention`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import reference as ref
from .fast import naive
from .ops import OpSpec, register_op
from .properties import strategies as strat
from .properties.attention_laws import logit_bound

__all__ = ["SOFTMAX_ATTENTION"]


def _attention_call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: strat.AttentionCase,
                    opts: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"causal": case.causal, "scale": case.scale_value, **case.features()}
    if "mask" in t:
        kw["mask"] = t["mask"]
    return fn(t["q"], t["k"], t["v"], **kw)


def _attention_kwargs(case: strat.AttentionCase, a: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"scale": case.scale_value, "causal": case.causal, "window": case.window, "sinks": case.sinks,
            "mask": a.get("mask")}


def _attention_conditioning(case: strat.AttentionCase, a: dict[str, np.ndarray],
                            cots: dict[str, np.ndarray] | None) -> dict[str, tuple[float, float]]:
    """(condition, summand size) per output.  Output: L = max|logit| at max|v|.  Gradients, with
    Cauchy-Schwarz bounds: dS_ij = P_ij (dO_i.v_j - dO_i.o_i) has |dS_ij| <= 2 P_ij |dO_i| max|v|, so dq_i =
    scale sum_j dS_ij k_j has summands <= 2 scale |dO| |v| |k| (dk alike with |q|); dv_j = sum_i P_ij dO_i
    has at most T H/Hkv summands of size <= |dO|; condition 1 + L."""
    def rn(x: np.ndarray) -> float:
        return float(np.linalg.norm(x, axis=-1).max()) if x.size else 0.0

    L = logit_bound(case, a)
    out = {"out": (L, float(np.abs(a["v"]).max()))}
    if cots is not None:
        cot = cots["out"]
        common = 2 * abs(case.scale_value) * rn(cot) * rn(a["v"])
        out.update({"dq": (1 + L, common * rn(a["k"])), "dk": (1 + L, common * rn(a["q"])),
                    "dv": (1 + L, case.T * (case.H // case.Hkv) * float(np.abs(cot).max()))})
    return out


def _sweep(size: int, seed: int) -> strat.AttentionCase:
    """Causal self-attention, B=1, H=2, D=64, unit logits: the typical shape of an LLM layer."""
    return strat.AttentionCase(B=1, H=2, Hkv=2, T=size, S=size, D=64, Dv=64, causal=True, amp=1.0, seed=seed)


SOFTMAX_ATTENTION = register_op(OpSpec(
    name="softmax_attention",
    convention="fn(q, k, v, *, causal, scale, **features) -> o; q [B,H,T,D], k/v [B,Hkv,S,D], o [B,H,T,Dv]",
    source="Vaswani et al. 2017; spec attention.md sections 3, 4, 8",
    features=strat.ATTENTION_FEATURES,
    options={},
    strategy=lambda features, dtype, opts: strat.attention_cases(features=features, dtype=dtype),
    call=_attention_call,
    gold=lambda case, a, opts: ref.softmax_attention(a["q"], a["k"], a["v"], **_attention_kwargs(case, a)),
    gold_vjp=lambda case, a, g, opts: dict(zip(
        ("q", "k", "v"),
        ref.softmax_attention_vjp(a["q"], a["k"], a["v"], g["out"], **_attention_kwargs(case, a)), strict=True)),
    baseline=lambda opts: naive.softmax_attention,
    differentiable=("q", "k", "v"),
    size=lambda case: case.S,
    tolerance="op.softmax_attention",
    conditioning=_attention_conditioning,
    sweep=_sweep,
    sweep_sizes=(16, 64, 256, 1024),
))
