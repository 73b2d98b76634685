"""Public Hypothesis strategies of StreamingLLM inputs: a token stream of pre-RoPE q/k/v (GQA included) with a
sink count and a recent budget, from 'nothing evicted' to 'most of the stream evicted'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["SinkAttentionCase", "StreamCase", "sink_cases", "stream_cases"]


@dataclass(frozen=True)
class StreamCase:
    """A stream of N tokens: pre-RoPE q [B, H, N, D], k [B, Hkv, N, D], v [B, Hkv, N, Dv] (``arrays()``), and the
    layer inputs x [B, N, d_model] with projections (``inputs()``), decoded through a cache of ``sinks + recent``."""

    B: int
    H: int
    Hkv: int
    N: int
    D: int
    Dv: int
    sinks: int
    recent: int
    base: float = 10000.0
    layout: str = "half"
    amp: float = 1.0
    d_model: int = 8
    seed: int = 0

    @property
    def evicts(self) -> bool:
        """True when some token is evicted (the stream is longer than the cache)."""
        return self.N > self.sinks + self.recent

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return {"q": rng.standard_normal((self.B, self.H, self.N, self.D)) * self.amp,
                "k": rng.standard_normal((self.B, self.Hkv, self.N, self.D)) * self.amp,
                "v": rng.standard_normal((self.B, self.Hkv, self.N, self.Dv))}

    def inputs(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed + 1)
        m = self.d_model
        return {"x": rng.standard_normal((self.B, self.N, m)),
                "w_q": rng.standard_normal((self.H, m, self.D)) * self.amp / np.sqrt(m),
                "w_k": rng.standard_normal((self.Hkv, m, self.D)) * self.amp / np.sqrt(m),
                "w_v": rng.standard_normal((self.Hkv, m, self.Dv)) / np.sqrt(m)}


@st.composite
def stream_cases(draw: Any, max_N: int = 14, evicts: bool | None = None, min_sinks: int = 0,
                 amps: tuple[float, ...] = (1.0, 0.3, 3.0)) -> StreamCase:
    """Streams of 1..max_N tokens; ``evicts=True`` forces N > sinks + recent, ``False`` forces N <= sinks + recent;
    sinks 0..4 (``min_sinks`` up), recent 1..6, amplitudes ``amps``, GQA groups 1, 2,
    head dims 2..32, bases 10000 and 10."""
    sinks = draw(st.integers(min_sinks, 4))
    recent = draw(st.integers(1, 6))
    if evicts is True:
        N = draw(st.integers(sinks + recent + 1, max(max_N, sinks + recent + 1)))
    elif evicts is False:
        N = draw(st.integers(1, sinks + recent))
    else:
        N = draw(st.integers(1, max_N))
    Hkv = draw(st.sampled_from((1, 2)))
    return StreamCase(B=draw(st.integers(1, 2)), H=Hkv * draw(st.sampled_from((1, 2))), Hkv=Hkv, N=N,
                      D=draw(st.sampled_from((2, 4, 8, 16, 32))), Dv=draw(st.sampled_from((1, 3, 8))), sinks=sinks,
                      recent=recent, base=draw(st.sampled_from((10000.0, 10.0))),
                      layout=draw(st.sampled_from(("half", "interleaved"))),
                      amp=draw(st.sampled_from(amps)), seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class SinkAttentionCase:
    """Attention inputs q [B, H, T, D], k/v [B, Hkv, S, D] with one sink logit per head (``arrays()['sink']``)."""

    B: int
    H: int
    Hkv: int
    T: int
    S: int
    D: int
    causal: bool
    sink_amp: float
    amp: float = 1.0
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return {"q": rng.standard_normal((self.B, self.H, self.T, self.D)) * self.amp,
                "k": rng.standard_normal((self.B, self.Hkv, self.S, self.D)) * self.amp,
                "v": rng.standard_normal((self.B, self.Hkv, self.S, self.D)),
                "sink": rng.standard_normal(self.H) * self.sink_amp}


@st.composite
def sink_cases(draw: Any) -> SinkAttentionCase:
    """Sink logits from 0 (Miller's softmax_1 up to the draw) to +-30 (a sink that takes all or nothing), logits
    up to ~100, causal rows with T > S (queries with no visible key) included."""
    Hkv = draw(st.sampled_from((1, 2)))
    return SinkAttentionCase(B=draw(st.integers(1, 2)), H=Hkv * draw(st.sampled_from((1, 2))), Hkv=Hkv,
                    T=draw(st.integers(1, 6)), S=draw(st.integers(1, 9)), D=draw(st.sampled_from((1, 4, 16))),
                    causal=draw(st.booleans()), sink_amp=draw(st.sampled_from((0.0, 1.0, 30.0))),
                    amp=draw(st.sampled_from((1.0, 3.0, 10.0))), seed=draw(st.integers(0, 2**32 - 1)))
