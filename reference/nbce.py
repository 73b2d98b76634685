"""Naive-Bayes context extension (NBCE): merging the next-token predictions of n contexts (float64 oracles).

Naive Bayes over contexts S_1..S_n, for each candidate token T (vocabulary axis last):

    log p(T | S_1..S_n) = sum_k log p(T | S_k) - (n - 1) log p(T) + const
                        = (beta + 1) mean_k log p(T | S_k) - beta log p(T) + const,      beta = n - 1,

generalised to ``(beta + 1) P[log p(T | S)] - beta log p(T)`` with a pooling P over the contexts: ``"average"``
(naive Bayes at beta = n - 1), ``"max"``, or ``"min_entropy"`` (the post's final choice: the log-probabilities of
the context whose prediction has the lowest entropy).  ``log p(T)`` is the prediction without context (an empty
context, row 0 of the batch in the reference code).  The constant is removed by normalising (log-softmax).

Robustness as in the reference code (``bojone/NBCE`` test.py, head commit): log-probabilities ``logits -
logsumexp``; top-p truncation of every row, the unconditional one included (Hugging Face ``TopPLogitsWarper``:
removed entries become -inf, the rest keep their values, not renormalised); entropy ``-sum exp(l) clip(l, -100,
0)`` (so ``0 * -inf`` never occurs); stickiness: the entropy of the context chosen at the previous step is lowered
by eta before the argmin; the merge uses the pooled row alone wherever ``log p(T) <= -100`` (truncated), which
avoids ``+inf`` and ``-inf - -inf``.  Tokens where the pooled row is -inf stay -inf.

Defaults of the code: beta = 0.25, eta = 0.1, top-p 0.95.  Layout: logits / log-probabilities [rows, V], contexts
[n, V], the unconditional row [V].
Sources: Su, kexue.fm/archives/9617 (NBCE) and 9632 (the robustness fixes); github.com/bojone/NBCE test.py;
Su et al., NAACL 2024, "Naive Bayes-based Context Extension for Large Language Models".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require
from veriformer.reference.softmax import logsumexp

__all__ = ["NBCE_POOLINGS", "nbce_entropy", "nbce_log_softmax", "nbce_merge", "nbce_naive_bayes", "nbce_select",
           "nbce_step", "nbce_top_p"]

NBCE_POOLINGS = ("min_entropy", "average", "max")
CLIP = -100.0  # the reference code's floor: entropy clip and the "truncated" test of the unconditional row


def _logp(x: Any, func: str, arg: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    a = as_float64(x, func, arg, ndim=ndim)
    require(not np.any(np.isnan(a)) and not np.any(a == np.inf), func, arg,
            "free of NaN and +inf (-inf marks a truncated token)", "a NaN or +inf")
    require(a.shape[-1] >= 1, func, arg, "non-empty along the vocabulary axis", a.shape)
    return a


def nbce_log_softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """``logits - logsumexp(logits)`` along ``axis`` (-inf entries stay -inf; an all -inf slice stays -inf).
    Source: bojone/NBCE test.py (``logits - logits.logsumexp(dim=-1, keepdims=True)``)."""
    a = as_float64(logits, "nbce_log_softmax", "logits")
    lse = np.expand_dims(logsumexp(a, axis=axis), axis)
    return np.where(np.isfinite(lse), a - np.where(np.isfinite(lse), lse, 0.0), -np.inf)


def nbce_top_p(logp: Any, top_p: float = 0.95) -> np.ndarray:
    """Top-p truncation of each row [..., V] as Hugging Face's ``TopPLogitsWarper``: with q = softmax(row), sorted
    ascending (stable: among equal values the lower index comes first), an entry is removed (set to -inf) when the
    cumulative mass up to and including it is ``<= 1 - top_p``; the largest entry is always kept.  The kept entries
    keep their values (no renormalisation), so the kept mass of q is the smallest prefix, in descending order, that
    reaches ``top_p``.  Source: transformers ``generation/logits_process.py`` (TopPLogitsWarper)."""
    a = _logp(logp, "nbce_top_p", "logp", ndim=(1, 2, 3))
    require(isinstance(top_p, int | float) and 0 < top_p <= 1, "nbce_top_p", "top_p", "a number in (0, 1]", top_p)
    order = np.argsort(a, axis=-1, kind="stable")
    q = np.exp(np.take_along_axis(a, order, axis=-1) - np.max(a, axis=-1, keepdims=True))
    q = q / q.sum(-1, keepdims=True)
    remove_sorted = np.cumsum(q, axis=-1) <= 1 - top_p
    remove_sorted[..., -1] = False
    remove = np.zeros_like(remove_sorted)
    np.put_along_axis(remove, order, remove_sorted, axis=-1)
    return np.where(remove, -np.inf, a)


def nbce_entropy(logp: Any) -> np.ndarray:
    """Entropy of each row [..., V] as the reference code computes it: ``-sum exp(l) clip(l, -100, 0)`` (a -inf
    entry contributes 0; a truncated row is not renormalised).  Source: bojone/NBCE test.py."""
    a = _logp(logp, "nbce_entropy", "logp", ndim=(1, 2, 3))
    return -np.sum(np.exp(a) * np.clip(a, CLIP, 0.0), axis=-1)


def nbce_select(logp_contexts: Any, previous: int | None = None, eta: float = 0.1) -> int:
    """Index (0-based among the n contexts) of the context with the lowest :func:`nbce_entropy`, after lowering the
    entropy of context ``previous`` (the previous step's choice) by ``eta`` (stickiness: a switch needs
    ``H_k < H_previous - eta``); ties go to the lower index (``torch.argmin``).  logp_contexts [n, V].  The
    reference code's index is this + 1 (its row 0 is the unconditional prediction).  Source: bojone/NBCE test.py."""
    a = _logp(logp_contexts, "nbce_select", "logp_contexts", ndim=2)
    require(isinstance(eta, int | float) and np.isfinite(eta), "nbce_select", "eta", "a finite number", eta)
    h = nbce_entropy(a)
    if previous is not None:
        require(isinstance(previous, int | np.integer) and 0 <= previous < a.shape[0], "nbce_select", "previous",
                f"None or a context index in [0, {a.shape[0]})", previous)
        h[previous] -= eta
    return int(np.argmin(h))


