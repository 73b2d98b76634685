"""Laws of softmax attention: every form agrees with the direct one, masking semantics, GQA, the VJP,
and the mpmath certificate of the float64 oracle (Su kexue.fm/archives/10017; Ainslie et al. 2023; Xiao et al. 2023)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.attention.strategies import ATTENTION_FEATURES, AttentionCase, attention_cases, logit_bound
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
SRC_ONLINE = "Su kexue.fm/archives/10017; Rabe & Staats 2021; Milakov & Gimelshein 2018; Dao 2023 (FlashAttention-2)"
SRC_GQA = "Ainslie et al. 2023 (GQA, arXiv 2305.13245); Su kexue.fm/archives/10091"
SMALL = {"max_T": 16, "max_S": 24, "head_dims": (1, 2, 3, 8, 16, 64)}


def _kwargs(case: AttentionCase, a: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"scale": case.scale_value, "causal": case.causal, "window": case.window, "sinks": case.sinks,
            "mask": a.get("mask")}


def _terms(case: AttentionCase, a: dict[str, np.ndarray]) -> float:
    """Rounding budget of two attention forms: S-term sums, D-term dot products, and exp arguments."""
    return case.S + case.D + 4 * logit_bound(case, a) + 8


@law("attention.online_equals_direct", family="attention", source=SRC_ONLINE)
def online_equals_direct(ref: Any, case: AttentionCase = attention_cases(**SMALL),
                         block: int = st.integers(1, 30)) -> list[Agreement]:
    """The online (blockwise) recurrence equals direct softmax attention, output and log-sum-exp, for
    every block size — 1, S, larger than S, and sizes that do not divide S."""
    a = case.arrays()
    o, lse = ref.softmax_attention(a["q"], a["k"], a["v"], return_lse=True, **_kwargs(case, a))
    o2, lse2 = ref.online_softmax_attention(a["q"], a["k"], a["v"], block_size=block, return_lse=True,
                                            **_kwargs(case, a))
    t = _terms(case, a)
    return [Agreement(o2, o, "online o == direct o", terms=t, scale=np.abs(a["v"]).max()),
            Agreement(lse2, lse, "online lse == direct lse", terms=t)]


@law("attention.rnn_equals_direct", family="attention", source=SRC_ONLINE + "; Rabe & Staats 2021")
def rnn_equals_direct(ref: Any, case: AttentionCase = attention_cases(**SMALL)) -> Agreement:
    """Attention as an RNN — per query, (y, z) += exp(s_ij)(v_j, 1) scanning keys newest first — equals
    the direct form."""
    a = case.arrays()
    o = ref.softmax_attention(a["q"], a["k"], a["v"], **_kwargs(case, a))
    return Agreement(ref.attention_as_rnn(a["q"], a["k"], a["v"], **_kwargs(case, a)), o,
                     "rnn o == direct o", terms=_terms(case, a), scale=np.abs(a["v"]).max())


@law("attention.causal_prefix", family="attention", source="Vaswani et al. 2017 (causal masking)")
def causal_prefix(ref: Any, case: AttentionCase = attention_cases(features={"causal", "gqa"}, **SMALL),
                  cut: float = st.floats(0.0, 1.0)) -> Agreement:
    """Causal self-attention (S = T) on a prefix of length p equals the first p rows of causal attention
    on the whole sequence: no query sees the future."""
    case = dataclasses.replace(case, S=case.T, causal=True)
    a = case.arrays()
    p = max(1, round(cut * case.T))
    full = ref.softmax_attention(a["q"], a["k"], a["v"], scale=case.scale_value, causal=True)
    pre = ref.softmax_attention(a["q"][:, :, :p], a["k"][:, :, :p], a["v"][:, :, :p],
                                scale=case.scale_value, causal=True)
    return Agreement(pre, full[:, :, :p], "prefix of causal == causal of prefix", terms=_terms(case, a),
                     scale=np.abs(a["v"]).max())


@law("attention.gqa_equals_repeated_mha", family="attention", source=SRC_GQA)
def gqa_equals_repeated_mha(ref: Any, case: AttentionCase = attention_cases(
        features={"causal", "gqa", "window", "sinks"}, **SMALL)) -> Agreement:
    """GQA/MQA equals MHA with each kv head repeated H/Hkv times consecutively (head h reads kv head
    h // (H/Hkv), i.e. repeat_interleave)."""
    case = dataclasses.replace(case, H=case.H * 2 if case.H == case.Hkv else case.H, Hkv=case.Hkv)
    a = case.arrays()
    g = case.H // case.Hkv
    kw = _kwargs(case, a)
    lhs = ref.softmax_attention(a["q"], a["k"], a["v"], **kw)
    rhs = ref.softmax_attention(a["q"], np.repeat(a["k"], g, axis=1), np.repeat(a["v"], g, axis=1), **kw)
    return Agreement(lhs, rhs, "GQA == MHA(repeat_interleave kv)", terms=_terms(case, a),
                     scale=np.abs(a["v"]).max())


@law("attention.key_permutation_equivariance", family="attention",
     source="Vaswani et al. 2017; Lee et al. 2019 (Set Transformer: attention is permutation invariant)")
def key_permutation(ref: Any, case: AttentionCase = attention_cases(features={"gqa", "mask"}, **SMALL),
                    perm_seed: int = st.integers(0, 2**31)) -> Agreement:
    """Non-causal attention is invariant to permuting the keys, values and mask columns together."""
    a = case.arrays()
    perm = np.random.default_rng(perm_seed).permutation(case.S)
    kw = _kwargs(case, a)
    o = ref.softmax_attention(a["q"], a["k"], a["v"], **kw)
    kw["mask"] = None if a.get("mask") is None else a["mask"][..., perm]
    op = ref.softmax_attention(a["q"], a["k"][:, :, perm], a["v"][:, :, perm], **kw)
    return Agreement(op, o, "attention(permuted keys) == attention", terms=_terms(case, a),
                     scale=np.abs(a["v"]).max())


def total_mask(ref: Any, case: AttentionCase, a: dict[str, np.ndarray]) -> np.ndarray:
    """All of the case's masking as one additive mask [B, H, T, S] (-inf = invisible)."""
    vis = ref.visibility_mask(case.T, case.S, causal=case.causal, window=case.window, sinks=case.sinks)
    vis = np.broadcast_to(vis, (case.B, case.H, case.T, case.S))
    m = a.get("mask")
    add = np.zeros(vis.shape) if m is None else np.broadcast_to(m, vis.shape)
    if m is not None and m.dtype == bool:
        vis, add = vis & add, np.zeros(vis.shape)
    return np.where(vis, add, -np.inf)


@law("attention.split_kv_merge", family="attention", source=SRC_ONLINE + " (merging partial states)")
def split_kv_merge(ref: Any, case: AttentionCase = attention_cases(**SMALL),
                   cut: float = st.floats(0.0, 1.0)) -> list[Agreement]:
    """Attention over keys [0, c) and [c, S) separately, merged by their log-sum-exps, equals attention
    over all keys (output and lse), in either merge order (split-KV / ring attention)."""
    a = case.arrays()
    if case.S < 2:
        case = dataclasses.replace(case, S=2, T=min(case.T, 2), window=None, mask=None)
        a = case.arrays()
    c = min(max(1, round(cut * case.S)), case.S - 1)
    m = total_mask(ref, case, a)
    s = case.scale_value
    o, lse = ref.softmax_attention(a["q"], a["k"], a["v"], scale=s, mask=m, return_lse=True)
    o1, l1 = ref.softmax_attention(a["q"], a["k"][:, :, :c], a["v"][:, :, :c], scale=s, mask=m[..., :c],
                                   return_lse=True)
    o2, l2 = ref.softmax_attention(a["q"], a["k"][:, :, c:], a["v"][:, :, c:], scale=s, mask=m[..., c:],
                                   return_lse=True)
    om, lm = ref.merge_attention_states(o1, l1, o2, l2)
    om2, lm2 = ref.merge_attention_states(o2, l2, o1, l1)
    t = _terms(case, a)
    vs = np.abs(a["v"]).max()
    return [Agreement(om, o, "merged o == full o", terms=t, scale=vs),
            Agreement(lm, lse, "merged lse == full lse", terms=t),
            Agreement(om2, om, "merge is commutative (o)", terms=4, scale=vs),
            Agreement(lm2, lm, "merge is commutative (lse)", terms=4)]


@law("attention.window_sinks_as_mask", family="attention",
     source="Xiao et al. 2023 (StreamingLLM, arXiv 2309.17453); Beltagy et al. 2020 (sliding window)")
def window_sinks_as_mask(ref: Any, case: AttentionCase = attention_cases(
        features={"causal", "window", "sinks", "gqa"}, **SMALL)) -> Agreement:
    """Causal / sliding-window / sink attention equals attention under the boolean mask written from the
    definition: query i at position p = i + S - T sees key j iff j <= p and (p - j < w or j < sinks)."""
    a = case.arrays()
    p = np.arange(case.T)[:, None] + case.S - case.T
    j = np.arange(case.S)[None, :]
    vis = np.ones((case.T, case.S), bool)
    if case.causal or case.window is not None:
        vis &= j <= p
    if case.window is not None:
        vis &= (p - j < case.window) | (j < case.sinks)
    o = ref.softmax_attention(a["q"], a["k"], a["v"], **_kwargs(case, a))
    om = ref.softmax_attention(a["q"], a["k"], a["v"], scale=case.scale_value, mask=vis[None, None])
    return Agreement(o, om, "features == explicit mask", terms=_terms(case, a), scale=np.abs(a["v"]).max())


@law("attention.fully_masked_rows", family="attention", kind="defined",
     source="FlashAttention convention for a fully masked row (o = 0, lse = -inf)")
def fully_masked_rows(ref: Any, case: AttentionCase = attention_cases(features={"mask", "gqa"}, **SMALL),
                      additive: bool = st.booleans()) -> list[Agreement]:
    """A query with no visible key outputs exactly 0 with log-sum-exp exactly -inf, for boolean and
    -inf additive masks, in the direct, online and RNN forms; other rows are unaffected by the convention."""
    case = dataclasses.replace(case, mask="additive" if additive else "bool")
    a = case.arrays()
    kw = _kwargs(case, a)
    o, lse = ref.softmax_attention(a["q"], a["k"], a["v"], return_lse=True, **kw)
    o2 = ref.online_softmax_attention(a["q"], a["k"], a["v"], block_size=3, **kw)
    o3 = ref.attention_as_rnn(a["q"], a["k"], a["v"], **kw)
    m = np.broadcast_to(a["mask"], (case.B, case.H, case.T, case.S))
    dead = ~np.any(m if m.dtype == bool else np.isfinite(m), axis=-1)
    return [Agreement(o[dead], np.zeros_like(o[dead]), "o == 0 on empty rows", atol=0.0, tolerance="law.defined"),
            Agreement(lse[dead], np.full(lse[dead].shape, -np.inf), "lse == -inf on empty rows", atol=0.0,
                      tolerance="law.defined"),
            Agreement(o2[dead], np.zeros_like(o2[dead]), "online o == 0 on empty rows", atol=0.0,
                      tolerance="law.defined"),
            Agreement(o3[dead], np.zeros_like(o3[dead]), "rnn o == 0 on empty rows", atol=0.0,
                      tolerance="law.defined")]


TINY = {"max_T": 4, "max_S": 5, "head_dims": (1, 2, 3, 4), "max_batch_heads": 2}


@law("attention.mpmath_certificate", family="attention", kind="certificate", max_examples=15,
     source="Higham 2002 ch. 3 (dot products, gamma_n); mpmath at 40 digits")
def mpmath_certificate(ref: Any, case: AttentionCase = attention_cases(**TINY)) -> list[Agreement]:
    """The float64 oracle agrees with the same code run in mpmath (40 digits) within
    4 u max|v| ((D + 2) L + S + D + 4) for the output and 4 u ((D + 2) L + S + 4) for the lse, where
    L bounds |logits|: a logit error delta <= (D + 2) u L moves each weight by a relative delta, the
    S-term normaliser adds S u, the D-term products D u."""
    a = case.arrays()
    kw = _kwargs(case, a)
    o, lse = ref.softmax_attention(a["q"], a["k"], a["v"], return_lse=True, **kw)
    om, lsem = ref.softmax_attention(a["q"], a["k"], a["v"], return_lse=True, backend=MP(40), **kw)
    L = logit_bound(case, a)
    bound_o = 4 * U * np.abs(a["v"]).max() * ((case.D + 2) * L + case.S + case.Dv + 4)
    bound_l = 4 * U * ((case.D + 2) * L + case.S + 4 + L)
    return [Agreement(o, om, "float64 o == mpmath o", atol=bound_o, tolerance="law.certificate"),
            Agreement(lse, lsem, "float64 lse == mpmath lse", atol=bound_l, tolerance="law.certificate")]


@law("attention.vjp_directional_derivative", family="attention", kind="certificate", max_examples=12,
     source="Dao et al. 2022 (FlashAttention backward); central differences in mpmath at 50 digits")
def vjp_directional_derivative(ref: Any, case: AttentionCase = attention_cases(
        features=ATTENTION_FEATURES, **TINY), dir_seed: int = st.integers(0, 2**31)) -> Agreement:
    """<dO, J dx> = <J^T dO, dx>: the float64 VJP oracle, dotted with a random direction dx in (q, k, v),
    equals the directional derivative of attention computed by central differences in mpmath
    (h = 1e-15, truncation ~h^2, so exact to far below float64 rounding)."""
    a = case.arrays()
    kw = _kwargs(case, a)
    rng = np.random.default_rng(dir_seed)
    g = rng.standard_normal((case.B, case.H, case.T, case.Dv))
    dx = {n: rng.standard_normal(a[n].shape) for n in ("q", "k", "v")}
    dq, dk, dv = ref.softmax_attention_vjp(a["q"], a["k"], a["v"], g, **kw)
    terms = dq * dx["q"], dk * dx["k"], dv * dx["v"]
    lhs = sum(float(t.sum()) for t in terms)
    rhs = _central_difference(ref, a, dx, g, kw, h=1e-15)
    scale = sum(float(np.abs(t).sum()) for t in terms)
    return Agreement(lhs, rhs, "<vjp(g), dx> == d/dh <g, f(x + h dx)>", terms=_terms(case, a) + 16,
                     scale=scale)


def _central_difference(ref: Any, a: dict[str, np.ndarray], dx: dict[str, np.ndarray], g: np.ndarray,
                        kw: dict[str, Any], h: float) -> float:
    """<g, (f(x + h dx) - f(x - h dx)) / 2h> entirely in mpmath at 50 digits (unrounded inputs/outputs)."""
    import mpmath

    mp = MP(50, exact_output=True)
    with mp.context():
        hh = mpmath.mpf(h)
        outs = []
        for sign in (1, -1):
            xs = {n: mp.asarray(a[n]) + sign * hh * mp.asarray(dx[n]) for n in dx}
            outs.append(ref.softmax_attention(xs["q"], xs["k"], xs["v"], backend=mp, **kw))
        diff = (outs[0] - outs[1]) / (2 * hh)
        return float(mpmath.fsum((mp.asarray(g) * diff).reshape(-1)))
