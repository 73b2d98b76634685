"""Public Hypothesis strategy of GAU / FLASH mixed-chunk attention inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["FlashCase", "flash_cases"]


@dataclass(frozen=True)
class FlashCase:
    """FLASH mixed-chunk attention inputs: four [B, n, s] heads (q/k quad, q/k lin) and v [B, n, e];
    chunk size c (any, the last chunk may be short)."""

    B: int
    n: int
    s: int
    e: int
    chunk: int
    causal: bool
    seed: int

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        shp = (self.B, self.n, self.s)
        return {"q_quad": rng.standard_normal(shp), "k_quad": rng.standard_normal(shp),
                "q_lin": rng.standard_normal(shp), "k_lin": rng.standard_normal(shp),
                "v": rng.standard_normal((self.B, self.n, self.e))}


@st.composite
def flash_cases(draw: Any, max_n: int = 24) -> FlashCase:
    """FLASH cases: n in [1, max_n], chunk sizes 1..n+2 (c = 1, c = n, c > n, c not dividing n)."""
    n = draw(st.one_of(st.just(1), st.integers(1, max_n)))
    return FlashCase(B=draw(st.integers(1, 2)), n=n, s=draw(st.sampled_from((1, 2, 4, 8))),
                     e=draw(st.sampled_from((1, 3, 8))), chunk=draw(st.integers(1, n + 2)),
                     causal=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))
