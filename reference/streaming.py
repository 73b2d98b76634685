"""StreamingLLM oracles: a rolling KV-cache decoder with attention sinks, its closed-form retained ids, the
off-by-one ("learnable sink") softmax and attention, and O(1)-memory decoding by recomputing K/V.

Layout: pre-RoPE queries q [B, H, N, D], keys k [B, Hkv, N, D], values v [B, Hkv, N, Dv], one token per decode
step t = 0..N-1 (Hkv divides H: GQA).  Output o [B, H, N, Dv], o[:, :, t] the output of step t.

Rolling cache (Xiao et al. 2023, arXiv 2309.17453, section 3.2 and ``mit-han-lab/streaming-llm``
``StartRecentKVCache``): the cache holds at most ``sinks + recent`` tokens.  Before token t is appended, when the
cache is full the oldest non-sink entry is evicted, so after appending the cache holds the ids
``[0..s-1] + [t-r+1..t]`` (s = sinks, r = recent; all of ``0..t`` while ``t + 1 <= s + r``).  Keys are cached
*before* RoPE; at every step they are rotated by their position in the cache:

* ``positions="cache"`` (StreamingLLM): key at cache slot i gets position i, the query gets ``|cache| - 1``
  (the paper's example: cache ``[0,1,2,3,6,7,8]`` while decoding token 8 uses positions ``0..6``);
* ``positions="original"``: keys and query keep their stream positions (then decoding equals windowed attention
  with sinks on the full stream, ``softmax_attention(..., causal, window=r, sinks=s)``).

The query attends to every cached key: ``o_t = softmax(scale q_t' K_c'^T) V_c`` (primes: RoPE applied).

Off-by-one softmax (E. Miller, "Attention is off by one", 2023; the learnable sink of gpt-oss and of FlashMLA's
``attn_sink``): ``p_i = exp(x_i) / (exp(z) + sum_j exp(x_j))`` with a sink logit z (z = 0: Miller's softmax_1);
equal to the softmax over the keys plus one extra key of logit z and value 0.

Sources: Xiao et al. 2023 (StreamingLLM); Su kexue.fm/archives/10017 (recomputing K/V instead of caching them);
E. Miller 2023 (evanmiller.org/attention-is-off-by-one.html); deepseek-ai/FlashMLA tests/ref.py (attn_sink).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.attention import attention_logits, softmax_attention
from veriformer.reference.rope import rope

__all__ = [
    "STREAMING_POSITIONS",
    "StreamingTrace",
    "sink_softmax_attention",
    "softmax_with_sink",
    "streaming_decode",
    "streaming_decode_from_inputs",
    "streaming_retained_ids",
]

STREAMING_POSITIONS = ("cache", "original")


@dataclass(frozen=True)
class StreamingTrace:
    """What the rolling cache did: ``ids[t]`` the token ids in the cache (in cache order) when token t is decoded,
    ``evicted[t]`` the ids evicted just before token t was appended, ``positions[t]`` the key positions used."""

    ids: list[np.ndarray] = field(default_factory=list)
    evicted: list[list[int]] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)


def _check_budget(func: str, sinks: int, recent: int) -> None:
    require(isinstance(sinks, int | np.integer) and not isinstance(sinks, bool) and sinks >= 0, func, "sinks",
            "an int >= 0", repr(sinks))
    require(isinstance(recent, int | np.integer) and not isinstance(recent, bool) and recent >= 1, func, "recent",
            "an int >= 1 (the current token is always cached)", repr(recent))


def streaming_retained_ids(t: int, sinks: int, recent: int) -> np.ndarray:
    """Ids in the rolling cache when token t (0-based) is decoded: ``0..t`` while ``t + 1 <= sinks + recent``, else
    ``[0..sinks-1] + [t-recent+1..t]``.  Source: Xiao et al. 2023, section 3.2; ``StartRecentKVCache``."""
    func = "streaming_retained_ids"
    require(isinstance(t, int | np.integer) and t >= 0, func, "t", "an int >= 0", repr(t))
    _check_budget(func, sinks, recent)
    if t + 1 <= sinks + recent:
        return np.arange(t + 1)
    return np.concatenate([np.arange(sinks), np.arange(t - recent + 1, t + 1)])


def _inputs(func: str, q: Any, k: Any, v: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = as_float64(q, func, "q", ndim=4)
    k = as_float64(k, func, "k", ndim=4)
    v = as_float64(v, func, "v", ndim=4)
    B, H, N, D = q.shape
    require(N >= 1 and D >= 2 and D % 2 == 0, func, "q", "of shape [B, H, N >= 1, D] with D even", q.shape)
    require(k.shape[0] == B and k.shape[2] == N and k.shape[3] == D and k.shape[1] >= 1 and H % k.shape[1] == 0,
            func, "k", f"of shape [B={B}, Hkv dividing H={H}, N={N}, D={D}]", k.shape)
    require_shape(v, func, "v", (B, k.shape[1], N, None), "[B, Hkv, N, Dv]")
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_finite(a, func, name)
    return q, k, v


def _rolling(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, sinks: int, recent: int, positions: str, base: float,
             layout: str, scale: float | None, query_offset: int = 0, keep_sinks: bool = True,
             rotate_at_insert: bool = False) -> tuple[np.ndarray, StreamingTrace]:
    """The rolling-cache decoder (the knobs after ``scale`` exist for the planted bugs of properties/streaming)."""
    B, H, N, _ = q.shape
    cap = sinks + recent
    ids: list[int] = []
    stored: list[np.ndarray] = []  # key rows as cached: pre-RoPE ([B, Hkv, D]), or rotated at insertion (bug)
    trace = StreamingTrace()
    out = np.zeros((B, H, N, v.shape[3]))
    for t in range(N):
        evicted = []
        while len(ids) + 1 > cap:  # evict before appending: the oldest non-sink entry
            slot = min(sinks, len(ids) - 1) if keep_sinks else 0
            evicted.append(ids.pop(slot))
            stored.pop(slot)
        kt = k[:, :, t:t + 1]
        if rotate_at_insert:
            kt = rope(kt, np.array([len(ids)]), base=base, layout=layout)
        ids.append(t)
        stored.append(kt[:, :, 0])
        idx = np.array(ids)
        pos = np.arange(len(ids)) if positions == "cache" else idx.copy()
        kc = np.stack(stored, axis=2)
        if not rotate_at_insert:
            kc = rope(kc, pos, base=base, layout=layout)
        qt = rope(q[:, :, t:t + 1], np.array([pos[-1] + query_offset]), base=base, layout=layout)
        out[:, :, t:t + 1] = softmax_attention(qt, kc, v[:, :, idx], scale=scale)
        trace.ids.append(idx)
        trace.evicted.append(evicted)
        trace.positions.append(pos)
    return out, trace


def streaming_decode(q: Any, k: Any, v: Any, *, sinks: int, recent: int, positions: str = "cache",
                     base: float = 10000.0, layout: str = "half", scale: float | None = None,
                     return_trace: bool = False) -> Any:
    """Decode N tokens one at a time through a StreamingLLM rolling cache of ``sinks + recent`` entries.

    q [B, H, N, D], k [B, Hkv, N, D] (both *pre*-RoPE), v [B, Hkv, N, Dv] -> o [B, H, N, Dv] with
    ``o_t = softmax(scale R(p_q) q_t . R(p_i) k_i) v_i`` over the cached ids i (``streaming_retained_ids(t)``),
    positions ``p`` as the module docstring says (``"cache"``: 0..|cache|-1, query |cache|-1; ``"original"``:
    the stream positions).  ``scale`` defaults to 1/sqrt(D).  With ``return_trace=True`` also returns a
    :class:`StreamingTrace` (ids, evictions and positions per step).  Source: Xiao et al. 2023, section 3.2.
    """
    func = "streaming_decode"
    q, k, v = _inputs(func, q, k, v)
    _check_budget(func, sinks, recent)
    require(positions in STREAMING_POSITIONS, func, "positions", f"one of {STREAMING_POSITIONS}", repr(positions))
    o, trace = _rolling(q, k, v, sinks=int(sinks), recent=int(recent), positions=positions, base=base,
                        layout=layout, scale=scale)
    return (o, trace) if return_trace else o


def streaming_decode_from_inputs(x: Any, w_q: Any, w_k: Any, w_v: Any, *, sinks: int, recent: int,
                                 positions: str = "cache", base: float = 10000.0, layout: str = "half",
                                 scale: float | None = None) -> np.ndarray:
    """O(1)-memory StreamingLLM decoding: the cache stores the layer *inputs* x_i, never K/V; at each step the keys
    and values of the retained tokens are recomputed (``k_i = x_i W_k``, ``v_i = x_i W_v``) and consumed one at a
    time by the online-softmax state ``(m, l, acc)`` (Su kexue.fm/archives/10017: per step only (y, z) is kept).

    x [B, N, d_model], w_q [H, d_model, D], w_k [Hkv, d_model, D], w_v [Hkv, d_model, Dv] -> o [B, H, N, Dv],
    equal in exact arithmetic to ``streaming_decode(x W_q, x W_k, x W_v)``.  Source: Su kexue.fm/archives/10017;
    Xiao et al. 2023; Milakov & Gimelshein 2018 (online softmax).
    """
    func = "streaming_decode_from_inputs"
    x = as_float64(x, func, "x", ndim=3)
    w_q = as_float64(w_q, func, "w_q", ndim=3)
    w_k = as_float64(w_k, func, "w_k", ndim=3)
    w_v = as_float64(w_v, func, "w_v", ndim=3)
    B, N, dm = x.shape
    H, D = w_q.shape[0], w_q.shape[2]
    require(w_q.shape[1] == dm and D % 2 == 0, func, "w_q", f"of shape [H, d_model={dm}, D even]", w_q.shape)
    require(w_k.shape[1:] == (dm, D) and H % w_k.shape[0] == 0, func, "w_k",
            f"of shape [Hkv dividing {H}, {dm}, {D}]", w_k.shape)
    require(w_v.shape[:2] == (w_k.shape[0], dm), func, "w_v", f"of shape [{w_k.shape[0]}, {dm}, Dv]", w_v.shape)
    _check_budget(func, sinks, recent)
    require(positions in STREAMING_POSITIONS, func, "positions", f"one of {STREAMING_POSITIONS}", repr(positions))
    group = H // w_k.shape[0]
    sc = D ** -0.5 if scale is None else float(scale)
    out = np.zeros((B, H, N, w_v.shape[2]))
    for t in range(N):
        ids = streaming_retained_ids(t, sinks, recent)
        pos = np.arange(len(ids)) if positions == "cache" else ids
        qt = rope(np.einsum("bm,hmd->bhd", x[:, t], w_q)[:, :, None], np.array([pos[-1]]), base=base,
                  layout=layout)[:, :, 0]
        m = np.full((B, H), -np.inf)
        l = np.zeros((B, H))
        acc = np.zeros((B, H, w_v.shape[2]))
        for i, p in zip(ids, pos, strict=True):  # one retained token at a time: O(1) state
            ki = rope(np.einsum("bm,hmd->bhd", x[:, i], w_k)[:, :, None], np.array([p]), base=base,
                      layout=layout)[:, :, 0]
            vi = np.einsum("bm,hmd->bhd", x[:, i], w_v)
            s = sc * np.sum(qt * np.repeat(ki, group, axis=1), axis=-1)
            m_new = np.maximum(m, s)
            c = np.exp(m - m_new)
            e = np.exp(s - m_new)
            l = c * l + e
            acc = c[..., None] * acc + e[..., None] * np.repeat(vi, group, axis=1)
            m = m_new
        out[:, :, t] = acc / l[..., None]
    return out


def softmax_with_sink(x: Any, sink: Any = 0.0, axis: int = -1) -> np.ndarray:
    """Off-by-one softmax with a sink logit z: ``p_i = exp(x_i) / (exp(z) + sum_j exp(x_j))`` along ``axis``.

    ``z`` (scalar or an array broadcastable to x without ``axis``; ``-inf`` gives the plain softmax) is an extra
    logit whose value is 0, so ``sum p = 1 - exp(z - lse([x, z])) < 1``.  ``-inf`` entries of x are masked.
    Computed with ``m = max(max x, z)`` subtracted.  Source: E. Miller 2023 ("Attention is off by one", z = 0);
    gpt-oss / FlashMLA ``attn_sink`` (learnable z per head).
    """
    func = "softmax_with_sink"
    a = as_float64(x, func, "x")
    require(a.ndim >= 1 and -a.ndim <= axis < a.ndim, func, "axis", f"in [-{a.ndim}, {a.ndim})", axis)
    require(not np.any(np.isnan(a)) and not np.any(a == np.inf), func, "x", "free of NaN and +inf", "a non-finite")
    z = np.expand_dims(np.asarray(sink, dtype=np.float64), axis) if np.ndim(sink) else np.float64(sink)
    require(not np.any(np.isnan(z)) and not np.any(z == np.inf), func, "sink", "free of NaN and +inf", sink)
    m = np.maximum(np.max(a, axis=axis, keepdims=True), z)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(a - m)
    den = np.sum(e, axis=axis, keepdims=True) + np.exp(z - m)
    return np.where(den > 0, e / np.where(den > 0, den, 1.0), 0.0)


def sink_softmax_attention(q: Any, k: Any, v: Any, *, sink: Any, scale: float | None = None, causal: bool = False,
                           window: int | None = None, sinks: int = 0, return_lse: bool = False) -> Any:
    """Softmax attention with a learnable sink logit per query head (off-by-one attention).

    q [B, H, T, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv], sink [H] (or a scalar) -> o [B, H, T, Dv],
    ``o_i = sum_j exp(s_ij) v_j / (exp(z_h) + sum_j exp(s_ij))`` with s the masked logits of
    :func:`veriformer.reference.attention_logits`.  ``return_lse=True`` also returns the log-sum-exp *of the keys
    only* [B, H, T] (FlashMLA's convention, so ``o = o_plain / (1 + exp(z - lse))``).  Source: E. Miller 2023;
    deepseek-ai/FlashMLA tests/ref.py (``attn_sink``).
    """
    func = "sink_softmax_attention"
    qa = as_float64(q, func, "q", ndim=4)
    H = qa.shape[1]
    z = np.asarray(sink, dtype=np.float64)
    require(z.ndim == 0 or z.shape == (H,), func, "sink", f"a scalar or of shape [H] = ({H},)", z.shape)
    logits = attention_logits(q, k, scale=scale, causal=causal, window=window, sinks=sinks)
    va = as_float64(v, func, "v", ndim=4)
    zz = np.broadcast_to(z, (H,))[None, :, None]
    p = softmax_with_sink(logits, zz, axis=-1)
    o = p @ np.repeat(va, H // va.shape[1], axis=1)
    if not return_lse:
        return o
    m = np.max(logits, axis=-1, keepdims=True)
    fin = np.isfinite(m)
    lse = np.where(fin, np.where(fin, m, 0) + np.log(np.sum(np.exp(logits - np.where(fin, m, 0)), -1,
                                                            keepdims=True)), -np.inf)
    return o, lse[..., 0]
