"""Planted bugs in the Performer-as-soft-VQ oracles (reference/performer_vq.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "performer"
INV2 = "performer_vq.invariance2_reduced_features"
NEG = "performer_vq.per_key_normalisation_changes_output"
EXP = "performer_vq.sampled_codes_expectation"


@mutant("performer_vq.unequal_norm_projection", family=FAMILY, replaces="equal_norm_projection", caught_by=[INV2])
def unequal_norms(m: int, d: int, *, seed: int, norm: float | None = None, orthogonal: bool = False) -> np.ndarray:
    """Projection rows left with their chi_d norms (plain Gaussian rows, norms not equalised): e^{-||omega_i||^2/2}
    is then a per-feature factor, not a global constant, and the reduced features no longer give FAVOR+."""
    w = ref.gaussian_projection(m, d, seed=seed, orthogonal=orthogonal)
    return w if norm is None else w * (norm / np.sqrt(d))


@mutant("performer_vq.key_feature_missing_half", family=FAMILY, replaces="vq_key_features", caught_by=[INV2])
def key_missing_half(k: Any, omega: Any, **kw: Any) -> np.ndarray:
    """Reduced key feature exp(-||k - omega_i||^2) (the 1/2 of the Gaussian kernel dropped)."""
    return ref.vq_key_features(k, omega, **kw) ** 2


@mutant("performer_vq.reduced_favor_key_norm_kept", family=FAMILY, replaces="reduced_favor_attention",
        caught_by=[INV2])
def reduced_key_norm_kept(q: Any, k: Any, v: Any, omega: Any, **kw: Any) -> np.ndarray:
    """Reduced FAVOR whose key feature is exp(omega_i . k - ||omega_i||^2/2) (the -||k||^2/2 term, a per-key
    factor, dropped as if it were global)."""
    w = np.asarray(omega, np.float64)
    fq = np.exp(np.asarray(q, np.float64) @ w.T)
    fk = np.exp(np.asarray(k, np.float64) @ w.T - np.sum(w * w, -1) / 2)
    num = fq @ (np.swapaxes(fk, -1, -2) @ np.asarray(v, np.float64))
    return num / (fq @ np.swapaxes(fk, -1, -2)).sum(-1, keepdims=True)


@mutant("performer_vq.soft_vq_without_key_normalisation", family=FAMILY, replaces="soft_vq_attention",
        caught_by=[NEG])
def soft_vq_unnormalised(q: Any, k: Any, v: Any, codebook: Any, **kw: Any) -> np.ndarray:
    """Soft-VQ attention that skips the per-key normalisation over codes (it is then FAVOR with reduced
    features), so the negative law sees no change."""
    return ref.reduced_favor_attention(q, k, v, codebook)


@mutant("performer_vq.codes_by_argmax", family=FAMILY, replaces="sample_vq_codes", caught_by=[EXP])
def codes_argmax(p: Any, *, n_samples: int, seed: int) -> np.ndarray:
    """Codes taken as the most probable one (zero-temperature, nearest code) instead of sampled from p(.|k)."""
    pa = np.asarray(p, np.float64)
    return np.broadcast_to(np.argmax(pa, -1), (n_samples, *pa.shape[:3])).astype(np.int64)


@mutant("performer_vq.codes_from_reversed_cdf", family=FAMILY, replaces="sample_vq_codes", caught_by=[EXP])
def codes_reversed(p: Any, *, n_samples: int, seed: int) -> np.ndarray:
    """Inverse-CDF sampling with the code order reversed against the probabilities (y = m - 1 - i): codes drawn
    from the wrong distribution."""
    m = np.shape(p)[-1]
    return m - 1 - ref.sample_vq_codes(p, n_samples=n_samples, seed=seed)


@mutant("performer_vq.soft_numerator_with_code_norm", family=FAMILY, replaces="soft_vq_numerator", caught_by=[EXP])
def soft_with_norm(q: Any, v: Any, codebook: Any, p: Any, **kw: Any) -> np.ndarray:
    """Soft numerator with the positive-feature weight exp(q . c_y - ||c_y||^2/2) instead of exp(q . c_y)."""
    c = np.asarray(codebook, np.float64)
    fq = np.exp(np.asarray(q, np.float64) @ c.T - np.sum(c * c, -1) / 2)
    return fq @ (np.swapaxes(np.asarray(p, np.float64), -1, -2) @ np.asarray(v, np.float64))
