"""Public Hypothesis strategies for attention inputs — reusable by other projects.

Each strategy draws a small, printable *case* (shapes, flags, a magnitude and a NumPy seed); the case
builds its float64 arrays deterministically with ``case.arrays()``.  A failing case therefore prints as
a one-line constructor call that replays it exactly (``AttentionCase(B=1, H=2, ...)``), and shrinking
acts on the shapes and flags.

The strategies reach the hard corners on purpose: T = 1, S > T, odd sizes, head dims 1..256, logits up
to +-1e4 (exp overflows without max subtraction), fully masked rows, -inf additive masks, GQA/MQA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.properties.softmax.strategies import LOGIT_SCALES

__all__ = [
    "ATTENTION_FEATURES",
    "HEAD_DIMS",
    "AttentionCase",
    "attention_cases",
    "logit_bound",
]

ATTENTION_FEATURES = frozenset({"causal", "gqa", "window", "sinks", "mask"})
HEAD_DIMS = (1, 2, 3, 5, 8, 16, 17, 32, 64, 80, 96, 128, 256)
# largest logit magnitude per dtype such that q k^T itself stays finite for D <= 256
MAX_LOGIT = {"float16": 300.0, "bfloat16": 1e4, "float32": 1e4, "float64": 1e4}


@dataclass(frozen=True)
class AttentionCase:
    """Inputs of op ``softmax_attention``: q [B, H, T, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv].

    ``amp`` is the typical logit magnitude (q is scaled so that ``scale * q . k ~ N(0, amp^2)``);
    ``mask`` is None, ``"bool"`` or ``"additive"`` with shape [mask_b, mask_h, T, S] (1 = broadcast) and
    about a quarter of the rows fully masked.
    """

    B: int
    H: int
    Hkv: int
    T: int
    S: int
    D: int
    Dv: int
    causal: bool = False
    window: int | None = None
    sinks: int = 0
    mask: str | None = None
    mask_b: int = 1
    mask_h: int = 1
    amp: float = 1.0
    scale: float | None = None
    seed: int = 0
    return_lse: bool = False

    @property
    def scale_value(self) -> float:
        return self.D**-0.5 if self.scale is None else self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        """float64 q, k, v (and mask: bool, or float with -inf) built from ``seed``."""
        rng = np.random.default_rng(self.seed)
        q = rng.standard_normal((self.B, self.H, self.T, self.D))
        k = rng.standard_normal((self.B, self.Hkv, self.S, self.D))
        v = rng.standard_normal((self.B, self.Hkv, self.S, self.Dv))
        q *= self.amp / (self.scale_value * np.sqrt(self.D))
        out = {"q": q, "k": k, "v": v}
        if self.mask is not None:
            shape = (self.mask_b, self.mask_h, self.T, self.S)
            keep = rng.random(shape) < 0.7
            keep[rng.random(shape[:3]) < 0.25] = False  # fully masked rows
            if self.mask == "bool":
                out["mask"] = keep
            else:
                out["mask"] = np.where(keep, rng.standard_normal(shape) * 2.0, -np.inf)
        return out

    def features(self) -> dict[str, Any]:
        """Keyword arguments beyond q, k, v that this case passes (mask excluded: it is an array)."""
        kw: dict[str, Any] = {}
        if self.window is not None:
            kw["window"] = self.window
        if self.sinks:
            kw["sinks"] = self.sinks
        if self.return_lse:
            kw["return_lse"] = True
        return kw


def logit_bound(case: AttentionCase, a: dict[str, np.ndarray]) -> float:
    """max |scale q_i . k_j| + max |additive mask| — the size of the exponents, which sets how far
    rounding in a logit moves a probability (relative error u * |logit|)."""
    qn = np.linalg.norm(a["q"], axis=-1).max()
    kn = np.linalg.norm(a["k"], axis=-1).max()
    m = a.get("mask")
    add = float(np.abs(m[np.isfinite(m)]).max()) if m is not None and m.dtype != bool and \
        np.isfinite(m).any() else 0.0
    return float(abs(case.scale_value) * qn * kn + add)


@st.composite
def attention_cases(draw: Any, features: frozenset[str] | set[str] = ATTENTION_FEATURES,
                    dtype: str = "float64", max_T: int = 48, max_S: int = 64,
                    head_dims: tuple[int, ...] = HEAD_DIMS, max_batch_heads: int = 8) -> AttentionCase:
    """Attention cases using only the ``features`` given ({"causal", "gqa", "window", "sinks", "mask"}, and
    "lse": the callable is asked for the log-sum-exp too, ``return_lse=True``)."""
    features = frozenset(features)
    unknown = features - ATTENTION_FEATURES - {"lse"}
    if unknown:
        raise ValueError(f"attention_cases: unknown features {sorted(unknown)}; "
                         f"expected a subset of {sorted(ATTENTION_FEATURES)}")
    B = draw(st.integers(1, 2))
    Hkv = draw(st.sampled_from((1, 2)))
    group = draw(st.sampled_from((1, 2, 4))) if "gqa" in features else 1
    H = Hkv * group
    if B * H > max_batch_heads:
        B = 1
    T = draw(st.integers(1, max_T)) if draw(st.integers(0, 4)) else 1  # T = 1 (decode) in one case of five
    causal = "causal" in features and draw(st.booleans())
    S = T + draw(st.integers(0, max_S - T)) if causal or draw(st.booleans()) else draw(st.integers(1, max_S))
    S = max(S, 1)
    D = draw(st.sampled_from(head_dims))
    Dv = D if draw(st.booleans()) else draw(st.sampled_from(head_dims))
    window = draw(st.one_of(st.none(), st.integers(1, S + 1))) if "window" in features else None
    sinks = draw(st.integers(0, 4)) if "sinks" in features and window is not None else 0
    mask = draw(st.sampled_from((None, "bool", "additive"))) if "mask" in features else None
    mask_b = draw(st.sampled_from((1, B))) if mask else 1
    mask_h = draw(st.sampled_from((1, H))) if mask else 1
    amp = min(draw(st.sampled_from(LOGIT_SCALES)), MAX_LOGIT[dtype])
    scale = draw(st.sampled_from((None, None, None, 1.0, 0.3)))
    return AttentionCase(B, H, H // group, T, S, D, Dv, causal, window, sinks, mask, mask_b, mask_h, amp,
                         scale, draw(st.integers(0, 2**32 - 1)), "lse" in features and draw(st.booleans()))