def nbce_merge(logp_contexts: Any, logp_uncond: Any, *, beta: float = 0.25, pooling: str = "min_entropy",
               previous: int | None = None, eta: float = 0.0, normalize: bool = True) -> np.ndarray:
    """NBCE merge ``(beta + 1) P[log p(T|S)] - beta log p(T)`` over the vocabulary.

    logp_contexts [n, V] and logp_uncond [V] are log-probabilities (possibly top-p truncated: -inf entries).
    ``pooling``: ``"min_entropy"`` (the row :func:`nbce_select` picks, with ``previous`` / ``eta``), ``"average"``
    (mean over contexts; naive Bayes at beta = n - 1) or ``"max"``.  Where ``log p(T) <= -100`` the pooled row is
    used alone; where the pooled row is -inf the result is -inf.  ``normalize``: log-softmax of the result (the
    constant removed).  Returns [V].  Source: Su kexue.fm/archives/9617, 9632; bojone/NBCE test.py."""
    c = _logp(logp_contexts, "nbce_merge", "logp_contexts", ndim=2)
    u = _logp(logp_uncond, "nbce_merge", "logp_uncond", ndim=1)
    require(u.shape[0] == c.shape[1], "nbce_merge", "logp_uncond", f"of shape ({c.shape[1]},) (the vocabulary of "
            "logp_contexts)", u.shape)
    require(isinstance(beta, int | float) and np.isfinite(beta), "nbce_merge", "beta", "a finite number", beta)
    require(pooling in NBCE_POOLINGS, "nbce_merge", "pooling", f"one of {NBCE_POOLINGS}", repr(pooling))
    if pooling == "min_entropy":
        pooled = c[nbce_select(c, previous, eta)]
    elif pooling == "average":
        pooled = np.mean(c, axis=0)
    else:
        pooled = np.max(c, axis=0)
    live = np.isfinite(pooled)
    safe_p, safe_u = np.where(live, pooled, 0.0), np.where(u > CLIP, u, 0.0)
    merged = np.where(live, np.where(u > CLIP, (1 + beta) * safe_p - beta * safe_u, safe_p), -np.inf)
    return nbce_log_softmax(merged) if normalize else merged


def nbce_step(logits: Any, *, beta: float = 0.25, eta: float = 0.1, top_p: float | None = 0.95,
              previous: int | None = None) -> tuple[np.ndarray, int]:
    """One decoding step of the reference code: logits [n + 1, V] with row 0 the unconditional prediction;
    log-softmax, top-p truncation of every row (``top_p=None``: none), min-entropy selection among rows 1..n with
    stickiness (``previous``: the previous step's row index in 1..n, or None at the first step), merge with the
    unconditional row and normalisation.  Returns (merged log-probabilities [V], chosen row index in 1..n).
    Source: bojone/NBCE test.py (``beta, eta = 0.25, 0.1``; ``TopPLogitsWarper(0.95)``)."""
    a = _logp(logits, "nbce_step", "logits", ndim=2)
    require(a.shape[0] >= 2, "nbce_step", "logits", "[n + 1, V] with n >= 1 contexts (row 0 unconditional)",
            a.shape)
    require(previous is None or (isinstance(previous, int | np.integer) and 1 <= previous < a.shape[0]),
            "nbce_step", "previous", f"None or a row index in [1, {a.shape[0]})", previous)
    lp = nbce_log_softmax(a)
    if top_p is not None:
        lp = nbce_top_p(lp, top_p)
    prev = None if previous is None else int(previous) - 1
    k = nbce_select(lp[1:], prev, eta)
    merged = nbce_merge(lp[1:], lp[0], beta=beta, pooling="min_entropy", previous=prev, eta=eta)
    return merged, k + 1


def nbce_naive_bayes(logp_contexts: Any, logp_uncond: Any) -> np.ndarray:
    """Naive-Bayes posterior over the vocabulary, normalised: ``log_softmax(sum_k log p(T|S_k) - (n - 1) log p(T))``
    (contexts independent given T).  logp_contexts [n, V], logp_uncond [V], both finite.
    Source: Su kexue.fm/archives/9617, eq. (2)."""
    c = _logp(logp_contexts, "nbce_naive_bayes", "logp_contexts", ndim=2)
    u = _logp(logp_uncond, "nbce_naive_bayes", "logp_uncond", ndim=1)
    require(bool(np.all(np.isfinite(c))) and bool(np.all(np.isfinite(u))), "nbce_naive_bayes", "logp_contexts",
            "finite together with logp_uncond (no truncation)", "a -inf entry")
    return nbce_log_softmax(np.sum(c, axis=0) - (c.shape[0] - 1) * u)
