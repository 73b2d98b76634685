"""Performer (FAVOR+) oracles: random projections (i.i.d. or orthogonal), positive and trigonometric random
features for the softmax kernel exp(q . k), their variance formulas, and FAVOR attention.

Layout: x [..., d] (rows), omega [m, d] (row i = omega_i ~ N(0, I_d)).

* Positive features: ``phi+(x) = m^{-1/2} exp(omega x - ||x||^2 / 2)`` in R^m_{>0};
  ``E[phi+(q) . phi+(k)] = exp(q . k)`` and ``Var = (1/m) e^{2 q.k} (e^{||q+k||^2} - 1)``.
* Trigonometric features: ``phi_trig(x) = m^{-1/2} e^{||x||^2/2} [cos(omega x), sin(omega x)]`` in R^{2m};
  ``phi_trig(q) . phi_trig(k) = (1/m) sum_i e^{(||q||^2 + ||k||^2)/2} cos(omega_i . (q - k))``, unbiased, with
  ``Var = (1/(2m)) e^{||q||^2 + ||k||^2} (1 - e^{-||q-k||^2})^2``.
* Orthogonal random features: rows in blocks of d that are Haar-orthogonal directions (QR of a Gaussian
  matrix with the signs of R's diagonal fixed), each scaled by an independent chi_d norm ||N(0, I_d)||, so
  every row is marginally N(0, I_d) (unbiased) while rows within a block are exactly orthogonal.
* FAVOR attention (non-causal): ``D^{-1} phi(Q) (phi(K)^T V)``, ``D = diag(phi(Q) phi(K)^T 1)``.

Sources: Choromanski et al. 2021 (Rethinking Attention with Performers, lemma 1, theorem 2); Su
kexue.fm/archives/9862, 7921, 8338 (variance formulas re-derived here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = ["FEATURE_KINDS", "favor_attention", "gaussian_projection", "performer_features", "performer_variance"]

FEATURE_KINDS = ("positive", "trig")


def gaussian_projection(m: int, d: int, *, seed: int, orthogonal: bool = False) -> np.ndarray:
    """Random projection omega [m, d]: i.i.d. N(0, I_d) rows, or orthogonal random features (blocks of d
    Haar-orthogonal directions with chi_d row norms; the last block truncated).  Deterministic in ``seed``.
    Source: Choromanski et al. 2021 (Performers, arXiv 2009.14794) section 2.4 (ORF)."""
    func = "gaussian_projection"
    for name, val in (("m", m), ("d", d)):
        require(isinstance(val, int | np.integer) and not isinstance(val, bool) and val >= 1, func, name,
                "an int >= 1", repr(val))
    rng = np.random.default_rng(seed)
    if not orthogonal:
        return rng.standard_normal((m, d))
    blocks = -(-m // d)
    G = rng.standard_normal((blocks, d, d))
    Qm, R = np.linalg.qr(G)
    Qm = Qm * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[:, None, :]  # Haar: fix the signs of R's diagonal
    dirs = np.swapaxes(Qm, -1, -2).reshape(blocks * d, d)[:m]  # rows = orthonormal directions
    norms = np.linalg.norm(rng.standard_normal((m, d)), axis=-1)
    return dirs * norms[:, None]


@oracle
def performer_features(x: Any, omega: Any, *, kind: str = "positive", backend: Backend = F64) -> np.ndarray:
    """Random features of rows x [..., d] for projection omega [m, d]: ``positive`` -> [..., m],
    ``trig`` -> [..., 2m] (cos block then sin block); formulas in the module docstring.
    Source: Choromanski et al. 2021 (arXiv 2009.14794; eq. for SM+ and SM_trig)."""
    func = "performer_features"
    require(kind in FEATURE_KINDS, func, "kind", f"one of {FEATURE_KINDS}", repr(kind))
    xa = as_float64(x, func, "x")
    w = as_float64(omega, func, "omega", ndim=2)
    require(xa.ndim >= 1 and xa.shape[-1] == w.shape[1], func, "x", f"rows of dimension d = {w.shape[1]}",
            f"shape {xa.shape}")
    require_finite(xa, func, "x")
    require_finite(w, func, "omega")
    xp = backend
    m = w.shape[0]
    xx = xp.asarray(xa)
    proj = xp.matmul(xx, xp.asarray(w.T))  # [..., m]
    half_sq = xp.sum(xx * xx, axis=-1, keepdims=True) / 2
    norm = xp.scalar(1.0) / xp.sqrt(xp.scalar(m))
    if kind == "positive":
        return xp.to_float64(xp.exp(proj - half_sq) * norm)
    amp = xp.exp(half_sq) * norm
    return xp.to_float64(np.concatenate([xp.cos(proj) * amp, xp.sin(proj) * amp], axis=-1))


def performer_variance(q: Any, k: Any, m: int, *, kind: str = "positive") -> np.ndarray:
    """Variance of the m-feature estimate phi(q) . phi(k) of exp(q . k) with i.i.d. omega, rows q, k [..., d]:
    positive ``(1/m) e^{2 q.k} (e^{||q+k||^2} - 1)``; trig ``(1/(2m)) e^{||q||^2+||k||^2} (1 - e^{-||q-k||^2})^2``.
    Source: Choromanski et al. 2021 lemma 2 (re-derived in this module's docstring)."""
    func = "performer_variance"
    require(kind in FEATURE_KINDS, func, "kind", f"one of {FEATURE_KINDS}", repr(kind))
    require(isinstance(m, int | np.integer) and m >= 1, func, "m", "an int >= 1", repr(m))
    qa, ka = as_float64(q, func, "q"), as_float64(k, func, "k")
    require(qa.shape == ka.shape, func, "k", f"of the shape of q {qa.shape}", f"shape {ka.shape}")
    if kind == "positive":
        s2 = np.sum((qa + ka) ** 2, axis=-1)
        return np.exp(2 * np.sum(qa * ka, axis=-1)) * np.expm1(s2) / m
    dq = np.sum((qa - ka) ** 2, axis=-1)
    return np.exp(np.sum(qa * qa, axis=-1) + np.sum(ka * ka, axis=-1)) * (-np.expm1(-dq)) ** 2 / (2 * m)


@oracle
def favor_attention(q: Any, k: Any, v: Any, omega: Any, *, kind: str = "positive",
                    backend: Backend = F64) -> np.ndarray:
    """Non-causal FAVOR attention ``D^{-1} phi(Q) (phi(K)^T V)`` with ``D = diag(phi(Q) phi(K)^T 1)``;
    q, k [B, H, T, d] (scale already absorbed: feed q / d^{1/4} for softmax(QK^T / sqrt(d))), v [B, H, T, e].
    Source: Choromanski et al. 2021 (FAVOR+, eq. 10)."""
    xp = backend
    pq = xp.asarray(performer_features(q, omega, kind=kind, backend=xp))
    pk = xp.asarray(performer_features(k, omega, kind=kind, backend=xp))
    va = as_float64(v, "favor_attention", "v", ndim=4)
    require(va.shape[:3] == np.shape(q)[:3] == np.shape(k)[:3], "favor_attention", "v",
            f"of shape [B, H, T, e] matching q {np.shape(q)[:3]}", f"shape {va.shape}")
    num = xp.matmul(pq, xp.matmul(np.swapaxes(pk, -1, -2), xp.asarray(va)))
    den = xp.sum(xp.matmul(pq, np.swapaxes(pk, -1, -2)), axis=-1, keepdims=True)
    return xp.to_float64(num / den)
