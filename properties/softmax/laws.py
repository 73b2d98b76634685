"""Laws of softmax and log-sum-exp (Bridle 1990; Su kexue.fm/archives/10145)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.softmax.strategies import LogitsCase, logits_cases
from veriformer.registry import law

SOURCE = "Su kexue.fm/archives/10145; Bridle 1990"


def _finite_max(x: np.ndarray) -> float:
    f = x[np.isfinite(x)]
    return float(np.abs(f).max()) if f.size else 0.0


@law("softmax.shift_invariance", family="softmax", source=SOURCE)
def shift_invariance(ref: Any, case: LogitsCase = logits_cases(),
                     c: float = st.sampled_from((1.0, -7.5, 1e3, -1e4, 1e4))) -> Agreement:
    """softmax(x + c) = softmax(x) for every constant c, including shifts of 1e4 that overflow exp
    without max subtraction.  Rounding of x + c perturbs each logit by u |x + c|."""
    x = case.arrays()
    return Agreement(ref.softmax(x + c), ref.softmax(x), "softmax(x + c) == softmax(x)",
                     terms=case.n + 2 * (abs(c) + _finite_max(x)))


@law("softmax.simplex", family="softmax", source=SOURCE)
def simplex(ref: Any, case: LogitsCase = logits_cases()) -> list[Any]:
    """softmax(x) lies on the simplex: p >= 0, p <= 1, and each row with a finite entry sums to 1
    (an all -inf row is all zeros, by the masked-row convention)."""
    x = case.arrays()
    p = ref.softmax(x)
    live = np.any(np.isfinite(x), axis=-1)
    return [Bound(-p, 0.0, "p >= 0"), Bound(p, 1.0, "p <= 1", slack=2**-52),
            Agreement(p.sum(-1), live.astype(float), "sum p == 1 (0 for all-masked rows)", terms=case.n)]


@law("softmax.logsumexp_bounds", family="softmax", source=SOURCE)
def logsumexp_bounds(ref: Any, case: LogitsCase = logits_cases()) -> list[Any]:
    """max x <= lse(x) <= max x + log n (n = unmasked entries), and softmax(x) = exp(x - lse(x))."""
    x = case.arrays()
    lse = ref.logsumexp(x)
    mx = np.max(x, axis=-1)
    n = np.maximum(np.sum(np.isfinite(x), axis=-1), 1)
    slack = 4 * 2**-53 * (case.n + _finite_max(x))
    with np.errstate(invalid="ignore", over="ignore"):  # a mutant's lse may be wrong by hundreds
        p = np.where(np.isfinite(x), np.exp(x - np.where(np.isfinite(lse), lse, 0.0)[..., None]), 0.0)
    return [Bound(mx, lse, "max x <= lse", slack=slack), Bound(lse, mx + np.log(n), "lse <= max x + log n",
                                                              slack=slack),
            Agreement(ref.softmax(x), p, "softmax == exp(x - lse)", terms=case.n + 4 * _finite_max(x))]
