"""Public Hypothesis strategy of NBCE inputs: next-token logits of n contexts plus the unconditional row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["NbceCase", "nbce_cases"]


@dataclass(frozen=True)
class NbceCase:
    """Logits [n + 1, V] = amp * N(0, 1) + shift, row 0 the unconditional prediction; with ``peaked`` each
    context row gets a bonus of ``amp`` * 3 on one random token (confident contexts, low entropy)."""

    n: int
    V: int
    amp: float = 1.0
    shift: float = 0.0
    peaked: bool = False
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.n + 1, self.V)) * self.amp + self.shift
        if self.peaked:
            x[np.arange(1, self.n + 1), rng.integers(0, self.V, self.n)] += 3 * self.amp
        return {"logits": x}


@st.composite
def nbce_cases(draw: Any, max_n: int = 6, max_V: int = 40, min_n: int = 1) -> NbceCase:
    """NBCE cases: n in [min_n, max_n] contexts (n = min_n drawn often), vocabularies of 1..max_V tokens, logit
    scales from near-uniform (0.1) to near-one-hot (30), shifts up to 1e4."""
    return NbceCase(n=draw(st.one_of(st.just(min_n), st.integers(min_n, max_n))),
                    V=draw(st.one_of(st.just(2), st.integers(1, max_V))),
                    amp=draw(st.sampled_from((0.1, 1.0, 3.0, 30.0))),
                    shift=draw(st.sampled_from((0.0, -7.0, 1e4))),
                    peaked=draw(st.booleans()),
                    seed=draw(st.integers(0, 2**32 - 1)))
