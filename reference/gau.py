"""GAU / FLASH oracles: relu^2 attention and FLASH mixed-chunk attention (quadratic within chunks, linear
across chunks), in the chunked form and the direct n x n form.

Layout (single head, as in the GAU paper): q, k [B, n, s], v [B, n, e]; o [B, n, e].

* relu^2 attention: ``A = relu^2(Q K^T / sqrt(s)) / n = relu^2(Q K^T) / (n s)`` (2-homogeneity), causal
  optionally (mask j <= i).  ``normaliser="n"`` divides by n (the paper), ``"visible"`` by the number of
  visible keys of each query (bert4keras ``squared_relu``: l = unmasked keys).
* FLASH mixed-chunk attention, chunk size c, chunks g = 0..G-1 (0-based; the last may be short), four heads
  Q^quad, K^quad, Q^lin, K^lin:
  quadratic part ``relu^2(Q_g^q K_g^q^T) V_g / (c s)`` (causal: lower-triangular inside the chunk; c is the
  nominal chunk size for every chunk, as in the paper's code);
  linear part, non-causal ``Q_g^l (sum_h K_h^l^T V_h) / n``; causal, an **exclusive** prefix over chunks
  h < g times ``1 / N_g``.  ``lin_normaliser`` gives N_g per chunk (array [G]); the default is n
  (non-causal) and ``max(g c, 1)`` (causal: the visible-token count of earlier chunks, guarded for g = 0
  whose prefix is empty and contributes 0).
* Direct equivalent: ``A = mask_quad (.) relu^2(Q^q K^q^T)/(c s) + mask_lin (.) (Q^l K^l^T) / N_{chunk(i)}``
  with mask_quad = same chunk (and j <= i if causal), mask_lin = all pairs (non-causal) or
  chunk(j) < chunk(i) (causal); ``O = A V``.

Sources: Hua et al. 2022 (Transformer Quality in Linear Time, GAU and FLASH, appendix code); Su
kexue.fm/archives/8934, 9019, 9052; lucidrains/FLASH-pytorch; bojone/bert4keras squared_relu.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.backends import F64, Backend, oracle

__all__ = ["flash_attention_chunked", "flash_attention_direct", "flash_default_normaliser", "relu2_attention"]


def _qkv(func: str, names: tuple[str, ...], arrays: tuple[Any, ...], v: Any) -> tuple[list[np.ndarray], np.ndarray]:
    out = []
    for name, x in zip(names, arrays, strict=True):
        a = as_float64(x, func, name, ndim=3)
        if out:
            require_shape(a, func, name, out[0].shape, "[B, n, s]")
        require_finite(a, func, name)
        out.append(a)
    B, n, _ = out[0].shape
    require(n >= 1, func, names[0], "a non-empty sequence (n >= 1)", f"shape {out[0].shape}")
    va = as_float64(v, func, "v", ndim=3)
    require(va.shape[:2] == (B, n), func, "v", f"of shape [B, n, e] = ({B}, {n}, *)", f"shape {va.shape}")
    require_finite(va, func, "v")
    return out, va


def _relu2(xp: Backend, x: Any) -> Any:
    pos = np.asarray(x > 0, dtype=bool)
    r = xp.where(pos, x, 0.0)
    return r * r


@oracle
def relu2_attention(q: Any, k: Any, v: Any, *, causal: bool = False, normaliser: str = "n",
                    backend: Backend = F64) -> np.ndarray:
    """GAU attention ``relu^2(Q K^T / sqrt(s)) V / l`` with l = n (``normaliser="n"``) or the number of
    visible keys of each query (``"visible"``); q, k [B, n, s], v [B, n, e].
    Source: Hua et al. 2022 eq. (GAU); Su kexue.fm/archives/8934; bert4keras ``squared_relu``."""
    func = "relu2_attention"
    require(normaliser in ("n", "visible"), func, "normaliser", "'n' or 'visible'", repr(normaliser))
    (qa, ka), va = _qkv(func, ("q", "k"), (q, k), v)
    xp = backend
    n, s = qa.shape[1], qa.shape[2]
    logits = xp.matmul(xp.asarray(qa), np.swapaxes(xp.asarray(ka), -1, -2)) / xp.sqrt(xp.scalar(s))
    A = _relu2(xp, logits)
    vis = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    A = xp.where(vis, A, 0.0)
    count = vis.sum(-1, keepdims=True).astype(np.float64) if normaliser == "visible" else np.full((n, 1), float(n))
    return xp.to_float64(xp.matmul(A, xp.asarray(va)) / xp.asarray(count))


def flash_default_normaliser(n: int, chunk: int, causal: bool) -> np.ndarray:
    """Default N_g per chunk g = 0..G-1: n (non-causal) or max(g c, 1) (causal; visible earlier tokens)."""
    G = -(-n // chunk)
    if not causal:
        return np.full(G, float(n))
    return np.maximum(np.arange(G) * chunk, 1).astype(np.float64)


def _flash_inputs(func: str, q_quad: Any, k_quad: Any, q_lin: Any, k_lin: Any, v: Any, chunk: int, causal: bool,
                  lin_normaliser: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    require(isinstance(chunk, int | np.integer) and not isinstance(chunk, bool) and chunk >= 1, func, "chunk",
            "an int >= 1", repr(chunk))
    arrs, va = _qkv(func, ("q_quad", "k_quad", "q_lin", "k_lin"), (q_quad, k_quad, q_lin, k_lin), v)
    n = arrs[0].shape[1]
    G = -(-n // chunk)
    if lin_normaliser is None:
        N = flash_default_normaliser(n, chunk, causal)
    else:
        N = as_float64(lin_normaliser, func, "lin_normaliser", ndim=1)
        require(N.shape == (G,) and bool(np.all(N > 0)) and bool(np.all(np.isfinite(N))), func, "lin_normaliser",
                f"[G] = ({G},) finite positive values", f"shape {N.shape}")
    return arrs, va, N


@oracle
def flash_attention_direct(q_quad: Any, k_quad: Any, q_lin: Any, k_lin: Any, v: Any, *, chunk: int,
                           causal: bool = False, lin_normaliser: Any = None, backend: Backend = F64) -> np.ndarray:
    """FLASH mixed-chunk attention by the direct n x n formula (module docstring): ``O = A V`` with
    ``A = mask_quad relu^2(Q^q K^q^T)/(c s) + mask_lin (Q^l K^l^T)/N_{chunk(i)}``.
    Source: Hua et al. 2022 (arXiv 2202.10447) section 3; this dense form derived here."""
    func = "flash_attention_direct"
    (qq, kq, ql, kl), va, N = _flash_inputs(func, q_quad, k_quad, q_lin, k_lin, v, chunk, causal, lin_normaliser)
    xp = backend
    n, s = qq.shape[1], qq.shape[2]
    ch = np.arange(n) // chunk
    same = ch[:, None] == ch[None, :]
    mq = same & (np.arange(n)[None, :] <= np.arange(n)[:, None]) if causal else same
    ml = ch[None, :] < ch[:, None] if causal else np.ones((n, n), bool)
    quad = _relu2(xp, xp.matmul(xp.asarray(qq), np.swapaxes(xp.asarray(kq), -1, -2))) / xp.scalar(chunk * s)
    lin = xp.matmul(xp.asarray(ql), np.swapaxes(xp.asarray(kl), -1, -2)) / xp.asarray(N[ch])[:, None]
    A = xp.where(mq, quad, 0.0) + xp.where(ml, lin, 0.0)
    return xp.to_float64(xp.matmul(A, xp.asarray(va)))


@oracle
def flash_attention_chunked(q_quad: Any, k_quad: Any, q_lin: Any, k_lin: Any, v: Any, *, chunk: int,
                            causal: bool = False, lin_normaliser: Any = None, backend: Backend = F64) -> np.ndarray:
    """FLASH mixed-chunk attention chunk by chunk: per chunk g the quadratic part relu^2(Q_g^q K_g^q^T) V_g/(cs)
    plus the linear part Q_g^l M / N_g with M = sum over all chunks of K_h^l^T V_h (non-causal) or over
    h < g only (causal, exclusive prefix: the state is updated after chunk g is read).
    Source: Hua et al. 2022 (FLASH, algorithm / appendix pseudo-code); Su kexue.fm/archives/8934."""
    func = "flash_attention_chunked"
    (qq, kq, ql, kl), va, N = _flash_inputs(func, q_quad, k_quad, q_lin, k_lin, v, chunk, causal, lin_normaliser)
    xp = backend
    B, n, s = qq.shape
    qq, kq, ql, kl, vx = (xp.asarray(x) for x in (qq, kq, ql, kl, va))
    M = xp.zeros((B, s, va.shape[2]))
    if not causal:
        for c0 in range(0, n, chunk):
            blk = slice(c0, min(c0 + chunk, n))
            M = M + xp.matmul(np.swapaxes(kl[:, blk], -1, -2), vx[:, blk])
    outs = []
    for g, c0 in enumerate(range(0, n, chunk)):
        blk = slice(c0, min(c0 + chunk, n))
        b = blk.stop - c0
        quad = _relu2(xp, xp.matmul(qq[:, blk], np.swapaxes(kq[:, blk], -1, -2))) / xp.scalar(chunk * s)
        if causal:
            quad = xp.where(np.tril(np.ones((b, b), bool)), quad, 0.0)
        outs.append(xp.matmul(quad, vx[:, blk]) + xp.matmul(ql[:, blk], M) / xp.scalar(float(N[g])))
        if causal:
            M = M + xp.matmul(np.swapaxes(kl[:, blk], -1, -2), vx[:, blk])
    return xp.to_float64(np.concatenate(outs, axis=1))
