"""Public Hypothesis strategy of Transformer-VQ inputs (op ``vq_attention`` and the VQ laws): a printable case
that builds its float64 arrays with ``case.arrays()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["VQCase", "vq_cases"]


@dataclass(frozen=True)
class VQCase:
    """Inputs of Transformer-VQ attention: q/k [B, H, T, D], v [B, H, T, Dv], codebook [Hc, C, D]
    (Hc = H or 1).  Keys are noisy copies of codebook rows (``noise`` = relative noise level), so the
    assignment is unambiguous except in ``ties`` cases, where some keys (0) are exactly equidistant from
    codes 0 and 1 (code 1 = -code 0)."""

    B: int
    H: int
    T: int
    D: int
    Dv: int
    C: int
    shared_codebook: bool = False
    noise: float = 0.1
    ties: bool = False
    one_code: bool = False
    causal: bool = False
    amp: float = 1.0
    scale: float | None = None
    seed: int = 0

    @property
    def scale_value(self) -> float:
        return self.D**-0.5 if self.scale is None else self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        Hc = 1 if self.shared_codebook else self.H
        cb = rng.standard_normal((Hc, self.C, self.D)) * self.amp
        z = rng.integers(0, 1 if self.one_code else self.C, (self.B, self.H, self.T))
        rows = cb[np.zeros_like(z) if Hc == 1 else np.arange(self.H)[None, :, None], z]
        k = rows + self.noise * self.amp * rng.standard_normal(rows.shape)
        if self.ties and self.C >= 2:  # code 1 = -code 0 exactly, keys 0: ||0 - c0||^2 == ||0 - c1||^2 bitwise
            cb[:, 0] *= 0.25
            cb[:, 1] = -cb[:, 0]
            k = np.where((rng.random(z.shape) < 0.3)[..., None], 0.0, k)
        q = rng.standard_normal((self.B, self.H, self.T, self.D)) * self.amp
        v = rng.standard_normal((self.B, self.H, self.T, self.Dv))
        return {"q": q, "k": k, "v": v, "codebook": cb}


@st.composite
def vq_cases(draw: Any, *, max_T: int = 20, ties: bool = True, op: bool = False) -> VQCase:
    """Transformer-VQ cases: codebook sizes 1..12, shared or per-head codebooks, noise levels up to 0.5,
    ties (off for ops: a tie is resolved by rounding in low precision), all keys on one code."""
    H = draw(st.sampled_from((1, 2)))
    return VQCase(B=draw(st.integers(1, 2)), H=H, T=draw(st.one_of(st.just(1), st.integers(1, max_T))),
                  D=draw(st.sampled_from((1, 2, 4, 8, 16))), Dv=draw(st.sampled_from((1, 3, 8))),
                  C=draw(st.integers(1, 12)), shared_codebook=draw(st.booleans()),
                  noise=draw(st.sampled_from((0.0, 0.05, 0.2) if op else (0.0, 0.05, 0.2, 0.5))),
                  ties=ties and draw(st.integers(0, 4)) == 0, one_code=draw(st.integers(0, 5)) == 0,
                  causal=draw(st.booleans()), amp=draw(st.sampled_from((1.0, 0.3, 2.0))),
                  scale=draw(st.sampled_from((None, None, 1.0))), seed=draw(st.integers(0, 2**32 - 1)))
