"""Public Hypothesis strategies of MLA inputs: random latent caches, query parts and up-projections (``MlaCase``,
for the laws) and the absorbed decode inputs of op ``mla_decode`` (``MlaDecodeCase``, FlashMLA layouts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["KvConfig", "MlaCase", "MlaDecodeCase", "kv_configs", "mla_cases", "mla_decode_cases"]


@dataclass(frozen=True)
class MlaCase:
    """MLA inputs (layouts in :mod:`veriformer.reference.mla`): latent c [B, S, d_c], k_rope [B, S, d_r], q_nope
    [B, H, T, d_nope], q_rope [B, H, T, d_r], w_uk [H, d_c, d_nope], w_uv [H, d_c, d_v], w_o [H, d_v, d_model].
    Weights are scaled by 1/sqrt(fan-in) so every logit is O(amp^2)."""

    B: int
    H: int
    T: int
    S: int
    d_c: int
    d_nope: int
    d_r: int
    d_v: int
    d_model: int = 8
    amp: float = 1.0
    base: float = 10000.0
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        n = rng.standard_normal
        return {"c": n((self.B, self.S, self.d_c)) * self.amp,
                "q_nope": n((self.B, self.H, self.T, self.d_nope)) * self.amp,
                "q_rope": n((self.B, self.H, self.T, self.d_r)) * self.amp,
                "k_rope": n((self.B, self.S, self.d_r)) * self.amp,
                "w_uk": n((self.H, self.d_c, self.d_nope)) / np.sqrt(self.d_c),
                "w_uv": n((self.H, self.d_c, self.d_v)) / np.sqrt(self.d_c),
                "w_o": n((self.H, self.d_v, self.d_model)) / np.sqrt(self.H * self.d_v)}


@st.composite
def mla_cases(draw: Any, min_T: int = 1, max_S: int = 12) -> MlaCase:
    """MLA inputs: d_c in 2..64 (d_c > d_nope and d_c < d_nope both), d_r 2..16, T <= S (decode T = 1 included),
    amplitudes 0.5..2, bases 10000 and 10."""
    S = draw(st.integers(1, max_S))
    return MlaCase(B=draw(st.integers(1, 2)), H=draw(st.integers(1, 4)), T=draw(st.integers(min(min_T, S), S)), S=S,
                   d_c=draw(st.sampled_from((2, 8, 16, 64))), d_nope=draw(st.sampled_from((2, 4, 8, 32))),
                   d_r=draw(st.sampled_from((2, 4, 16))), d_v=draw(st.sampled_from((1, 4, 8))),
                   amp=draw(st.sampled_from((1.0, 0.5, 2.0))), base=draw(st.sampled_from((10000.0, 10.0))),
                   seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class KvConfig:
    """An attention configuration for the KV-cache size law: h heads of d_k/d_v, g kv groups (g divides h), and an
    MLA latent d_c with a RoPE key d_r."""

    heads: int
    groups: int
    d_k: int
    d_v: int
    d_c: int
    d_r: int


@st.composite
def kv_configs(draw: Any) -> KvConfig:
    """Head counts 1..128, groups dividing them, head dims 16..256, latents 64..1024."""
    heads = draw(st.sampled_from((1, 2, 8, 32, 40, 64, 128)))
    groups = draw(st.sampled_from([g for g in range(1, heads + 1) if heads % g == 0]))
    return KvConfig(heads=heads, groups=groups, d_k=draw(st.sampled_from((16, 64, 128, 192))),
                    d_v=draw(st.sampled_from((16, 64, 128, 256))), d_c=draw(st.sampled_from((64, 256, 512, 1024))),
                    d_r=draw(st.sampled_from((16, 32, 64))))


@dataclass(frozen=True)
class MlaDecodeCase:
    """Inputs of op ``mla_decode`` (FlashMLA layouts): q [B, T, H, d_c + d_r], kv [B, S, 1, d_c + d_r]; the values
    are kv[..., :d_c]; scale ``1/sqrt(d_nope + d_r)`` (the training head dim, not the cache width).  ``amp`` scales q
    and the RoPE channels so the logits reach ~amp^2."""

    B: int
    T: int
    H: int
    S: int
    d_c: int
    d_r: int
    d_nope: int = 128
    amp: float = 1.0
    seed: int = 0

    @property
    def scale(self) -> float:
        return float((self.d_nope + self.d_r) ** -0.5)

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        D = self.d_c + self.d_r
        q = rng.standard_normal((self.B, self.T, self.H, D)) * self.amp
        kv = rng.standard_normal((self.B, self.S, 1, D))
        kv[..., self.d_c:] *= self.amp
        return {"q": q, "kv": kv}


@st.composite
def mla_decode_cases(draw: Any, max_S: int = 80) -> MlaDecodeCase:
    """Decode shapes: T 1..4 (speculative decoding drafts), S 1..max_S (S < T: queries with no visible key), H 1..16,
    d_c in {16, 32, 64, 512}, d_r in {8, 16, 64}, logits up to ~100 (amp 10)."""
    return MlaDecodeCase(B=draw(st.integers(1, 2)), T=draw(st.sampled_from((1, 1, 2, 4))),
                         H=draw(st.sampled_from((1, 2, 5, 16))), S=draw(st.integers(1, max_S)),
                         d_c=draw(st.sampled_from((16, 32, 64, 512))), d_r=draw(st.sampled_from((8, 16, 64))),
                         d_nope=draw(st.sampled_from((16, 128))), amp=draw(st.sampled_from((1.0, 0.1, 3.0, 10.0))),
                         seed=draw(st.integers(0, 2**32 - 1)))
