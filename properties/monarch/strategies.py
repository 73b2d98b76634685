"""Public Hypothesis strategies of Monarch inputs: factors in the fly layout w1 [k, q, p], w2 [l, s, r] with
n = m^2 (all sizes m) and general n = p q (rectangular blocks), the Monarch case q = l, r = k; printable cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.reference.monarch import monarch_dense

__all__ = ["MONARCH_GENERAL_SIZES", "MonarchCase", "MonarchMatmulCase", "monarch_cases", "monarch_matmul_cases"]

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


@dataclass(frozen=True)
class MonarchMatmulCase:
    """Inputs of op ``monarch_matmul``: x [B, T, k p], w1 [k, q, p], w2 [l, s, r] with l r = k q (fly's general
    shapes; q = l, r = k is the Monarch case, k = q = p = l = s = r = m the square one)."""

    B: int
    T: int
    k: int
    q: int
    p: int
    l: int
    s: int
    amp: float = 1.0
    seed: int = 0

    @property
    def r(self) -> int:
        return self.k * self.q // self.l

    @property
    def n_in(self) -> int:
        return self.k * self.p

    @property
    def n_out(self) -> int:
        return self.l * self.s

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        # fly's init scale: w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) keeps |y| ~ |x|
        w1 = rng.uniform(-1, 1, (self.k, self.q, self.p)) / np.sqrt(self.p)
        w2 = rng.uniform(-1, 1, (self.l, self.s, self.r)) / np.sqrt(self.r)
        x = rng.standard_normal((self.B, self.T, self.n_in)) * self.amp
        return {"x": x, "w1": w1, "w2": w2}


@st.composite
def monarch_matmul_cases(draw: Any, max_block: int = 8, max_T: int = 8) -> MonarchMatmulCase:
    """Square (m in 1..max_block), Monarch (q = l) and general rectangular blocks (l divides k q)."""
    kind = draw(st.sampled_from(("square", "monarch", "general")))
    if kind == "square":
        m = draw(st.one_of(st.just(1), st.integers(1, max_block)))
        k = q = p = l_ = s = m
    else:
        k, p, s = (draw(st.integers(1, max_block)) for _ in range(3))
        if kind == "monarch":
            q = l_ = draw(st.integers(1, max_block))
        else:
            q = draw(st.integers(1, max_block))
            l_ = draw(st.sampled_from([d for d in range(1, k * q + 1) if (k * q) % d == 0 and d <= 4 * max_block]))
    return MonarchMatmulCase(B=draw(st.integers(1, 2)), T=draw(st.integers(1, max_T)), k=k, q=q, p=p, l=l_, s=s,
                             amp=draw(st.sampled_from((1.0, 1e-3, 100.0))), seed=draw(st.integers(0, 2**32 - 1)))
