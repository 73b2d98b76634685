"""Public Hypothesis strategy of LoRA-GA inputs: W0, a gradient G (generic, low-rank, tied singular values),
the rank r (2r up to min(out, in)), alpha, rsLoRA, direction, scale and gamma; a printable case."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["LoraGACase", "lora_ga_cases"]


@dataclass(frozen=True)
class LoraGACase:
    """W0 [out, in], G [out, in] of kind ``grad`` ("gaussian"; "decaying": sigma_i = 2^-i; "lowrank": rank
    ``2r`` exactly; "tied": sigma_{2r-1} = sigma_{2r}, so G_2r is not unique), x [batch, in], data X [in, n],
    targets Y [out, n] for the quadratic loss 0.5 ||W X - Y||^2."""

    out: int
    inn: int
    r: int
    alpha: float = 16.0
    use_rslora: bool = False
    direction: str = "ArB2r"
    scale: str = "stable"
    stable_gamma: float = 16.0
    grad: str = "gaussian"
    amp: float = 1.0
    seed: int = 0

    def kwargs(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "direction": self.direction, "scale": self.scale,
                "stable_gamma": self.stable_gamma, "use_rslora": self.use_rslora}

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        w0 = rng.standard_normal((self.out, self.inn)) * self.amp
        U, _ = np.linalg.qr(rng.standard_normal((self.out, self.out)))
        V, _ = np.linalg.qr(rng.standard_normal((self.inn, self.inn)))
        k = min(self.out, self.inn)
        if self.grad == "decaying":
            sig = 2.0 ** -np.arange(k)
        elif self.grad == "lowrank":
            sig = np.where(np.arange(k) < 2 * self.r, np.sort(rng.uniform(0.5, 2, k))[::-1], 0.0)
        elif self.grad == "tied":
            sig = np.sort(rng.uniform(0.5, 2, k))[::-1]
            sig[2 * self.r - 1:] = np.minimum(sig[2 * self.r - 1:], sig[2 * self.r - 2] * 0.5)
            if 2 * self.r < k:
                sig[2 * self.r] = sig[2 * self.r - 1]
        else:
            sig = None
        g = rng.standard_normal((self.out, self.inn)) if sig is None else (U[:, :k] * sig) @ V[:, :k].T
        x = rng.standard_normal((3, self.inn))
        X = rng.standard_normal((self.inn, 5))
        Y = rng.standard_normal((self.out, 5))
        return {"w0": w0, "g": g * self.amp, "x": x, "X": X, "Y": Y}


@st.composite
def lora_ga_cases(draw: Any, direction: str | None = None, scale: str | None = None, max_dim: int = 32,
                  grad: str | None = None) -> LoraGACase:
    """out, in in [2, max_dim]; r in [1, min(out, in) // 2] (2r = min(out, in) reached)."""
    out = draw(st.integers(2, max_dim))
    inn = draw(st.integers(2, max_dim))
    r = draw(st.one_of(st.just(min(out, inn) // 2), st.just(1), st.integers(1, min(out, inn) // 2)))
    return LoraGACase(
        out=out, inn=inn, r=r, alpha=draw(st.sampled_from((8.0, 16.0, 1.0, 0.5, 64.0))),
        use_rslora=draw(st.booleans()),
        direction=direction or draw(st.sampled_from(("ArB2r", "A2rBr", "ArBr"))),
        scale=scale or draw(st.sampled_from(("stable", "gd", "unit"))),
        stable_gamma=draw(st.sampled_from((16.0, 1.0, 64.0))),
        grad=grad or draw(st.sampled_from(("gaussian", "decaying", "lowrank", "tied"))),
        amp=draw(st.sampled_from((1.0, 1e-3, 100.0))), seed=draw(st.integers(0, 2**32 - 1)))
