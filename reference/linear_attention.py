"""Linear attention oracles (with decay / gates): quadratic masked form, recurrent form, chunked form.

Layout (flash-linear-attention's ``chunk_simple_gla`` convention): q, k [B, T, H, K], v [B, T, H, V],
log-gates g [B, T, H] (entries <= 0), per-head decay ``decay`` = lambda_h in [0, 1] of shape [H],
state S [B, H, K, V], output o [B, T, H, V].

Recurrence (decay applied *before* adding the new outer product, as in fla's
``naive_recurrent_simple_gla``: ``S = S * exp(g_t) + k_t v_t^T``)::

    a_t = lambda_h * exp(g_t)                                    (per batch, head, token)
    S_t = a_t S_{t-1} + phi(k_t) v_t^T,   S_{-1} = S0 (initial_state, default 0)
    o_t = scale * phi(q_t)^T S_t

Quadratic form: ``o = (scale phi(Q) phi(K)^T (.) D) V + scale (phi(Q) (.) d0) S0`` with
``D_ts = lambda^(t-s) exp(sum_{s<r<=t} g_r)`` for s <= t (0 above the diagonal) and
``d0_t = lambda^(t+1) exp(sum_{r<=t} g_r)``.  Final state ``S_{T-1} = sum_s D_{T-1,s} phi(k_s) v_s^T +
d0_{T-1} S0``.

Normalised variant (``normalize=True``, Katharopoulos et al. 2020): ``z_t = a_t z_{t-1} + phi(k_t)`` and
``o_t = phi(q_t)^T S_t / phi(q_t)^T z_t`` (the scale cancels; 0 where the denominator is 0, which for a
non-negative feature map happens only when the numerator is 0 too).  It takes no initial state and
returns no final state (the state would be the pair (S, z)).

Non-causal (``causal=False``): every query reads the full state ``S0 + sum_s phi(k_s) v_s^T``; no decay or
gate is defined then (InputError).

Feature maps phi: ``"identity"``, ``"elu1"`` (elu(x) + 1, Katharopoulos et al. 2020), ``"relu"``.
``scale`` defaults to K^-0.5 (fla's default for every simple-GLA entry point).

Chunked form (Lightning Attention-2 / fla ``chunk_simple_gla``), chunk length C, last chunk of length
b <= C, local inclusive cumulative log-gates ``G_i`` (i = 0..b-1)::

    o_[c]  = scale (phi(Q_c) (.) lambda^(i+1) e^{G_i}) S_prev + (scale phi(Q_c) phi(K_c)^T (.) D_c) V_c
    S_next = lambda^b e^{G_{b-1}} S_prev + (phi(K_c) (.) lambda^(b-1-j) e^{G_{b-1} - G_j})^T V_c

Only non-negative powers of lambda appear (the kernel's ``lambda^(B-j)``; ``Lambda^{-1}`` is never
formed), and the last chunk uses lambda^b, not lambda^C.

Sources: Katharopoulos et al. 2020 (linear attention, elu+1); Sun et al. 2023 (RetNet, per-head decay);
Qin et al. 2024 (Lightning Attention-2, arXiv 2401.04658) and OpenNLPLab/lightning-attention; Yang et al. 2024 (GLA) and
fla-org/flash-linear-attention ``fla/ops/simple_gla/naive.py`` (layout, gate order, default scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite, require_shape
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "FEATURE_MAPS",
    "alibi_slopes",
    "linear_attention",
    "linear_attention_chunked",
    "linear_attention_feature_map",
    "linear_attention_recurrent",
    "linear_attention_vjp",
]

FEATURE_MAPS = ("identity", "elu1", "relu")


def alibi_slopes(H: int) -> np.ndarray:
    """ALiBi slopes ``2^(-8(h+1)/H)``, h = 0..H-1 (H a power of two); Lightning Attention-2 uses the
    per-head decay ``lambda_h = exp(-slope_h)``.  Source: Press et al. 2022; Qin et al. 2024."""
    require(isinstance(H, int | np.integer) and H >= 1 and (H & (H - 1)) == 0, "alibi_slopes", "H",
            "a power of two >= 1", repr(H))
    return np.power(2.0, -8.0 * (np.arange(H) + 1) / H)


def linear_attention_feature_map(x: Any, feature_map: str = "identity", *, backend: Backend = F64) -> Any:
    """phi(x) elementwise: identity, ``elu1`` (x + 1 for x > 0, e^x otherwise) or ``relu`` (max(x, 0)).
    Returns backend arrays (float64 for F64).  Source: Katharopoulos et al. 2020 (elu + 1)."""
    xp = backend
    require(feature_map in FEATURE_MAPS, "linear_attention_feature_map", "feature_map",
            f"one of {FEATURE_MAPS}", repr(feature_map))
    if feature_map == "identity":
        return x
    pos = np.asarray(x > 0, dtype=bool)
    if feature_map == "relu":
        return xp.where(pos, x, 0.0)
    return xp.where(pos, x + 1, xp.exp(xp.where(pos, 0.0, x)))


@dataclass(frozen=True)
class _LA:
    q: np.ndarray  # [B, H, T, K] (transposed from [B, T, H, K])
    k: np.ndarray
    v: np.ndarray  # [B, H, T, V]
    g: np.ndarray | None  # [B, H, T]
    lam: np.ndarray | None  # [H]
    s0: np.ndarray | None  # [B, H, K, V]
    scale: float
    causal: bool
    fmap: str
    normalize: bool
    want_state: bool


def _inputs(func: str, q: Any, k: Any, v: Any, g: Any, decay: Any, scale: float | None, causal: bool,
            feature_map: str, normalize: bool, initial_state: Any, output_final_state: bool) -> _LA:
    q = as_float64(q, func, "q", ndim=4)
    k = as_float64(k, func, "k", ndim=4)
    v = as_float64(v, func, "v", ndim=4)
    B, T, H, K = q.shape
    require(T >= 1 and K >= 1 and B >= 1 and H >= 1, func, "q", "of shape [B, T, H, K] with every size >= 1",
            f"shape {q.shape}")
    require_shape(k, func, "k", (B, T, H, K), "[B, T, H, K]")
    require(v.ndim == 4 and v.shape[:3] == (B, T, H) and v.shape[3] >= 1, func, "v",
            f"of shape [B, T, H, V] = ({B}, {T}, {H}, *)", f"shape {v.shape}")
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_finite(a, func, name)
    Vd = v.shape[3]
    require(isinstance(causal, bool | np.bool_), func, "causal", "a bool", repr(causal))
    require(isinstance(normalize, bool | np.bool_), func, "normalize", "a bool", repr(normalize))
    require(isinstance(output_final_state, bool | np.bool_), func, "output_final_state", "a bool",
            repr(output_final_state))
    require(feature_map in FEATURE_MAPS, func, "feature_map", f"one of {FEATURE_MAPS}", repr(feature_map))
    if scale is not None:
        require(isinstance(scale, float | int | np.floating) and not isinstance(scale, bool)
                and np.isfinite(scale), func, "scale", "None or a finite float", repr(scale))
    gg = None
    if g is not None:
        gg = as_float64(g, func, "g", ndim=3)
        require_shape(gg, func, "g", (B, T, H), "[B, T, H]")
        require_finite(gg, func, "g")
        require(bool(np.all(gg <= 0)), func, "g", "log-decays <= 0", f"max {np.max(gg)}")
        gg = np.moveaxis(gg, 1, 2)
    lam = None
    if decay is not None:
        lam = as_float64(decay, func, "decay", ndim=1)
        require_shape(lam, func, "decay", (H,), "[H]")
        require(bool(np.all((lam >= 0) & (lam <= 1))), func, "decay", "per-head decays in [0, 1]",
                f"{lam.tolist()}")
    require(causal or (gg is None and lam is None), func, "causal",
            "True when g or decay is given (decay is defined for causal attention only)", repr(causal))
    s0 = None
    if initial_state is not None:
        require(not normalize, func, "initial_state", "None when normalize=True (the state would be (S, z))",
                "an array")
        s0 = as_float64(initial_state, func, "initial_state", ndim=4)
        require_shape(s0, func, "initial_state", (B, H, K, Vd), "[B, H, K, V]")
        require_finite(s0, func, "initial_state")
    require(not (normalize and output_final_state), func, "output_final_state",
            "False when normalize=True (the state would be (S, z))", "True")
    sc = K**-0.5 if scale is None else float(scale)
    return _LA(np.moveaxis(q, 1, 2), np.moveaxis(k, 1, 2), np.moveaxis(v, 1, 2), gg, lam, s0, sc,
               bool(causal), feature_map, bool(normalize), bool(output_final_state))


def _lam_power(xp: Backend, a: _LA, exponent: np.ndarray) -> Any:
    """lambda_h ** exponent (non-negative integers), broadcast as [1, H, *exponent.shape]; 1 without decay.
    0 ** 0 = 1, so lambda = 0 keeps the current token only."""
    H = a.q.shape[1]
    e = np.asarray(exponent, dtype=np.float64)
    if a.lam is None:
        return xp.full((1, H, *e.shape), 1.0)
    if xp.is_float64:
        return np.power(a.lam.reshape(1, H, *([1] * e.ndim)), e[None, None])
    return np.stack([xp.power(float(a.lam[h]), xp.asarray(e)) for h in range(H)])[None]


def _cumsum(xp: Backend, x: Any) -> Any:
    """Inclusive cumulative sum along the last axis (a running sum, same order in every backend)."""
    if xp.is_float64:
        return np.cumsum(x, axis=-1)
    out = np.empty(np.shape(x), dtype=object)
    acc = xp.zeros(np.shape(x)[:-1])
    for t in range(np.shape(x)[-1]):
        acc = acc + x[..., t]
        out[..., t] = acc
    return out


def _features(xp: Backend, a: _LA) -> tuple[Any, Any, Any]:
    phi_q = linear_attention_feature_map(xp.asarray(a.q), a.fmap, backend=xp)
    phi_k = linear_attention_feature_map(xp.asarray(a.k), a.fmap, backend=xp)
    return phi_q, phi_k, xp.asarray(a.v)


def _decay_matrix(xp: Backend, a: _LA) -> Any:
    """[B|1, H, T, T + 1]: column s + 1 holds D_ts = lambda^(t-s) exp(sum_{s<r<=t} g_r) for s = -1..T-1
    (0 for s > t).  The gate sums are running sums of same-sign terms started at each s (no cumsum
    differences, so no cancellation): O(T^2) memory."""
    T = a.q.shape[2]
    vis = (np.arange(-1, T)[None, :] <= np.arange(T)[:, None])
    expo = np.where(vis, np.arange(T)[:, None] - np.arange(-1, T)[None, :], 0)
    lp = _lam_power(xp, a, expo)
    if a.g is None:
        return xp.where(vis, lp, 0.0)
    after = np.arange(T)[None, :] > np.arange(-1, T)[:, None]  # [T + 1, T]: r > s
    sums = _cumsum(xp, xp.where(after, xp.asarray(a.g)[..., None, :], 0.0))  # [B, H, s, t] = sum_{s<r<=t} g_r
    return xp.where(vis, lp * xp.exp(np.swapaxes(sums, -1, -2)), 0.0)


def _finish(xp: Backend, a: _LA, num: Any, den: Any, state: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if a.normalize:
        num = xp.where(den != 0, num / xp.where(den != 0, den, 1.0), 0.0)
    o = np.moveaxis(xp.to_float64(num), 1, 2)
    return o, (xp.to_float64(state) if a.want_state else None)


@oracle
def linear_attention(q: Any, k: Any, v: Any, *, g: Any = None, decay: Any = None, scale: float | None = None,
                     causal: bool = True, feature_map: str = "identity", normalize: bool = False,
                     initial_state: Any = None, output_final_state: bool = False,
                     backend: Backend = F64) -> tuple[np.ndarray, np.ndarray | None]:
    """Quadratic (masked, parallel) form of linear attention with decay: returns ``(o, final_state)``.

    ``o = (scale phi(Q) phi(K)^T (.) D) V + scale (phi(Q) (.) d0) S0`` (module docstring); q, k
    [B, T, H, K], v [B, T, H, V], g [B, T, H], decay [H], initial_state [B, H, K, V]; o [B, T, H, V] and
    final_state [B, H, K, V] (None unless ``output_final_state``).
    Source: Katharopoulos et al. 2020; Sun et al. 2023 (RetNet parallel form); fla
    ``naive_parallel_simple_gla``; Qin et al. 2024 (Lightning Attention-2, left product).
    """
    a = _inputs("linear_attention", q, k, v, g, decay, scale, causal, feature_map, normalize, initial_state,
                output_final_state)
    xp = backend
    phi_q, phi_k, vx = _features(xp, a)
    T = a.q.shape[2]
    sc = xp.scalar(a.scale)
    scores = xp.matmul(phi_q, np.swapaxes(phi_k, -1, -2)) * sc
    if a.causal:
        Dm = _decay_matrix(xp, a)
        w, d0, d_last = scores * Dm[..., 1:], Dm[..., 0:1], Dm[..., T - 1, 1:]
    else:
        w, d0, d_last = scores, xp.full((1, 1, T, 1), 1.0), xp.full((1, 1, T), 1.0)
    num = xp.matmul(w, vx)
    den = xp.sum(w, axis=-1, keepdims=True) if a.normalize else None
    state = None
    if a.s0 is not None:
        num = num + xp.matmul(phi_q * d0 * sc, xp.asarray(a.s0))
    if a.want_state:
        state = xp.matmul(np.swapaxes(phi_k * d_last[..., None], -1, -2), vx)
        if a.s0 is not None:
            state = state + d0[..., T - 1:T, :] * xp.asarray(a.s0)
    return _finish(xp, a, num, den, state)


def _step_decay(xp: Backend, a: _LA, t: int) -> Any:
    """a_t = lambda_h exp(g_t) as [B|1, H, 1, 1]."""
    H = a.q.shape[1]
    d = _lam_power(xp, a, np.ones(1))[..., 0]  # [1, H]
    if a.g is not None:
        d = d * xp.exp(xp.asarray(a.g[:, :, t]))
    return d.reshape(-1, H, 1, 1)


@oracle
def linear_attention_recurrent(q: Any, k: Any, v: Any, *, g: Any = None, decay: Any = None,
                               scale: float | None = None, causal: bool = True, feature_map: str = "identity",
                               normalize: bool = False, initial_state: Any = None,
                               output_final_state: bool = False,
                               backend: Backend = F64) -> tuple[np.ndarray, np.ndarray | None]:
    """Recurrent form: ``S_t = lambda exp(g_t) S_{t-1} + phi(k_t) v_t^T``, ``o_t = scale phi(q_t)^T S_t``
    (normalised: divided by ``phi(q_t)^T z_t``, ``z_t = lambda exp(g_t) z_{t-1} + phi(k_t)``); the state
    starts at ``initial_state`` for every sequence of the batch.  Non-causal: every query reads the state
    after the last token.  Arguments and result as :func:`linear_attention`.
    Source: Katharopoulos et al. 2020 (transformers are RNNs); fla ``naive_recurrent_simple_gla``.
    """
    a = _inputs("linear_attention_recurrent", q, k, v, g, decay, scale, causal, feature_map, normalize,
                initial_state, output_final_state)
    xp = backend
    phi_q, phi_k, vx = _features(xp, a)
    B, H, T, K = a.q.shape
    Vd = a.v.shape[3]
    sc = xp.scalar(a.scale)
    S = xp.asarray(a.s0) if a.s0 is not None else xp.zeros((B, H, K, Vd))
    z = xp.zeros((B, H, K, 1))
    num, den = [], []
    for t in range(T):
        dec = _step_decay(xp, a, t) if a.causal else 1.0
        S = dec * S + phi_k[:, :, t, :, None] * vx[:, :, t, None, :]
        z = dec * z + phi_k[:, :, t, :, None]
        if a.causal:
            num.append(xp.matmul(phi_q[:, :, t:t + 1], S) * sc)
            den.append(xp.matmul(phi_q[:, :, t:t + 1], z) * sc)
    if not a.causal:
        num, den = [xp.matmul(phi_q, S) * sc], [xp.matmul(phi_q, z) * sc]
    return _finish(xp, a, np.concatenate(num, axis=2), np.concatenate(den, axis=2), S)


@oracle
def linear_attention_chunked(q: Any, k: Any, v: Any, *, chunk_size: int, g: Any = None, decay: Any = None,
                             scale: float | None = None, causal: bool = True, feature_map: str = "identity",
                             normalize: bool = False, initial_state: Any = None, output_final_state: bool = False,
                             backend: Backend = F64) -> tuple[np.ndarray, np.ndarray | None]:
    """Chunked form (Lightning Attention-2 / fla ``chunk_simple_gla``): intra-chunk quadratic plus
    inter-chunk state, any ``chunk_size >= 1`` (the last chunk may be short; T = 1 allowed).  Within a
    chunk, query i gets ``lambda^(i+1) e^{G_i}``, key j gets ``lambda^(b-1-j) e^{G_{b-1} - G_j}`` and the
    state ``lambda^b e^{G_{b-1}}`` with b the chunk's own length (module docstring).  Arguments and result
    as :func:`linear_attention`.
    Source: Qin et al. 2024 (Lightning Attention-2, Algorithm 1; OpenNLPLab/lightning-attention kernel);
    fla ``naive_chunk_simple_gla``.
    """
    func = "linear_attention_chunked"
    require(isinstance(chunk_size, int | np.integer) and not isinstance(chunk_size, bool) and chunk_size >= 1,
            func, "chunk_size", "an int >= 1", repr(chunk_size))
    a = _inputs(func, q, k, v, g, decay, scale, causal, feature_map, normalize, initial_state,
                output_final_state)
    xp = backend
    phi_q, phi_k, vx = _features(xp, a)
    B, H, T, K = a.q.shape
    Vd = a.v.shape[3]
    sc = xp.scalar(a.scale)
    S = xp.asarray(a.s0) if a.s0 is not None else xp.zeros((B, H, K, Vd))
    z = xp.zeros((B, H, K, 1))
    if not a.causal:
        for c0 in range(0, T, chunk_size):
            blk = slice(c0, min(c0 + chunk_size, T))
            S = S + xp.matmul(np.swapaxes(phi_k[:, :, blk], -1, -2), vx[:, :, blk])
            z = z + xp.sum(phi_k[:, :, blk], axis=2)[..., None]
        return _finish(xp, a, xp.matmul(phi_q, S) * sc, xp.matmul(phi_q, z) * sc, S)
    num, den = [], []
    for c0 in range(0, T, chunk_size):
        b = min(chunk_size, T - c0)
        blk = slice(c0, c0 + b)
        i = np.arange(b)
        causal_in = i[:, None] >= i[None, :]
        lq = _lam_power(xp, a, i + 1)[..., None]  # [1, H, b, 1]
        lk = _lam_power(xp, a, b - 1 - i)[..., None]
        lin = _lam_power(xp, a, np.where(causal_in, i[:, None] - i[None, :], 0))
        lb = _lam_power(xp, a, np.array([b]))[..., None]  # [1, H, 1, 1]
        if a.g is not None:
            G = _cumsum(xp, xp.asarray(a.g[:, :, blk]))  # [B, H, b]
            qd = lq * xp.exp(G)[..., None]
            kd = lk * xp.exp(G[..., b - 1:b] - G)[..., None]
            dd = lin * xp.exp(xp.where(causal_in, G[..., :, None] - G[..., None, :], 0.0))
            sd = lb * xp.exp(G[..., b - 1])[..., None, None]
        else:
            qd, kd, dd, sd = lq, lk, lin, lb
        pq, pk, vb = phi_q[:, :, blk], phi_k[:, :, blk], vx[:, :, blk]
        w = xp.where(causal_in, xp.matmul(pq, np.swapaxes(pk, -1, -2)) * sc * dd, 0.0)
        num.append(xp.matmul(pq * qd, S) * sc + xp.matmul(w, vb))
        den.append(xp.matmul(pq * qd, z) * sc + xp.sum(w, axis=-1, keepdims=True))
        S = sd * S + xp.matmul(np.swapaxes(pk * kd, -1, -2), vb)
        z = sd * z + xp.sum(pk * kd, axis=2)[..., None]
    return _finish(xp, a, np.concatenate(num, axis=2), np.concatenate(den, axis=2), S)


@oracle
def linear_attention_vjp(q: Any, k: Any, v: Any, grad_o: Any, *, g: Any = None, decay: Any = None,
                         scale: float | None = None, initial_state: Any = None, grad_final_state: Any = None,
                         backend: Backend = F64) -> dict[str, np.ndarray]:
    """Analytic VJP of causal, unnormalised, identity-feature :func:`linear_attention` (fla simple GLA).

    With ``A = scale Q K^T (.) D`` (decay matrix D, initial-state decay d0 as in the module docstring),
    ``M = scale (dO V^T) (.) D``, cotangents dO [B, T, H, V] and dS_T [B, H, K, V] (optional)::

        dQ  = M K + scale (d0 (.) dO) S0^T          dK = M^T Q + D_{T-1,:} (.) V dS_T^T
        dV  = A^T dO + D_{T-1,:} (.) K dS_T         dS0 = scale (Q (.) d0)^T dO + d0_{T-1} dS_T
        dg_r = sum_{t >= r > s} W_ts,  W_ts = D_ts dL/dD_ts (s = -1 for the initial state)

    Returns a dict with ``dq, dk, dv`` (layouts of q, k, v), ``dg`` [B, T, H] (if g is given) and
    ``dinitial_state`` [B, H, K, V] (if initial_state is given).
    Source: chain rule on the quadratic form (derived here); checked against central differences in
    mpmath by the law ``linear_attention.vjp_directional_derivative``.
    """
    func = "linear_attention_vjp"
    a = _inputs(func, q, k, v, g, decay, scale, True, "identity", False, initial_state, False)
    B, H, T, K = a.q.shape
    Vd = a.v.shape[3]
    go = as_float64(grad_o, func, "grad_o", ndim=4)
    require_shape(go, func, "grad_o", (B, T, H, Vd), "[B, T, H, V]")
    require_finite(go, func, "grad_o")
    xp = backend
    qx, kx, vx = xp.asarray(a.q), xp.asarray(a.k), xp.asarray(a.v)
    dO = xp.asarray(np.moveaxis(go, 1, 2))
    sc = xp.scalar(a.scale)
    Dm = _decay_matrix(xp, a)
    D, d0 = Dm[..., 1:], Dm[..., 0:1]
    qk = xp.matmul(qx, np.swapaxes(kx, -1, -2))
    dov = xp.matmul(dO, np.swapaxes(vx, -1, -2))
    A = qk * D * sc
    M = dov * D * sc
    dq = xp.matmul(M, kx)
    dk = xp.matmul(np.swapaxes(M, -1, -2), qx)
    dv = xp.matmul(np.swapaxes(A, -1, -2), dO)
    W = xp.zeros((B, H, T, T + 1))
    W[..., 1:] = M * qk  # D_ts * dL/dD_ts = scale (q.k)(dO.v) D_ts
    ds0 = None
    if a.s0 is not None:
        s0 = xp.asarray(a.s0)
        qs0 = xp.matmul(qx, s0)  # [B, H, T, V]
        dq = dq + xp.matmul(dO * d0, np.swapaxes(s0, -1, -2)) * sc
        W[..., 0] = xp.sum(qs0 * dO, axis=-1) * Dm[..., 0] * sc
        ds0 = xp.matmul(np.swapaxes(qx * d0, -1, -2), dO) * sc
    if grad_final_state is not None:
        gs = as_float64(grad_final_state, func, "grad_final_state", ndim=4)
        require_shape(gs, func, "grad_final_state", (B, H, K, Vd), "[B, H, K, V]")
        require_finite(gs, func, "grad_final_state")
        gsx = xp.asarray(gs)
        dl = Dm[..., T - 1, 1:][..., None]  # [B|1, H, T, 1]
        kgs = xp.matmul(kx, gsx)  # [B, H, T, V]: k_s^T dS
        dk = dk + xp.matmul(vx, np.swapaxes(gsx, -1, -2)) * dl
        dv = dv + kgs * dl
        W[..., T - 1, 1:] = W[..., T - 1, 1:] + xp.sum(kgs * vx, axis=-1) * Dm[..., T - 1, 1:]
        if a.s0 is not None:
            s0 = xp.asarray(a.s0)
            W[..., T - 1, 0] = W[..., T - 1, 0] + xp.sum(xp.sum(s0 * gsx, axis=-1), axis=-1) * Dm[..., T - 1, 0]
            ds0 = (ds0 if ds0 is not None else 0.0) + Dm[..., T - 1, 0][..., None, None] * gsx
    out = {"dq": np.moveaxis(xp.to_float64(dq), 1, 2), "dk": np.moveaxis(xp.to_float64(dk), 1, 2),
           "dv": np.moveaxis(xp.to_float64(dv), 1, 2)}
    if a.g is not None:  # dg_r = sum_{s < r} sum_{t >= r} W_ts: a reverse running sum over t, then over s < r
        Wt = np.swapaxes(W, -1, -2)[..., ::-1]  # [B, H, s, T - 1 - t]
        tail = _cumsum(xp, Wt)[..., ::-1]  # [B, H, s, r] = sum_{t >= r} W_ts
        before = np.arange(-1, T)[:, None] < np.arange(T)[None, :]  # s < r
        dg = xp.sum(xp.where(before, tail, 0.0), axis=-2)
        out["dg"] = np.moveaxis(xp.to_float64(dg), 1, 2)
    if ds0 is not None:
        out["dinitial_state"] = xp.to_float64(ds0)
    return out
