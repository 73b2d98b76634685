"""Planted bugs in the NBCE oracles (reference/nbce.py): each law must catch at least one."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "nbce"
L = "nbce."


def _pooled(c: np.ndarray, pooling: str, previous: int | None, eta: float) -> np.ndarray:
    if pooling == "min_entropy":
        return c[ref.nbce_select(c, previous, eta)]
    return c.mean(0) if pooling == "average" else c.max(0)


@mutant(L + "merge_without_plus_one", family=FAMILY, replaces="nbce_merge",
        caught_by=[L + "average_pooling_is_naive_bayes", L + "beta_limits"])
def merge_without_plus_one(logp_contexts: Any, logp_uncond: Any, *, beta: float = 0.25,
                           pooling: str = "min_entropy", previous: int | None = None, eta: float = 0.0,
                           normalize: bool = True) -> np.ndarray:
    """beta P - beta log p(T): the +1 of (beta + 1) dropped (at beta = n - 1 the contexts weigh n - 1, not n)."""
    c, u = np.asarray(logp_contexts, float), np.asarray(logp_uncond, float)
    p = _pooled(c, pooling, previous, eta)
    with np.errstate(invalid="ignore"):
        m = np.where(np.isfinite(p), np.where(u > -100, beta * p - beta * u, p), -np.inf)
    return ref.nbce_log_softmax(m) if normalize else m


@mutant(L + "merge_beta_sign_flipped", family=FAMILY, replaces="nbce_merge", caught_by=[L + "beta_limits"])
def merge_beta_sign(logp_contexts: Any, logp_uncond: Any, *, beta: float = 0.25, **kw: Any) -> np.ndarray:
    """(beta + 1) P + beta log p(T): the unconditional prediction added instead of subtracted."""
    c, u = np.asarray(logp_contexts, float), np.asarray(logp_uncond, float)
    pooled = _pooled(c, kw.get("pooling", "min_entropy"), kw.get("previous"), kw.get("eta", 0.0))
    m = np.where(np.isfinite(pooled), np.where(u > -100, (1 + beta) * pooled + beta * np.where(u > -100, u, 0), pooled),
                 -np.inf)
    return ref.nbce_log_softmax(m) if kw.get("normalize", True) else m


@mutant(L + "merge_without_fallback", family=FAMILY, replaces="nbce_merge",
        caught_by=[L + "top_p_keeps_merge_finite"])
def merge_without_fallback(logp_contexts: Any, logp_uncond: Any, *, beta: float = 0.25, **kw: Any) -> np.ndarray:
    """(beta + 1) P - beta log p(T) everywhere, also where top-p truncated log p(T) to -inf: +inf there (the post's
    first version, before the `logits_uncond > -100` test)."""
    c, u = np.asarray(logp_contexts, float), np.asarray(logp_uncond, float)
    pooled = _pooled(c, kw.get("pooling", "min_entropy"), kw.get("previous"), kw.get("eta", 0.0))
    with np.errstate(invalid="ignore"):
        m = (1 + beta) * pooled - beta * u
    if not kw.get("normalize", True):
        return m
    with np.errstate(invalid="ignore"):
        fin = m[np.isfinite(m)]
        lse = np.log(np.sum(np.exp(fin - fin.max()))) + fin.max() if fin.size else 0.0
        return m - lse


@mutant(L + "naive_bayes_divides_by_n", family=FAMILY, replaces="nbce_naive_bayes",
        caught_by=[L + "average_pooling_is_naive_bayes"])
def naive_bayes_n(logp_contexts: Any, logp_uncond: Any) -> np.ndarray:
    """sum_k log p(T|S_k) - n log p(T): the prior counted once too often."""
    c, u = np.asarray(logp_contexts, float), np.asarray(logp_uncond, float)
    return ref.nbce_log_softmax(c.sum(0) - c.shape[0] * u)


@mutant(L + "select_max_entropy", family=FAMILY, replaces="nbce_select", caught_by=[L + "min_entropy_selects_lowest"])
def select_max_entropy(logp_contexts: Any, previous: int | None = None, eta: float = 0.1) -> int:
    """argmax of the entropy: the least confident context.  (The code's first version takes the argmax of
    sum p clip(log p) = -H, i.e. the same argmin of H; reading that sum as H flips the choice.)"""
    h = ref.nbce_entropy(logp_contexts)
    if previous is not None:
        h[previous] -= eta
    return int(np.argmax(h))


@mutant(L + "select_last_of_ties", family=FAMILY, replaces="nbce_select", caught_by=[L + "min_entropy_selects_lowest"])
def select_last_tie(logp_contexts: Any, previous: int | None = None, eta: float = 0.1) -> int:
    """argmin taking the last of equal minima (numpy/torch take the first)."""
    h = ref.nbce_entropy(logp_contexts)
    if previous is not None:
        h[previous] -= eta
    return int(len(h) - 1 - np.argmin(h[::-1]))


@mutant(L + "select_eta_added", family=FAMILY, replaces="nbce_select",
        caught_by=[L + "stickiness", L + "worked_example"])
def select_eta_added(logp_contexts: Any, previous: int | None = None, eta: float = 0.1) -> int:
    """entropy[previous] += eta: the previous choice penalised instead of favoured."""
    h = ref.nbce_entropy(logp_contexts)
    if previous is not None:
        h[previous] += eta
    return int(np.argmin(h))


@mutant(L + "top_p_keeps_too_few", family=FAMILY, replaces="nbce_top_p", caught_by=[L + "top_p_keeps_merge_finite"])
def top_p_too_few(logp: Any, top_p: float = 0.95) -> np.ndarray:
    """Removes an entry when the mass up to and including it is < 1 - top_p + its own mass (one entry too many:
    the kept mass can fall below top_p)."""
    a = np.asarray(logp, float)
    order = np.argsort(a, axis=-1, kind="stable")
    q = np.exp(np.take_along_axis(a, order, -1) - a.max(-1, keepdims=True))
    q = q / q.sum(-1, keepdims=True)
    cs = np.cumsum(q, -1)
    rm = (cs - q) <= 1 - top_p
    rm[..., -1] = False
    remove = np.zeros_like(rm)
    np.put_along_axis(remove, order, rm, -1)
    return np.where(remove, -np.inf, a)


@mutant(L + "top_p_disabled", family=FAMILY, replaces="nbce_top_p", caught_by=[L + "worked_example"])
def top_p_disabled(logp: Any, top_p: float = 0.95) -> np.ndarray:
    """No truncation at all (-beta log p(T) then amplifies the unconditional tail)."""
    return np.asarray(logp, float)


@mutant(L + "step_ignores_previous", family=FAMILY, replaces="nbce_step", caught_by=[L + "worked_example"])
def step_ignores_previous(logits: Any, *, previous: int | None = None, **kw: Any) -> tuple[np.ndarray, int]:
    """nbce_step that drops the stickiness (previous ignored)."""
    return ref.nbce_step(logits, previous=None, **kw)
