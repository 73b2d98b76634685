"""Planted bugs in the diffusion oracles (each must be caught by the laws named)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant


@mutant("diffusion.pool_divides_by_s", family="diffusion", replaces="avg_pool",
        caught_by=["diffusion.pooling_divides_noise_variance", "diffusion.pooled_noise_variance_mc"])
def pool_divides_by_s(x: Any, s: int) -> np.ndarray:
    """Pooling that sums the s x s block and divides by s (not s^2): the noise variance drops by 1, not 1/s^2."""
    return ref.avg_pool(x, s) * s


@mutant("diffusion.shift_by_s_not_s2", family="diffusion", replaces="shifted_schedule",
        caught_by=["diffusion.snr_shift", "diffusion.pinned_one_over_sqrt65"])
def shift_by_s(abar: Any, bbar: Any, s: float, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """SNR_hi = SNR_lo / s (the pooling factor applied to the SNR once, not squared)."""
    return ref.shifted_schedule(abar, bbar, math.sqrt(s), **kw)


@mutant("diffusion.shifted_cosine_log_b", family="diffusion", replaces="shifted_cosine_log_snr",
        caught_by=["diffusion.snr_shift"])
def shifted_cosine_log_b(t: Any, d: float, base: float = 64.0) -> np.ndarray:
    """Shifted cosine with logSNR + log(64/d) (the factor 2 dropped, as in the wording 'shifting the logSNR by
    log b')."""
    return ref.shifted_cosine_log_snr(t, d, base) - math.log(base / d)


@mutant("diffusion.cosine_not_variance_preserving", family="diffusion", replaces="cosine_schedule",
        caught_by=["diffusion.variance_preserving", "diffusion.snr_shift"])
def cosine_not_vp(t: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """bbar = 1 - abar (the 'alpha + sigma = 1' slip) instead of sqrt(1 - abar^2)."""
    a, _b = ref.cosine_schedule(t, **kw)
    return a, 1 - a


@mutant("diffusion.chen_tau_not_doubled", family="diffusion", replaces="chen_cosine_gamma",
        caught_by=["diffusion.variance_preserving"])
def chen_tau(t: Any, start: float = 0.0, end: float = 1.0, tau: float = 1.0, clip_min: float = 1e-9) -> np.ndarray:
    """Chen's gamma with cos^tau instead of cos^(2 tau) (gamma = abar, not abar^2)."""
    return ref.chen_cosine_gamma(t, start, end, tau / 2, clip_min)


@mutant("diffusion.mixture_score_drops_abar", family="diffusion", replaces="mixture_score",
        caught_by=["diffusion.conditional_score_identity", "diffusion.stein_monte_carlo"])
def mixture_score_no_abar(x: Any, centers: Any, weights: Any, abar: float, bbar: float) -> np.ndarray:
    """Posterior-mean score with E[x0 | x_t] in place of abar E[x0 | x_t] (the EDM abar = 1 form used at every t)."""
    post = ref.mixture_posterior_weights(x, centers, weights, abar, bbar)
    return (post @ np.asarray(centers, np.float64) - np.asarray(x, np.float64)) / (bbar * bbar)


@mutant("diffusion.mixture_score_prior_weights", family="diffusion", replaces="mixture_score",
        caught_by=["diffusion.conditional_score_identity", "diffusion.stein_monte_carlo"])
def mixture_score_prior(x: Any, centers: Any, weights: Any, abar: float, bbar: float) -> np.ndarray:
    """Conditional score averaged with the prior weights w_k instead of the posterior p(x0 = c_k | x_t)."""
    w = np.asarray(weights, np.float64)
    c = np.asarray(centers, np.float64)
    return (abar * float(w @ c) / w.sum() - np.asarray(x, np.float64)) / (bbar * bbar)


@mutant("diffusion.gaussian_score_drops_abar", family="diffusion", replaces="gaussian_score",
        caught_by=["diffusion.conditional_score_identity", "diffusion.stein_gaussian_closed_form"])
def gaussian_score_no_abar(x: Any, abar: float, bbar: float, sigma: float) -> np.ndarray:
    """Marginal variance sigma^2 + bbar^2 (abar^2 dropped)."""
    return ref.gaussian_score(x, 1.0, bbar, sigma)
