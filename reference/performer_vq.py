"""Performer as a soft Transformer-VQ: the reduced positive features of invariance 2, the per-key normalised
("soft-VQ") attention, and the soft / hard (sampled-code) VQ numerators.

Layout: q [B, H, T, d], k [B, H, S, d], v [B, H, S, e]; projection / codebook omega = C [m, d] (row i = omega_i
= code c_i, shared by all heads); assignment probabilities p [B, H, S, m]; codes int [..., B, H, S].

* Invariance 2 (exact): when every ||omega_i|| equals one r, the positive feature of a key
  ``exp(omega_i . k - ||k||^2/2)`` times the global constant ``e^{-r^2/2}`` is ``k~_i = exp(-||k - omega_i||^2/2)``;
  with the query-only scalars dropped (invariance 1) the query feature is ``q~_i = exp(omega_i . q)``.  FAVOR
  attention ``D^{-1} q~ (k~^T V)`` then equals FAVOR+ with the full positive features.
* Soft-VQ (the analogy, *not* an invariance): normalising k~ over i gives the soft code assignment
  ``p(i|k) = softmax_i(-||k - c_i||^2 / (2 tau))`` (tau = 1 is the Performer case, tau -> 0 the one-hot VQ
  code); this rescales every key by a key-dependent factor and changes the attention.
* Numerators: soft ``N_soft(q) = sum_y exp(q . c_y) sum_j p(y|k_j) v_j = exp(q C^T) (p^T V)``; hard (Transformer-VQ
  with k^_j = c_{y_j}) ``N_VQ(q) = sum_j exp(q . c_{y_j}) v_j``.  With codes sampled independently,
  ``y_j ~ p(.|k_j)``, linearity gives ``E[N_VQ] = N_soft`` exactly.

Sources: Su, kexue.fm posts 9862 (Performer as soft Transformer-VQ) and 7921 (Performer features):
invariances 1-3 and the Dirac/GMM derivation from post 9862; the sampled-code expectation identity derived here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.performer import gaussian_projection
from veriformer.reference.softmax import stable_terms

__all__ = [
    "equal_norm_projection",
    "reduced_favor_attention",
    "sample_vq_codes",
    "soft_vq_assignments",
    "soft_vq_attention",
    "soft_vq_numerator",
    "vq_key_features",
    "vq_numerator",
    "vq_query_features",
]


def equal_norm_projection(m: int, d: int, *, seed: int, norm: float | None = None,
                          orthogonal: bool = False) -> np.ndarray:
    """Projection omega [m, d] whose rows all have the norm ``norm`` (default sqrt(d) = E||N(0, I_d)||^2^(1/2)):
    the directions of :func:`gaussian_projection` (i.i.d. or orthogonal blocks), rescaled, so invariance 2
    holds.  Deterministic in ``seed``.  Source: Su kexue.fm/archives/9862 (equal norms); Su post 7921 (norm choice)."""
    func = "equal_norm_projection"
    w = gaussian_projection(m, d, seed=seed, orthogonal=orthogonal)  # validates m and d
    r = float(np.sqrt(d)) if norm is None else norm
    require(isinstance(r, float | int | np.floating) and not isinstance(r, bool) and np.isfinite(r) and r > 0,
            func, "norm", "None or a finite float > 0", repr(norm))
    return w / np.linalg.norm(w, axis=-1, keepdims=True) * float(r)


def _rows_and_codes(func: str, x: Any, omega: Any, xname: str) -> tuple[np.ndarray, np.ndarray]:
    xa = as_float64(x, func, xname)
    w = as_float64(omega, func, "omega", ndim=2)
    require(w.shape[0] >= 1 and w.shape[1] >= 1, func, "omega", "of shape [m, d] with m, d >= 1",
            f"shape {w.shape}")
    require(xa.ndim >= 1 and xa.shape[-1] == w.shape[1], func, xname, f"rows of dimension d = {w.shape[1]}",
            f"shape {xa.shape}")
    require_finite(xa, func, xname)
    require_finite(w, func, "omega")
    return xa, w


def _neg_half_sqdist(xp: Backend, x: Any, w: np.ndarray) -> Any:
    """``-||x - w_i||^2 / 2`` [..., m] from the differences (no cancellation of ||x||^2 + ||w||^2 - 2 x.w)."""
    diff = x[..., None, :] - xp.asarray(w)
    return -xp.sum(diff * diff, axis=-1) / 2


@oracle
def vq_query_features(q: Any, omega: Any, *, backend: Backend = F64) -> np.ndarray:
    """Reduced query features ``q~_i = exp(omega_i . q)``, q [..., d], omega [m, d] -> [..., m] (the positive
    feature without the query-only scalars m^{-1/2} e^{-||q||^2/2}).  Source: Su kexue.fm/archives/9862
    (query-only scalars cancel after normalising over keys)."""
    qa, w = _rows_and_codes("vq_query_features", q, omega, "q")
    xp = backend
    return xp.to_float64(xp.exp(xp.matmul(xp.asarray(qa), xp.asarray(w.T))))


@oracle
def vq_key_features(k: Any, omega: Any, *, backend: Backend = F64) -> np.ndarray:
    """Reduced key features ``k~_i = exp(-||k - omega_i||^2 / 2)``, k [..., d], omega [m, d] -> [..., m]: the
    positive feature times e^{-||omega_i||^2/2} (a global constant only when all ||omega_i|| are equal) without
    m^{-1/2}.  Source: Su kexue.fm/archives/9862."""
    ka, w = _rows_and_codes("vq_key_features", k, omega, "k")
    xp = backend
    return xp.to_float64(xp.exp(_neg_half_sqdist(xp, xp.asarray(ka), w)))


def _qkv(func: str, q: Any, k: Any, v: Any, omega: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    qa, w = _rows_and_codes(func, q, omega, "q")
    ka, _ = _rows_and_codes(func, k, omega, "k")
    va = as_float64(v, func, "v", ndim=4)
    require(qa.ndim == 4, func, "q", "a tensor of rank 4 [B, H, T, d]", f"shape {qa.shape}")
    B, H = qa.shape[:2]
    require_shape(ka, func, "k", (B, H, None, w.shape[1]), "[B, H, S, d]")
    require(ka.shape[2] >= 1, func, "k", "at least one key (S >= 1)", f"shape {ka.shape}")
    require_shape(va, func, "v", (B, H, ka.shape[2], None), "[B, H, S, e]")
    require_finite(va, func, "v")
    return qa, ka, va, w


def _normalised(xp: Backend, fq: Any, fk: Any, va: np.ndarray) -> Any:
    num = xp.matmul(fq, xp.matmul(np.swapaxes(fk, -1, -2), xp.asarray(va)))
    den = xp.matmul(fq, xp.sum(np.swapaxes(fk, -1, -2), axis=-1, keepdims=True))
    return num / den


@oracle
def reduced_favor_attention(q: Any, k: Any, v: Any, omega: Any, *, backend: Backend = F64) -> np.ndarray:
    """Non-causal FAVOR attention with the reduced features: ``D^{-1} q~ (k~^T V)``, ``D = diag(q~ k~^T 1)``,
    q [B, H, T, d], k [B, H, S, d], v [B, H, S, e] -> [B, H, T, e].  Equals ``favor_attention(q, k, v, omega)``
    (positive features) exactly when all ||omega_i|| are equal.  Source: Su kexue.fm/archives/9862."""
    qa, ka, va, w = _qkv("reduced_favor_attention", q, k, v, omega)
    xp = backend
    fq = xp.exp(xp.matmul(xp.asarray(qa), xp.asarray(w.T)))
    fk = xp.exp(_neg_half_sqdist(xp, xp.asarray(ka), w))
    return xp.to_float64(_normalised(xp, fq, fk, va))


def _temperature(func: str, temperature: Any) -> float:
    require(isinstance(temperature, float | int | np.floating) and not isinstance(temperature, bool)
            and np.isfinite(temperature) and temperature > 0, func, "temperature", "a finite float > 0",
            repr(temperature))
    return float(temperature)


def _assign(xp: Backend, k: Any, w: np.ndarray, tau: float) -> Any:
    logits = _neg_half_sqdist(xp, k, w) / xp.scalar(tau)
    _, e, s = stable_terms(xp, logits, axis=-1)
    return e / s


@oracle
def soft_vq_assignments(k: Any, codebook: Any, *, temperature: float = 1.0, backend: Backend = F64) -> np.ndarray:
    """Soft code assignments ``p(i|k) = softmax_i(-||k - c_i||^2 / (2 tau))``, k [..., d], codebook [m, d]
    -> [..., m], rows summing to 1 (tau = 1: the reduced key features k~ normalised over i; tau -> 0: the
    one-hot nearest code of Transformer-VQ).  Source: Su kexue.fm/archives/9862 (GMM p(y|k))."""
    func = "soft_vq_assignments"
    tau = _temperature(func, temperature)
    ka, w = _rows_and_codes(func, k, codebook, "k")
    xp = backend
    return xp.to_float64(_assign(xp, xp.asarray(ka), w, tau))


@oracle
def soft_vq_attention(q: Any, k: Any, v: Any, codebook: Any, *, temperature: float = 1.0,
                      backend: Backend = F64) -> np.ndarray:
    """The per-key normalised ("soft-VQ") attention ``D^{-1} exp(Q C^T) (P^T V)`` with P = soft_vq_assignments(K)
    and ``D = diag(exp(Q C^T) P^T 1)``; q [B, H, T, d], k [B, H, S, d], v [B, H, S, e] -> [B, H, T, e].  Differs
    from FAVOR by a key-dependent rescaling (not an invariance).  Source: Su kexue.fm/archives/9862 (analogy)."""
    func = "soft_vq_attention"
    tau = _temperature(func, temperature)
    qa, ka, va, w = _qkv(func, q, k, v, codebook)
    xp = backend
    fq = xp.exp(xp.matmul(xp.asarray(qa), xp.asarray(w.T)))
    return xp.to_float64(_normalised(xp, fq, _assign(xp, xp.asarray(ka), w, tau), va))


def _probabilities(func: str, p: Any, shape: tuple[int, ...]) -> np.ndarray:
    pa = as_float64(p, func, "p", ndim=4)
    require_shape(pa, func, "p", shape, "[B, H, S, m]")
    require_finite(pa, func, "p")
    require(bool(np.all(pa >= 0)), func, "p", "non-negative probabilities", f"min {pa.min()}")
    dev = float(np.abs(pa.sum(-1) - 1).max()) if pa.size else 0.0
    require(dev <= 1e-9 * shape[-1], func, "p", "rows summing to 1 (over the m codes)", f"max |sum - 1| = {dev:.3g}")
    return pa


@oracle
def soft_vq_numerator(q: Any, v: Any, codebook: Any, p: Any, *, backend: Backend = F64) -> np.ndarray:
    """Soft-VQ numerator ``N_soft(q_i) = sum_y exp(q_i . c_y) sum_j p(y|k_j) v_j = exp(Q C^T) (P^T V)``;
    q [B, H, T, d], v [B, H, S, e], codebook [m, d], p [B, H, S, m] (rows on the simplex) -> [B, H, T, e]
    (unnormalised).  Source: Su kexue.fm/archives/9862 (Dirac/GMM derivation)."""
    func = "soft_vq_numerator"
    qa, w = _rows_and_codes(func, q, codebook, "q")
    require(qa.ndim == 4, func, "q", "a tensor of rank 4 [B, H, T, d]", f"shape {qa.shape}")
    va = as_float64(v, func, "v", ndim=4)
    require(va.shape[:2] == qa.shape[:2] and va.shape[2] >= 1, func, "v",
            f"of shape [B, H, S, e] with B, H = {qa.shape[:2]}", f"shape {va.shape}")
    require_finite(va, func, "v")
    pa = _probabilities(func, p, (*va.shape[:3], w.shape[0]))
    xp = backend
    fq = xp.exp(xp.matmul(xp.asarray(qa), xp.asarray(w.T)))
    return xp.to_float64(xp.matmul(fq, xp.matmul(np.swapaxes(xp.asarray(pa), -1, -2), xp.asarray(va))))


def sample_vq_codes(p: Any, *, n_samples: int, seed: int) -> np.ndarray:
    """``n_samples`` independent draws of hard codes ``y_j ~ p(.|k_j)`` for every key: p [B, H, S, m] ->
    int64 [n_samples, B, H, S] (inverse CDF of one uniform per draw).  Deterministic in ``seed``.
    Derived here: E_y[N_VQ] = N_soft by linearity when y_j ~ p(.|k_j) independently."""
    func = "sample_vq_codes"
    require(isinstance(n_samples, int | np.integer) and not isinstance(n_samples, bool) and n_samples >= 1,
            func, "n_samples", "an int >= 1", repr(n_samples))
    pa = as_float64(p, func, "p", ndim=4)
    pa = _probabilities(func, pa, pa.shape)
    cdf = np.cumsum(pa, axis=-1)
    cdf = cdf / cdf[..., -1:]  # the last edge is exactly 1
    u = np.random.default_rng(seed).random((n_samples, *pa.shape[:3], 1))
    codes = np.sum(cdf[None] <= u, axis=-1)  # y = #{i : F_i <= u}: P(y = i) = F_i - F_{i-1} = p_i
    return np.minimum(codes, pa.shape[-1] - 1).astype(np.int64)


@oracle
def vq_numerator(q: Any, v: Any, codebook: Any, codes: Any, *, backend: Backend = F64) -> np.ndarray:
    """Transformer-VQ numerator with hard codes: ``N_VQ(q_i) = sum_j exp(q_i . c_{y_j}) v_j`` (k^_j = c_{y_j});
    q [B, H, T, d], v [B, H, S, e], codebook [m, d], codes int [..., B, H, S] (leading sample axes allowed)
    -> [..., B, H, T, e].  Source: Lingle 2023 (arXiv 2309.16354); Su post 9862."""
    func = "vq_numerator"
    qa, w = _rows_and_codes(func, q, codebook, "q")
    require(qa.ndim == 4, func, "q", "a tensor of rank 4 [B, H, T, d]", f"shape {qa.shape}")
    va = as_float64(v, func, "v", ndim=4)
    require(va.shape[:2] == qa.shape[:2] and va.shape[2] >= 1, func, "v",
            f"of shape [B, H, S, e] with B, H = {qa.shape[:2]}", f"shape {va.shape}")
    require_finite(va, func, "v")
    c = np.asarray(codes.detach().cpu().numpy() if hasattr(codes, "detach") else codes)
    require(c.dtype.kind in "iu", func, "codes", "an integer array", f"dtype {c.dtype}")
    require(c.ndim >= 3 and c.shape[-3:] == va.shape[:3], func, "codes",
            f"of shape [..., B, H, S] = [..., {', '.join(map(str, va.shape[:3]))}]", f"shape {c.shape}")
    require(c.size == 0 or (c.min() >= 0 and c.max() < w.shape[0]), func, "codes",
            f"code indices in [0, {w.shape[0]})", f"range [{c.min()}, {c.max()}]")
    xp = backend
    k_hat = xp.asarray(w[c])  # [..., B, H, S, d]
    logits = xp.matmul(xp.asarray(qa), np.swapaxes(k_hat, -1, -2))  # [..., B, H, T, S]
    return xp.to_float64(xp.matmul(xp.exp(logits), xp.asarray(va)))
