"""Public Hypothesis strategies of score vectors for the sparse probability maps (ops ``sparsemax`` and
``entmax15`` and the family's laws): any leading shape, n = 1, ties (grid, top tie, all equal), magnitudes up to
1e4 and shifts up to +-1e4; a printable case with ``case.arrays()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["SCORE_AMPS", "SCORE_SHIFTS", "TIES", "ProbMapCase", "prob_map_cases"]

# score magnitudes: tiny (near uniform), unit, large (sparse), huge (one-hot; exp overflows without max subtraction)
SCORE_AMPS = (0.01, 0.3, 1.0, 8.0, 100.0, 1e4)
SCORE_SHIFTS = (0.0, 3.0, -50.0, 1e4, -1e4)
# "none": Gaussian scores; "grid": rounded to a grid of amp/2 (many ties); "top_tie": the two largest equal;
# "all_equal": every score equal to the shift
TIES = ("none", "grid", "top_tie", "all_equal")


@dataclass(frozen=True)
class ProbMapCase:
    """Scores z [lead, rows, n] = amp * N(0, 1) + shift, with ties of kind ``ties``; the map runs along n."""

    lead: int
    rows: int
    n: int
    amp: float = 1.0
    shift: float = 0.0
    ties: str = "none"
    seed: int = 0

    @property
    def L(self) -> int:
        """The length of the mapped axis (what ``veriformer.properties.wrong_answers`` reads as the sequence length)."""
        return self.n

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        g = rng.standard_normal((self.lead, self.rows, self.n))
        if self.ties == "grid":
            g = np.round(2 * g) / 2
        elif self.ties == "top_tie" and self.n >= 2:
            top = np.argsort(-g, axis=-1, kind="stable")
            first = np.take_along_axis(g, top[..., :1], axis=-1)
            np.put_along_axis(g, top[..., 1:2], first, axis=-1)
        elif self.ties == "all_equal":
            g = np.zeros_like(g)
        return {"z": g * self.amp + self.shift}


@st.composite
def prob_map_cases(draw: Any, max_n: int = 64, max_rows: int = 4) -> ProbMapCase:
    """Score cases with n in [1, max_n] (n = 1 drawn often), every amplitude, shift and tie kind."""
    return ProbMapCase(
        lead=draw(st.integers(1, 2)),
        rows=draw(st.integers(1, max_rows)),
        n=draw(st.one_of(st.just(1), st.integers(1, max_n))),
        amp=draw(st.sampled_from(SCORE_AMPS)),
        shift=draw(st.sampled_from(SCORE_SHIFTS)),
        ties=draw(st.sampled_from(TIES)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
