"""Public Hypothesis strategy of Performer (FAVOR+) inputs: a query/key pair and a feature count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["PerformerCase", "performer_cases"]


@dataclass(frozen=True)
class PerformerCase:
    """A query/key pair (d dims) with ||q + k||^2 = ``mix`` (<= 1, where the relative variance
    e^{||q+k||^2} - 1 stays small and Monte-Carlo tests are not heavy-tailed), and a seed for features."""

    d: int
    m: int
    mix: float
    seed: int

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        u = rng.standard_normal(self.d)
        s = u / np.linalg.norm(u) * np.sqrt(self.mix)  # q + k
        w = rng.standard_normal(self.d) * 0.4  # q - k
        return {"q": (s + w) / 2, "k": (s - w) / 2}


@st.composite
def performer_cases(draw: Any, max_d: int = 16) -> PerformerCase:
    """Performer cases: d in {1, 2, 4, 8, 16}, m in {1, 4, 16}, ||q + k||^2 in {0.05, 0.3, 1}."""
    d = draw(st.sampled_from(tuple(x for x in (1, 2, 4, 8, 16) if x <= max_d)))
    return PerformerCase(d=d, m=draw(st.sampled_from((1, 4, 16))), mix=draw(st.sampled_from((0.05, 0.3, 1.0))),
                         seed=draw(st.integers(0, 2**32 - 1)))
