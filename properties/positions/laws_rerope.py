"""Laws of ReRoPE and Leaky ReRoPE (Su kexue.fm/archives/9708, 9728; ``bojone/rerope``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.positions.strategies import ReropeCase, rerope_cases
from veriformer.registry import law

SRC = "Su kexue.fm/archives/9708; bojone/rerope rerope_patch.py, leaky_rerope_patch.py"


def _terms(case: ReropeCase) -> float:
    """Rounding budget of a score: D products plus angles up to ~S (theta_0 = 1) at the |q||k| scale."""
    return 8 * case.D + 8 * (case.S + case.window) + 16


def _scale(a: dict[str, np.ndarray]) -> float:
    return float(np.linalg.norm(a["q"], axis=-1).max() * np.linalg.norm(a["k"], axis=-1).max())


def _kw(case: ReropeCase) -> dict[str, Any]:
    return {"leak": case.leak, "base": case.base, "layout": case.layout}


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, 0.0)


@law("positions.rerope_two_pass_equals_direct", family="positions", source=SRC)
def two_pass(ref: Any, case: ReropeCase = rerope_cases()) -> list[Agreement]:
    """The two-pass prefill (RoPE scores and rectified scores merged by ``|i - j| < w``) equals the direct
    per-pair definition ``q_i^T R_{-P_ij} k_j`` on the causal triangle, for ReRoPE, Leaky and inverse Leaky; the
    masks agree (-inf above the diagonal)."""
    a = case.arrays()
    d = ref.rerope_scores(a["q"], a["k"], case.window, **_kw(case))
    t = ref.rerope_scores_two_pass(a["q"], a["k"], case.window, **_kw(case))
    return [Agreement(_finite(t), _finite(d), "two-pass == direct", terms=_terms(case), scale=_scale(a)),
            Agreement(np.isinf(t).astype(float), np.isinf(d).astype(float), "same causal mask", atol=0.0,
                      tolerance="law.defined")]


@law("positions.rerope_decode_equals_last_row", family="positions", source=SRC)
def decode(ref: Any, case: ReropeCase = rerope_cases(leaks=(math.inf, 1.0, 2.0, 16.0, 0.5, 3.5))) -> list[Agreement]:
    """The decode step (query unrotated, cached keys rotated by ``-P_ij``) equals the last row of the direct
    scores; so does the repository's table form (``table[min(r, w)]``; Leaky: ``cat(table[:w],
    table2[w + w(k-1):])``, table2 at positions t/k) for integer k >= 1."""
    a = case.arrays()
    q = a["q"][..., -1:, :]
    row = ref.rerope_scores(q, a["k"], case.window, **_kw(case))
    dec = ref.rerope_decode_scores(q, a["k"], case.window, **_kw(case))
    out = [Agreement(dec, row, "decode == last row", terms=_terms(case), scale=_scale(a))]
    if case.leak == math.inf or (case.leak >= 1 and float(case.leak).is_integer()):
        tab = ref.rerope_decode_scores_table(q, a["k"], case.window, **_kw(case))
        out.append(Agreement(tab, row, "repository table decode == last row", terms=_terms(case) * max(case.leak, 1)
                             if math.isfinite(case.leak) else _terms(case), scale=_scale(a)))
    return out


@law("positions.rerope_seam", family="positions", source=SRC)
def seam(ref: Any, w: int = st.integers(1, 5000), leak: float = st.sampled_from((math.inf, 2.0, 16.0, 0.25)),
         seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """At ``i - j = w`` both branches give the relative position w (continuity at the seam), one step inside
    the window gives w - 1, one step outside w + 1/k; the score there equals plain RoPE's at relative w."""
    P = ref.rerope_relative_positions(np.array([w - 1, w, w + 1]), 0, w, leak)
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((1, 8)), rng.standard_normal((w + 1, 8))
    s = ref.rerope_scores(q, k, w, leak=leak, q_positions=np.array([w]))[0, 0]
    s0 = (ref.rope(q, np.array([w])) @ ref.rope(k[:1], np.array([0])).T)[0, 0]
    step = 0.0 if leak == math.inf else 1.0 / leak
    return [Agreement(P, [w - 1, w, w + step], "P(w-1), P(w), P(w+1)", terms=4, scale=float(w + 1)),
            Agreement(s, s0, "score at the seam == RoPE score at relative w", terms=64 + 16 * w,
                      scale=float(np.linalg.norm(q) * np.linalg.norm(k[0])))]


