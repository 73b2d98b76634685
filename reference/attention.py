"""Softmax attention oracles: direct, online (blockwise), recurrent ("attention as an RNN"), split-KV
merge, and the vector-Jacobian product.  Layout [B, H, T, D] for q, [B, Hkv, S, D] / [B, Hkv, S, Dv] for
k / v, [B, H, T, Dv] for the output.

Formula: ``o_i = sum_j softmax_j(scale * q_i . k_j + a_ij | j visible to i) v_j``, with
``scale = 1/sqrt(D)`` by default and ``a`` an optional additive mask.

Visibility of key j to query i (all conditions AND-ed, then OR-ed with sinks where stated):

* query i sits at key position ``p_i = i + S - T`` (end-aligned, as in decoding with a KV cache);
* ``causal``: ``j <= p_i``;
* ``window=w``: ``p_i - w < j <= p_i`` (the w most recent keys up to and including p_i; implies the
  causal upper bound);
* ``sinks=s``: keys ``j < s`` with ``j <= p_i`` are visible in addition (StreamingLLM attention sinks);
* ``mask``: boolean [B|1, H|1, T, S] (True = attend) or additive float (``-inf`` = masked).

GQA/MQA: when Hkv divides H, query head h reads kv head ``h // (H // Hkv)`` (``repeat_interleave``).
A query with no visible key outputs 0 and has log-sum-exp ``-inf`` (the flash-attention convention).

Sources: Vaswani et al. 2017; Su kexue.fm/archives/10017 (attention as an RNN); Ainslie et al. 2023
(GQA head map); Xiao et al. 2023 (StreamingLLM sinks, arXiv 2309.17453); Milakov & Gimelshein 2018 (online softmax);
Dao et al. 2022 (FlashAttention log-sum-exp and backward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.softmax import stable_terms

__all__ = [
    "attention_as_rnn",
    "attention_logits",
    "merge_attention_states",
    "online_softmax_attention",
    "softmax_attention",
    "softmax_attention_vjp",
    "visibility_mask",
]


def visibility_mask(T: int, S: int, *, causal: bool = False, window: int | None = None,
                    sinks: int = 0) -> np.ndarray:
    """Boolean [T, S]: True where key j is visible to query i (end-aligned positions, see module doc).

    Source: Xiao et al. 2023 (StreamingLLM); issue convention for window and sinks.
    """
    func = "visibility_mask"
    require(isinstance(T, int | np.integer) and T >= 1, func, "T", "an int >= 1", T)
    require(isinstance(S, int | np.integer) and S >= 1, func, "S", "an int >= 1", S)
    _check_window_sinks(func, window, sinks)
    pos = np.arange(T)[:, None] + (S - T)
    j = np.arange(S)[None, :]
    vis = np.ones((T, S), dtype=bool)
    if causal or window is not None:
        vis &= j <= pos
    if window is not None:
        vis &= j > pos - window
        if sinks:
            vis |= (j < sinks) & (j <= pos)
    return vis


def _check_window_sinks(func: str, window: int | None, sinks: int) -> None:
    if window is not None:
        require(isinstance(window, int | np.integer) and not isinstance(window, bool) and window >= 1,
                func, "window", "None or an int >= 1", repr(window))
    require(isinstance(sinks, int | np.integer) and not isinstance(sinks, bool) and sinks >= 0,
            func, "sinks", "an int >= 0", repr(sinks))


@dataclass(frozen=True)
class _Inputs:
    q: np.ndarray
    k: np.ndarray  # kv heads repeated to H
    v: np.ndarray
    visible: np.ndarray  # bool [B, H, T, S]
    additive: np.ndarray | None  # float [B, H, T, S] or None
    scale: float | None
    hkv: int


def _attention_inputs(func: str, q: Any, k: Any, v: Any, scale: float | None, causal: bool,
                      window: int | None, sinks: int, mask: Any) -> _Inputs:
    q = as_float64(q, func, "q", ndim=4)
    k = as_float64(k, func, "k", ndim=4)
    v = as_float64(v, func, "v", ndim=4)
    B, H, T, D = q.shape
    require(T >= 1, func, "q", "a non-empty sequence (T >= 1)", f"shape {q.shape}")
    require(D >= 1, func, "q", "a head dim D >= 1", f"shape {q.shape}")
    require(k.shape[0] == B and k.shape[3] == D and k.shape[2] >= 1, func, "k",
            f"of shape [B, Hkv, S, D] with B={B}, D={D}, S >= 1", f"shape {k.shape}")
    Hkv, S = k.shape[1], k.shape[2]
    require(Hkv >= 1 and H % Hkv == 0, func, "k", f"a head count Hkv dividing H={H}", f"Hkv={Hkv}")
    require_shape(v, func, "v", (B, Hkv, S, None), "[B, Hkv, S, Dv]")
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_finite(a, func, name)
    require(isinstance(causal, bool | np.bool_), func, "causal", "a bool", repr(causal))
    if scale is not None:
        require(isinstance(scale, float | int | np.floating) and np.isfinite(scale), func, "scale",
                "None or a finite float", repr(scale))
    vis = np.broadcast_to(visibility_mask(T, S, causal=causal, window=window, sinks=sinks),
                          (B, H, T, S)).copy()
    additive = None
    if mask is not None:
        if _is_bool(mask):
            m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
        else:
            m = as_float64(mask, func, "mask")
        ok = m.ndim == 4 and m.shape[0] in (1, B) and m.shape[1] in (1, H) and m.shape[2:] == (T, S)
        require(ok, func, "mask", f"of shape [B or 1, H or 1, T, S] = ({B}|1, {H}|1, {T}, {S})",
                f"shape {tuple(m.shape)}")
        m = np.broadcast_to(m, (B, H, T, S))
        if m.dtype == bool:
            vis &= m
        else:
            require(not np.any(np.isnan(m)) and not np.any(m == np.inf), func, "mask",
                    "boolean, or additive float without NaN/+inf", "a NaN or +inf entry")
            vis &= m != -np.inf
            additive = np.where(vis, m, 0.0)
    group = H // Hkv
    return _Inputs(q, np.repeat(k, group, axis=1), np.repeat(v, group, axis=1), vis, additive,
                   None if scale is None else float(scale), Hkv)


def _is_bool(mask: Any) -> bool:
    dt = getattr(mask, "dtype", None)
    return str(dt) in ("bool", "torch.bool")


def _scores(xp: Backend, a: _Inputs, q: Any, k: Any, visible: np.ndarray,
            additive: np.ndarray | None) -> Any:
    """Masked logits ``scale * q k^T + a`` with invisible entries ``-inf``, in backend precision."""
    D = a.q.shape[-1]
    scale = xp.scalar(1.0) / xp.sqrt(xp.scalar(D)) if a.scale is None else xp.scalar(a.scale)
    s = xp.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if additive is not None:
        s = s + xp.asarray(additive)
    return xp.where(visible, s, xp.neg_inf)


def _finish(xp: Backend, m: Any, l: Any, acc: Any) -> tuple[Any, Any]:
    """Normalise: o = acc / l (0 where no key is visible) and lse = m + log l (-inf there)."""
    seen = l > 0
    o = xp.where(seen, acc / xp.where(seen, l, 1.0), 0.0)
    lse = xp.where(seen, m + xp.log(xp.where(seen, l, 1.0)), xp.neg_inf)
    return o, lse[..., 0]


@oracle
def softmax_attention(q: Any, k: Any, v: Any, *, scale: float | None = None, causal: bool = False,
                      window: int | None = None, sinks: int = 0, mask: Any = None,
                      return_lse: bool = False, backend: Backend = F64) -> Any:
    """Direct softmax attention, q [B, H, T, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv] -> o [B, H, T, Dv].

    ``o = softmax(scale * q k^T + mask) v`` with the row max subtracted before ``exp``; returns
    ``(o, lse)`` with lse [B, H, T] when ``return_lse``.  Features as in the module docstring.
    Source: Vaswani et al. 2017; Ainslie et al. 2023 (GQA, arXiv 2305.13245).
    """
    a = _attention_inputs("softmax_attention", q, k, v, scale, causal, window, sinks, mask)
    xp = backend
    s = _scores(xp, a, xp.asarray(a.q), xp.asarray(a.k), a.visible, a.additive)
    m, e, l = stable_terms(xp, s, axis=-1)
    o, lse = _finish(xp, m, l, xp.matmul(e, xp.asarray(a.v)))
    o = xp.to_float64(o)
    return (o, xp.to_float64(lse)) if return_lse else o


@oracle
def attention_logits(q: Any, k: Any, *, scale: float | None = None, causal: bool = False,
                     window: int | None = None, sinks: int = 0, mask: Any = None,
                     backend: Backend = F64) -> np.ndarray:
    """Masked logits ``scale * q k^T + a`` [B, H, T, S] with ``-inf`` where a key is invisible (kv heads
    repeated for GQA).  q [B, H, T, D], k [B, Hkv, S, D]; features as :func:`softmax_attention`."""
    a = _attention_inputs("attention_logits", q, k, k, scale, causal, window, sinks, mask)
    xp = backend
    return xp.to_float64(_scores(xp, a, xp.asarray(a.q), xp.asarray(a.k), a.visible, a.additive))


@oracle
def online_softmax_attention(q: Any, k: Any, v: Any, *, block_size: int, scale: float | None = None,
                             causal: bool = False, window: int | None = None, sinks: int = 0,
                             mask: Any = None, return_lse: bool = False,
                             backend: Backend = F64) -> Any:
    """Online (blockwise, FlashAttention-2) softmax attention over key blocks of ``block_size``.

    Per query the state ``(m, l, acc)`` starts at ``(-inf, 0, 0)``; for a key block with logits s_B:
    ``m' = max(m, max s_B)``, ``c = exp(m - m')``, ``l' = c l + sum exp(s_B - m')``,
    ``acc' = c acc + exp(s_B - m') V_B``; finally ``o = acc / l``, ``lse = m + log l``.  Any block size
    >= 1 (the last block may be short).  Layout as :func:`softmax_attention`.
    Source: Milakov & Gimelshein 2018 (arXiv 1805.02867); Dao 2023 (FlashAttention-2).
    """
    func = "online_softmax_attention"
    require(isinstance(block_size, int | np.integer) and block_size >= 1, func, "block_size",
            "an int >= 1", repr(block_size))
    a = _attention_inputs(func, q, k, v, scale, causal, window, sinks, mask)
    xp = backend
    qx, kx, vx = xp.asarray(a.q), xp.asarray(a.k), xp.asarray(a.v)
    B, H, T, _ = a.q.shape
    S, Dv = a.k.shape[2], a.v.shape[3]
    m, l, acc = xp.full((B, H, T, 1), float("-inf")), xp.zeros((B, H, T, 1)), xp.zeros((B, H, T, Dv))
    for start in range(0, S, block_size):
        blk = slice(start, min(start + block_size, S))
        add = None if a.additive is None else a.additive[..., blk]
        s = _scores(xp, a, qx, kx[:, :, blk], a.visible[..., blk], add)
        m_new = xp.where(m > xp.max(s, axis=-1, keepdims=True), m, xp.max(s, axis=-1, keepdims=True))
        m_ref = xp.where(m_new == xp.neg_inf, 0.0, m_new)
        c = xp.exp(m - m_ref)
        p = xp.exp(s - m_ref)
        l = c * l + xp.sum(p, axis=-1, keepdims=True)
        acc = c * acc + xp.matmul(p, vx[:, :, blk])
        m = m_new
    o, lse = _finish(xp, m, l, acc)
    o = xp.to_float64(o)
    return (o, xp.to_float64(lse)) if return_lse else o


@oracle
def attention_as_rnn(q: Any, k: Any, v: Any, *, scale: float | None = None, causal: bool = False,
                     window: int | None = None, sinks: int = 0, mask: Any = None,
                     backend: Backend = F64) -> np.ndarray:
    """Softmax attention as a per-query recurrence over keys, newest first (Su kexue.fm/archives/10017).

    For query i scan ``j = S-1, ..., 0``: ``(y, z) <- (y, z) + [j visible] exp(s_ij - M_i) (v_j, 1)``;
    ``o_i = y / z`` (0 if no key is visible).  ``M_i = max_j s_ij`` is a constant per query (softmax shift
    invariance; it only prevents overflow).  Layout as :func:`softmax_attention`.
    Source: Su kexue.fm/archives/10017; Rabe & Staats 2021 (arXiv 2112.05682).
    """
    a = _attention_inputs("attention_as_rnn", q, k, v, scale, causal, window, sinks, mask)
    xp = backend
    s = _scores(xp, a, xp.asarray(a.q), xp.asarray(a.k), a.visible, a.additive)
    M = xp.max(s, axis=-1, keepdims=True)
    M = xp.where(M == xp.neg_inf, 0.0, M)
    vx = xp.asarray(a.v)
    B, H, T, _ = a.q.shape
    y, z = xp.zeros((B, H, T, a.v.shape[3])), xp.zeros((B, H, T, 1))
    for j in reversed(range(a.k.shape[2])):
        w = xp.exp(s[..., j:j + 1] - M)  # exp(-inf) = 0 for invisible keys
        y = y + w * vx[:, :, j:j + 1, :]
        z = z + w
    o = xp.where(z > 0, y / xp.where(z > 0, z, 1.0), 0.0)
    return xp.to_float64(o)


@oracle
def merge_attention_states(o1: Any, lse1: Any, o2: Any, lse2: Any, *,
                           backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """Merge two partial attention results over disjoint key sets (split-KV / ring attention).

    o_i [..., T, Dv] normalised outputs, lse_i [..., T]: ``M = max(lse1, lse2)``,
    ``w_i = exp(lse_i - M)``, ``o = (w1 o1 + w2 o2) / (w1 + w2)``, ``lse = M + log(w1 + w2)``; two empty
    parts (both lse -inf) give o = 0, lse = -inf.  Associative and commutative.
    Source: Milakov & Gimelshein 2018 (merging partial states); Dao 2023.
    """
    func = "merge_attention_states"
    o1, o2 = as_float64(o1, func, "o1"), as_float64(o2, func, "o2")
    lse1, lse2 = as_float64(lse1, func, "lse1"), as_float64(lse2, func, "lse2")
    require(o1.shape == o2.shape, func, "o2", f"of the same shape as o1 {o1.shape}", o2.shape)
    for name, lse in (("lse1", lse1), ("lse2", lse2)):
        require(lse.shape == o1.shape[:-1], func, name, f"of shape {o1.shape[:-1]} (o without Dv)",
                lse.shape)
    xp = backend
    l1, l2 = xp.asarray(lse1)[..., None], xp.asarray(lse2)[..., None]
    M = xp.where(l1 > l2, l1, l2)
    M_ref = xp.where(M == xp.neg_inf, 0.0, M)
    w1, w2 = xp.exp(l1 - M_ref), xp.exp(l2 - M_ref)
    o, lse = _finish(xp, M_ref, w1 + w2, w1 * xp.asarray(o1) + w2 * xp.asarray(o2))
    return xp.to_float64(o), xp.to_float64(lse)


@oracle
def softmax_attention_vjp(q: Any, k: Any, v: Any, grad_o: Any, *, scale: float | None = None,
                          causal: bool = False, window: int | None = None, sinks: int = 0,
                          mask: Any = None, backend: Backend = F64) -> tuple[np.ndarray, ...]:
    """Vector-Jacobian product of :func:`softmax_attention`: returns (dq, dk, dv) for cotangent grad_o.

    With P the attention probabilities and O the output (per expanded head):
    ``dV = P^T dO``, ``dP = dO V^T``, ``delta = rowsum(dO * O)``, ``dS = P * (dP - delta)``,
    ``dQ = scale dS K``, ``dK = scale dS^T Q``; GQA sums dK, dV over the heads of a group.  Masks get
    no gradient.  Layout: dq like q [B, H, T, D], dk like k, dv like v.
    Source: Dao et al. 2022 (FlashAttention, Algorithm 4); chain rule through softmax
    (Jacobian ``diag(p) - p p^T``).
    """
    func = "softmax_attention_vjp"
    a = _attention_inputs(func, q, k, v, scale, causal, window, sinks, mask)
    B, H, T, _ = a.q.shape
    g = as_float64(grad_o, func, "grad_o", ndim=4)
    require_shape(g, func, "grad_o", (B, H, T, a.v.shape[3]), "[B, H, T, Dv]")
    require_finite(g, func, "grad_o")
    xp = backend
    qx, kx, vx, gx = xp.asarray(a.q), xp.asarray(a.k), xp.asarray(a.v), xp.asarray(g)
    s = _scores(xp, a, qx, kx, a.visible, a.additive)
    _, e, l = stable_terms(xp, s, axis=-1)
    p = xp.where(l > 0, e / xp.where(l > 0, l, 1.0), 0.0)
    o = xp.matmul(p, vx)
    scale_x = xp.scalar(1.0) / xp.sqrt(xp.scalar(a.q.shape[3])) if a.scale is None else xp.scalar(a.scale)
    dv = xp.matmul(np.swapaxes(p, -1, -2), gx)
    dp = xp.matmul(gx, np.swapaxes(vx, -1, -2))
    delta = xp.sum(gx * o, axis=-1, keepdims=True)
    ds = p * (dp - delta)
    dq = xp.matmul(ds, kx) * scale_x
    dk = xp.matmul(np.swapaxes(ds, -1, -2), qx) * scale_x
    group = H // a.hkv

    def fold(x: Any) -> Any:  # sum the query heads of each kv group
        return xp.sum(x.reshape(B, a.hkv, group, *x.shape[2:]), axis=2)

    return xp.to_float64(dq), xp.to_float64(fold(dk)), xp.to_float64(fold(dv))
