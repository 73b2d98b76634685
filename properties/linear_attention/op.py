"""Op of the linear-attention family.

* ``linear_attention``: ``fn(q, k, v, *, g=None, scale: float, initial_state=None,
  output_final_state: bool) -> (o, final_state)`` — fla's simple-GLA convention: q, k [B, T, H, K],
  v [B, T, H, V], log-gates g [B, T, H] (<= 0; feature ``"gate"``), initial_state [B, H, K, V] (feature
  ``"initial_state"``); o [B, T, H, V], final_state [B, H, K, V] or None when not requested.
  Semantics: ``S_t = exp(g_t) S_{t-1} + k_t v_t^T``, ``o_t = scale q_t^T S_t``
  (:mod:`veriformer.reference.linear_attention`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.linear_attention import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.linear_attention import alternatives, regions
from veriformer.properties.linear_attention.strategies import (
    LA_FEATURES,
    LinearAttentionCase,
    linear_attention_cases,
)
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["LINEAR_ATTENTION"]


register_tolerance(Tolerance("op.linear_attention", rho=2.0, floor_ulps=4.0, reason=(
    "rho = 2 over the naive quadratic form in the input dtype; a 4 ulp floor at each element, 4 ulp at the "
    "root-sum-square of its summands (scale q_t.k_s D_ts v_sd and the initial-state terms, per element) and "
    "2 ulp of the accumulator at their sum of magnitudes: rounding each score, decay weight or state entry "
    "once to the dtype moves the output by independent amounts that add in quadrature, and a chunked or "
    "recurrent kernel rounds different intermediates than the baseline, so a lucky baseline must not fail "
    "it.")))
register_tolerance(Tolerance("op.linear_attention.grad", rho=2.0, floor_ulps=8.0, reason=(
    "Gradients are sums of T (dq, dk, dv) products with the same structure as the forward (M = scale dO V^T "
    "(.) D); 8 ulp at each element and at the |summand| sums (Cauchy-Schwarz), twice the forward floor "
    "because each gradient is a product of two rounded matmuls.")))




# -- linear_attention -------------------------------------------------------------------------------


def _la_call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: LinearAttentionCase,
             opts: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"scale": case.scale_value, "output_final_state": case.output_final_state}
    if "g" in t:
        kw["g"] = t["g"]
    if "initial_state" in t:
        kw["initial_state"] = t["initial_state"]
    return fn(t["q"], t["k"], t["v"], **kw)


def _la_kwargs(case: LinearAttentionCase, a: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"g": a.get("g"), "scale": case.scale_value, "initial_state": a.get("initial_state")}


def _la_gold(case: LinearAttentionCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, np.ndarray]:
    o, S = ref.linear_attention(a["q"], a["k"], a["v"], output_final_state=case.output_final_state,
                                **_la_kwargs(case, a))
    return {"o": o} if S is None else {"o": o, "final_state": S}


def _la_vjp(case: LinearAttentionCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray],
            opts: dict[str, Any]) -> dict[str, np.ndarray]:
    d = ref.linear_attention_vjp(a["q"], a["k"], a["v"], cots["o"], grad_final_state=cots.get("final_state"),
                                 **_la_kwargs(case, a))
    out = {"q": d["dq"], "k": d["dk"], "v": d["dv"]}
    if "g" in a:
        out["g"] = d["dg"]
    if "initial_state" in a:
        out["initial_state"] = d["dinitial_state"]
    return out


def _la_conditioning(case: LinearAttentionCase, a: dict[str, np.ndarray],
                     cots: dict[str, np.ndarray] | None,
                     opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """(0.5, sum of |summands|, their root-sum-square) per output element and (1, sum of |summands|) per
    gradient, with the actual decays D_ts = exp(G_t - G_s) and d0_t = exp(G_t) (see the tolerance rows)."""
    sc = abs(case.scale_value)
    q, k, v = (np.moveaxis(a[n], 1, 2) for n in ("q", "k", "v"))  # [B, H, T, .]
    Q, Kk, V = np.abs(q), np.abs(k), np.abs(v)
    T = case.T
    if "g" in a:
        G = np.cumsum(np.moveaxis(a["g"], 1, 2), axis=-1)  # [B, H, T]
        D = np.exp(np.where(np.tri(T, dtype=bool), G[..., :, None] - G[..., None, :], -np.inf))
        d0 = np.exp(G)[..., None]
    else:
        D, d0 = np.tri(T), np.ones((1, 1, T, 1))
    s0 = a["initial_state"] if "initial_state" in a else np.zeros((1, 1, case.K, case.V))
    S0 = np.abs(s0)
    A = sc * (Q @ np.swapaxes(Kk, -1, -2)) * D
    wl = D[..., T - 1, :][..., None]  # decay from token s to the end
    # per element: the sum of |summands| and their root-sum-square (o_td = sum_s A_ts v_sd + scale d0_t q_t S0)
    o_mass = np.moveaxis(A @ V + sc * (Q * d0) @ S0, 1, 2)
    o_rss = np.moveaxis(np.sqrt((A * A) @ (V * V) + sc**2 * ((Q * d0) ** 2) @ (S0 * S0)), 1, 2)
    kw = Kk * wl
    st_mass = np.swapaxes(kw, -1, -2) @ V + d0[..., T - 1:, :] * S0
    st_rss = np.sqrt(np.swapaxes(kw * kw, -1, -2) @ (V * V) + (d0[..., T - 1:, :] * S0) ** 2)
    out: dict[str, tuple[Any, ...]] = {"o": (0.5, o_mass, o_rss), "final_state": (0.5, st_mass, st_rss)}
    if cots is not None:
        dO = np.abs(np.moveaxis(cots["o"], 1, 2))
        dS = np.abs(cots["final_state"]) if "final_state" in cots else np.zeros((1, 1, case.K, case.V))
        M = sc * (dO @ np.swapaxes(V, -1, -2)) * D
        # dg_r sums W_ts = scale (q_t.k_s)(dO_t.v_s) D_ts over t >= r > s (and the initial-state terms)
        W0 = sc * np.sum((Q * d0) @ S0 * dO, axis=-1)  # [B, H, T]
        # ... and the final state's cotangent terms |k_s|^T |dS| |v_s| decayed to the end (per head, summed over s)
        WS = np.sum(((Kk * wl) @ dS) * V, axis=(-2, -1)) + np.sum(d0[..., T - 1:, :] * S0 * dS, axis=(-2, -1))
        wmass = float(np.max(np.sum(M * (Q @ np.swapaxes(Kk, -1, -2)), axis=(-2, -1)) + np.sum(W0, axis=-1) + WS))
        # kernels form dg from q.dq - k.dk (fla, ours): dot products of K terms, error ~ K u of the summands
        out.update({"dg": (float(max(case.K, 1)), wmass),
                    "dinitial_state": (1.0, float((sc * np.swapaxes(Q * d0, -1, -2) @ dO
                                                   + d0[..., T - 1:, :] * dS).max())),
                    "dq": (1.0, float((M @ Kk + sc * (dO * d0) @ np.swapaxes(S0, -1, -2)).max())),
                    "dk": (1.0, float((np.swapaxes(M, -1, -2) @ Q + wl * (V @ np.swapaxes(dS, -1, -2))).max())),
                    "dv": (1.0, float((np.swapaxes(A, -1, -2) @ dO + wl * (Kk @ dS)).max()))})
    return out


def _la_sweep(size: int, seed: int) -> LinearAttentionCase:
    """Gated causal linear attention, B=1, H=2, K=V=64, gates in [-0.05, 0]: a GLA/RetNet layer."""
    return LinearAttentionCase(B=1, T=size, H=2, K=64, V=64, gate=0.05, output_final_state=True, seed=seed)


LINEAR_ATTENTION = register_op(OpSpec(
    name="linear_attention",
    convention="fn(q, k, v, *, g=None, scale, initial_state=None, output_final_state) -> (o, final_state); "
               "q/k [B,T,H,K], v [B,T,H,V], g [B,T,H] log-decay <= 0, state [B,H,K,V]",
    source="fla-org/flash-linear-attention simple GLA (chunk_simple_gla); Qin et al. 2024 (Lightning Attention-2)",
    features=LA_FEATURES,
    options={},
    strategy=lambda features, dtype, opts: linear_attention_cases(
        gate="gate" in features, initial_state="initial_state" in features, decay=False, noncausal=False,
        normalize=False, feature_maps=False, op=True, max_T=24, head_dims=(1, 2, 4, 8, 16),
        long_T=130),
    call=_la_call,
    gold=_la_gold,
    gold_vjp=_la_vjp,
    baseline=lambda opts: naive.linear_attention,
    differentiable=("q", "k", "v", "g", "initial_state"),
    size=lambda case: case.T,
    tolerance="op.linear_attention",
    wide_outputs=frozenset({"final_state"}),
    conditioning=_la_conditioning,
    outputs=("o", "final_state"),
    sweep=_la_sweep,
    sweep_sizes=(16, 64, 256),
    feature_keywords={"gate": "g", "initial_state": "initial_state"},
    regions=regions.LINEAR_ATTENTION_REGIONS,
    corners=regions.linear_attention_corners,
    alternatives=alternatives.linear_attention_alternatives,
))
