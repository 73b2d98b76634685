"""Op ``vq_attention``: ``fn(q, k, v, codebook, *, causal: bool, scale: float) -> o`` — Transformer-VQ:
q, k [B, H, T, D], v [B, H, T, Dv], codebook [H or 1, C, D]; keys are quantised inside (nearest code, first index
on ties) and attended densely; gradients are straight-through (dk = dk_hat, no gradient to the codebook).
Semantics: :mod:`veriformer.reference.vq.attention`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.vq import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.attention.op import attention_summand_scales
from veriformer.properties.vq import regions
from veriformer.properties.vq.strategies import VQCase, vq_cases
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["VQ_ATTENTION"]


register_tolerance(Tolerance("op.vq_attention", rho=2.0, floor_ulps=4.0, reason=(
    "Dense softmax over quantised keys: as op.softmax_attention (4 ulp floor and 4 ulp x max|logit| at "
    "max|v|).  Strategies keep keys near their codes (noise <= 0.2 x code scale, no ties), so the argmin "
    "is the same in every dtype and quantisation itself adds no error.")))
register_tolerance(Tolerance("op.vq_attention.grad", rho=2.0, floor_ulps=8.0, reason=(
    "Straight-through: dq, dk (= dk_hat), dv are the softmax-attention gradients at k_hat; as "
    "op.softmax_attention.grad.")))


def _vq_gold(case: VQCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> np.ndarray:
    return ref.vq_attention(a["q"], a["k"], a["v"], a["codebook"], causal=case.causal, scale=case.scale_value)


def _vq_vjp(case: VQCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray],
            opts: dict[str, Any]) -> dict[str, np.ndarray]:
    dq, dk, dv = ref.vq_attention_vjp(a["q"], a["k"], a["v"], a["codebook"], cots["out"], causal=case.causal,
                                      scale=case.scale_value)
    return {"q": dq, "k": dk, "v": dv}


def _vq_conditioning(case: VQCase, a: dict[str, np.ndarray],
                     cots: dict[str, np.ndarray] | None,
                     opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """As softmax attention at the quantised keys: L = max|logit| at each element's summands (and Cauchy-Schwarz summand
    bounds for the gradients, see veriformer.properties.attention.op._attention_conditioning)."""
    _, k_hat = ref.vq_quantize(a["k"], a["codebook"])

    def rn(x: np.ndarray) -> float:
        return float(np.linalg.norm(x, axis=-1).max())

    L = abs(case.scale_value) * rn(a["q"]) * rn(k_hat)
    logits = ref.attention_logits(a["q"], k_hat, scale=case.scale_value, causal=case.causal)
    s, sigma = attention_summand_scales(logits, a["v"])
    out: dict[str, tuple[Any, ...]] = {"out": (L, s, sigma)}
    if cots is not None:
        common = 2 * abs(case.scale_value) * rn(cots["out"]) * rn(a["v"])
        out.update({"dq": (1 + L, common * rn(k_hat)), "dk": (1 + L, common * rn(a["q"])),
                    "dv": (1 + L, case.T * float(np.abs(cots["out"]).max()))})
    return out


VQ_ATTENTION = register_op(OpSpec(
    name="vq_attention",
    convention="fn(q, k, v, codebook, *, causal, scale) -> o; q/k [B,H,T,D], v [B,H,T,Dv], codebook [H|1,C,D]",
    source="Lingle 2023 (Transformer-VQ, arXiv 2309.16354)",
    features=frozenset(),
    options={},
    strategy=lambda features, dtype, opts: vq_cases(ties=False, op=True),
    call=lambda fn, t, case, opts: fn(t["q"], t["k"], t["v"], t["codebook"], causal=case.causal,
                                      scale=case.scale_value),
    gold=_vq_gold,
    gold_vjp=_vq_vjp,
    baseline=lambda opts: naive.vq_attention,
    differentiable=("q", "k", "v"),
    size=lambda case: case.T,
    tolerance="op.vq_attention",
    conditioning=_vq_conditioning,
    regions=regions.VQ_REGIONS,
    corners=regions.vq_corners,
))
