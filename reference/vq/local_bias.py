"""Transformer-VQ with a local (Toeplitz) bias — the form the paper trains — and its straight-through
gradients with the stop-gradients of the official code (``GRAD_THRU_CACHE`` 0 or 1) and of Su's reading.

Layout as :mod:`veriformer.reference.vq.attention`: q, k [B, H, T, D], v [B, H, T, Dv], codebook
[H or 1, C, D], o [B, H, T, Dv]; ``bias`` [W + 1] or [H, W + 1] holds b(0), ..., b(W) (per head or shared).

* Dense definition (causal): ``o = softmax(scale Q K_hat^T + Bias + M) V`` with ``Bias_ij = b(i - j)`` for
  ``0 <= i - j <= W`` and 0 for ``i - j > W`` (M the causal mask, K_hat the nearest codes).
* Block form, block length l >= W (last block may be short), block t = rows [t l, (t + 1) l)::

      num_t = exp(Q_t K_hat_t^T + B_tt + M) V_t + exp(Q_t K_hat_{t-1}^T + B_{t,t-1}) V_{t-1}
              + exp(Q_t C^T) U_{t-2}

  and ``den_t`` the same with V -> 1; ``U_{t-2}`` holds the per-code sums of values (and counts) of blocks
  ``<= t - 2``.  One maximum per query over the two key blocks and the in-use cache codes.  Exact because a
  bias of support W <= l never reaches block t - 2, which only the compressed cache represents.
* Gradients (straight-through, ``k_hat = sg(c_z) + (k - sg(k))``), with P the dense weights and
  ``dS = P (.) (dO V^T - rowsum(dO (.) O))``: ``dq = scale dS K_hat`` always (queries are live), and for a
  key s in block b(s), ``dk_s = scale sum_{t in A_k(s)} dS_ts q_t``, ``dv_s = sum_{t in A_v(s)} P_ts dO_t`` where,
  by ``stop_gradient``:
  - ``"state"`` (the official code with ``GRAD_THRU_CACHE = 0``): the whole state carried between blocks — the
    previous block's k_hat, v and the cache — is wrapped in sg: ``A_k = A_v = {t : b(t) = b(s)}``;
  - ``"cache"`` (Su's reading, Transformer-XL-like): only the compressed cache ``U_{t-2}`` is sg'd, gradients
    flow through both uncompressed terms: ``A_k = A_v = {t : b(t) in {b(s), b(s) + 1}}``;
  - ``"none"`` (``GRAD_THRU_CACHE = 1``): gradients also flow through the cache sums ``U = sum Delta^T V``
    (linear in v) but not to k through the cache (its logits use the codebook): ``A_k`` as for ``"cache"``,
    ``A_v`` = every query that sees s (the dense dv).
  Neither equals the gradient of dense VQ attention (the stop-gradients of Lingle 2023 section 3.3 change
  the training gradients); the codebook receives no gradient through attention in either.

Sources: Lingle 2023 (Transformer-VQ, arXiv 2309.16354) section 3.3 and its official JAX code (``attn.py``,
flag ``GRAD_THRU_CACHE``); Su kexue.fm/archives/9844.  The translated post leaves the bias
boundary unclear (support ``<= l`` or ``< l``); both are exact here since ``W <= l`` is the requirement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.attention import softmax_attention
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.vq.attention import _inputs, shared_max_weights

__all__ = ["STOP_GRADIENTS", "live_pairs", "vq_local_bias_attention", "vq_local_bias_blocks", "vq_local_bias_vjp",
           "vq_toeplitz_bias"]


def _bias(func: str, bias: Any, H: int) -> np.ndarray:
    b = as_float64(bias, func, "bias")
    require(b.ndim in (1, 2) and b.shape[-1] >= 1 and (b.ndim == 1 or b.shape[0] in (1, H)), func, "bias",
            f"of shape [W + 1] or [H or 1, W + 1] with H = {H}", f"shape {b.shape}")
    require_finite(b, func, "bias")
    return np.broadcast_to(b if b.ndim == 2 else b[None], (H, b.shape[-1]))


def vq_toeplitz_bias(bias: Any, T: int, H: int) -> np.ndarray:
    """The additive causal bias [H, T, T]: ``b(i - j)`` for ``0 <= i - j <= W``, 0 for ``i - j > W`` and
    ``-inf`` for ``j > i`` (the causal mask).  ``bias`` [W + 1] or [H or 1, W + 1].
    Source: Lingle 2023 section 3.3 (local positional bias)."""
    b = _bias("vq_toeplitz_bias", bias, H)
    d = np.arange(T)[:, None] - np.arange(T)[None, :]
    W = b.shape[-1] - 1
    vals = np.where((d >= 0) & (d <= W), b[:, np.clip(d, 0, W)], 0.0)
    return np.where(d >= 0, vals, -np.inf)


@oracle
def vq_local_bias_attention(q: Any, k: Any, v: Any, codebook: Any, *, bias: Any, scale: float | None = None,
                            backend: Backend = F64) -> np.ndarray:
    """Dense causal Transformer-VQ attention with a local Toeplitz bias:
    ``softmax(scale Q K_hat^T + Bias) V`` (Bias from :func:`vq_toeplitz_bias`, causal mask included).
    Layout in the module docstring.  Source: Lingle 2023 section 3.3."""
    q, v, _, k_hat, _, sc = _inputs("vq_local_bias_attention", q, k, v, codebook, scale)
    mask = vq_toeplitz_bias(_bias("vq_local_bias_attention", bias, q.shape[1]), q.shape[2], q.shape[1])
    return softmax_attention(q, k_hat, v, scale=sc, mask=mask[None], backend=backend)


@oracle
def vq_local_bias_blocks(q: Any, k: Any, v: Any, codebook: Any, *, bias: Any, block_size: int,
                         scale: float | None = None, backend: Backend = F64) -> np.ndarray:
    """Block form with a local bias and a cache that lags two blocks (module docstring): in-block keys
    (causal, biased), the previous block's keys (biased where ``i - j <= W``) and ``exp(scale Q C^T) U_{t-2}``,
    one shared maximum per query.  Requires ``W <= block_size``.
    Source: Lingle 2023 section 3.3 (block recurrence with local bias)."""
    func = "vq_local_bias_blocks"
    require(isinstance(block_size, int | np.integer) and not isinstance(block_size, bool) and block_size >= 1,
            func, "block_size", "an int >= 1", repr(block_size))
    q, v, z, k_hat, cb, sc = _inputs(func, q, k, v, codebook, scale)
    B, H, T, _ = q.shape
    bmat = vq_toeplitz_bias(_bias(func, bias, H), T, H)
    W = np.shape(bias)[-1] - 1
    require(W <= block_size, func, "bias", f"a support W = len(bias) - 1 <= block_size = {block_size} (a longer "
            "bias reaches the compressed cache and the block form is not exact)", f"W = {W}")
    xp = backend
    C = cb.shape[1]
    l = block_size
    delta = (z[..., None] == np.arange(C)).astype(np.float64)
    qx, vx, kx = xp.asarray(q), xp.asarray(v), xp.asarray(k_hat)
    Lc = xp.matmul(qx, xp.asarray(np.swapaxes(cb, -1, -2))[None]) * xp.scalar(sc)  # [B, H, T, C]
    U = xp.zeros((B, H, C, v.shape[3]))
    u = np.zeros((B, H, 1, C))
    outs = []
    for t0 in range(0, T, l):
        rows = slice(t0, min(t0 + l, T))
        keys = slice(max(t0 - l, 0), rows.stop)  # previous block and this one
        if t0 - 2 * l >= 0:  # block t - 2 enters the cache
            old = slice(t0 - 2 * l, t0 - l)
            U = U + xp.matmul(xp.asarray(np.swapaxes(delta[:, :, old], -1, -2)), vx[:, :, old])
            u = u + delta[:, :, old].sum(axis=2)[:, :, None, :]
        add = bmat[:, rows, keys][None]  # [1, H, n, m] with -inf above the diagonal
        vis = np.broadcast_to(np.isfinite(add), (B, H, rows.stop - t0, keys.stop - keys.start))
        s = xp.matmul(qx[:, :, rows], np.swapaxes(kx[:, :, keys], -1, -2)) * xp.scalar(sc) + \
            xp.asarray(np.where(np.isfinite(add), add, 0.0))
        used = np.broadcast_to(u > 0, (B, H, rows.stop - t0, C))
        lc = Lc[:, :, rows]
        w_in, w_c = shared_max_weights(xp, s, vis, lc, used)
        num = xp.matmul(w_in, vx[:, :, keys]) + xp.matmul(w_c, U)
        den = xp.sum(w_in, axis=-1, keepdims=True) + xp.matmul(w_c, xp.asarray(np.swapaxes(u, -1, -2)))
        outs.append(num / den)
    return xp.to_float64(np.concatenate(outs, axis=2))


STOP_GRADIENTS = ("state", "cache", "none")


def live_pairs(T: int, block_size: int, stop_gradient: str) -> tuple[np.ndarray, np.ndarray]:
    """Boolean [T, T] masks (query t, key s) of the pairs through which the key (``live_k``) and the value
    (``live_v``) receive gradients under ``stop_gradient`` (module docstring)."""
    require(stop_gradient in STOP_GRADIENTS, "live_pairs", "stop_gradient", f"one of {STOP_GRADIENTS}",
            repr(stop_gradient))
    blk = np.arange(T) // block_size
    same = blk[:, None] == blk[None, :]
    if stop_gradient == "state":
        return same, same
    near = same | (blk[:, None] == blk[None, :] + 1)
    return near, (near if stop_gradient == "cache" else np.ones((T, T), bool))


def vq_local_bias_vjp(q: Any, k: Any, v: Any, codebook: Any, grad_o: Any, *, bias: Any, block_size: int,
                      stop_gradient: str, scale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Straight-through VJP (dq, dk, dv) of the local-bias block form with the stop-gradients named by
    ``stop_gradient`` ("state": official GRAD_THRU_CACHE = 0; "cache": Su's reading; "none": GRAD_THRU_CACHE =
    1); the index sets A_k, A_v are in the module docstring.  grad_o [B, H, T, Dv].  float64.
    Source: Lingle 2023 section 3.3 and ``attn.py``; Su kexue.fm/archives/9844 (cache sg); derived here from the
    softmax VJP restricted to the live (query, key) pairs."""
    func = "vq_local_bias_vjp"
    require(isinstance(block_size, int | np.integer) and not isinstance(block_size, bool) and block_size >= 1,
            func, "block_size", "an int >= 1", repr(block_size))
    require(stop_gradient in STOP_GRADIENTS, func, "stop_gradient", f"one of {STOP_GRADIENTS}", repr(stop_gradient))
    q, v, _, k_hat, _, sc = _inputs(func, q, k, v, codebook, scale)
    H, T = q.shape[1], q.shape[2]
    go = as_float64(grad_o, func, "grad_o", ndim=4)
    require_shape(go, func, "grad_o", v.shape, "[B, H, T, Dv]")
    require_finite(go, func, "grad_o")
    add = vq_toeplitz_bias(_bias(func, bias, H), T, H)[None]
    s = sc * q @ np.swapaxes(k_hat, -1, -2) + add
    P = np.exp(s - s.max(axis=-1, keepdims=True))
    P /= P.sum(axis=-1, keepdims=True)
    o = P @ v
    dS = P * (go @ np.swapaxes(v, -1, -2) - np.sum(go * o, axis=-1, keepdims=True))
    live_k, live_v = live_pairs(T, block_size, stop_gradient)
    dq = sc * dS @ k_hat
    dk = sc * np.swapaxes(dS * live_k, -1, -2) @ q
    dv = np.swapaxes(P * live_v, -1, -2) @ go
    return dq, dk, dv
