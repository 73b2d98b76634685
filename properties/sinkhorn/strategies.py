"""Public Hypothesis strategies of entropic-OT inputs (op ``sinkhorn`` and the Sinkhorn laws): costs C [B, n, m],
marginals a [B, n], b [B, m], eps relative to the cost's size down to C/eps ~ 2000 (beyond float64's exp range),
rectangular and n = 1 / m = 1 shapes; and SeT layer inputs (tokens, unit anchors, a reference set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["EPS_RATIOS", "SetCase", "SinkhornCase", "set_cases", "sinkhorn_cases"]

# eps / amp: large (near the independent coupling), moderate, small, tiny (C/eps of hundreds to thousands)
EPS_RATIOS = (20.0, 2.0, 1.0, 0.3, 0.1, 0.05, 0.02, 0.005, 0.001)


@dataclass(frozen=True)
class SinkhornCase:
    """Inputs of op ``sinkhorn``: cost C [B, n, m] of kind ``cost`` times ``amp`` plus ``shift``, marginals a, b
    (``"uniform"`` or ``"random"``: positive, at least 0.1/n each, summing to 1 in float64), ``eps`` (absolute) and
    ``n_iters`` sweeps.  Costs: ``"gauss"`` (i.i.d. normal), ``"sqdist"`` (squared distances of points in R^2),
    ``"uniform"`` (in [0, 1]).  ``mass`` scales both marginals (total mass ``mass`` instead of 1: at long n a plan of
    unit mass has entries near 1/(n m), subnormal in float16, where no dtype answer is accurate to 1 %)."""

    B: int
    n: int
    m: int
    eps: float
    n_iters: int
    cost: str = "gauss"
    marginals: str = "uniform"
    amp: float = 1.0
    shift: float = 0.0
    seed: int = 0
    mass: float = 1.0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        if self.cost == "gauss":
            C = rng.standard_normal((self.B, self.n, self.m))
        elif self.cost == "sqdist":
            x, y = rng.standard_normal((self.B, self.n, 2)), rng.standard_normal((self.B, self.m, 2))
            C = np.sum((x[:, :, None, :] - y[:, None, :, :]) ** 2, -1) / 4
        else:
            C = rng.random((self.B, self.n, self.m))
        C = C * self.amp + self.shift

        def marg(k: int) -> np.ndarray:
            if self.marginals == "uniform":
                return np.full((self.B, k), 1.0 / k)
            w = 0.1 + rng.random((self.B, k))
            return w / w.sum(-1, keepdims=True)

        return {"C": C, "a": marg(self.n) * self.mass, "b": marg(self.m) * self.mass}

    @property
    def ratio(self) -> float:
        """max |C| / eps (how far the Gibbs kernel exp(-C/eps) spreads)."""
        size = {"gauss": 4.0, "sqdist": 4.0, "uniform": 1.0}[self.cost] * self.amp + abs(self.shift)
        return size / self.eps


@st.composite
def sinkhorn_cases(draw: Any, max_n: int = 12, max_B: int = 3, max_ratio: float | None = 50.0,
                   min_ratio: float | None = None, n_iters: tuple[int, ...] = (1, 2, 5, 20, 50),
                   square: bool = False, uniform: bool = False, shift: bool | None = False) -> SinkhornCase:
    """Sinkhorn cases with n, m in [1, max_n] (n = 1 and m = 1 included; ``square`` forces n = m), eps = amp / r for
    r in ``EPS_RATIOS`` limited to max|C|/eps <= ``max_ratio`` (None: up to ~16000) and >= ``min_ratio``; ``shift``
    adds a constant of 10 x amp to the cost (the log domain's underflow region; None: drawn)."""
    n = draw(st.one_of(st.just(1), st.integers(1, max_n)))
    m = n if square else draw(st.one_of(st.just(1), st.integers(1, max_n)))
    amp = draw(st.sampled_from((1.0, 0.01, 30.0)))
    cost = draw(st.sampled_from(("gauss", "sqdist", "uniform")))
    if shift is None:
        shift = draw(st.booleans())
    sh = 10.0 * amp if shift else 0.0
    size = {"gauss": 4.0, "sqdist": 4.0, "uniform": 1.0}[cost] * amp + sh
    ratios = [r for r in EPS_RATIOS if (max_ratio is None or size / (r * amp) <= max_ratio)
              and (min_ratio is None or size / (r * amp) >= min_ratio)] or [max(EPS_RATIOS)]
    return SinkhornCase(
        B=draw(st.integers(1, max_B)), n=n, m=m, eps=draw(st.sampled_from(ratios)) * amp,
        n_iters=draw(st.sampled_from(n_iters)), cost=cost,
        marginals="uniform" if uniform else draw(st.sampled_from(("uniform", "random"))), amp=amp, shift=sh,
        seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class SetCase:
    """Inputs of one SeT head: tokens X [n, d] of size ``amp``, unit anchors Z [k, d] (well separated: a random
    orthonormal set when k <= d, else random unit vectors), reference Y [p, k]; kernel ``alpha``, ``eps``, sweeps."""

    n: int
    d: int
    k: int
    p: int
    alpha: float = 1.0
    eps: float = 0.5
    n_iters: int = 10
    amp: float = 1.0
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        X = rng.standard_normal((self.n, self.d)) * self.amp
        if self.k <= self.d:
            Z = np.linalg.qr(rng.standard_normal((self.d, self.d)))[0][: self.k]
        else:
            Z = rng.standard_normal((self.k, self.d))
            Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        Y = rng.standard_normal((self.p, self.k))
        return {"X": X, "Z": Z, "Y": Y}


@st.composite
def set_cases(draw: Any, max_n: int = 12) -> SetCase:
    """SeT cases with n, p in [1, max_n], d in [1, 8], k in [1, d] (anchors orthonormal, so the Nyström Gram is
    well conditioned), alpha in {0.5, 1, 4}, eps in {0.05, 0.5, 5}, 1-20 sweeps."""
    d = draw(st.integers(1, 8))
    return SetCase(n=draw(st.integers(1, max_n)), d=d, k=draw(st.integers(1, d)), p=draw(st.integers(1, max_n)),
                   alpha=draw(st.sampled_from((0.5, 1.0, 4.0))), eps=draw(st.sampled_from((0.05, 0.5, 5.0))),
                   n_iters=draw(st.sampled_from((1, 3, 10, 20))), amp=draw(st.sampled_from((1.0, 0.1, 10.0))),
                   seed=draw(st.integers(0, 2**32 - 1)))
