"""Public Hypothesis strategy of RoPE inputs (op ``rope`` and the RoPE laws): x and integer positions up to
1e6, negative ones included, every layout and partial rotation; a printable case with ``case.arrays()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["ROPE_BASES", "RopeCase", "rope_cases"]


@dataclass(frozen=True)
class RopeCase:
    """Inputs of op ``rope``: x [B, H, T, D] and integer positions [T] of kind ``positions``:
    ``"arange"`` (0..T-1), ``"offset"`` (decode: offset..offset+T-1), ``"random"`` (sorted, up to
    ``max_position``), ``"signed"`` (any integers in +-max_position)."""

    B: int
    H: int
    T: int
    D: int
    positions: str = "arange"
    offset: int = 0
    max_position: int = 4096
    base: float = 10000.0
    layout: str = "half"
    rotary_dim: int | None = None
    amp: float = 1.0
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.B, self.H, self.T, self.D)) * self.amp
        if self.positions == "arange":
            pos = np.arange(self.T)
        elif self.positions == "offset":
            pos = np.arange(self.T) + self.offset
        elif self.positions == "random":
            pos = np.sort(rng.integers(0, self.max_position + 1, self.T))
        else:
            pos = rng.integers(-self.max_position, self.max_position + 1, self.T)
        return {"x": x, "positions": pos.astype(np.int64)}


ROPE_BASES = (10000.0, 500000.0, 1e6, 2.0, 10.5)


@st.composite
def rope_cases(draw: Any, layout: str | None = None, rotary_dim: int | None = None, max_T: int = 32,
               max_D: int = 256, max_position: int = 10**6) -> RopeCase:
    """RoPE cases; ``layout`` / ``rotary_dim`` fixed when given (D is then drawn >= rotary_dim)."""
    T = draw(st.one_of(st.just(1), st.integers(1, max_T)))
    lo = 1 if rotary_dim is None else max(1, rotary_dim // 2)
    D = 2 * draw(st.sampled_from([d for d in (1, 2, 3, 4, 8, 16, 32, 40, 64, 128) if lo <= d <= max_D // 2]))
    kind = draw(st.sampled_from(("arange", "offset", "random", "signed")))
    return RopeCase(
        B=draw(st.integers(1, 2)), H=draw(st.integers(1, 3)), T=T, D=D, positions=kind,
        offset=draw(st.sampled_from((1, 17, 4095, 65536, max_position))),
        max_position=draw(st.sampled_from((16, 4096, max_position))),
        base=draw(st.sampled_from(ROPE_BASES)),
        layout=layout or draw(st.sampled_from(("half", "interleaved"))),
        rotary_dim=rotary_dim, amp=draw(st.sampled_from((1.0, 1e-3, 300.0))),
        seed=draw(st.integers(0, 2**32 - 1)))
