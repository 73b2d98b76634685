"""Transformer-VQ oracles: nearest-code quantisation of keys, dense softmax over the quantised keys, the
linear-time form, the causal token recurrence and the block form with a compressed cache.

Layout: q, k [B, H, T, D], v [B, H, T, Dv], codebook [Hc, C, D] with Hc = H (one codebook per head) or
1 (shared); o [B, H, T, Dv].  ``scale`` (default D^-0.5) multiplies the logits.

* Quantisation: ``z_j = argmin_s ||k_j - c_s||^2`` with the squared distance formed from the differences
  ``sum_d (k_jd - c_sd)^2`` in float64 (not ``||k||^2 - 2 k.c + ||c||^2``, which cancels); ties go to the
  **first** index (``np.argmin``).  The assignment is discrete, so every backend uses this float64
  assignment; ``k_hat = C[z]`` is then exact in every backend.
* Key lemma: ``exp(Q K_hat^T) = exp(Q C^T) Delta^T`` (Delta one-hot rows), hence non-causal
  ``softmax(Q K_hat^T) V = [exp(QC^T)(Delta^T V)] / [exp(QC^T)(Delta^T 1)]``.  One shared maximum per query
  over the codes **in use** (count > 0) is subtracted before exp; codes with count 0 get weight exactly 0
  (a maximum over unused codes could underflow every used weight to 0 — a 0/0).
* Causal token recurrence: ``U_i = U_{i-1} + Delta_i^T v_i``, ``u_i = u_{i-1} + Delta_i^T``,
  ``o_i = exp(q_i C^T) U_i / exp(q_i C^T) u_i``.
* Block form (causal), block length l (last block may be short): for block t,
  ``num = exp(Q_t K_hat_t^T + M) V_t + exp(Q_t C^T) U_{t-1}`` and ``den`` the same with V -> 1, with
  ``U_{t-1}`` the per-code sums of all *earlier* blocks.  One maximum per query over the in-block logits and
  the in-use cache logits.
* Stable storage (official ``attn.py``): per-code means and log-counts in the cache logits
  (:func:`vq_attention_blocks` with ``cache="means"``).
* Gradients (straight-through): ``k_hat = sg(c_z) + (k - sg(k))``: forward value c_z, d k_hat / d k = I,
  no gradient to the codebook; the VJP is softmax attention's at k_hat with dk = dk_hat.

Sources: Lingle 2023 (Transformer-VQ, arXiv 2309.16354) and its official JAX code (``attn.py``); Su
kexue.fm/archives/9844; van den Oord et al. 2017 (straight-through estimator for VQ).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.attention import softmax_attention, softmax_attention_vjp
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "vq_attention",
    "vq_attention_blocks",
    "vq_attention_linear",
    "vq_attention_vjp",
    "vq_quantize",
]


def _codebook(func: str, k: np.ndarray, codebook: Any) -> np.ndarray:
    cb = as_float64(codebook, func, "codebook", ndim=3)
    H, D = k.shape[1], k.shape[3]
    require(cb.shape[0] in (1, H) and cb.shape[1] >= 1 and cb.shape[2] == D, func, "codebook",
            f"of shape [H or 1, C, D] = ({H}|1, *, {D}) with C >= 1", f"shape {cb.shape}")
    require_finite(cb, func, "codebook")
    return cb


def vq_quantize(k: Any, codebook: Any) -> tuple[np.ndarray, np.ndarray]:
    """Nearest code per key: returns ``(z, k_hat)``, z int64 [B, H, T] = argmin_s sum_d (k_d - c_sd)^2
    (first index on ties), k_hat = C[z] [B, H, T, D] (float64).  k [B, H, T, D], codebook [H or 1, C, D].
    Source: Lingle 2023 (arXiv 2309.16354) section 3."""
    func = "vq_quantize"
    kk = as_float64(k, func, "k", ndim=4)
    if kk.dtype == object:
        kk = kk.astype(np.float64)
    require_finite(kk, func, "k")
    cb = _codebook(func, kk, codebook)
    d = np.sum((kk[..., :, None, :] - cb[None, :, None, :, :]) ** 2, axis=-1)  # [B, H, T, C]
    z = np.argmin(d, axis=-1)
    cbh = np.broadcast_to(cb, (kk.shape[1], *cb.shape[1:]))
    k_hat = cbh[np.arange(kk.shape[1])[None, :, None], z]
    return z.astype(np.int64), k_hat


def _inputs(func: str, q: Any, k: Any, v: Any, codebook: Any, scale: float | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    q = as_float64(q, func, "q", ndim=4)
    k = as_float64(k, func, "k", ndim=4)
    v = as_float64(v, func, "v", ndim=4)
    B, H, T, D = q.shape
    require(T >= 1 and D >= 1, func, "q", "of shape [B, H, T, D] with T, D >= 1", f"shape {q.shape}")
    require_shape(k, func, "k", (B, H, T, D), "[B, H, T, D]")
    require(v.ndim == 4 and v.shape[:3] == (B, H, T), func, "v", f"of shape [B, H, T, Dv] = ({B}, {H}, {T}, *)",
            f"shape {v.shape}")
    for name, x in (("q", q), ("v", v)):
        require_finite(x, func, name)
    if scale is not None:
        require(isinstance(scale, float | int | np.floating) and not isinstance(scale, bool) and np.isfinite(scale),
                func, "scale", "None or a finite float", repr(scale))
    z, k_hat = vq_quantize(k, codebook)
    cb0 = _codebook(func, k_hat, codebook)
    cb = np.broadcast_to(cb0, (H, *cb0.shape[1:])).astype(np.float64)
    return q, v, z, k_hat, cb, (D**-0.5 if scale is None else float(scale))


@oracle
def vq_attention(q: Any, k: Any, v: Any, codebook: Any, *, causal: bool = False, scale: float | None = None,
                 backend: Backend = F64) -> np.ndarray:
    """Dense Transformer-VQ attention: ``softmax(scale q k_hat^T [+ causal mask]) v`` with k_hat = C[z]
    the nearest codes (:func:`vq_quantize`).  Layout in the module docstring.
    Source: Lingle 2023 eq. (quantised-key attention)."""
    q, v, _, k_hat, _, sc = _inputs("vq_attention", q, k, v, codebook, scale)
    return softmax_attention(q, k_hat, v, scale=sc, causal=bool(causal), backend=backend)


def shared_max_weights(xp: Backend, s: Any, visible: np.ndarray, lc: Any, used: np.ndarray) -> tuple[Any, Any]:
    """Weights ``exp(s - m)`` on the visible key logits and ``exp(lc - m)`` on the in-use cache logits (0
    elsewhere) with one maximum m per query over both: the common normalisation of the block forms."""
    m_in = xp.max(xp.where(visible, s, xp.neg_inf), axis=-1, keepdims=True)
    m_c = xp.max(xp.where(used, lc, xp.neg_inf), axis=-1, keepdims=True)
    m = xp.where(m_in > m_c, m_in, m_c)
    return (xp.where(visible, xp.exp(xp.where(visible, s - m, 0.0)), 0.0),
            xp.where(used, xp.exp(xp.where(used, lc - m, 0.0)), 0.0))


def _used_max(xp: Backend, logits: Any, used: np.ndarray) -> Any:
    """Per-row maximum of ``logits`` over the entries with ``used`` True (0 where none is used)."""
    m = xp.max(xp.where(used, logits, xp.neg_inf), axis=-1, keepdims=True)
    return xp.where(m == xp.neg_inf, 0.0, m)


@oracle
def vq_attention_linear(q: Any, k: Any, v: Any, codebook: Any, *, causal: bool = False,
                        scale: float | None = None, backend: Backend = F64) -> np.ndarray:
    """Linear-time Transformer-VQ attention.  Non-causal: ``[w (Delta^T V)] / [w (Delta^T 1)]`` with
    ``w = exp(scale q C^T - m)`` on codes in use (0 on unused codes), m the maximum over codes in use.
    Causal: the token recurrence ``U_i = U_{i-1} + Delta_i^T v_i``, ``u_i = u_{i-1} + Delta_i^T``,
    ``o_i = w_i U_i / w_i u_i`` (m over the codes in use up to i).  Layout in the module docstring.
    Source: Lingle 2023 (theorem 3.7 and the recurrent form); Su kexue.fm/archives/9844."""
    q, v, z, _, cb, sc = _inputs("vq_attention_linear", q, k, v, codebook, scale)
    xp = backend
    B, H, T, _ = q.shape
    C = cb.shape[1]
    delta = (z[..., None] == np.arange(C)).astype(np.float64)  # [B, H, T, C] one-hot
    L = xp.matmul(xp.asarray(q), xp.asarray(np.swapaxes(cb, -1, -2))[None]) * xp.scalar(sc)  # [B, H, T, C]
    vx = xp.asarray(v)
    if not causal:
        counts = delta.sum(axis=2)[:, :, None, :]  # [B, H, 1, C] (exact small integers)
        U = xp.matmul(xp.asarray(np.swapaxes(delta, -1, -2)), vx)  # [B, H, C, Dv]
        used = np.broadcast_to(counts > 0, L.shape)
        w = xp.where(used, xp.exp(xp.where(used, L - _used_max(xp, L, used), 0.0)), 0.0)
        num = xp.matmul(w, U)
        den = xp.matmul(w, xp.asarray(np.swapaxes(counts, -1, -2)))
        return xp.to_float64(num / den)
    U = xp.zeros((B, H, C, v.shape[3]))
    u = np.zeros((B, H, C))
    outs = []
    for i in range(T):
        d_i = delta[:, :, i]  # [B, H, C]
        U = U + xp.asarray(d_i)[..., None] * vx[:, :, i, None, :]
        u = u + d_i
        used = u > 0
        Li = L[:, :, i]
        w = xp.where(used, xp.exp(xp.where(used, Li - _used_max(xp, Li, used), 0.0)), 0.0)  # [B, H, C]
        num = xp.sum(w[..., None] * U, axis=2)
        den = xp.sum(w * xp.asarray(u), axis=-1, keepdims=True)
        outs.append((num / den)[:, :, None])
    return xp.to_float64(np.concatenate(outs, axis=2))


@oracle
def vq_attention_blocks(q: Any, k: Any, v: Any, codebook: Any, *, block_size: int, scale: float | None = None,
                        cache: str = "sums", backend: Backend = F64) -> np.ndarray:
    """Causal Transformer-VQ block form with a compressed cache: block t (rows [t l, (t+1) l), the last block
    may be short) attends densely (causal mask) to its own quantised keys and to the cache of all earlier
    blocks through ``exp(scale Q_t C^T)``; one shared maximum per query over both.

    ``cache="sums"``: per-code value sums U_{t-1} and counts u_{t-1}: ``num += exp(Q C^T) U``,
    ``den += exp(Q C^T) u``.  ``cache="means"`` (the official code's stable storage): per-code mean values
    ``Ubar = U / u`` updated as ``Ubar <- (u_old / u_new) Ubar + Delta^T V / u_new`` and cache logits
    ``scale q.c_s + log u_s`` (codes with u_s = 0 excluded), so ``exp(q.c_s + log u_s) Ubar_s = exp(q.c_s) U_s``.
    Layout in the module docstring.
    Source: Lingle 2023 section 3.3 (block recurrence, without the local bias) and the official ``attn.py``
    (log-count / mean-value cache)."""
    func = "vq_attention_blocks"
    require(isinstance(block_size, int | np.integer) and not isinstance(block_size, bool) and block_size >= 1,
            func, "block_size", "an int >= 1", repr(block_size))
    require(cache in ("sums", "means"), func, "cache", "'sums' or 'means'", repr(cache))
    q, v, z, k_hat, cb, sc = _inputs(func, q, k, v, codebook, scale)
    xp = backend
    B, H, T, _ = q.shape
    C = cb.shape[1]
    delta = (z[..., None] == np.arange(C)).astype(np.float64)
    qx, vx, kx = xp.asarray(q), xp.asarray(v), xp.asarray(k_hat)
    Lc = xp.matmul(qx, xp.asarray(np.swapaxes(cb, -1, -2))[None]) * xp.scalar(sc)  # [B, H, T, C]
    U = xp.zeros((B, H, C, v.shape[3]))  # sums, or means for cache="means"
    u = np.zeros((B, H, 1, C))
    outs = []
    for t0 in range(0, T, block_size):
        blk = slice(t0, min(t0 + block_size, T))
        n = blk.stop - t0
        s_in = xp.matmul(qx[:, :, blk], np.swapaxes(kx[:, :, blk], -1, -2)) * xp.scalar(sc)  # [B, H, n, n]
        mask = np.broadcast_to(np.tril(np.ones((n, n), bool)), s_in.shape)
        used = np.broadcast_to(u > 0, (B, H, n, C))
        lc = Lc[:, :, blk]
        if cache == "means":
            lc = lc + xp.log(xp.asarray(np.where(u > 0, u, 1.0)))
        w_in, w_c = shared_max_weights(xp, s_in, mask, lc, used)
        num = xp.matmul(w_in, vx[:, :, blk]) + xp.matmul(w_c, U)
        den_c = xp.sum(w_c, axis=-1, keepdims=True) if cache == "means" else \
            xp.matmul(w_c, xp.asarray(np.swapaxes(u, -1, -2)))
        outs.append(num / (xp.sum(w_in, axis=-1, keepdims=True) + den_c))
        add = xp.matmul(xp.asarray(np.swapaxes(delta[:, :, blk], -1, -2)), vx[:, :, blk])  # [B, H, C, Dv]
        u_new = u + delta[:, :, blk].sum(axis=2)[:, :, None, :]
        if cache == "means":
            ratio = np.swapaxes(np.where(u_new > 0, u / np.where(u_new > 0, u_new, 1.0), 0.0), -1, -2)
            inv = np.swapaxes(np.where(u_new > 0, 1.0 / np.where(u_new > 0, u_new, 1.0), 0.0), -1, -2)
            U = U * xp.asarray(ratio) + add * xp.asarray(inv)
        else:
            U = U + add
        u = u_new
    return xp.to_float64(np.concatenate(outs, axis=2))


def vq_attention_vjp(q: Any, k: Any, v: Any, codebook: Any, grad_o: Any, *, causal: bool = False,
                     scale: float | None = None, backend: Backend = F64) -> tuple[np.ndarray, ...]:
    """Straight-through VJP of :func:`vq_attention`: (dq, dk, dv) with dk = dk_hat (d k_hat / d k = I) —
    softmax attention's VJP evaluated at the quantised keys; the codebook receives no gradient.
    Source: van den Oord et al. 2017 (straight-through); Lingle 2023."""
    q, v, _, k_hat, _, sc = _inputs("vq_attention_vjp", q, k, v, codebook, scale)
    return softmax_attention_vjp(q, k_hat, v, grad_o, scale=sc, causal=bool(causal), backend=backend)
