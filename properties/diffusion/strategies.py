"""Public Hypothesis strategies of diffusion inputs: times t in [0, 1] (ends included), pooling factors s,
Gaussian and discrete-mixture data; printable cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["MixtureCase", "ScheduleCase", "mixture_cases", "schedule_cases"]


@dataclass(frozen=True)
class ScheduleCase:
    """A grid of ``n`` times in [lo, hi] (ends included when lo = 0 / hi = 1) and a pooling factor s."""

    s: int
    lo: float = 0.0
    hi: float = 1.0
    n: int = 9
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        t = np.concatenate([[self.lo, self.hi, 0.5], rng.uniform(self.lo, self.hi, self.n)])
        return {"t": np.clip(t, 0.0, 1.0)}


@st.composite
def schedule_cases(draw: Any, interior: bool = False) -> ScheduleCase:
    """s in {1, 2, 3, 4, 8, 16, 32}; time windows reaching t = 0 and t = 1 unless ``interior``."""
    lo, hi = draw(st.sampled_from(((0.0, 1.0), (0.0, 0.1), (0.9, 1.0), (0.4, 0.6), (1e-6, 1 - 1e-6))))
    if interior:
        lo, hi = max(lo, 1e-6), min(hi, 1 - 1e-6)
    return ScheduleCase(s=draw(st.sampled_from((1, 2, 3, 4, 8, 16, 32))), lo=lo, hi=hi, n=draw(st.integers(1, 16)),
                        seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class MixtureCase:
    """Discrete 1-d data x0 in {centers} with weights, a noise level (abar, bbar) (variance preserving when
    ``vp``, else abar = 1 as in EDM / SiD) and query points x_t."""

    K: int
    t: float
    vp: bool = True
    spread: float = 1.0
    seed: int = 0

    @property
    def abar_bbar(self) -> tuple[float, float]:
        if self.vp:
            return float(np.cos(np.pi * self.t / 2)), float(np.sin(np.pi * self.t / 2))
        return 1.0, float(np.tan(np.pi * self.t / 2))

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        c = rng.standard_normal(self.K) * self.spread
        w = rng.uniform(0.1, 1.0, self.K)
        a, b = self.abar_bbar
        x = a * rng.choice(c, 7) + b * rng.standard_normal(7)
        return {"centers": c, "weights": w / w.sum(), "x": x}


@st.composite
def mixture_cases(draw: Any) -> MixtureCase:
    """K in 1..6 points, t in (0.02, 0.98), both parameterisations."""
    return MixtureCase(K=draw(st.integers(1, 6)), t=draw(st.sampled_from((0.02, 0.1, 0.3, 0.5, 0.8, 0.98))),
                       vp=draw(st.booleans()), spread=draw(st.sampled_from((0.1, 1.0, 3.0))),
                       seed=draw(st.integers(0, 2**32 - 1)))
