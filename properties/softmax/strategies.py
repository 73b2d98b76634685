"""Public Hypothesis strategy of softmax inputs: logit vectors up to +-1e4 with -inf entries (masked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["LOGIT_SCALES", "LogitsCase", "logits_cases"]

# logit magnitudes: tiny, unit, large (near one-hot), extreme (exp(1e4) overflows every float format)
LOGIT_SCALES = (0.01, 1.0, 8.0, 100.0, 1e4)


@dataclass(frozen=True)
class LogitsCase:
    """A batch of logit vectors [rows, n]; ``neg_inf`` entries are set to -inf (masked), whole rows
    included when ``masked_rows``."""

    rows: int
    n: int
    amp: float
    shift: float
    neg_inf: bool
    seed: int

    def arrays(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.rows, self.n)) * self.amp + self.shift
        if self.neg_inf:
            x[rng.random(x.shape) < 0.3] = -np.inf
        return x


@st.composite
def logits_cases(draw: Any, max_n: int = 64, neg_inf: bool = True) -> LogitsCase:
    """Logit vectors with n in [1, max_n], amplitudes up to 1e4 and shifts up to +-1e4."""
    return LogitsCase(
        rows=draw(st.integers(1, 4)),
        n=draw(st.one_of(st.just(1), st.integers(1, max_n))),
        amp=draw(st.sampled_from(LOGIT_SCALES)),
        shift=draw(st.sampled_from((0.0, 3.0, -50.0, 1e4, -1e4))),
        neg_inf=draw(st.booleans()) if neg_inf else False,
        seed=draw(st.integers(0, 2**32 - 1)),
    )
