"""Hypothesis strategies for the linear-attention family: linear attention with decay / gates (fla
simple-GLA layout), Transformer-VQ attention, Performer random features and GAU / FLASH.

Each strategy draws a small printable case dataclass with a seed; ``case.arrays()`` builds the float64
inputs deterministically.  Corners reached on purpose: T = 1, chunk sizes 1, T, > T and not dividing T,
decay lambda = 0 and 1e-20 (where ``Lambda^{-1}`` overflows), strong gates (exp(sum g) ~ 1e-30), batch
sizes 2 (state leaks between sequences), initial states, ties in the VQ argmin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "DECAYS",
    "LA_FEATURES",
    "LinearAttentionCase",
    "linear_attention_cases",
]

LA_FEATURES = frozenset({"gate", "initial_state"})
# per-head decay sets: none, ALiBi-style exp(-slope), degenerate ones (0 keeps only the current token;
# 1e-20 overflows a literal Lambda^{-1} at block length >= 16)
DECAYS = (None, "alibi", "mixed", "zero", "tiny", "one")
_DECAY_VALUES = {"mixed": (0.99, 0.5, 0.1, 1e-3), "zero": (0.0,), "tiny": (1e-20,), "one": (1.0,)}


@dataclass(frozen=True)
class LinearAttentionCase:
    """Inputs of linear attention: q/k [B, T, H, K], v [B, T, H, V], optional log-gates g [B, T, H]
    (uniform in [-gate, 0]), per-head decay [H], initial state [B, H, K, V] and flags."""

    B: int
    T: int
    H: int
    K: int
    V: int
    gate: float | None = None
    decay: str | None = None
    initial_state: bool = False
    causal: bool = True
    feature_map: str = "identity"
    normalize: bool = False
    output_final_state: bool = False
    amp: float = 1.0
    scale: float | None = None
    seed: int = 0

    @property
    def scale_value(self) -> float:
        return self.K**-0.5 if self.scale is None else self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        out = {"q": rng.standard_normal((self.B, self.T, self.H, self.K)) * self.amp,
               "k": rng.standard_normal((self.B, self.T, self.H, self.K)) * self.amp,
               "v": rng.standard_normal((self.B, self.T, self.H, self.V))}
        if self.gate is not None:
            out["g"] = -rng.random((self.B, self.T, self.H)) * self.gate
        if self.decay is not None:
            if self.decay == "alibi":
                h = np.arange(self.H)
                out["decay"] = np.exp(-np.power(2.0, -8.0 * (h + 1) / self.H))
            else:
                vals = _DECAY_VALUES[self.decay]
                out["decay"] = np.array([vals[h % len(vals)] for h in range(self.H)])
        if self.initial_state:
            out["initial_state"] = rng.standard_normal((self.B, self.H, self.K, self.V))
        return out

    def kwargs(self, a: dict[str, np.ndarray]) -> dict[str, Any]:
        """Keyword arguments of the linear_attention oracles for this case."""
        return {"g": a.get("g"), "decay": a.get("decay"), "scale": self.scale, "causal": self.causal,
                "feature_map": self.feature_map, "normalize": self.normalize,
                "initial_state": a.get("initial_state"), "output_final_state": self.output_final_state}


@st.composite
def linear_attention_cases(draw: Any, *, max_T: int = 24, head_dims: tuple[int, ...] = (1, 2, 3, 4, 8, 16),
                           gate: bool = True, decay: bool = True, initial_state: bool = True,
                           noncausal: bool = True, normalize: bool = True, feature_maps: bool = True,
                           final_state: bool | None = None, op: bool = False,
                           long_T: int | None = None) -> LinearAttentionCase:
    """Linear-attention cases; each flag enables a feature.  Normalised cases use a positive feature map
    and no state; non-causal cases carry no decay.  ``op=True`` draws only what op ``linear_attention``
    takes (identity map, unnormalised, causal, decay folded into g).  ``long_T``: one case in six has
    T in [65, long_T], past the 64-token chunk of fla's and our default kernels, so their inter-chunk state
    passing is exercised (with B = H = 1 to keep the interpreter fast)."""
    long = long_T is not None and draw(st.integers(0, 5)) == 0
    B = 1 if long else draw(st.integers(1, 2))
    H = 1 if long else draw(st.sampled_from((1, 2, 4)))
    T = draw(st.integers(65, long_T)) if long and long_T else draw(st.one_of(st.just(1), st.integers(1, max_T)))
    K = draw(st.sampled_from(head_dims))
    V = K if draw(st.booleans()) else draw(st.sampled_from(head_dims))
    causal = not (noncausal and draw(st.integers(0, 4)) == 0)
    norm = normalize and draw(st.integers(0, 3)) == 0
    fmap = "identity"
    if feature_maps:
        fmap = draw(st.sampled_from(("elu1", "relu"))) if norm else draw(st.sampled_from(
            ("identity", "identity", "elu1", "relu")))
    g = draw(st.one_of(st.none(), st.sampled_from((0.05, 1.0, 5.0)))) if gate and causal else None
    dec = draw(st.sampled_from(DECAYS)) if decay and causal else None
    init = initial_state and not norm and draw(st.booleans())
    fs = (draw(st.booleans()) if final_state is None else final_state) and not norm
    amp = draw(st.sampled_from((1.0, 0.1, 3.0)))
    scale = draw(st.sampled_from((None, None, 1.0, 0.25)))  # the op's scale argument varies too
    return LinearAttentionCase(B, T, H, K, V, g, dec, init, causal, fmap, norm, fs, amp, scale,
                               draw(st.integers(0, 2**32 - 1)))
