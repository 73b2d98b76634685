"""Hypothesis strategy of op ``mamba_chunk_scan`` (mamba ``mamba_chunk_scan_combined`` convention).

:class:`MambaChunkCase` is a small printable case with a seed and ``.arrays()``: x [b, l, h, p], dt [b, l, h],
A [h] (< 0), B/C [b, l, g, n] (g divides h), optional D [h] or [h, p], z [b, l, h, p], dt_bias [h],
initial_states [b, h, p, n]; ``softplus`` and ``final`` (return_final_states) flags.

Ranges (float32-ish, as mamba's models produce them): A = -exp(U(log 1, log 16)) (mamba's ``A_log`` init);
the processed step ``dt' = softplus(dt + dt_bias)`` or ``dt + dt_bias`` is >= 0 in every case, so every log-decay
``a = dt' A <= 0``:

* ``decay="mild"``: dt' in about [1e-3, 0.15] (a >= -2.4); without softplus dt ~ U(1e-3, 0.1) and
  dt_bias ~ U(0, 0.05); with softplus dt ~ N(0, 1) and dt_bias = softplus^-1(U(1e-3, 0.1)) (mamba's init), or
  dt ~ N(-4, 1) without a bias;
* ``decay="steep"``: dt' up to ~25 (a down to -400: e^a underflows, the kernels' decays go to 0 without NaN);
  without softplus dt ~ U(0.5, 25), dt_bias ~ U(0, 1); with softplus dt ~ U(-2, 25) (crossing softplus's
  linear branch above 20), dt_bias ~ U(-1, 1).

``check()`` rounds every float input to the test dtype, A, dt and dt_bias included (mamba keeps dt and A in
float32): gold and candidate see the same rounded values, so this costs nothing but realism of the float16
inputs.  Source: mamba ``mamba_ssm/modules/mamba2.py`` (A_log, dt_bias init), ``ops/triton/ssd_combined.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["MAMBA_CHUNK_FEATURES", "MambaChunkCase", "mamba_chunk_cases"]

MAMBA_CHUNK_FEATURES = frozenset({"D", "z", "dt_bias", "dt_softplus", "initial_states", "return_final_states",
                                  "grouped"})
CHUNK_SIZES = (1, 4, 8, 16)
LENGTHS = (1, 2, 7, 13, 16, 24)
MAX_CHUNKS = 6  # at most 6 chunks (l <= 6 for chunk size 1): the interpreter's cost grows with chunks x b x h


def _inv_softplus(y: np.ndarray) -> np.ndarray:
    return y + np.log(-np.expm1(-y))


@dataclass(frozen=True)
class MambaChunkCase:
    """Op ``mamba_chunk_scan``: shapes, chunk size, decay regime, the optional inputs and a seed."""

    b: int
    l: int  # mamba's name for the sequence length
    h: int
    g: int
    p: int
    n: int
    chunk_size: int
    decay: str = "mild"
    D: str = "none"  # "none", "h" ([h]) or "hp" ([h, p])
    z: bool = False
    bias: bool = False
    softplus: bool = False
    initial: bool = False
    final: bool = False
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        b, l, h, g, p, n = self.b, self.l, self.h, self.g, self.p, self.n
        steep = self.decay == "steep"
        out: dict[str, np.ndarray] = {"x": rng.standard_normal((b, l, h, p))}
        if self.softplus:
            if steep:
                dt = rng.uniform(-2.0, 25.0, (b, l, h))
                bias = rng.uniform(-1.0, 1.0, h)
            elif self.bias:
                dt = rng.standard_normal((b, l, h))
                bias = _inv_softplus(rng.uniform(1e-3, 0.1, h))
            else:
                dt = rng.standard_normal((b, l, h)) - 4.0
                bias = np.zeros(h)
        else:
            dt = rng.uniform(0.5, 25.0, (b, l, h)) if steep else rng.uniform(1e-3, 0.1, (b, l, h))
            bias = rng.uniform(0.0, 1.0, h) if steep else rng.uniform(0.0, 0.05, h)
        out["dt"] = dt
        out["A"] = -np.exp(rng.uniform(0.0, np.log(16.0), h))
        out["B"] = rng.standard_normal((b, l, g, n))
        out["C"] = rng.standard_normal((b, l, g, n))
        if self.D == "h":
            out["D"] = rng.standard_normal(h)
        elif self.D == "hp":
            out["D"] = rng.standard_normal((h, p))
        if self.z:
            out["z"] = rng.standard_normal((b, l, h, p))
        if self.bias:
            out["dt_bias"] = bias
        if self.initial:
            out["initial_states"] = rng.standard_normal((b, h, p, n))
        return out


@st.composite
def mamba_chunk_cases(draw: Any, features: frozenset[str] = MAMBA_CHUNK_FEATURES, max_l: int = 24) -> MambaChunkCase:
    """Cases using only ``features``: b <= 2 (b h <= 4), l <= max_l (l = 1 and l not a multiple of the chunk size
    included) and at most ``MAX_CHUNKS`` chunks, h <= 4, p, n <= 16, chunk sizes {1, 4, 8, 16}; g = h unless
    ``"grouped"`` (then any divisor of h)."""
    h = draw(st.integers(1, 4))
    # heads per group, 2 first: h = 4 with g = 2 is the one shape where contiguous (i // 2) and interleaved
    # (i % 2) group maps differ
    g = h // draw(st.sampled_from([r for r in (2, 1, 3, 4) if h % r == 0])) if "grouped" in features else h

    def flag(name: str) -> bool:
        return name in features and draw(st.booleans())

    Q = draw(st.sampled_from(CHUNK_SIZES))
    top = min(max_l, MAX_CHUNKS * Q)
    return MambaChunkCase(
        b=draw(st.integers(1, 2 if h <= 2 else 1)),
        l=draw(st.one_of(st.sampled_from(tuple(x for x in LENGTHS if x <= top)), st.integers(1, top))),
        h=h, g=g, p=draw(st.sampled_from((1, 3, 8, 16))), n=draw(st.sampled_from((1, 4, 16))),
        chunk_size=Q, decay=draw(st.sampled_from(("mild", "mild", "steep"))),
        D=draw(st.sampled_from(("none", "h", "hp"))) if "D" in features else "none",
        z=flag("z"), bias=flag("dt_bias"), softplus=flag("dt_softplus"), initial=flag("initial_states"),
        final=flag("return_final_states"), seed=draw(st.integers(0, 2**32 - 1)))
