"""Diffusion identities (Su kexue.fm/archives/10047, 10085; Hoogeboom et al. 2023 "simple diffusion",
arXiv:2301.11093; Chen 2023 "On the importance of noise scheduling", arXiv:2301.10972; Zhou et al. 2024 "Score
identity Distillation", arXiv:2404.04057): float64 / mpmath oracles.

Convention: x_t = abar x0 + bbar eps with eps ~ N(0, I) (Su's letters; variance preserving when abar^2 + bbar^2 = 1),
SNR = abar^2 / bbar^2, logSNR = 2 log(abar / bbar).  The cosine schedule is abar = cos(pi t / 2), bbar = sin(pi t/2)
(logSNR = -2 log tan(pi t / 2)).

* s x s average pooling keeps a block-constant mean and divides the noise variance by s^2, so the pooled SNR is
  s^2 times the original; the schedule shifted for resolution s times higher has SNR_hi = SNR_lo / s^2, i.e.
  ``abar_hi = abar / sqrt(abar^2 + s^2 bbar^2)``, ``bbar_hi = s bbar / sqrt(abar^2 + s^2 bbar^2)``
  (Hoogeboom et al.: logSNR_shifted(t) = logSNR(t) + 2 log(64 / d) for resolution d against base 64).
* Chen 2023: scaling the data by b (x_t = sqrt(gamma) b x0 + sqrt(1 - gamma) eps) multiplies the SNR by b^2
  (logSNR + 2 log b), and makes Var x_t = gamma b^2 + 1 - gamma for unit-variance data.
* SiD / Su post 25: the marginal score is the posterior mean of the conditional score,
  ``grad log p(x_t) = E[(abar x0 - x_t) / bbar^2 | x_t]``, so ``eps*(x_t) = -bbar grad log p = E[eps | x_t]``; and the
  Stein form ``E[<f(x_t), bbar grad log p(x_t)>] = -E[<f(x_t), eps>]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "avg_pool",
    "chen_cosine_gamma",
    "cosine_schedule",
    "gaussian_score",
    "log_snr",
    "mixture_log_density",
    "mixture_posterior_weights",
    "mixture_score",
    "shifted_cosine_log_snr",
    "shifted_schedule",
]


def _arr(x: Any, func: str, arg: str) -> np.ndarray:
    a = as_float64(x, func, arg)
    if a.dtype != object:
        require_finite(a, func, arg)
    return a


@oracle
def cosine_schedule(t: Any, *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """(abar, bbar) = (cos(pi t / 2), sin(pi t / 2)) for t in [0, 1] (variance preserving).
    Source: Nichol and Dhariwal 2021 (without the offset); Hoogeboom et al. 2023, section 2."""
    ta = _arr(t, "cosine_schedule", "t")
    require(bool(np.all((ta >= 0) & (ta <= 1))), "cosine_schedule", "t", "in [0, 1]", ta)
    xp = backend
    h = xp.asarray(ta) * xp.pi / 2
    return xp.to_float64(xp.cos(h)), xp.to_float64(xp.sin(h))


def log_snr(abar: Any, bbar: Any) -> np.ndarray:
    """logSNR = 2 log(abar / bbar) = log(abar^2 / bbar^2).  Source: Kingma et al. 2021 (VDM)."""
    a = _arr(abar, "log_snr", "abar")
    b = _arr(bbar, "log_snr", "bbar")
    with np.errstate(divide="ignore"):
        return 2.0 * (np.log(np.abs(a)) - np.log(np.abs(b)))


@oracle
def shifted_schedule(abar: Any, bbar: Any, s: float, *, backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """The schedule for an image s times larger per side whose s x s average-pooled SNR matches (abar, bbar):
    SNR_hi = SNR_lo / s^2 with abar_hi^2 + bbar_hi^2 = 1, i.e. abar_hi = abar / sqrt(abar^2 + s^2 bbar^2),
    bbar_hi = s bbar / sqrt(abar^2 + s^2 bbar^2) (so abar_hi^2 = SNR_lo / (SNR_lo + s^2)).  Cosine, t = 1/2, s = 8:
    abar_hi = 1/sqrt(65).  Source: Hoogeboom et al. 2023, section 3.1 (shifted schedule); Su kexue.fm/archives/10047.
    """
    a = _arr(abar, "shifted_schedule", "abar")
    b = _arr(bbar, "shifted_schedule", "bbar")
    require(isinstance(s, (int, float)) and s > 0 and math.isfinite(s), "shifted_schedule", "s", "a positive float", s)
    xp = backend
    aa, bb = xp.asarray(a), xp.asarray(b) * xp.scalar(s)
    nrm = xp.sqrt(aa * aa + bb * bb)
    return xp.to_float64(aa / nrm), xp.to_float64(bb / nrm)


def shifted_cosine_log_snr(t: Any, d: float, base: float = 64.0) -> np.ndarray:
    """Hoogeboom et al.'s shifted cosine: logSNR(t) = -2 log tan(pi t / 2) + 2 log(base / d) for resolution d
    (base 64).  Equals log_snr(shifted_schedule(cosine, s = d / base)).
    Source: Hoogeboom et al. 2023, section 3 (shifted schedule)."""
    ta = _arr(t, "shifted_cosine_log_snr", "t")
    require(d > 0 and base > 0, "shifted_cosine_log_snr", "d", "positive (with base > 0)", (d, base))
    with np.errstate(divide="ignore"):
        return -2.0 * np.log(np.tan(np.pi * ta / 2)) + 2.0 * math.log(base / d)


def chen_cosine_gamma(t: Any, start: float = 0.0, end: float = 1.0, tau: float = 1.0,
                      clip_min: float = 1e-9) -> np.ndarray:
    """Chen 2023's cosine schedule gamma(t) (signal variance, = abar^2):
    v(u) = cos(u pi / 2)^(2 tau); gamma = (v(end) - v(t (end - start) + start)) / (v(end) - v(start)), clipped to
    [clip_min, 1].  With start = 0, end = 1, tau = 1: gamma = cos^2(pi t / 2) up to v(1) ~ 3.7e-33.
    Source: Chen 2023 (arXiv:2301.10972), Algorithm 1."""
    ta = _arr(t, "chen_cosine_gamma", "t")
    require(end > start, "chen_cosine_gamma", "end", f"> start = {start}", end)

    def v(u: Any) -> Any:
        return np.cos(np.asarray(u) * np.pi / 2) ** (2 * tau)

    g = (v(end) - v(ta * (end - start) + start)) / (v(end) - v(start))
    return np.clip(g, clip_min, 1.0)


def avg_pool(x: Any, s: int) -> np.ndarray:
    """s x s average pooling of x [..., H, W] (H, W multiples of s) -> [..., H/s, W/s].
    Source: Hoogeboom et al. 2023, section 3.1."""
    a = _arr(x, "avg_pool", "x")
    require(isinstance(s, (int, np.integer)) and s >= 1, "avg_pool", "s", "a positive int", s)
    require(a.ndim >= 2 and a.shape[-1] % s == 0 and a.shape[-2] % s == 0, "avg_pool", "x",
            f"of shape [..., H, W] with H, W multiples of s = {s}", f"shape {a.shape}")
    H, W = a.shape[-2:]
    return a.reshape(*a.shape[:-2], H // s, s, W // s, s).mean(axis=(-3, -1))


def gaussian_score(x: Any, abar: float, bbar: float, sigma: float) -> np.ndarray:
    """Score of the marginal of x_t = abar x0 + bbar eps with x0 ~ N(0, sigma^2 I): -x / (abar^2 sigma^2 + bbar^2).
    Source: Su kexue.fm/archives/10085 (closed form for Gaussian data)."""
    xa = _arr(x, "gaussian_score", "x")
    v = abar * abar * sigma * sigma + bbar * bbar
    require(v > 0, "gaussian_score", "bbar", "such that abar^2 sigma^2 + bbar^2 > 0", (abar, bbar, sigma))
    return -xa / v


def _mixture(x: Any, centers: Any, weights: Any, bbar: float, func: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xa = np.asarray(x) if np.iscomplexobj(x) else _arr(x, func, "x")
    c = _arr(centers, func, "centers")
    w = _arr(weights, func, "weights")
    require(c.ndim == 1 and c.size >= 1, func, "centers", "a 1-d array of data points", f"shape {c.shape}")
    require(w.shape == c.shape and bool(np.all(w > 0)), func, "weights", f"positive, of shape {c.shape}",
            f"shape {w.shape}")
    require(bbar > 0, func, "bbar", "positive", bbar)
    return xa, c, w / w.sum()


def mixture_log_density(x: Any, centers: Any, weights: Any, abar: float, bbar: float) -> np.ndarray:
    """log p(x_t) for discrete data x0 in {c_k} with weights w_k (1-d): log sum_k w_k N(x; abar c_k, bbar^2).
    Accepts complex x (for complex-step derivatives: the function is analytic).  Source: Su kexue.fm/archives/10085.
    """
    xa, c, w = _mixture(x, centers, weights, bbar, "mixture_log_density")
    z = -((xa[..., None] - abar * c) ** 2) / (2 * bbar * bbar) + np.log(w)
    m = np.max(z.real, axis=-1, keepdims=True)
    return (m[..., 0] + np.log(np.sum(np.exp(z - m), axis=-1))) - 0.5 * math.log(2 * math.pi * bbar * bbar)


def mixture_posterior_weights(x: Any, centers: Any, weights: Any, abar: float, bbar: float) -> np.ndarray:
    """p(x0 = c_k | x_t = x) [..., K] (softmax of log w_k - (x - abar c_k)^2 / (2 bbar^2))."""
    xa, c, w = _mixture(x, centers, weights, bbar, "mixture_posterior_weights")
    z = -((xa[..., None] - abar * c) ** 2) / (2 * bbar * bbar) + np.log(w)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mixture_score(x: Any, centers: Any, weights: Any, abar: float, bbar: float) -> np.ndarray:
    """grad log p(x_t) as the posterior mean of the conditional score: E[(abar x0 - x_t) / bbar^2 | x_t = x]
    (SiD's conditional-score identity; eps*(x) = -bbar times this = E[eps | x_t]).
    Source: Zhou et al. 2024 (SiD); Su kexue.fm/archives/10085."""
    xa, c, _w = _mixture(x, centers, weights, bbar, "mixture_score")
    post = mixture_posterior_weights(xa, centers, weights, abar, bbar)
    return (abar * (post @ c) - xa) / (bbar * bbar)