@law("positions.rerope_limits", family="positions", source=SRC + "; Chen et al. 2023 (PI)")
def limits(ref: Any, case: ReropeCase = rerope_cases(leaks=(math.inf,))) -> list[Agreement]:
    """Leak k = 1 is plain RoPE; a window covering the sequence is plain RoPE; window 0 with leak k is PI by k
    (RoPE with linear scaling k); leak 1e12 is ReRoPE to within ``S / 1e12`` rad."""
    a = case.arrays()
    q, k = a["q"], a["k"]
    T, S = case.T, case.S
    lay = {"base": case.base, "layout": case.layout}
    causal = np.arange(S)[None, :] > np.arange(S - T, S)[:, None]

    def plain(scaling: Any = None) -> np.ndarray:
        s = ref.rope(q, np.arange(S - T, S), scaling=scaling, **lay) @ np.swapaxes(
            ref.rope(k, np.arange(S), scaling=scaling, **lay), -1, -2)
        return np.where(causal, 0.0, s)

    t, sc = _terms(case), _scale(a)
    rr = ref.rerope_scores(q, k, case.window, **lay)
    return [Agreement(_finite(ref.rerope_scores(q, k, case.window, leak=1.0, **lay)), plain(), "k = 1 == RoPE",
                      terms=t, scale=sc),
            Agreement(_finite(ref.rerope_scores(q, k, S + case.window, **lay)), plain(), "w >= S == RoPE",
                      terms=t, scale=sc),
            Agreement(_finite(ref.rerope_scores(q, k, 0, leak=4.0, **lay)), plain({"type": "linear", "factor": 4}),
                      "w = 0, leak 4 == PI(4)", terms=t, scale=sc),
            Agreement(_finite(ref.rerope_scores(q, k, case.window, leak=1e12, **lay)), _finite(rr),
                      "leak 1e12 == ReRoPE", atol=(t * U + 4 * S * 1e-12) * sc)]


U = 2.0**-53


@law("positions.rerope_flat_beyond_window", family="positions", source=SRC)
def flat(ref: Any, case: ReropeCase = rerope_cases(leaks=(math.inf,))) -> Agreement:
    """With every q row equal and every k row equal, ReRoPE scores with ``i - j >= w`` are all equal (to the
    score at relative w): beyond the window the position no longer moves."""
    case = dataclasses.replace(case, window=min(case.window, max(case.S - 1, 0)))
    a = case.arrays()
    q = np.broadcast_to(a["q"][..., :1, :], a["q"].shape)
    k = np.broadcast_to(a["k"][..., :1, :], a["k"].shape)
    s = ref.rerope_scores(q, k, case.window, base=case.base, layout=case.layout)
    d = np.arange(case.S - case.T, case.S)[:, None] - np.arange(case.S)[None, :]
    far = d >= case.window
    ref_val = ref.rerope_scores(q[..., :1, :], k[..., :1, :], case.window, base=case.base, layout=case.layout,
                                q_positions=np.array([case.window]), k_positions=np.array([0]))
    want = np.where(far, ref_val, s)
    return Agreement(want, s, "a_ij == a(w) for i - j >= w", terms=_terms(case), scale=_scale(a))


@law("positions.leaky_decode_exponent", family="positions", source=SRC + "; Su kexue.fm/archives/9728 (inverse)")
def decode_exponent(ref: Any, r: int = st.integers(0, 10**5), w: int = st.integers(0, 4096),
                    leak: float = st.sampled_from((1.0, 2.0, 16.0, 1e6, 0.5, 0.125))) -> Agreement:
    """The rotation of a cached key at the decode step is ``-P_ij``: for k >= 1 that is the post's
    ``max(j - i, (j - i + w)/k - w)``; for inverse Leaky ReRoPE (k < 1) it is ``min(...)`` (the max form picks
    the wrong branch)."""
    P = float(ref.rerope_relative_positions(r, 0, w, leak))
    a, b = -r, (-r + w) / leak - w
    form = max(a, b) if leak >= 1 else min(a, b)
    return Agreement(-P, form, "-P == max/min form", terms=8, scale=float(r + w + 1))


@law("positions.rerope_attention_vjp", family="positions", source=SRC + " (differentiated)", kind="asymptotic")
def vjp(ref: Any, case: ReropeCase = rerope_cases(max_S=10)) -> Agreement:
    """The VJP of (Leaky) ReRoPE attention agrees with central finite differences along a random direction
    (``<dO, (f(x + h u) - f(x - h u)) / 2h> = <VJP(dO), u>``, h = 1e-5: truncation ~h^2, cancellation ~u/h)."""
    a = case.arrays()
    q, k, v = a["q"], a["k"], a["v"]
    rng = np.random.default_rng(case.seed + 7)
    g = rng.standard_normal((*q.shape[:-1], v.shape[-1]))
    uq, uk, uv = (rng.standard_normal(x.shape) for x in (q, k, v))
    kw = _kw(case)
    h = 1e-5

    def f(s: float) -> np.ndarray:
        return ref.rerope_attention(q + s * uq, k + s * uk, v + s * uv, case.window, **kw)

    fd = float(np.sum(g * (f(h) - f(-h)))) / (2 * h)
    dq, dk, dv = ref.rerope_attention_vjp(q, k, v, g, case.window, **kw)
    an = float(np.sum(dq * uq) + np.sum(dk * uk) + np.sum(dv * uv))
    size = float(np.abs(g).sum() * (np.abs(v).max() + 1) * (1 + np.abs(q).max() * np.abs(k).max()))
    return Agreement(an, fd, "<VJP(dO), u> == directional derivative", atol=1e-7 * size, tolerance="law.defined")
