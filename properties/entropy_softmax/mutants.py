"""Planted bugs in the entropy-invariant softmax oracles (reference/entropy_softmax.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "entropy_softmax"
AT_BASE = "entropy_softmax.standard_at_base_length"
CLAMP = "entropy_softmax.constant_factor_below_clamp"
RELU2 = "entropy_softmax.relu2_cannot_be_tempered"
BOUNDS = "entropy_softmax.entropy_bounds"
TREND = "entropy_softmax.entropy_varies_less_with_length"

Factor = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]  # (l, S, clamp, base) -> lambda


def _visible(q: Any, k: Any, causal: bool, mask: Any) -> np.ndarray:
    """Visibility [B, H, T, S] (causal end-aligned, AND the boolean mask)."""
    B, H, T, _ = np.shape(q)
    S = np.shape(k)[2]
    vis = ref.visibility_mask(T, S, causal=causal)[None, None]
    if mask is not None:
        vis = vis & np.asarray(mask, dtype=bool)
    return np.broadcast_to(vis, (B, H, T, S))


def _lengths(q: Any, k: Any, causal: bool, mask: Any) -> np.ndarray:
    """Visible keys per query [B, H, T]."""
    return _visible(q, k, causal, mask).sum(-1)


def _lam(factor: Factor, q: Any, k: Any, causal: bool, mask: Any, clamp: float, base: float) -> np.ndarray:
    return factor(_lengths(q, k, causal, mask).astype(np.float64), np.full(np.shape(q)[:3], float(np.shape(k)[2])),
                  float(clamp), float(base))


def _attention(factor: Factor) -> Callable[..., np.ndarray]:
    """An entropy_invariant_attention whose factor lambda(l, S, clamp, base) is ``factor``: softmax attention on
    the query rows scaled by lambda (softmax(lambda a) = softmax of (lambda q) k^T / sqrt(D))."""

    def fn(q: Any, k: Any, v: Any, *, causal: bool = False, clamp: float = 16, base: float = 512, mask: Any = None,
           scale: float | None = None, **kw: Any) -> np.ndarray:
        lam = _lam(factor, q, k, causal, mask, clamp, base)
        s = 1.0 / np.sqrt(np.shape(q)[-1]) if scale is None else scale
        return ref.softmax_attention(np.asarray(q, np.float64) * lam[..., None], k, v, causal=causal, mask=mask,
                                     scale=s)

    return fn


def _entropy(factor: Factor) -> Callable[..., np.ndarray]:
    """An attention_entropy whose entropy-invariant kind uses the factor ``factor`` (other kinds unchanged)."""

    def fn(q: Any, k: Any, *, kind: str = "entropy_invariant", causal: bool = False, clamp: float = 16,
           base: float = 512, mask: Any = None, scale: float | None = None, **kw: Any) -> np.ndarray:
        if kind != "entropy_invariant":
            return ref.attention_entropy(q, k, kind=kind, causal=causal, clamp=clamp, base=base, mask=mask,
                                         scale=scale)
        lam = _lam(factor, q, k, causal, mask, clamp, base)
        s = 1.0 / np.sqrt(np.shape(q)[-1]) if scale is None else scale
        return ref.attention_entropy(np.asarray(q, np.float64) * lam[..., None], k, kind="standard", causal=causal,
                                     mask=mask, scale=s)

    return fn


@mutant("entropy_softmax.log_base_mismatch", family=FAMILY, replaces="entropy_invariant_attention",
        caught_by=[AT_BASE])
def log_base_mismatch(*args: Any, **kw: Any) -> np.ndarray:
    """Factor log2(max(l, clamp)) / ln(base): two different logarithms, so the factor at l = base is 1/ln 2."""
    return _attention(lambda l, S, c, b: np.log2(np.maximum(l, c)) / np.log(b))(*args, **kw)


@mutant("entropy_softmax.length_counts_masked_keys", family=FAMILY, replaces="entropy_invariant_attention",
        caught_by=[AT_BASE, CLAMP])
def length_counts_masked(*args: Any, **kw: Any) -> np.ndarray:
    """l taken as the number of keys S, masked (or causally invisible) keys included."""
    return _attention(lambda l, S, c, b: np.log(np.maximum(S, c)) / np.log(b))(*args, **kw)


@mutant("entropy_softmax.clamp_min_instead_of_max", family=FAMILY, replaces="entropy_invariant_attention",
        caught_by=[AT_BASE, CLAMP])
def clamp_min(*args: Any, **kw: Any) -> np.ndarray:
    """Factor log(min(l, clamp)) / log(base): the clamp caps the length instead of flooring it."""
    return _attention(lambda l, S, c, b: np.log(np.minimum(l, c)) / np.log(b))(*args, **kw)


@mutant("entropy_softmax.relu2_divided_by_length", family=FAMILY, replaces="attention_probabilities",
        caught_by=[RELU2])
def relu2_by_length(q: Any, k: Any, *, kind: str = "entropy_invariant", **kw: Any) -> np.ndarray:
    """relu^2 weights relu(a)^2 / l (bert4keras squared_relu's normaliser) taken as the distribution: they scale
    by c^2 with the logits instead of being normalised by their own sum."""
    if kind != "relu2":
        return ref.attention_probabilities(q, k, kind=kind, **kw)
    scale = kw.get("scale")
    s = 1.0 / np.sqrt(np.shape(q)[-1]) if scale is None else scale
    a = np.asarray(q, np.float64) @ np.swapaxes(np.asarray(k, np.float64), -1, -2) * s
    vis = _visible(q, k, kw.get("causal", False), kw.get("mask"))
    return np.where(vis, np.maximum(a, 0.0) ** 2, 0.0) / np.maximum(vis.sum(-1), 1)[..., None]


@mutant("entropy_softmax.probabilities_count_masked_keys", family=FAMILY, replaces="attention_probabilities",
        caught_by=[AT_BASE])
def probabilities_count_masked(q: Any, k: Any, *, kind: str = "entropy_invariant", **kw: Any) -> np.ndarray:
    """Entropy-invariant distribution with l = S (masked keys counted)."""
    if kind != "entropy_invariant":
        return ref.attention_probabilities(q, k, kind=kind, **kw)
    base, clamp = kw.get("base", 512), kw.get("clamp", 16)
    lam = np.log(max(np.shape(k)[2], clamp)) / np.log(base)
    scale = kw.get("scale")
    s = (1.0 / np.sqrt(np.shape(q)[-1]) if scale is None else scale) * lam
    return ref.attention_probabilities(q, k, kind="standard", causal=kw.get("causal", False), mask=kw.get("mask"),
                                       scale=float(s))


@mutant("entropy_softmax.entropy_in_bits", family=FAMILY, replaces="attention_entropy", caught_by=[BOUNDS])
def entropy_bits(*args: Any, **kw: Any) -> np.ndarray:
    """Entropy in bits (log2) where nats are documented: uniform weights over l keys give log2 l > log l."""
    return ref.attention_entropy(*args, **kw) / np.log(2.0)


@mutant("entropy_softmax.entropy_without_length_factor", family=FAMILY, replaces="attention_entropy",
        caught_by=[TREND])
def entropy_no_factor(*args: Any, **kw: Any) -> np.ndarray:
    """The entropy-invariant kind computed without the factor log_base(l) (plain scaled softmax)."""
    return _entropy(lambda l, S, c, b: np.ones_like(l))(*args, **kw)


@mutant("entropy_softmax.entropy_clamp_min", family=FAMILY, replaces="attention_entropy", caught_by=[TREND])
def entropy_clamp_min(*args: Any, **kw: Any) -> np.ndarray:
    """Entropy of the entropy-invariant kind with the clamp as a cap, log(min(l, 16)) / log(512): a constant factor
    for every l >= 16, so the entropy grows with n like the standard softmax's."""
    return _entropy(lambda l, S, c, b: np.log(np.minimum(l, c)) / np.log(b))(*args, **kw)
