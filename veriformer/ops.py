"""Op specifications: the calling convention a callable under test follows, how its inputs are drawn,
its float64 gold answer (and VJP), and its naive torch baseline.

Registered ops (conventions other projects write adapters to):

* ``softmax_attention``: ``fn(q, k, v, *, causal: bool, scale: float, **features) -> o``; q [B, H, T, D],
  k/v [B, Hkv, S, D(v)], o [B, H, T, Dv].  Features a callable may declare: ``causal`` (causal=True may be
  drawn), ``gqa`` (Hkv < H), ``window`` (int), ``sinks`` (int), ``mask`` (bool or additive float
  [B|1, H|1, T, S]).  Semantics: :mod:`veriformer.reference.attention`.
* ``rope``: ``fn(x, positions, *, base: float) -> y``; x [B, H, T, D] float, positions int64 [T]; the
  pairing is fixed per ``check()`` call by ``layout="half"|"interleaved"`` and ``rotary_dim=``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from . import reference as ref
from .fast import naive
from .properties import strategies as strat
from .properties.attention_laws import logit_bound

__all__ = ["OPS", "OpSpec", "get_op"]


@dataclass(frozen=True)
class OpSpec:
    name: str
    convention: str
    source: str
    features: frozenset[str]
    options: dict[str, Any]
    strategy: Callable[[frozenset[str], str, dict[str, Any]], st.SearchStrategy[Any]]
    call: Callable[[Callable[..., Any], dict[str, torch.Tensor], Any, dict[str, Any]], Any]
    gold: Callable[[Any, dict[str, np.ndarray], dict[str, Any]], np.ndarray]
    gold_vjp: Callable[[Any, dict[str, np.ndarray], np.ndarray, dict[str, Any]], dict[str, np.ndarray]]
    baseline: Callable[[dict[str, Any]], Callable[..., Any]]  # options -> naive torch callable
    differentiable: tuple[str, ...]
    size: Callable[[Any], int]
    tolerance: str
    validate_options: Callable[[dict[str, Any]], None] = field(default=lambda o: None)
    # conditioned floor: (condition, summand scale) per output name ("out", "dq", ...); see
    # compare.judge_against_baseline.  Default: no conditioned term (well-conditioned ops).
    conditioning: Callable[[Any, dict[str, np.ndarray], np.ndarray | None], dict[str, tuple[float, float]]] = \
        field(default=lambda case, a, cot: {})


# -- softmax_attention ------------------------------------------------------------------------------

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
                            cot: np.ndarray | None) -> dict[str, tuple[float, float]]:
    """(condition, summand size) per output.  Output: L = max|logit| at max|v|.  Gradients, with
    Cauchy-Schwarz bounds: dS_ij = P_ij (dO_i.v_j - dO_i.o_i) has |dS_ij| <= 2 P_ij |dO_i| max|v|, so dq_i =
    scale sum_j dS_ij k_j has summands <= 2 scale |dO| |v| |k| (dk alike with |q|); dv_j = sum_i P_ij dO_i
    has at most T H/Hkv summands of size <= |dO|; condition 1 + L."""
    def rn(x: np.ndarray) -> float:
        return float(np.linalg.norm(x, axis=-1).max()) if x.size else 0.0

    L = logit_bound(case, a)
    out = {"out": (L, float(np.abs(a["v"]).max()))}
    if cot is not None:
        common = 2 * abs(case.scale_value) * rn(cot) * rn(a["v"])
        out.update({"dq": (1 + L, common * rn(a["k"])), "dk": (1 + L, common * rn(a["q"])),
                    "dv": (1 + L, case.T * (case.H // case.Hkv) * float(np.abs(cot).max()))})
    return out


SOFTMAX_ATTENTION = OpSpec(
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
        ref.softmax_attention_vjp(a["q"], a["k"], a["v"], g, **_attention_kwargs(case, a)), strict=True)),
    baseline=lambda opts: naive.softmax_attention,
    differentiable=("q", "k", "v"),
    size=lambda case: case.S,
    tolerance="op.softmax_attention",
    conditioning=lambda case, a, cot: _attention_conditioning(case, a, cot),
)


# -- rope -------------------------------------------------------------------------------------------

def _rope_options(opts: dict[str, Any]) -> None:
    if opts.get("layout") not in ref.LAYOUTS:
        raise ValueError(f"check(op='rope'): argument 'layout' must be one of {ref.LAYOUTS}; "
                         f"got {opts.get('layout')!r}")
    rd = opts.get("rotary_dim")
    if rd is not None and not (isinstance(rd, int) and rd >= 2 and rd % 2 == 0 and rd <= 256):
        raise ValueError(f"check(op='rope'): argument 'rotary_dim' must be None or an even int in "
                         f"[2, 256]; got {rd!r}")


def _rope_kwargs(case: strat.RopeCase, opts: dict[str, Any]) -> dict[str, Any]:
    return {"base": case.base, "layout": opts["layout"], "rotary_dim": opts["rotary_dim"]}


ROPE = OpSpec(
    name="rope",
    convention="fn(x, positions, *, base) -> y; x [B,H,T,D], positions int64 [T]; layout/rotary_dim fixed "
               "per check() call",
    source="Su et al. 2021 (RoFormer); spec attention.md 5.1",
    features=frozenset(),
    options={"layout": "half", "rotary_dim": None},
    strategy=lambda features, dtype, opts: strat.rope_cases(layout=opts["layout"],
                                                            rotary_dim=opts["rotary_dim"]),
    call=lambda fn, t, case, opts: fn(t["x"], t["positions"], base=case.base),
    gold=lambda case, a, opts: ref.rope(a["x"], a["positions"], **_rope_kwargs(case, opts)),
    gold_vjp=lambda case, a, g, opts: {"x": ref.rope_vjp(g, a["positions"], **_rope_kwargs(case, opts))},
    baseline=lambda opts: functools.partial(naive.rope, layout=opts["layout"], rotary_dim=opts["rotary_dim"]),
    differentiable=("x",),
    size=lambda case: case.T,
    tolerance="op.rope",
    validate_options=_rope_options,
)

OPS: dict[str, OpSpec] = {op.name: op for op in (SOFTMAX_ATTENTION, ROPE)}


def get_op(name: str) -> OpSpec:
    """The op spec named ``name`` (ValueError lists the known ops)."""
    if name not in OPS:
        raise ValueError(f"argument 'op' must be one of {sorted(OPS)}; got {name!r}")
    return OPS[name]
