"""Op ``rerope_attention``: ``fn(q, k, v, window, *, leak, base) -> o``.

q [B, H, T, D], k/v [B, Hkv, S, D] (Hkv = H unless feature ``gqa``: Hkv divides H, query head h reads kv head
h // (H / Hkv)), o [B, H, T, D]; causal, queries end-aligned (query t at position S - T + t, keys at
0..S-1); scores ``a_ij = q_i^T R_{-P_ij} k_j`` with the rectified relative position ``P_ij`` of (Leaky) ReRoPE
(``leak = math.inf``: ReRoPE; 1: RoPE; integer k > 1: Leaky), rotate-half pairing, scale ``1/sqrt(D)``; gradients
in q, k, v.  Semantics: :func:`veriformer.reference.rerope_attention` and ``rerope_attention_vjp``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.positions import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.positions import regions
from veriformer.properties.positions import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["REROPE_ATTENTION"]

register_tolerance(Tolerance("op.rerope_attention", rho=2.0, floor_ulps=4.0, reason=(
    "As op.softmax_attention: rho = 2 over the naive two-pass torch code in the same dtype (bojone/rerope's, with a "
    "float32 softmax), plus 4 ulp at each output, 4 ulp at sigma_i = sqrt(sum_j p_ij^2 v_jd^2) and 4 ulp x L at "
    "s_i = sum_j p_ij |v_jd| in the accumulator's precision (L = max |scaled score|): a score rounded once moves its "
    "weight by u L.  The rotated operands carry the RoPE angle error of op.rope, which the baseline shares.")))
register_tolerance(Tolerance("op.rerope_attention.grad", rho=2.0, floor_ulps=8.0, reason=(
    "As op.softmax_attention.grad: rho = 2; 8 ulp at each element and 8 ulp x (1 + L) at the size of the summands "
    "of each gradient (Cauchy-Schwarz bounds: |dS_ij| <= 2 P_ij |dO_i| max|v|, so dq_i and dk_j have summands <= "
    "2 scale |dO| |v| |k| (|q|); dv_j at most T summands <= |dO|): dS cancels, and a flash-style backward "
    "recomputes P from the saved log-sum-exp.  The rotations' VJPs are orthogonal (no growth).")))


def _kw(case: strat.ReropeCase) -> dict[str, Any]:
    return {"leak": case.leak, "base": case.base}


def _full(case: strat.ReropeCase, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """k and v with their kv heads repeated to H (GQA), for the oracles that take equal head counts."""
    g = case.H // a["k"].shape[1]
    return {**a, "k": np.repeat(a["k"], g, axis=1), "v": np.repeat(a["v"], g, axis=1)}


def _gold_vjp(case: strat.ReropeCase, a: dict[str, np.ndarray], g: dict[str, np.ndarray],
              opts: dict[str, Any]) -> dict[str, np.ndarray]:
    f = _full(case, a)
    dq, dk, dv = ref.rerope_attention_vjp(f["q"], f["k"], f["v"], g["out"], case.window, **_kw(case))
    B, hk, S, _ = a["k"].shape
    return {"q": dq, "k": dk.reshape(B, hk, -1, S, dk.shape[-1]).sum(2),
            "v": dv.reshape(B, hk, -1, S, dv.shape[-1]).sum(2)}


def _conditioning(case: strat.ReropeCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray] | None,
                  opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """L = max |scaled score| over the visible pairs; per output element the summands p_ij v_jd: their sum of
    magnitudes and root-sum-square; the gradients as op softmax_attention (dv: up to T H/Hkv summands)."""
    hk = a["k"].shape[1]
    a = _full(case, a)
    s = ref.rerope_scores(a["q"], a["k"], case.window, **_kw(case)) / math.sqrt(case.D)
    fin = np.isfinite(s)
    L = float(np.abs(s[fin]).max()) if fin.any() else 0.0
    m = np.max(s, axis=-1, keepdims=True)
    e = np.where(fin, np.exp(np.where(fin, s - m, 0.0)), 0.0)
    p = e / e.sum(-1, keepdims=True)
    out: dict[str, tuple[Any, ...]] = {"out": (L, p @ np.abs(a["v"]), np.sqrt((p * p) @ (a["v"] ** 2)))}
    if cots is not None:
        def rn(x: np.ndarray) -> float:
            return float(np.linalg.norm(x, axis=-1).max()) if x.size else 0.0

        common = 2 / math.sqrt(case.D) * rn(cots["out"]) * rn(a["v"])
        out.update({"dq": (1 + L, common * rn(a["k"])), "dk": (1 + L, common * rn(a["q"])),
                    "dv": (1 + L, case.T * (case.H // hk) * float(np.abs(cots["out"]).max()))})
    return out


def _sweep(size: int, seed: int) -> strat.ReropeCase:
    """Causal prefill at head dim 64 with the repository's window 512 and leak 16 (window size/4 below 2048)."""
    return strat.ReropeCase(T=size, S=size, D=64, window=min(512, max(1, size // 4)), leak=16.0, seed=seed)


REROPE_ATTENTION = register_op(OpSpec(
    name="rerope_attention",
    convention="fn(q, k, v, window, *, leak, base) -> o; q [B,H,T,D], k/v [B,H,S,D], causal, queries end-aligned, "
               "rotate-half pairing, scale 1/sqrt(D); leak = math.inf (ReRoPE), 1 (RoPE) or an integer k (Leaky)",
    source="Su kexue.fm/archives/9708; bojone/rerope rerope_patch.py, leaky_rerope_patch.py",
    features=frozenset({"gqa"}),
    options={},
    strategy=lambda features, dtype, opts: strat.rerope_op_cases(features=features),
    call=lambda fn, t, case, opts: fn(t["q"], t["k"], t["v"], case.window, **_kw(case)),
    gold=lambda case, a, opts: ref.rerope_attention(*(_full(case, a)[n] for n in ("q", "k", "v")), case.window,
                                                    **_kw(case)),
    gold_vjp=_gold_vjp,
    baseline=lambda opts: functools.partial(naive.rerope_attention),
    differentiable=("q", "k", "v"),
    size=lambda case: case.S,
    tolerance="op.rerope_attention",
    conditioning=_conditioning,
    sweep=_sweep,
    sweep_sizes=(64, 256, 1024),
    regions=regions.REROPE_REGIONS,
    corners=regions.rerope_corners,
))
