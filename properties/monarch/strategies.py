"""Public Hypothesis strategies of Monarch inputs: factors in the fly layout w1 [k, q, p], w2 [l, s, r] with
n = m^2 (all sizes m) and general n = p q (rectangular blocks), the Monarch case q = l, r = k; printable cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.reference.monarch import monarch_dense

__all__ = ["MONARCH_GENERAL_SIZES", "MonarchCase", "monarch_cases"]

# (k, l, p, s): n_in = k p, n_out = l s; the spec's general sizes n in {6, 12, 15, 16, 36, 48} with R blocks b x b
MONARCH_GENERAL_SIZES = ((3, 2, 2, 3), (3, 4, 4, 3), (5, 3, 3, 5), (4, 4, 4, 4), (6, 6, 6, 6), (12, 4, 4, 12),
                         (4, 12, 12, 4), (2, 3, 5, 7), (1, 4, 3, 2), (4, 1, 2, 3))


@dataclass(frozen=True)
class MonarchCase:
    """Monarch factors w1 [k, l, p] (R: k blocks l x p) and w2 [l, s, k] (L: l blocks s x k), input x [batch, k p]
    and a dense matrix A [l s, k p] (``kind``: "gaussian" = generic dense, "monarch" = exactly Monarch,
    "near" = Monarch plus ``noise`` Gaussian, "lowrank" = rank-1 slabs with tied singular values elsewhere)."""

    k: int
    l: int
    p: int
    s: int
    batch: int = 2
    kind: str = "gaussian"
    noise: float = 0.1
    amp: float = 1.0
    seed: int = 0

    @property
    def n_in(self) -> int:
        return self.k * self.p

    @property
    def n_out(self) -> int:
        return self.l * self.s

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        w1 = rng.standard_normal((self.k, self.l, self.p)) * self.amp
        w2 = rng.standard_normal((self.l, self.s, self.k)) * self.amp
        x = rng.standard_normal((self.batch, self.n_in)) * self.amp
        g = rng.standard_normal((self.n_out, self.n_in))
        if self.kind == "gaussian":
            a = g
        else:
            a = monarch_dense(w1, w2)
            if self.kind == "near":
                a = a + self.noise * g
        return {"x": x, "w1": w1, "w2": w2, "a": a * 1.0}


@st.composite
def monarch_cases(draw: Any, kind: str | None = None, square: bool | None = None, max_m: int = 8) -> MonarchCase:
    """n = m^2 with m in 1..max_m (k = l = p = s = m) or a general size from MONARCH_GENERAL_SIZES."""
    sq = draw(st.booleans()) if square is None else square
    if sq:
        m = draw(st.one_of(st.just(1), st.integers(1, max_m)))
        k = l_ = p = s = m
    else:
        k, l_, p, s = draw(st.sampled_from(MONARCH_GENERAL_SIZES))
    return MonarchCase(k=k, l=l_, p=p, s=s, batch=draw(st.integers(1, 3)),
                       kind=kind or draw(st.sampled_from(("gaussian", "monarch", "near"))),
                       noise=draw(st.sampled_from((1e-6, 0.1, 1.0))),
                       amp=draw(st.sampled_from((1.0, 1e-3, 30.0))), seed=draw(st.integers(0, 2**32 - 1)))
