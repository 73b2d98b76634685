"""Planted bugs in Performer random features (oracle mutants)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "performer"


@mutant("performer.missing_half_norm_term", family=FAMILY, replaces="performer_features",
        caught_by=["performer.unbiased_estimator"])
def missing_half_norm(x: Any, omega: Any, *, kind: str = "positive", **kw: Any) -> np.ndarray:
    """Positive features exp(omega x) / sqrt(m) without the -||x||^2/2 term: the estimate has mean
    exp(||q+k||^2 / 2) instead of exp(q . k)."""
    f = ref.performer_features(x, omega, kind=kind, **kw)
    if kind != "positive":
        return f
    return f * np.exp(np.sum(np.asarray(x, np.float64) ** 2, -1, keepdims=True) / 2)


@mutant("performer.features_divided_by_m", family=FAMILY, replaces="performer_features",
        caught_by=["performer.unbiased_estimator"])
def divided_by_m(x: Any, omega: Any, *, kind: str = "positive", **kw: Any) -> np.ndarray:
    """Features normalised by 1/m instead of 1/sqrt(m): the kernel estimate shrinks by a factor m."""
    return ref.performer_features(x, omega, kind=kind, **kw) / np.sqrt(np.shape(omega)[0])


@mutant("performer.half_norm_outside_exp", family=FAMILY, replaces="performer_features",
        caught_by=["performer.positive_features_and_denominators"])
def half_norm_outside(x: Any, omega: Any, *, kind: str = "positive", **kw: Any) -> np.ndarray:
    """Positive features (exp(omega x) - ||x||^2/2) / sqrt(m): the subtraction slipped outside the exp, so
    features (and FAVOR denominators) can be negative."""
    if kind != "positive":
        return ref.performer_features(x, omega, kind=kind, **kw)
    xa, w = np.asarray(x, np.float64), np.asarray(omega, np.float64)
    return (np.exp(xa @ w.T) - np.sum(xa**2, -1, keepdims=True) / 2) / np.sqrt(w.shape[0])


@mutant("performer.trig_variance_missing_half", family=FAMILY, replaces="performer_variance",
        caught_by=["performer.variance_formula"])
def trig_variance_double(q: Any, k: Any, m: int, *, kind: str = "positive") -> np.ndarray:
    """Trig variance without the 1/2 of E[cos^2] (a single cosine's variance taken as (1 - e^{-|q-k|^2})^2)."""
    out = ref.performer_variance(q, k, m, kind=kind)
    return out * 2 if kind == "trig" else out


@mutant("performer.favor_without_normaliser", family=FAMILY, replaces="favor_attention",
        caught_by=["performer.query_scalars_cancel"])
def favor_no_den(q: Any, k: Any, v: Any, omega: Any, *, kind: str = "positive", **kw: Any) -> np.ndarray:
    """FAVOR attention that forgets D^{-1}: phi(Q)(phi(K)^T V) / T (a constant instead of the row sums)."""
    pq = ref.performer_features(q, omega, kind=kind)
    pk = ref.performer_features(k, omega, kind=kind)
    return pq @ (np.swapaxes(pk, -1, -2) @ np.asarray(v, np.float64)) / np.shape(q)[2]


@mutant("performer.orf_unit_norm_rows", family=FAMILY, replaces="gaussian_projection",
        caught_by=["performer.orthogonal_features"])
def orf_unit_norm(m: int, d: int, *, seed: int, orthogonal: bool = False) -> np.ndarray:
    """Orthogonal features left with unit-norm rows (the chi_d norms are not drawn): rows are no longer
    marginally N(0, I), so the estimator is biased."""
    w = ref.gaussian_projection(m, d, seed=seed, orthogonal=orthogonal)
    return w / np.linalg.norm(w, axis=-1, keepdims=True) if orthogonal else w
