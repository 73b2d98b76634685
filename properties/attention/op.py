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

from veriformer import reference as ref
from veriformer.fast.attention import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.attention import alternatives, regions
from veriformer.properties.attention import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["SOFTMAX_ATTENTION"]

register_tolerance(Tolerance("op.softmax_attention", rho=2.0, floor_ulps=4.0, reason=(
    "Issue policy rho = 2 over the naive torch formula in the same dtype, plus a 4 ulp floor at each "
    "output's magnitude (an exactly rounded baseline cannot fail a kernel that reorders its sums), 4 ulp of "
    "the dtype at sigma_i = sqrt(sum_j p_ij^2 v_jd^2) (P rounded to the dtype for the P V product: independent "
    "roundings add in quadrature, Hoeffding bound, fails a correct kernel with probability < 2 exp(-32) per "
    "element) and 4 ulp x L at s_i = sum_j p_ij |v_jd| (L = max|logit|) in the accumulator's precision "
    "(float32 for half inputs): rounding a logit of size L once moves its weight by a relative u L, which "
    "any correct kernel may incur (observed: torch SDPA's CPU forward in float32 at L ~ 300 had 3-8x the "
    "naive error on cases where naive was lucky).  The log-sum-exp (feature lse) is judged with condition "
    "1 at L + 1 (a logit rounded once moves it by u L).  Measured at S = 4096 in bf16: the old floor at "
    "max|v| passed an all-zero output; per element it fails at margin ~50.")))
register_tolerance(Tolerance("op.softmax_attention.grad", rho=2.0, floor_ulps=8.0, reason=(
    "Gradients: rho = 2; an 8 ulp floor at each element, and 8 ulp x (1 + L) at the size of the "
    "summands of each gradient (global Cauchy-Schwarz bounds, _attention_conditioning below; the "
    "normwise guard keeps a scaled or zero gradient from hiding in them): dS = P (dP - "
    "rowsum(dO O)) cancels, and a flash-style backward recomputes P = exp(s - lse) from the saved "
    "log-sum-exp, rounding a logit-sized number (observed: torch SDPA's CPU backward in float32 at "
    "L ~ 300 had 30x the naive autograd error, which keeps P).")))


def _attention_call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: strat.AttentionCase,
                    opts: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"causal": case.causal, "scale": case.scale_value, **case.features()}
    if "mask" in t:
        kw["mask"] = t["mask"]
    res = fn(t["q"], t["k"], t["v"], **kw)
    return res if case.return_lse else (res, None)


def _attention_gold(case: strat.AttentionCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, Any]:
    o, lse = ref.softmax_attention(a["q"], a["k"], a["v"], return_lse=True, **_attention_kwargs(case, a))
    return {"out": o, "lse": lse} if case.return_lse else {"out": o}


def _attention_kwargs(case: strat.AttentionCase, a: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"scale": case.scale_value, "causal": case.causal, "window": case.window, "sinks": case.sinks,
            "mask": a.get("mask")}


def attention_summand_scales(logits: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output element o_id = sum_j p_ij v_jd: the sum of |summands| ``s = P |V|`` and their root-sum-square
    ``sigma = sqrt(P^2 V^2)``, with P = softmax(logits) (rows with no visible key: 0) and kv heads repeated for
    GQA.  logits [B, H, T, S] with -inf where invisible, v [B, Hkv, S, Dv] -> two arrays [B, H, T, Dv]."""
    m = np.max(logits, axis=-1, keepdims=True, initial=-np.inf)
    e = np.exp(logits - np.where(np.isfinite(m), m, 0.0))
    z = e.sum(axis=-1, keepdims=True)
    p = np.where(z > 0, e / np.where(z > 0, z, 1.0), 0.0)
    vv = np.repeat(v, logits.shape[1] // v.shape[1], axis=1)
    return p @ np.abs(vv), np.sqrt((p * p) @ (vv * vv))


def _attention_conditioning(case: strat.AttentionCase, a: dict[str, np.ndarray],
                            cots: dict[str, np.ndarray] | None,
                            opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """(condition, summand size[, root-sum-square]) per output.  Output: L = max|logit| at each element's own
    summands p_ij v_jd (attention_summand_scales).  Gradients, with
    Cauchy-Schwarz bounds: dS_ij = P_ij (dO_i.v_j - dO_i.o_i) has |dS_ij| <= 2 P_ij |dO_i| max|v|, so dq_i =
    scale sum_j dS_ij k_j has summands <= 2 scale |dO| |v| |k| (dk alike with |q|); dv_j = sum_i P_ij dO_i
    has at most T H/Hkv summands of size <= |dO|; condition 1 + L."""
    def rn(x: np.ndarray) -> float:
        return float(np.linalg.norm(x, axis=-1).max()) if x.size else 0.0

    L = strat.logit_bound(case, a)
    logits = ref.attention_logits(a["q"], a["k"], **{k: w for k, w in _attention_kwargs(case, a).items()})
    s, sigma = attention_summand_scales(logits, a["v"])
    out: dict[str, tuple[Any, ...]] = {"out": (L, s, sigma), "lse": (1.0, L + 1.0)}
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
    convention="fn(q, k, v, *, causal, scale, **features) -> o (or (o, lse) with return_lse=True); q [B,H,T,D], "
               "k/v [B,Hkv,S,D], o [B,H,T,Dv], lse [B,H,T] (natural log, float32 allowed for half inputs, -inf "
               "for rows with no visible key)",
    source="Vaswani et al. 2017; Milakov & Gimelshein 2018; Ainslie et al. 2023 (GQA); Xiao et al. 2023 (sinks)",
    features=strat.ATTENTION_FEATURES | {"lse"},
    options={},
    strategy=lambda features, dtype, opts: strat.attention_cases(features=features, dtype=dtype),
    call=_attention_call,
    gold=_attention_gold,
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
    feature_keywords={"window": "window", "sinks": "sinks", "mask": "mask", "lse": "return_lse"},
    outputs=("out", "lse"),
    wide_outputs=frozenset({"lse"}),
    nondiff_outputs=frozenset({"lse"}),
    regions=regions.ATTENTION_REGIONS,
    corners=regions.attention_corners,
    alternatives=alternatives.attention_alternatives,
))
