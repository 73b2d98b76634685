"""Laws of linear attention with decay / gates (Qin et al. 2024; fla simple GLA): the quadratic,
recurrent and chunked forms agree for every chunk size, limits (no decay, lambda = 0), segment carry of
the state, normalisation, the analytic VJP and the mpmath certificate."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.linear_attention.strategies import LinearAttentionCase, linear_attention_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
FAMILY = "linear_attention"
SRC = ("Katharopoulos et al. 2020; Qin et al. 2024 (Lightning Attention-2, arXiv 2401.04658); "
       "fla-org/flash-linear-attention fla/ops/simple_gla/naive.py")


def phi_abs(ref: Any, x: np.ndarray, fmap: str) -> np.ndarray:
    """|phi(x)| in [B, H, T, K] layout."""
    return np.abs(np.moveaxis(ref.linear_attention_feature_map(x, fmap), 1, 2))


def magnitudes(ref: Any, case: LinearAttentionCase, a: dict[str, np.ndarray]) -> tuple[float, float]:
    """(output scale, state scale): the largest sum of |summands| of any output / state entry, with every
    decay bounded by 1 (``|scale| sum_s |phi q_t|.|phi k_s| |v_s| + |scale| |phi q_t| |S0|``); for the
    normalised variant the output is a convex combination of values, so max|v|."""
    pq, pk = phi_abs(ref, a["q"], case.feature_map), phi_abs(ref, a["k"], case.feature_map)
    av = np.abs(np.moveaxis(a["v"], 1, 2))
    s0 = np.abs(a["initial_state"]) if "initial_state" in a else np.zeros((1, 1, case.K, case.V))
    w = abs(case.scale_value) * pq @ np.swapaxes(pk, -1, -2)
    if case.causal:
        w = np.tril(w)
    out = float((w @ av + abs(case.scale_value) * pq @ s0).max())
    state = float((np.swapaxes(pk, -1, -2) @ av + s0).max())
    if case.normalize:
        out = float(np.abs(a["v"]).max())
    return out, state


def terms(case: LinearAttentionCase, chunk: int = 1) -> float:
    """Rounding budget: K-term dot products, T-term sums over tokens (in some order), the state's
    T sequential updates, and gate sums of size up to T * gate entering exp (relative error u |sum|)."""
    return case.K + 2 * case.T + chunk + (case.T * case.gate if case.gate else 0.0) + 16


def _kw(case: LinearAttentionCase, a: dict[str, np.ndarray], **over: Any) -> dict[str, Any]:
    return {**case.kwargs(a), **over}


@law("linear_attention.forms_agree", family=FAMILY, source=SRC)
def forms_agree(ref: Any, case: LinearAttentionCase = linear_attention_cases(),
                chunk: int = st.integers(1, 27)) -> list[Agreement]:
    """The recurrent form and the chunked form (any chunk size: 1, T, > T, not dividing T) equal the
    quadratic masked form, outputs and final states, for every feature map, gate, decay (lambda = 0 and
    1e-20 included), initial state, causal / non-causal and normalised / unnormalised case."""
    a = case.arrays()
    kw = _kw(case, a)
    o, S = ref.linear_attention(a["q"], a["k"], a["v"], **kw)
    o_r, S_r = ref.linear_attention_recurrent(a["q"], a["k"], a["v"], **kw)
    o_c, S_c = ref.linear_attention_chunked(a["q"], a["k"], a["v"], chunk_size=chunk, **kw)
    mo, ms = magnitudes(ref, case, a)
    t = terms(case, chunk)
    out = [Agreement(o_r, o, "recurrent o == quadratic o", terms=t, scale=mo),
           Agreement(o_c, o, f"chunked(C={chunk}) o == quadratic o", terms=t, scale=mo)]
    if case.output_final_state:
        out += [Agreement(S_r, S, "recurrent S_T == quadratic S_T", terms=t, scale=ms),
                Agreement(S_c, S, "chunked S_T == quadratic S_T", terms=t, scale=ms)]
    return out


@law("linear_attention.final_state_chunked_equals_recurrent", family=FAMILY, source=SRC)
def final_state(ref: Any, case: LinearAttentionCase = linear_attention_cases(normalize=False, final_state=True),
                chunk: int = st.integers(1, 9)) -> Agreement:
    """The final state of the chunked form equals the recurrent state after the last token, including a
    last chunk shorter than C (which must decay the carried state by lambda^b, not lambda^C)."""
    a = case.arrays()
    kw = _kw(case, a, output_final_state=True)
    _, S_r = ref.linear_attention_recurrent(a["q"], a["k"], a["v"], **kw)
    _, S_c = ref.linear_attention_chunked(a["q"], a["k"], a["v"], chunk_size=chunk, **kw)
    return Agreement(S_c, S_r, f"chunked(C={chunk}) S_T == recurrent S_T", terms=terms(case, chunk),
                     scale=magnitudes(ref, case, a)[1])


@law("linear_attention.zero_decay_is_plain_linear_attention", family=FAMILY,
     source="Katharopoulos et al. 2020 (eq. 6, causal masking); Qin et al. 2024 with lambda = 1")
def zero_decay(ref: Any, case: LinearAttentionCase = linear_attention_cases(decay=False, gate=False)
               ) -> list[Agreement]:
    """With log-gates g = 0 and decay lambda = 1 the oracle equals plain linear attention written from the
    textbook formula here: ``o = scale tril(phi(Q) phi(K)^T) V + scale phi(Q) S0`` (row-normalised by
    ``tril(phi(Q) phi(K)^T) 1`` when normalised; no tril when non-causal)."""
    a = case.arrays()
    B, T, H = case.B, case.T, case.H
    kw = _kw(case, a, g=np.zeros((B, T, H)) if case.causal else None,
             decay=np.ones(H) if case.causal else None)
    o, _ = ref.linear_attention(a["q"], a["k"], a["v"], **kw)
    o_plain, _ = ref.linear_attention(a["q"], a["k"], a["v"], **_kw(case, a))
    pq = np.moveaxis(ref.linear_attention_feature_map(a["q"], case.feature_map), 1, 2)
    pk = np.moveaxis(ref.linear_attention_feature_map(a["k"], case.feature_map), 1, 2)
    v = np.moveaxis(a["v"], 1, 2)
    w = pq @ np.swapaxes(pk, -1, -2)
    if case.causal:
        w = np.tril(w)
    if case.normalize:
        den = w.sum(-1, keepdims=True)
        want = np.where(den != 0, (w @ v) / np.where(den != 0, den, 1.0), 0.0)
    else:
        want = case.scale_value * (w @ v)
        if "initial_state" in a:
            want = want + case.scale_value * pq @ a["initial_state"]
    want = np.moveaxis(want, 1, 2)
    mo = magnitudes(ref, case, a)[0]
    return [Agreement(o, want, "g=0, lambda=1 == textbook linear attention", terms=terms(case), scale=mo),
            Agreement(o_plain, want, "no decay == textbook linear attention", terms=terms(case), scale=mo)]


@law("linear_attention.segment_carry", family=FAMILY, source=SRC + " (initial_state / output_final_state)")
def segment_carry(ref: Any, case: LinearAttentionCase = linear_attention_cases(noncausal=False, normalize=False),
                  cut: float = st.floats(0.0, 1.0), chunk: int = st.integers(1, 9)) -> list[Agreement]:
    """Running tokens [0, t) and then [t, T) starting from the carried final state equals running all T
    tokens at once (outputs and final state); the segments use the chunked form, the whole the quadratic."""
    a = case.arrays()
    if case.T < 2:
        return [Agreement(np.zeros(1), np.zeros(1), "T = 1: nothing to split")]
    c = min(max(1, round(cut * case.T)), case.T - 1)
    kw = _kw(case, a, output_final_state=True)
    o, S = ref.linear_attention(a["q"], a["k"], a["v"], **kw)

    def seg(sl: slice, init: Any) -> tuple[np.ndarray, np.ndarray]:
        kws = {**kw, "g": None if "g" not in a else a["g"][:, sl], "initial_state": init}
        return ref.linear_attention_chunked(a["q"][:, sl], a["k"][:, sl], a["v"][:, sl], chunk_size=chunk, **kws)

    o1, S1 = seg(slice(0, c), a.get("initial_state"))
    o2, S2 = seg(slice(c, case.T), S1)
    mo, ms = magnitudes(ref, case, a)
    t = terms(case, chunk)
    return [Agreement(np.concatenate([o1, o2], axis=1), o, f"segments [0,{c}) + [{c},T) o == whole o", terms=t,
                      scale=mo),
            Agreement(S2, S, "carried final state == whole final state", terms=t, scale=ms)]


@law("linear_attention.lambda_zero_keeps_current_token", family=FAMILY, kind="exact",
     source="derived here: lambda -> 0 in Qin et al. 2024 gives o_t = (q_t . k_t) v_t")
def lambda_zero(ref: Any, case: LinearAttentionCase = linear_attention_cases(noncausal=False, gate=False,
                                                                              decay=False),
                chunk: int = st.integers(1, 9)) -> list[Agreement]:
    """With decay lambda = 0 (0^0 = 1) every form gives ``o_t = scale (phi q_t . phi k_t) v_t`` (divided by
    ``scale phi q_t . phi k_t`` when normalised) and the final state ``phi(k_{T-1}) v_{T-1}^T``: the
    initial state and all earlier tokens are forgotten."""
    a = case.arrays()
    kw = _kw(case, a, decay=np.zeros(case.H), output_final_state=not case.normalize)
    pq = ref.linear_attention_feature_map(a["q"], case.feature_map)
    pk = ref.linear_attention_feature_map(a["k"], case.feature_map)
    dots = np.sum(pq * pk, axis=-1, keepdims=True)
    if case.normalize:
        want = np.where(dots != 0, a["v"], 0.0)
    else:
        want = case.scale_value * dots * a["v"]
    want_S = pk[:, -1, :, :, None] * a["v"][:, -1, :, None, :]
    mo, ms = magnitudes(ref, case, a)
    out = []
    for name, (o, S) in {"quadratic": ref.linear_attention(a["q"], a["k"], a["v"], **kw),
                         "recurrent": ref.linear_attention_recurrent(a["q"], a["k"], a["v"], **kw),
                         "chunked": ref.linear_attention_chunked(a["q"], a["k"], a["v"], chunk_size=chunk,
                                                                 **kw)}.items():
        out.append(Agreement(o, want, f"{name}: o_t == scale (q_t . k_t) v_t", terms=case.K + 8, scale=mo))
        if S is not None:
            out.append(Agreement(S, want_S, f"{name}: S_T == k_T v_T^T", terms=4, scale=ms))
    return out


@law("linear_attention.normalised_is_weighted_average", family=FAMILY,
     source="Katharopoulos et al. 2020 (eq. 5: normalised kernel attention with a positive feature map)")
def normalised_average(ref: Any, case: LinearAttentionCase = linear_attention_cases(initial_state=False),
                       const: float = st.floats(-3.0, 3.0, allow_subnormal=False)) -> list[Any]:
    """Normalised linear attention with a non-negative feature map is a convex combination of the values:
    a constant value row c is reproduced exactly (o_t = c wherever some weight is non-zero), and every
    output lies within [min v, max v] per channel."""
    case = dataclasses.replace(case, normalize=True, output_final_state=False, initial_state=False,
                               feature_map=case.feature_map if case.feature_map != "identity" else "elu1")
    a = case.arrays()
    kw = _kw(case, a)
    o, _ = ref.linear_attention(a["q"], a["k"], a["v"], **kw)
    vc = np.full_like(a["v"], const)
    oc, _ = ref.linear_attention(a["q"], a["k"], vc, **kw)
    live = oc != 0
    lo = a["v"].min(axis=1, keepdims=True) if not case.causal else np.minimum.accumulate(a["v"], axis=1)
    hi = a["v"].max(axis=1, keepdims=True) if not case.causal else np.maximum.accumulate(a["v"], axis=1)
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)  # rows with no live weight give 0
    slack = 4 * terms(case) * U * float(np.abs(a["v"]).max())
    return [Agreement(oc[live], vc[live], "constant values reproduced", terms=terms(case), scale=abs(const)),
            Bound(o, hi, "o <= running max v", slack=slack), Bound(lo, o, "running min v <= o", slack=slack)]


@law("linear_attention.lightning_alibi_block_form", family=FAMILY,
     source="Qin et al. 2024 (Lightning Attention-2); OpenNLPLab/lightning-attention; Press et al. 2022 (ALiBi slopes)")
def lightning_alibi(ref: Any, n: int = st.integers(1, 70), block: int = st.sampled_from((1, 3, 16, 32, 64)),
                    heads: int = st.sampled_from((1, 2, 8)), tiny: bool = st.booleans(),
                    seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """Lightning Attention-2 (no softmax, no normaliser, scale 1) with per-head decay lambda_h =
    exp(-slope_h), ALiBi slopes 2^(-8(h+1)/H) (or tiny lambda = 1e-20, where a literal Lambda^{-1}
    overflows): recurrent == quadratic == block form for any block size B, including B not dividing n."""
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((1, n, heads, 8)), rng.standard_normal((1, n, heads, 8))
    v = rng.standard_normal((1, n, heads, 4))
    lam = np.full(heads, 1e-20) if tiny else np.exp(-ref.alibi_slopes(heads))
    kw = {"decay": lam, "scale": 1.0, "output_final_state": True}
    o, S = ref.linear_attention(q, k, v, **kw)
    o_r, S_r = ref.linear_attention_recurrent(q, k, v, **kw)
    o_b, S_b = ref.linear_attention_chunked(q, k, v, chunk_size=block, **kw)
    scale = float(np.einsum("bthk,bshk->bhts", np.abs(q), np.abs(k)).max()) * n * float(np.abs(v).max())
    t = 8 + 2 * n + block + 16
    return [Agreement(o_r, o, "recurrent == quadratic", terms=t, scale=scale),
            Agreement(o_b, o, f"block form (B={block}) == quadratic", terms=t, scale=scale),
            Agreement(S_b, S_r, "block final state == recurrent final state", terms=t, scale=scale),
            Agreement(S, S_r, "quadratic final state == recurrent final state", terms=t, scale=scale)]


TINY = {"max_T": 4, "head_dims": (1, 2, 3)}


@law("linear_attention.mpmath_certificate", family=FAMILY, kind="certificate", max_examples=12,
     source="Higham 2002 ch. 3 (gamma_n bounds for dot products and sums); mpmath at 40 digits")
def mpmath_certificate(ref: Any, case: LinearAttentionCase = linear_attention_cases(**TINY),
                       chunk: int = st.integers(1, 4)) -> list[Agreement]:
    """Each float64 form (quadratic, recurrent, chunked) agrees with the same code in mpmath (40 digits)
    within 4 u (K + 2T + C + T gate + 16) times the sum of |summands| of each output / state entry."""
    a = case.arrays()
    kw = _kw(case, a)
    mo, ms = magnitudes(ref, case, a)
    t = terms(case, chunk)
    out = []
    for name, f, extra in (("quadratic", ref.linear_attention, {}),
                           ("recurrent", ref.linear_attention_recurrent, {}),
                           ("chunked", ref.linear_attention_chunked, {"chunk_size": chunk})):
        o, S = f(a["q"], a["k"], a["v"], **kw, **extra)
        om, Sm = f(a["q"], a["k"], a["v"], backend=MP(40), **kw, **extra)
        out.append(Agreement(o, om, f"{name}: float64 o == mpmath o", atol=4 * U * t * mo,
                             tolerance="law.certificate"))
        if S is not None:
            out.append(Agreement(S, Sm, f"{name}: float64 S == mpmath S", atol=4 * U * t * ms,
                                 tolerance="law.certificate"))
    return out


@law("linear_attention.vjp_directional_derivative", family=FAMILY, kind="certificate", max_examples=12,
     source="chain rule on the quadratic form; central differences in mpmath at 50 digits")
def vjp_directional_derivative(ref: Any, case: LinearAttentionCase = linear_attention_cases(
        noncausal=False, normalize=False, feature_maps=False, **TINY),
        dir_seed: int = st.integers(0, 2**31)) -> Agreement:
    """<dO, J dx> + <dS, J_S dx> = <J^T (dO, dS), dx>: the analytic VJP (dq, dk, dv, dg, dS0), dotted with a
    random direction, equals the directional derivative of (o, S_T) by central differences in mpmath
    (h = 1e-15; truncation ~h^2)."""
    import mpmath

    a = case.arrays()
    rng = np.random.default_rng(dir_seed)
    go = rng.standard_normal((case.B, case.T, case.H, case.V))
    gs = rng.standard_normal((case.B, case.H, case.K, case.V)) if case.output_final_state else None
    names = [n for n in ("q", "k", "v", "g", "initial_state") if n in a]
    dx = {n: rng.standard_normal(a[n].shape) * (0.5 if n == "g" else 1.0) for n in names}
    if "g" in dx:  # keep g + h dx <= 0
        dx["g"] = -np.abs(dx["g"])
    kw = {"g": a.get("g"), "decay": a.get("decay"), "scale": case.scale, "initial_state": a.get("initial_state")}
    grads = ref.linear_attention_vjp(a["q"], a["k"], a["v"], go, grad_final_state=gs, **kw)
    key = {"q": "dq", "k": "dk", "v": "dv", "g": "dg", "initial_state": "dinitial_state"}
    prods = [grads[key[n]] * dx[n] for n in names]
    lhs = sum(float(p.sum()) for p in prods)
    mp = MP(50, exact_output=True)
    with mp.context():
        h = mpmath.mpf(1e-15)
        outs = []
        for sign in (1, -1):
            xs = {n: mp.asarray(a[n]) + sign * h * mp.asarray(dx[n]) for n in names}
            o, S = ref.linear_attention(xs["q"], xs["k"], xs["v"], g=xs.get("g"), decay=a.get("decay"),
                                        scale=case.scale, initial_state=xs.get("initial_state"),
                                        output_final_state=gs is not None, backend=mp)
            val = mpmath.fsum((mp.asarray(go) * o).reshape(-1))
            if gs is not None:
                val += mpmath.fsum((mp.asarray(gs) * S).reshape(-1))
            outs.append(val)
        rhs = float((outs[0] - outs[1]) / (2 * h))
    scale = sum(float(np.abs(p).sum()) for p in prods)
    return Agreement(lhs, rhs, "<vjp, dx> == d/dh <cot, f(x + h dx)>", terms=terms(case) + 16, scale=scale)
