"""Op ``mla_decode``: ``fn(q, kv_cache, *, head_dim_v: int, scale: float, causal: bool) -> (o, lse)``.

FlashMLA convention (deepseek-ai/FlashMLA ``flash_mla_with_kvcache``, without paging): q [B, T, H, D] (the absorbed
query, D = d_c + d_r), kv_cache [B, S, 1, D] (one shared latent head), values = kv_cache[..., :head_dim_v];
causal end-aligned; o [B, T, H, head_dim_v], lse [B, H, T] (natural log; float32 allowed for half inputs; -inf for a
query with no visible key, whose output is 0).  Semantics: :func:`veriformer.reference.mla_decode`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.mla import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.attention.op import attention_summand_scales
from veriformer.properties.mla import alternatives, regions
from veriformer.properties.mla import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["MLA_DECODE"]

register_tolerance(Tolerance("op.mla_decode", rho=2.0, floor_ulps=4.0, reason=(
    "As op.softmax_attention (the same softmax over one shared kv head): rho = 2 over the naive torch formula in the "
    "same dtype, a 4 ulp floor at each output's magnitude, 4 ulp of the dtype at the root-sum-square of the summands "
    "p_ij v_jd (P rounded to the dtype for the P V product) and 4 ulp x L at their absolute sum in the accumulator's "
    "precision (L = max|logit|: a logit rounded once moves its weight by u L).  The log-sum-exp is judged with "
    "condition 1 at L + 1.  The logits here are sums over D = d_c + d_r = 576 channels at DeepSeek-V2 widths.")))
register_tolerance(Tolerance("op.mla_decode.grad", rho=2.0, floor_ulps=8.0, reason=(
    "As op.softmax_attention.grad; dkv sums the key and the value gradient of the shared latent channels.")))


def _call(fn: Any, t: dict[str, Any], case: strat.MlaDecodeCase, opts: dict[str, Any]) -> Any:
    return fn(t["q"], t["kv"], head_dim_v=case.d_c, scale=case.scale, causal=True)


def _gold(case: strat.MlaDecodeCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, np.ndarray]:
    o, lse = ref.mla_decode(a["q"], a["kv"], head_dim_v=case.d_c, scale=case.scale, causal=True, return_lse=True)
    return {"out": o, "lse": lse}


def _gold_vjp(case: strat.MlaDecodeCase, a: dict[str, np.ndarray], g: dict[str, np.ndarray],
              opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """The attention VJP on the transposed layout; the latent channels get the key and the value gradient."""
    q = np.swapaxes(a["q"], 1, 2)
    k = np.swapaxes(a["kv"], 1, 2)
    dq, dk, dv = ref.softmax_attention_vjp(q, k, k[..., :case.d_c], np.swapaxes(g["out"], 1, 2), scale=case.scale,
                                           causal=True)
    dk[..., :case.d_c] += dv
    return {"q": np.swapaxes(dq, 1, 2), "kv": np.swapaxes(dk, 1, 2)}


def _conditioning(case: strat.MlaDecodeCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray] | None,
                  opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Output: L = max|logit| at each element's own summands p_ij v_jd (attention_summand_scales, transposed to
    [B, T, H, dv]); lse: condition 1 at L + 1.  Gradients: the Cauchy-Schwarz bounds of op.softmax_attention."""
    k = np.swapaxes(a["kv"], 1, 2)
    logits = ref.attention_logits(np.swapaxes(a["q"], 1, 2), k, scale=case.scale, causal=True)
    fin = logits[np.isfinite(logits)]
    L = float(np.abs(fin).max()) if fin.size else 0.0
    s, sigma = attention_summand_scales(logits, k[..., :case.d_c])
    out: dict[str, tuple[Any, ...]] = {"out": (L, np.swapaxes(s, 1, 2), np.swapaxes(sigma, 1, 2)),
                                       "lse": (1.0, L + 1.0)}
    if cots is not None:
        def rn(x: np.ndarray) -> float:
            return float(np.linalg.norm(x, axis=-1).max()) if x.size else 0.0
        common = 2 * case.scale * rn(cots["out"]) * rn(k)
        out.update({"dq": (1 + L, common * rn(k)),
                    "dkv": (1 + L, common * rn(a["q"]) + case.T * case.H * float(np.abs(cots["out"]).max()))})
    return out


def _sweep(size: int, seed: int) -> strat.MlaDecodeCase:
    """DeepSeek-V2 decode: one token, 16 heads, d_c 512, d_r 64, scale 1/sqrt(192)."""
    return strat.MlaDecodeCase(B=1, T=1, H=16, S=size, d_c=512, d_r=64, d_nope=128, seed=seed)


MLA_DECODE = register_op(OpSpec(
    name="mla_decode",
    convention="fn(q, kv_cache, *, head_dim_v, scale, causal=True) -> (o, lse); q [B,T,H,D] (D = d_c + d_r), "
               "kv_cache [B,S,1,D], v = kv_cache[..., :head_dim_v], causal end-aligned; o [B,T,H,head_dim_v], "
               "lse [B,H,T] (natural log, float32 allowed for half inputs, -inf for a query with no visible key); "
               "the FlashMLA flash_mla_with_kvcache layouts without paging",
    source="DeepSeek-V2 (arXiv 2405.04434) section 2.1.2; deepseek-ai/FlashMLA flash_mla_with_kvcache",
    features=frozenset(),
    options={},
    strategy=lambda features, dtype, opts: strat.mla_decode_cases(),
    call=_call,
    gold=_gold,
    gold_vjp=_gold_vjp,
    baseline=lambda opts: functools.partial(naive.mla_decode, return_lse=True),
    differentiable=("q", "kv"),
    size=lambda case: case.S,
    tolerance="op.mla_decode",
    conditioning=_conditioning,
    sweep=_sweep,
    sweep_sizes=(16, 256, 1024, 4096),
    outputs=("out", "lse"),
    wide_outputs=frozenset({"lse"}),
    nondiff_outputs=frozenset({"lse"}),
    regions=regions.MLA_REGIONS,
    corners=regions.mla_corners,
    alternatives=alternatives.mla_alternatives,
))
