"""Laws of StreamingLLM rolling-cache decoding and of the off-by-one (learnable sink) softmax."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.claims import Agreement, Bound
from veriformer.properties.streaming.strategies import SinkAttentionCase, StreamCase, sink_cases, stream_cases
from veriformer.registry import law

SRC = "Xiao et al. 2023 (StreamingLLM, arXiv 2309.17453, section 3.2); mit-han-lab/streaming-llm kv_cache.py"
SINK_SRC = ("E. Miller 2023, evanmiller.org/attention-is-off-by-one.html; deepseek-ai/FlashMLA tests/ref.py "
            "(attn_sink); OpenAI gpt-oss model card (learned attention sinks)")
# the difference between re-assigned and original positions at the last step, over 1500 random evicting streams of
# stream_cases(evicts=True, min_sinks=1, amps=(1.0, 0.3)): smallest 1.3e-5, median 0.073.  At amp 3 (logits ~ 50,
# one-hot softmax on a recent key, the sinks weigh nothing) it fell to 7.8e-12, so the law draws amp <= 1.  The claim
# is stated two orders below the smallest measured figure.
REASSIGNED_MIN = 1e-7


def _kw(case: StreamCase) -> dict[str, Any]:
    return {"sinks": case.sinks, "recent": case.recent, "base": case.base, "layout": case.layout}


def _terms(case: StreamCase) -> float:
    """Rounding budget: RoPE angles up to N (error ~ u N per angle), D-term dot products at logit size amp^2 D,
    softmax and the weighted sum of at most sinks + recent values."""
    return 8.0 * (case.D + 4 * case.N + case.sinks + case.recent) * max(1.0, case.amp**2 * case.D)


def _rot(ref: Any, x: np.ndarray, pos: np.ndarray, case: StreamCase) -> np.ndarray:
    return ref.rope(x, pos, base=case.base, layout=case.layout)


@law("streaming.recompute_on_retained", family="streaming", source=SRC + "; Su kexue.fm/archives/10017")
def recompute_on_retained(ref: Any, case: StreamCase = stream_cases()) -> list[Agreement]:
    """Rolling-cache decoding of token t equals full causal attention recomputed on the retained subsequence
    c = streaming_retained_ids(t) with contiguous positions 0..|c|-1 (its last row): keys cached before RoPE and
    re-rotated by their cache slot at every step."""
    a = case.arrays()
    o = ref.streaming_decode(a["q"], a["k"], a["v"], **_kw(case))
    rows = []
    for t in range(case.N):
        c = ref.streaming_retained_ids(t, case.sinks, case.recent)
        pos = np.arange(len(c))
        full = ref.softmax_attention(_rot(ref, a["q"][:, :, c], pos, case), _rot(ref, a["k"][:, :, c], pos, case),
                                     a["v"][:, :, c], causal=True)
        rows.append(full[:, :, -1])
    return [Agreement(o, np.stack(rows, axis=2), "rolling cache == recomputation on the retained tokens",
                      terms=_terms(case))]


@law("streaming.retained_ids", family="streaming", source=SRC)
def retained_ids(ref: Any, case: StreamCase = stream_cases(max_N=24)) -> list[Agreement]:
    """The cache holds exactly [0..s-1] + the last r ids (all of 0..t while t + 1 <= s + r), never more than
    s + r entries, in stream order; the evicted id at each step is the oldest non-sink one (t - r once the cache
    is full), each evicted once; cache positions are 0..|cache|-1."""
    a = case.arrays()
    _, trace = ref.streaming_decode(a["q"], a["k"], a["v"], return_trace=True, **_kw(case))
    s, r = case.sinks, case.recent
    claims = []
    for t in range(case.N):
        want = list(range(t + 1)) if t + 1 <= s + r else list(range(s)) + list(range(t - r + 1, t + 1))
        got = [int(i) for i in trace.ids[t]]
        ev_want = [t - r] if t + 1 > s + r else []
        claims += [got == want, [int(i) for i in trace.evicted[t]] == ev_want,
                   [int(p) for p in trace.positions[t]] == list(range(len(got))),
                   list(ref.streaming_retained_ids(t, s, r)) == want]
    ok = np.array(claims, dtype=float)
    return [Agreement(ok, np.ones_like(ok), "ids, evictions, cache positions and closed form as StreamingLLM",
                      atol=0.0, tolerance="law.defined")]


@law("streaming.no_eviction_is_full_causal", family="streaming", source=SRC)
def no_eviction(ref: Any, case: StreamCase = stream_cases(evicts=False)) -> Agreement:
    """A cache at least as long as the stream evicts nothing: decoding (either position mode) equals full causal
    attention with RoPE at positions 0..N-1."""
    a = case.arrays()
    pos = np.arange(case.N)
    full = ref.softmax_attention(_rot(ref, a["q"], pos, case), _rot(ref, a["k"], pos, case), a["v"], causal=True)
    o = ref.streaming_decode(a["q"], a["k"], a["v"], **_kw(case))
    return Agreement(o, full, "cache >= stream: rolling == causal attention", terms=_terms(case))


@law("streaming.original_positions_equal_window_sinks", family="streaming",
     source=SRC + "; veriformer.reference.softmax_attention (window + sinks)")
def original_positions(ref: Any, case: StreamCase = stream_cases()) -> Agreement:
    """Without position re-assignment (keys keep their stream positions) the rolling cache equals
    softmax_attention(R q, R k, v, causal=True, window=recent, sinks=sinks) on the full stream."""
    a = case.arrays()
    pos = np.arange(case.N)
    full = ref.softmax_attention(_rot(ref, a["q"], pos, case), _rot(ref, a["k"], pos, case), a["v"], causal=True,
                                 window=case.recent, sinks=case.sinks)
    o = ref.streaming_decode(a["q"], a["k"], a["v"], positions="original", **_kw(case))
    return Agreement(o, full, "original positions: rolling == window + sinks attention", terms=_terms(case))


@law("streaming.reassigned_positions_differ", family="streaming", source=SRC + " (positions within the cache)")
def reassigned_differ(ref: Any,
                      case: StreamCase = stream_cases(evicts=True, min_sinks=1, amps=(1.0, 0.3))) -> list[Any]:
    """Once a token was evicted (and s >= 1) re-assigned cache positions change the output: the recent keys keep
    their relative distances to the query, but the sinks move closer (distance s + r - 1 - j instead of t - j).
    Measured: the smallest max|o_cache - o_original| at the last step over 1500 random evicting streams (amp 0.3
    and 1) is 1.3e-5 (median 0.073); the law claims >= 1e-7; before the first eviction the two agree to rounding.
    With logits ~ 50 (amp 3) the softmax is one-hot on a recent key, the sinks weigh nothing and the difference
    falls to ~1e-11: the law draws amp <= 1."""
    a = case.arrays()
    o_c = ref.streaming_decode(a["q"], a["k"], a["v"], **_kw(case))
    o_o = ref.streaming_decode(a["q"], a["k"], a["v"], positions="original", **_kw(case))
    first = case.sinks + case.recent  # the first step with an eviction
    diff = float(np.abs(o_c[:, :, -1] - o_o[:, :, -1]).max())
    return [Bound(REASSIGNED_MIN, diff, f"max|o_cache - o_original| at the last step = {diff:.3g} >= "
                                        f"{REASSIGNED_MIN:g}"),
            Agreement(o_c[:, :, :first], o_o[:, :, :first], "no eviction yet: the position modes agree",
                      terms=_terms(case))]


@law("streaming.sink_softmax_is_extra_zero_value_key", family="streaming", source=SINK_SRC)
def sink_softmax(ref: Any, case: SinkAttentionCase = sink_cases()) -> list[Agreement]:
    """Off-by-one attention with a sink logit z_h equals softmax attention over the keys plus one extra key of
    logit z_h and value 0 (an extra zero key with additive mask z_h), and equals FlashMLA's rescaling
    o / (1 + exp(z - lse)); its weights are softmax([x, z]) without the last entry (sum < 1)."""
    a = case.arrays()
    q, k, v, z = a["q"], a["k"], a["v"], a["sink"]
    B, H, T, S = case.B, case.H, case.T, case.S
    o = ref.sink_softmax_attention(q, k, v, sink=z, causal=case.causal)
    zero = np.zeros((B, case.Hkv, 1, case.D))
    vis = ref.visibility_mask(T, S, causal=case.causal)
    add = np.concatenate([np.where(vis, 0.0, -np.inf)[None, None].repeat(H, 1).repeat(B, 0),
                          np.broadcast_to(z[None, :, None, None], (B, H, T, 1))], axis=-1)
    o_key = ref.softmax_attention(q, np.concatenate([k, zero], 2), np.concatenate([v, zero], 2), mask=add)
    o0, l0 = ref.softmax_attention(q, k, v, causal=case.causal, return_lse=True)
    with np.errstate(over="ignore"):
        o_fm = o0 / (1.0 + np.exp(z[None, :, None] - l0))[..., None]
    x = ref.attention_logits(q, k, causal=case.causal)
    full = ref.softmax(np.concatenate([x, np.broadcast_to(z[None, :, None, None], (B, H, T, 1))], -1))
    L = float(np.abs(x[np.isfinite(x)]).max(initial=0.0)) + float(np.abs(z).max())
    t = 8 * (S + case.D + L)
    return [Agreement(o, o_key, "sink attention == extra key (logit z, value 0)", terms=t),
            Agreement(o, o_fm, "sink attention == o / (1 + exp(z - lse))", terms=t),
            Agreement(ref.softmax_with_sink(x, z[None, :, None]), full[..., :-1], "softmax_1 == softmax([x, z])[:-1]",
                      terms=t)]


@law("streaming.recompute_kv_equals_cache", family="streaming", source="Su kexue.fm/archives/10017; " + SRC)
def recompute_kv(ref: Any, case: StreamCase = stream_cases(max_N=10)) -> Agreement:
    """O(1)-memory decoding (cache the layer inputs x, recompute k = x W_k, v = x W_v of the retained tokens at each
    step, consume them one at a time with the online-softmax state) equals cached decoding of x W_q, x W_k, x W_v."""
    a = case.inputs()
    o = ref.streaming_decode_from_inputs(a["x"], a["w_q"], a["w_k"], a["w_v"], **_kw(case))
    proj = {n: np.einsum("bnm,hmd->bhnd", a["x"], a[f"w_{n}"]) for n in "qkv"}
    o_c = ref.streaming_decode(proj["q"], proj["k"], proj["v"], **_kw(case))
    return Agreement(o, o_c, "recomputed K/V == cached K/V", terms=_terms(case) + 8 * case.d_model)
