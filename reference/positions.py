"""Position oracles beyond plain RoPE: frequency scaling (PI, NTK, beta-base / mixed base, dynamic NTK), log-n
scaling of q, ReRoPE and Leaky ReRoPE (direct, two-pass prefill, decode step), RoPE-2D, RoPE-Tie / RoPE-TV and
Qwen2-VL M-RoPE position assignment, the base lower bound of Men et al. 2024 and the RoFormer decay bound.

Conventions (as :mod:`veriformer.reference.rope`): x [..., T, D], pair i of the rotated features is
``rope_pairs(r, layout)[i]`` with frequency ``theta_i = base^(-2i/r)``; ``rope(x, n) = R_n x`` (column
convention) and ``(R_m q)^T (R_n k) = q^T R_{n-m} k``.

Scaling (``scaling=`` description, a dict with key ``"type"``; Su kexue.fm/archives/9675 and 9706; Chen et al.
2023, arXiv:2306.15595; bloc97's reddit post "NTK-Aware Scaled RoPE"; HF transformers modeling_rope_utils):

* ``{"type": "linear", "factor": k}``: position interpolation, ``theta'_i = theta_i / k`` (n -> n/k);
* ``{"type": "ntk", "factor": k}``: bloc97, ``b' = b k^(r/(r-2))`` (lowest frequency = PI's, highest unchanged);
* ``{"type": "ntk_base", "factor": k}``: Su's base-conversion reading ("NTK-RoPE-old"), ``b' = b k``;
* ``{"type": "ntk_fixed", "factor": k}``: ``theta'_i = theta_i k^(-2(i+1)/r)``;
* ``{"type": "mixed", "factor": k, "gamma": g}``: ``theta'_i = theta_i exp(-a (i+1)^g)``, ``a = ln k / (r/2)^g``
  (post 9706; the post names the exponent b); g = 1 is "ntk_fixed", g = 0 is PI;
* ``{"type": "dynamic", "factor": k, "original_max_position": L[, "seq_len": s]}``: HF transformers' dynamic
  NTK, ``b' = b (k s / L - (k - 1))^(r/(r-2))`` with ``s = max(seq_len, L)`` and ``seq_len`` the largest
  position + 1 when not given;
* ``{"type": "yarn", "factor": k, "original_max_position": L[, "beta_fast": 32, "beta_slow": 1, "truncate":
  True]}``: YaRN's frequencies (Peng et al. 2023, arXiv:2309.00071; HF ``_compute_yarn_parameters``): pair i keeps
  ``theta_i`` below the correction dim of beta_fast rotations, takes ``theta_i / k`` above that of beta_slow, and
  blends linearly between; YaRN's attention factor (``0.1 ln k + 1`` on cos and sin in HF) is not part of the
  rotation: :func:`yarn_attention_factor`.

Sources are named on each function.  Numpy/mpmath only (layer rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "PAPER_BASE_TABLE",
    "SCALING_TYPES",
    "BaseBound",
    "logn_scale",
    "mixed_base_factors",
    "mrope",
    "mrope_positions",
    "rerope_attention",
    "rerope_attention_vjp",
    "rerope_decode_scores",
    "rerope_decode_scores_table",
    "rerope_relative_positions",
    "rerope_scores",
    "rerope_scores_two_pass",
    "rope_2d",
    "rope_abel_terms",
    "rope_at",
    "rope_base_criterion",
    "rope_base_first_violation",
    "rope_base_lower_bound",
    "rope_base_table",
    "rope_decay_indicator",
    "rope_tie_positions",
    "rope_tv_positions",
    "rope_tv_video_positions",
    "scaled_frequencies",
    "validate_scaling",
    "yarn_attention_factor",
    "yarn_ramp",
]

SCALING_TYPES = ("linear", "ntk", "ntk_base", "ntk_fixed", "mixed", "dynamic", "yarn")
_KEYS = {"linear": {"factor"}, "ntk": {"factor", "original_max_position"},
         "ntk_base": {"factor", "original_max_position"}, "ntk_fixed": {"factor", "original_max_position"},
         "mixed": {"factor", "gamma", "original_max_position"},
         "dynamic": {"factor", "original_max_position", "seq_len"},
         "yarn": {"factor", "original_max_position", "beta_fast", "beta_slow", "truncate"}}


# -- scaling ---------------------------------------------------------------------------------------------------------

def validate_scaling(scaling: Any, func: str, arg: str = "scaling") -> dict[str, Any] | None:
    """Check a ``scaling=`` description (module docstring) and return it as a plain dict (None passes)."""
    if scaling is None:
        return None
    require(isinstance(scaling, dict) and scaling.get("type") in SCALING_TYPES, func, arg,
            f"None or a dict with 'type' in {SCALING_TYPES}", repr(scaling))
    t = scaling["type"]
    extra = set(scaling) - {"type"} - _KEYS[t]
    require(not extra, func, arg, f"a {t!r} description with keys {sorted(_KEYS[t] | {'type'})}",
            f"unknown keys {sorted(extra)}")
    k = scaling.get("factor")
    require(isinstance(k, int | float | np.floating | np.integer) and not isinstance(k, bool) and math.isfinite(k)
            and k >= 1, func, f"{arg}['factor']", "a finite number >= 1", repr(k))
    if t == "mixed":
        g = scaling.get("gamma")
        require(isinstance(g, int | float | np.floating) and not isinstance(g, bool) and 0 <= g <= 1, func,
                f"{arg}['gamma']", "a number in [0, 1]", repr(g))
    if t == "yarn":
        for key, default in (("beta_fast", 32), ("beta_slow", 1)):
            v = scaling.get(key, default)
            require(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) and v > 0,
                    func, f"{arg}['{key}']", "a number > 0", repr(v))
        require(scaling.get("beta_fast", 32) > scaling.get("beta_slow", 1), func, f"{arg}['beta_fast']",
                "greater than beta_slow", repr(scaling.get("beta_fast", 32)))
        require(isinstance(scaling.get("truncate", True), bool), func, f"{arg}['truncate']", "a bool",
                repr(scaling.get("truncate")))
    if t in ("dynamic", "yarn") or "original_max_position" in scaling:
        L = scaling.get("original_max_position")
        require(isinstance(L, int | np.integer) and not isinstance(L, bool) and L >= 1, func,
                f"{arg}['original_max_position']", "an int >= 1", repr(L))
    if "seq_len" in scaling:
        s = scaling["seq_len"]
        require(isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1, func, f"{arg}['seq_len']",
                "an int >= 1", repr(s))
    return dict(scaling)


def _pow0(m: np.ndarray, g: float) -> np.ndarray:
    """``m^g`` with the convention ``0^g = 0`` also at g = 0 (the limit g -> 0+), so that the per-digit factors
    of the mixed base telescope to k at every g in [0, 1]."""
    m = np.asarray(m, np.float64)
    return np.where(m == 0, 0.0, np.power(np.where(m == 0, 1.0, m), g))


def mixed_base_factors(factor: float, gamma: float, half: int) -> np.ndarray:
    """Per-digit factors of the mixed base, ``lambda_m = exp(a (m^g - (m-1)^g))``, m = 1..half, ``a = ln k /
    half^g`` (``0^g = 0``).  ``prod lambda_m = k`` and ``lambda_1 >= ... >= lambda_half >= 1`` for
    ``0 <= g <= 1``; ``theta'_i = theta_i / prod_{m <= i+1} lambda_m``.  Source: Su kexue.fm/archives/9706."""
    require(isinstance(half, int | np.integer) and half >= 1, "mixed_base_factors", "half", "an int >= 1", half)
    require(factor >= 1, "mixed_base_factors", "factor", "a number >= 1", factor)
    require(0 <= gamma <= 1, "mixed_base_factors", "gamma", "a number in [0, 1]", gamma)
    m = np.arange(1, half + 1)
    a = math.log(factor) / half**gamma
    return np.exp(a * (_pow0(m, gamma) - _pow0(m - 1, gamma)))


def yarn_ramp(rotary_dim: int, base: float, scaling: dict[str, Any]) -> np.ndarray:
    """YaRN's per-pair interpolation weight gamma_i in [0, 1] (0: keep theta_i, 1: theta_i / k):
    ``clamp((i - lo) / (hi - lo), 0, 1)`` with ``lo, hi`` the correction dims ``r ln(L / (2 pi beta)) / (2 ln b)`` of
    beta_fast and beta_slow rotations over the original length L (floored / ceiled when ``truncate``, clipped to
    [0, r-1]; ``hi += 0.001`` when equal).  Source: HF transformers ``_compute_yarn_parameters``
    (find_correction_range, linear_ramp_factor); Peng et al. 2023 (YaRN) eq. 17-18."""
    r = int(rotary_dim)
    L = float(scaling["original_max_position"])

    def corr(rot: float) -> float:
        return r * math.log(L / (rot * 2 * math.pi)) / (2 * math.log(base))

    lo, hi = corr(float(scaling.get("beta_fast", 32))), corr(float(scaling.get("beta_slow", 1)))
    if scaling.get("truncate", True):
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, r - 1)
    if lo == hi:
        hi += 0.001
    return np.clip((np.arange(r // 2) - lo) / (hi - lo), 0.0, 1.0)


def yarn_attention_factor(factor: float, mscale: float = 1.0, mscale_all_dim: float | None = None) -> float:
    """YaRN's attention factor ``0.1 mscale ln k + 1`` (1 for k <= 1), or the ratio of two such factors when
    ``mscale_all_dim`` is given (DeepSeek-V2/V3 configs).  HF multiplies cos and sin by it, i.e. scales q.k by its
    square; it is not part of the rotation of op ``rope``.  Source: HF transformers ``_compute_yarn_parameters``
    (get_mscale); Peng et al. 2023 (YaRN) eq. 22."""
    def g(s: float, m: float) -> float:
        return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0

    return g(factor, mscale) / g(factor, mscale_all_dim) if mscale_all_dim else g(factor, mscale)


def _effective_seq_len(scaling: dict[str, Any], positions: Any) -> int:
    if "seq_len" in scaling:
        return int(scaling["seq_len"])
    if positions is None or np.size(positions) == 0:
        return int(scaling["original_max_position"])
    return max(int(np.max(positions)) + 1, 1)


@oracle
def scaled_frequencies(rotary_dim: int, base: float = 10000.0, scaling: Any = None, *, positions: Any = None,
                       backend: Backend = F64) -> Any:
    """Frequencies ``theta'_i`` (i = 0..r/2-1) of RoPE under ``scaling`` (module docstring); ``positions`` only
    matter for ``"dynamic"`` without ``seq_len`` (seq_len = max position + 1).  float64 array for F64, mpf
    objects for MP (the base change is formed in float64 and then exact in both).

    Sources: Chen et al. 2023 (PI); bloc97 (NTK-aware, ``b k^(d/(d-2))``); Su kexue.fm/archives/9675 (base
    conversion ``b k``) and 9706 (fixed, mixed); HF transformers ``_compute_dynamic_ntk_parameters``.
    """
    func = "scaled_frequencies"
    require(isinstance(rotary_dim, int | np.integer) and rotary_dim >= 2 and rotary_dim % 2 == 0, func,
            "rotary_dim", "an even int >= 2", repr(rotary_dim))
    require(isinstance(base, float | int | np.floating) and np.isfinite(base) and base > 1, func, "base",
            "a finite float > 1", repr(base))
    sc = validate_scaling(scaling, func)
    r, half = int(rotary_dim), int(rotary_dim) // 2
    xp = backend
    t = None if sc is None else sc["type"]
    k = 1.0 if sc is None else float(sc["factor"])
    b = float(base)
    if t == "ntk":
        b = b * k ** (r / (r - 2)) if r > 2 else b * k  # r = 2: one frequency (theta_0 = 1), nothing to scale
    elif t == "ntk_base":
        b = b * k
    elif t == "dynamic":
        L = int(sc["original_max_position"])
        s = max(_effective_seq_len(sc, positions), L)
        b = b * (k * s / L - (k - 1)) ** (r / (r - 2)) if r > 2 else b
    i = np.arange(half)
    if xp.is_float64:
        theta = np.power(b, -2.0 * i / r)
        if t == "linear":
            theta = theta / k
        elif t == "ntk_fixed":
            theta = theta * np.power(k, -2.0 * (i + 1) / r)
        elif t == "mixed":
            g = float(sc["gamma"])
            theta = theta * np.exp(-math.log(k) / half**g * _pow0(i + 1, g))
        elif t == "yarn":
            ramp = yarn_ramp(r, b, sc)
            theta = theta / k * ramp + theta * (1 - ramp)
        return theta
    import mpmath

    out = []
    for j in range(half):
        th = mpmath.power(mpmath.mpf(b), mpmath.mpf(-2 * j) / r)
        if t == "linear":
            th = th / mpmath.mpf(k)
        elif t == "ntk_fixed":
            th = th * mpmath.power(mpmath.mpf(k), mpmath.mpf(-2 * (j + 1)) / r)
        elif t == "mixed":
            g = mpmath.mpf(float(sc["gamma"]))
            th = th * mpmath.exp(-mpmath.log(mpmath.mpf(k)) / mpmath.power(half, g) * mpmath.power(j + 1, g))
        elif t == "yarn":
            ramp = mpmath.mpf(float(yarn_ramp(r, b, sc)[j]))
            th = th / mpmath.mpf(k) * ramp + th * (1 - ramp)
        out.append(th)
    return np.array(out, dtype=object)


def logn_scale(positions: Any, max_len: int) -> np.ndarray:
    """The log-n factor on q for a model trained without it: ``max(1, log(n + 1) / log(max_len))`` for 0-based
    positions n (1-based ``n + 1`` as in the code).  Source: Su kexue.fm/archives/9706 and ``bojone/rerope``
    ntk_patch.py / rerope_patch.py (``((position_ids + 1).log() / np.log(training_length)).clip(1)``)."""
    p = np.asarray(positions)
    require(p.dtype.kind in "iu" and (p.size == 0 or p.min() >= 0), "logn_scale", "positions",
            "non-negative integers", repr(p.dtype) if p.dtype.kind not in "iu" else int(p.min()))
    require(isinstance(max_len, int | np.integer) and max_len >= 2, "logn_scale", "max_len", "an int >= 2",
            repr(max_len))
    return np.maximum(1.0, np.log(p.astype(np.float64) + 1) / math.log(int(max_len)))


# -- general rotations -----------------------------------------------------------------------------------------------

def _pairs(r: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    from veriformer.reference.rope import rope_pairs

    require(layout in ("half", "interleaved"), "rope", "layout", "'half' or 'interleaved'", repr(layout))
    return rope_pairs(r, layout)


def _rotate(x: np.ndarray, angles: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Rotate pairs (ia_p, ib_p) of x [..., T, D] by angles [T, P] (or [..., T, P])."""
    c, s = np.cos(angles), np.sin(angles)
    xa, xb = x[..., ia], x[..., ib]
    out = x.copy()
    out[..., ia] = xa * c - xb * s
    out[..., ib] = xa * s + xb * c
    return out


def _x(x: Any, func: str, arg: str = "x") -> np.ndarray:
    a = as_float64(x, func, arg)
    require(a.ndim >= 2 and a.shape[-1] % 2 == 0 and a.shape[-1] >= 2, func, arg,
            "of shape [..., T, D] with even D >= 2", f"shape {a.shape}")
    require_finite(a, func, arg)
    return a


def rope_at(x: Any, positions: Any, *, base: float = 10000.0, layout: str = "half",
            scaling: Any = None) -> np.ndarray:
    """RoPE of x [..., T, D] at real (not necessarily integer) positions [T]: pair i rotated by
    ``p_t theta'_i`` (``theta'`` from :func:`scaled_frequencies`).  Used by the ReRoPE passes, whose positions
    ``(i - w)/k + w`` and ``j/k`` are fractional.  Source: Su et al. 2021 (RoFormer), eq. 34."""
    a = _x(x, "rope_at")
    p = np.asarray(positions, np.float64)
    require(p.shape == (a.shape[-2],) and np.all(np.isfinite(p)), "rope_at", "positions",
            f"finite reals of shape [T] = ({a.shape[-2]},)", f"shape {p.shape}")
    theta = scaled_frequencies(a.shape[-1], base, scaling)
    return _rotate(a, p[:, None] * theta[None, :], *_pairs(a.shape[-1], layout))


# -- ReRoPE / Leaky ReRoPE -------------------------------------------------------------------------------------------

def _rerope_args(func: str, window: Any, leak: Any) -> tuple[float, float]:
    require(isinstance(window, int | float | np.integer | np.floating) and not isinstance(window, bool)
            and window >= 0, func, "window", "a number >= 0", repr(window))
    require(isinstance(leak, int | float | np.integer | np.floating) and not isinstance(leak, bool) and leak > 0,
            func, "leak", "a number > 0 (math.inf: ReRoPE; 1: RoPE; < 1: inverse Leaky ReRoPE)", repr(leak))
    return float(window), float(leak)


def rerope_relative_positions(i: Any, j: Any, window: float, leak: float = math.inf) -> np.ndarray:
    """Rectified relative position for ``i >= j`` (broadcast): ``P = i - j`` if ``i - j < w``, else
    ``w + (i - j - w)/k`` (Leaky ReRoPE, ``k = leak``); ``k = inf`` gives ReRoPE ``min(i - j, w)``, ``k = 1``
    plain RoPE, ``w = 0`` position interpolation by k.  Entries with ``i < j`` are NaN (causal only).
    Source: Su kexue.fm/archives/9708, eq. for P_ij."""
    w, k = _rerope_args("rerope_relative_positions", window, leak)
    r = np.asarray(i, np.float64) - np.asarray(j, np.float64)
    far = w + (r - w) / k if math.isfinite(k) else np.full_like(r, w)
    return np.where(r < 0, np.nan, np.where(r < w, r, far))


def _qk(func: str, q: Any, k: Any) -> tuple[np.ndarray, np.ndarray]:
    qa, ka = _x(q, func, "q"), _x(k, func, "k")
    require(qa.shape[-1] == ka.shape[-1] and qa.shape[:-2] == ka.shape[:-2], func, "k",
            f"of shape [..., S, D={qa.shape[-1]}] with q's leading dims {qa.shape[:-2]}", f"shape {ka.shape}")
    return qa, ka


def _pos(p: Any, n: int, func: str, arg: str, default: np.ndarray) -> np.ndarray:
    if p is None:
        return default
    a = np.asarray(p)
    require(a.dtype.kind in "iu" and a.shape == (n,), func, arg, f"integers of shape ({n},)",
            f"{a.dtype} {a.shape}")
    return a.astype(np.int64)


def rerope_scores(q: Any, k: Any, window: float, *, leak: float = math.inf, base: float = 10000.0,
                  layout: str = "half", q_positions: Any = None, k_positions: Any = None) -> np.ndarray:
    """Direct per-pair (Leaky) ReRoPE scores ``a_ij = q_i^T R_{-P_ij} k_j`` [..., T, S] for q [..., T, D],
    k [..., S, D]; ``P_ij`` from :func:`rerope_relative_positions`; ``-inf`` where ``j > i`` (causal).  Default
    positions: keys ``0..S-1``, queries end-aligned ``S-T..S-1``.  Computed pair by pair in complex form,
    ``a_ij = Re sum_p z_p(q_i) conj(z_p(k_j)) exp(i P_ij theta_p)``.  Unscaled (no 1/sqrt(D)).
    Source: Su kexue.fm/archives/9708."""
    func = "rerope_scores"
    qa, ka = _qk(func, q, k)
    w, lk = _rerope_args(func, window, leak)
    T, S, D = qa.shape[-2], ka.shape[-2], qa.shape[-1]
    iq = _pos(q_positions, T, func, "q_positions", np.arange(S - T, S))
    jk = _pos(k_positions, S, func, "k_positions", np.arange(S))
    P = rerope_relative_positions(iq[:, None], jk[None, :], w, lk)  # [T, S]
    theta = scaled_frequencies(D, base)
    ia, ib = _pairs(D, layout)
    zq = qa[..., ia] + 1j * qa[..., ib]
    zk = ka[..., ia] + 1j * ka[..., ib]
    Pf = np.where(np.isnan(P), 0.0, P)
    ph = np.exp(1j * Pf[..., None] * theta)  # [T, S, P]: (R_P q) . k = Re z_q e^{i P theta} conj(z_k)
    s = np.real(np.einsum("...tp,...sp,tsp->...ts", zq, np.conj(zk), ph))
    return np.where(np.isnan(P), -np.inf, s)


def rerope_scores_two_pass(q: Any, k: Any, window: float, *, leak: float = math.inf, base: float = 10000.0,
                           layout: str = "half", q_positions: Any = None, k_positions: Any = None) -> np.ndarray:
    """The prefill of ``bojone/rerope``: two score matrices merged by the window mask, [..., T, S].

    Pass 1 ``(R_i q_i)^T (R_j k_j)`` (plain RoPE); pass 2 ReRoPE ``(R_w q_i)^T k_j`` (key unrotated), Leaky
    ``(R_{(i-w)/k+w} q_i)^T (R_{j/k} k_j)``; ``a = pass1`` where ``|i - j| < w`` else ``pass2``, then the causal
    mask (``-inf`` where ``j > i``).  Source: ``bojone/rerope`` rerope_patch.py, leaky_rerope_patch.py."""
    func = "rerope_scores_two_pass"
    qa, ka = _qk(func, q, k)
    w, lk = _rerope_args(func, window, leak)
    T, S = qa.shape[-2], ka.shape[-2]
    iq = _pos(q_positions, T, func, "q_positions", np.arange(S - T, S)).astype(np.float64)
    jk = _pos(k_positions, S, func, "k_positions", np.arange(S)).astype(np.float64)
    kw = {"base": base, "layout": layout}
    a1 = rope_at(qa, iq, **kw) @ np.swapaxes(rope_at(ka, jk, **kw), -1, -2)
    if math.isfinite(lk):
        a2 = rope_at(qa, (iq - w) / lk + w, **kw) @ np.swapaxes(rope_at(ka, jk / lk, **kw), -1, -2)
    else:
        a2 = rope_at(qa, np.full(T, w), **kw) @ np.swapaxes(ka, -1, -2)
    d = iq[:, None] - jk[None, :]
    return np.where(d < 0, -np.inf, np.where(np.abs(d) < w, a1, a2))


def rerope_decode_scores(q: Any, k_cache: Any, window: float, *, leak: float = math.inf, base: float = 10000.0,
                         layout: str = "half", position: int | None = None, k_positions: Any = None) -> np.ndarray:
    """Decode step: q [..., 1, D] at ``position`` (default S-1) left unrotated, each cached (unrotated) key
    rotated by ``-P_ij``; scores [..., 1, S] (``-inf`` for keys after the query).  Source: Su
    kexue.fm/archives/9708 (decode); rerope_patch.py ``(position_ids[:, -1] - position_ids).clip(max=window)``."""
    func = "rerope_decode_scores"
    qa, ka = _qk(func, q, k_cache)
    require(qa.shape[-2] == 1, func, "q", "a single query [..., 1, D]", f"shape {qa.shape}")
    w, lk = _rerope_args(func, window, leak)
    S = ka.shape[-2]
    jk = _pos(k_positions, S, func, "k_positions", np.arange(S)).astype(np.float64)
    i = float(S - 1 if position is None else position)
    P = rerope_relative_positions(i, jk, w, lk)
    kr = rope_at(ka, -np.where(np.isnan(P), 0.0, P), base=base, layout=layout)
    s = qa @ np.swapaxes(kr, -1, -2)
    return np.where(np.isnan(P)[None, :], -np.inf, s)


def rerope_decode_scores_table(q: Any, k_cache: Any, window: int, *, leak: float = math.inf,
                               base: float = 10000.0, layout: str = "half") -> np.ndarray:
    """The decode step as ``bojone/rerope`` builds it, for a query at position S-1 over keys 0..S-1: the
    relative positions ``r = i - j`` index a cos/sin table: ReRoPE ``table[min(r, w)]`` of plain RoPE; Leaky
    (integer k) ``cat(table[:w], table2[w + w(k-1):])`` with ``table2`` at positions ``t/k``; keys rotated by
    ``-angle``.  Source: leaky_rerope_patch.py (``offset = window * (scaling_factor - 1)``)."""
    func = "rerope_decode_scores_table"
    qa, ka = _qk(func, q, k_cache)
    w, lk = _rerope_args(func, window, leak)
    require(float(w).is_integer(), func, "window", "an integer (table index)", repr(window))
    require(not math.isfinite(lk) or float(lk).is_integer(), func, "leak", "an integer or math.inf (table)",
            repr(leak))
    S, D, wi = ka.shape[-2], ka.shape[-1], int(w)
    theta = scaled_frequencies(D, base)
    r = (S - 1) - np.arange(S)
    if not math.isfinite(lk):
        tab_pos = np.arange(max(S, wi + 1), dtype=np.float64)
        ang = tab_pos[np.minimum(r, wi)][:, None] * theta
    else:
        ki = int(lk)
        off = wi * (ki - 1)
        t1 = np.arange(S, dtype=np.float64)[:, None] * theta
        t2 = (np.arange(S + off, dtype=np.float64)[:, None] / ki) * theta  # linear-scaled table (t / k)
        tab = np.concatenate([t1[:wi], t2[wi + off:]], axis=0)
        ang = tab[r]
    kr = _rotate(ka, -ang, *_pairs(D, layout))
    return qa @ np.swapaxes(kr, -1, -2)


def rerope_attention(q: Any, k: Any, v: Any, window: float, *, leak: float = math.inf, base: float = 10000.0,
                     layout: str = "half", scale: float | None = None, logn_max_len: int | None = None) -> np.ndarray:
    """Causal (Leaky) ReRoPE attention ``softmax(scale * a) V`` [..., T, Dv] with ``a`` from
    :func:`rerope_scores` (queries end-aligned); optional log-n factor on q (:func:`logn_scale` at the query
    positions, ``max_len = logn_max_len``).  Source: Su kexue.fm/archives/9708; rerope_patch.py."""
    func = "rerope_attention"
    qa, ka = _qk(func, q, k)
    va = as_float64(v, func, "v")
    require(va.shape[:-1] == ka.shape[:-1], func, "v", f"of shape [..., S={ka.shape[-2]}, Dv]", f"shape {va.shape}")
    T, S = qa.shape[-2], ka.shape[-2]
    if logn_max_len is not None:
        qa = qa * logn_scale(np.arange(S - T, S), logn_max_len)[:, None]
    a = rerope_scores(qa, ka, window, leak=leak, base=base, layout=layout)
    a = a * (1.0 / math.sqrt(qa.shape[-1]) if scale is None else scale)
    a = a - np.max(a, axis=-1, keepdims=True)
    p = np.exp(a)
    p = p / p.sum(-1, keepdims=True)
    return p @ va


def rerope_attention_vjp(q: Any, k: Any, v: Any, grad_o: Any, window: float, *, leak: float = math.inf,
                         base: float = 10000.0, layout: str = "half",
                         scale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VJP of :func:`rerope_attention` (no log-n factor) with respect to (q, k, v), layouts as the inputs.

    ``dV = P^T dO``; ``dA = scale P (dO V^T - rowsum(dO O))``; with ``c_ij = conj(z(k_j)) e^{i P_ij theta}`` and
    ``w_ij = z(q_i) e^{i P_ij theta}`` per pair: ``dq_a = sum_j dA_ij Re c_ij``, ``dq_b = -sum_j dA_ij Im c_ij``,
    ``dk_a = sum_i dA_ij Re w_ij``, ``dk_b = sum_i dA_ij Im w_ij`` (a_ij = Re z(q_i) c_ij = Re w_ij conj z(k_j)).
    Source: differentiation of the direct definition (Su kexue.fm/archives/9708)."""
    func = "rerope_attention_vjp"
    qa, ka = _qk(func, q, k)
    va = as_float64(v, func, "v")
    g = as_float64(grad_o, func, "grad_o")
    w, lk = _rerope_args(func, window, leak)
    T, S, D = qa.shape[-2], ka.shape[-2], qa.shape[-1]
    sc = 1.0 / math.sqrt(D) if scale is None else float(scale)
    a = rerope_scores(qa, ka, w, leak=lk, base=base, layout=layout) * sc
    p = np.exp(a - np.max(a, axis=-1, keepdims=True))
    p = p / p.sum(-1, keepdims=True)
    o = p @ va
    dv = np.swapaxes(p, -1, -2) @ g
    dA = sc * p * (g @ np.swapaxes(va, -1, -2) - np.sum(g * o, -1, keepdims=True))
    P = rerope_relative_positions(np.arange(S - T, S)[:, None], np.arange(S)[None, :], w, lk)
    ph = np.exp(1j * np.where(np.isnan(P), 0.0, P)[..., None] * scaled_frequencies(D, base))  # [T, S, P]
    ia, ib = _pairs(D, layout)
    zq = qa[..., ia] + 1j * qa[..., ib]
    zk = ka[..., ia] + 1j * ka[..., ib]
    cq = np.einsum("...ts,...sp,tsp->...tp", dA, np.conj(zk), ph)
    wk = np.einsum("...ts,...tp,tsp->...sp", dA, zq, ph)
    dq, dk = np.zeros_like(qa), np.zeros_like(ka)
    dq[..., ia], dq[..., ib] = cq.real, -cq.imag
    dk[..., ia], dk[..., ib] = wk.real, wk.imag
    return dq, dk, dv


# -- RoPE-2D, M-RoPE and multimodal position assignment -------------------------------------------------------------

def _rope_axes(x: np.ndarray, coords: np.ndarray, axis: np.ndarray, theta: np.ndarray, ia: np.ndarray,
               ib: np.ndarray) -> np.ndarray:
    ang = coords[:, axis] * theta[None, :]  # [T, P]
    return _rotate(x, ang, ia, ib)


def _coords(func: str, coords: Any, T: int, A: int) -> np.ndarray:
    c = np.asarray(coords, np.float64)
    require(c.shape == (T, A) and np.all(np.isfinite(c)), func, "coords", f"finite reals of shape [T={T}, {A}]",
            f"shape {c.shape}")
    return c


def rope_2d(x: Any, coords: Any, *, base: float = 10000.0, layout: str = "interleaved",
            pairing: str = "interleaved") -> np.ndarray:
    """RoPE-2D ``R_{x,y} = diag(R_x, R_y)`` of x [..., T, D] at coordinates [T, 2].

    ``layout="interleaved"`` (Su's preferred (b)): frequency pair p (``theta_p = b^(-2p/D)``, features from
    ``rope_pairs(D, pairing)``) takes axis ``p mod 2``, so ``R_{n,n}`` is 1-D RoPE exactly.
    ``layout="split"`` (a): the first D/2 features are 1-D RoPE (dim D/2, frequencies ``b^(-4i/D)``) at the
    first coordinate, the last D/2 at the second; at ``(n, n)`` this is 1-D RoPE of dim D/2 on each half, not
    1-D RoPE of dim D.  Source: Su kexue.fm/archives/8397, 10040."""
    func = "rope_2d"
    a = _x(x, func)
    T, D = a.shape[-2:]
    c = _coords(func, coords, T, 2)
    require(layout in ("interleaved", "split"), func, "layout", "'interleaved' or 'split'", repr(layout))
    if layout == "interleaved":
        ia, ib = _pairs(D, pairing)
        theta = scaled_frequencies(D, base)
        return _rope_axes(a, c, np.arange(D // 2) % 2, theta, ia, ib)
    require(D % 4 == 0, func, "x", "of head dim D divisible by 4 for the split layout", f"D={D}")
    h = D // 2
    ia, ib = _pairs(h, pairing)
    theta = scaled_frequencies(h, base)
    out = _rope_axes(a, c, np.zeros(h // 2, np.int64), theta, ia, ib)
    return _rope_axes(out, c, np.ones(h // 2, np.int64), theta, ia + h, ib + h)


def mrope(x: Any, coords: Any, *, sections: tuple[int, ...] = (16, 24, 24), base: float = 10000.0,
          layout: str = "half") -> np.ndarray:
    """Qwen2-VL multimodal RoPE of x [..., T, D] at (t, h, w) coordinates [T, 3]: frequency pair p of 1-D RoPE
    (``theta_p = b^(-2p/D)``) takes axis a when p falls in section a (``sum(sections) = D/2``, HF default
    [16, 24, 24] for D = 128, pairs in the rotate-half layout).  Text tokens (t = h = w = n) get 1-D RoPE.
    Source: Wang et al. 2024 (Qwen2-VL, arXiv:2409.12191) section 2.1; HF transformers
    ``apply_multimodal_rotary_pos_emb`` (``mrope_section``)."""
    func = "mrope"
    a = _x(x, func)
    T, D = a.shape[-2:]
    c = _coords(func, coords, T, 3)
    require(len(sections) == 3 and all(int(s) >= 0 for s in sections) and sum(sections) == D // 2, func,
            "sections", f"three non-negative ints summing to D/2 = {D // 2}", repr(sections))
    axis = np.repeat(np.arange(3), sections)
    return _rope_axes(a, c, axis, scaled_frequencies(D, base), *_pairs(D, layout))


def _segments(func: str, segments: Any, image_len: int) -> list[tuple[Any, ...]]:
    segs = list(segments)
    for s in segs:
        ok = isinstance(s, tuple) and len(s) >= 2 and (
            (s[0] == "text" and len(s) == 2) or (s[0] == "image" and len(s) == image_len))
        require(ok and all(isinstance(v, int | np.integer) and v >= 1 for v in s[1:]), func, "segments",
                f"tuples ('text', n) or ('image', {', '.join(['t', 'h', 'w'][3 - (image_len - 1):])}) of ints >= 1",
                repr(s))
    return segs


def rope_tie_positions(segments: Any) -> np.ndarray:
    """RoPE-Tie (post 10040) 2-D positions [N, 2] of a sequence of ``("text", n)`` and ``("image", h, w)``
    segments: text token n gets (n, n); an image after text ending at (L, L) gives patch (row r = 1..h,
    column c = 1..w, row-major) ``(L + r(w+1), L + c(h+1))``; the next text starts at ``L + (w+1)(h+1)``.
    Both gaps (text -> first patch, last patch -> next text) are (w+1, h+1).  The first token of the
    sequence sits at 0 (L = -1 before it).  Source: Su kexue.fm/archives/10040."""
    out: list[np.ndarray] = []
    L = -1
    for s in _segments("rope_tie_positions", segments, 3):
        if s[0] == "text":
            n = np.arange(L + 1, L + 1 + s[1], dtype=np.float64)
            out.append(np.stack([n, n], 1))
            L = L + s[1]
        else:
            h, w = s[1], s[2]
            r, c = np.meshgrid(np.arange(1, h + 1), np.arange(1, w + 1), indexing="ij")
            out.append(np.stack([L + r.ravel() * (w + 1), L + c.ravel() * (h + 1)], 1).astype(np.float64))
            L = L + (w + 1) * (h + 1) - 1  # the next text token sits at L + (w+1)(h+1)
    return np.concatenate(out, 0) if out else np.zeros((0, 2))


def rope_tv_positions(segments: Any) -> np.ndarray:
    """RoPE-TV / Tie-v2 (post 10352) positions [N, 2]: patch (r, c) of an h x w image after text ending at
    (L, L) gets ``(L + (wh - h)/2 + r, L + (wh - w)/2 + c)``; the next text starts at ``L + wh + 1``; both gaps
    are ``((wh-h)/2 + 1, (wh-w)/2 + 1)`` (half-integers allowed).  Source: Su kexue.fm/archives/10352."""
    out: list[np.ndarray] = []
    L = -1.0
    for s in _segments("rope_tv_positions", segments, 3):
        if s[0] == "text":
            n = L + 1 + np.arange(s[1], dtype=np.float64)
            out.append(np.stack([n, n], 1))
            L = L + s[1]
        else:
            h, w = s[1], s[2]
            r, c = np.meshgrid(np.arange(1, h + 1), np.arange(1, w + 1), indexing="ij")
            b1, b2 = L + (w * h - h) / 2, L + (w * h - w) / 2
            out.append(np.stack([b1 + r.ravel(), b2 + c.ravel()], 1).astype(np.float64))
            L = L + w * h
    return np.concatenate(out, 0) if out else np.zeros((0, 2))


def rope_tv_video_positions(segments: Any) -> np.ndarray:
    """RoPE-TV for video (post 10352) 3-D positions [N, 3] of ``("text", n)`` and ``("video", t, h, w)`` segments:
    text token n at (n, n, n); frame-patch (tau, r, c) (1-based, (t, h, w) row-major) of a video after text ending at
    (L, L, L) gets ``(beta_1 + tau, beta_2 + r, beta_3 + c)`` with ``beta_k = L + (wht - size_k)/2`` (size = t, h,
    w); the next text starts at ``L + wht + 1``; both gaps are ``((wht - size_k)/2 + 1)_k``.
    Source: Su kexue.fm/archives/10352."""
    out: list[np.ndarray] = []
    L = -1.0
    for s in segments:
        ok = isinstance(s, tuple) and ((s[0] == "text" and len(s) == 2) or (s[0] == "video" and len(s) == 4))
        require(ok and all(isinstance(v, int | np.integer) and v >= 1 for v in s[1:]), "rope_tv_video_positions",
                "segments", "tuples ('text', n) or ('video', t, h, w) of ints >= 1", repr(s))
        if s[0] == "text":
            n = L + 1 + np.arange(s[1], dtype=np.float64)
            out.append(np.stack([n, n, n], 1))
            L = L + s[1]
        else:
            sizes = np.array(s[1:], dtype=np.float64)
            vol = float(np.prod(sizes))
            g = np.stack(np.meshgrid(*[np.arange(1, int(z) + 1) for z in sizes], indexing="ij"), -1).reshape(-1, 3)
            out.append(L + (vol - sizes) / 2 + g)
            L = L + vol
    return np.concatenate(out, 0) if out else np.zeros((0, 3))


def mrope_positions(segments: Any) -> np.ndarray:
    """Qwen2-VL M-RoPE (t, h, w) positions [N, 3] of ``("text", n)`` and ``("image", t, h, w)`` segments (grid
    after the spatial merge): text continues 1-D on all three axes; a vision segment starting at ``s`` (the
    previous maximum + 1) gets ``(s + t_idx, s + h_idx, s + w_idx)`` in (t, h, w) row-major order; the next text
    starts at the maximum coordinate + 1.  Source: Qwen2-VL (arXiv:2409.12191); HF transformers Qwen2-VL
    ``get_rope_index`` (``st_idx = llm_pos_ids_list[-1].max() + 1``)."""
    out: list[np.ndarray] = []
    nxt = 0
    for s in _segments("mrope_positions", segments, 4):
        if s[0] == "text":
            n = nxt + np.arange(s[1], dtype=np.float64)
            out.append(np.stack([n, n, n], 1))
        else:
            t, h, w = s[1], s[2], s[3]
            g = np.stack(np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 3)
            out.append(nxt + g.astype(np.float64))
        nxt = int(out[-1].max()) + 1
    return np.concatenate(out, 0) if out else np.zeros((0, 3))


# -- base lower bound (Men et al. 2024; Su kexue.fm/archives/10122) -------------------------------------------------

# L -> (paper's value as transcribed in post 10122, Su's value in the post)
PAPER_BASE_TABLE: dict[int, tuple[float, float]] = {
    1000: (4.3e3, 4.3e3), 2000: (1.6e4, 1.2e4), 4000: (2.7e4, 2.7e4), 8000: (8.4e4, 8.4e4),
    16000: (3.1e5, 2.3e5), 32000: (6.4e5, 6.3e5), 64000: (2.1e6, 2.1e6), 128000: (7.8e6, 4.9e6),
    256000: (3.6e7, 2.4e7), 512000: (6.4e7, 5.8e7), 1000000: (5.1e8, 6.5e7)}


def rope_base_criterion(base: Any, m: Any, d: int = 128, dtype: str = "float64") -> np.ndarray:
    """``B_{m,theta} = sum_{i<d/2} cos(m base^(-2i/d))`` (broadcast over base and m; the sum over the last
    new axis), evaluated in ``dtype`` ("float64" or "float32": theta, m theta, cos and the sum all in float32).
    Source: Men et al. 2024 (arXiv:2405.14591) eq. for B_{m,theta}; Su kexue.fm/archives/10122."""
    require(dtype in ("float64", "float32"), "rope_base_criterion", "dtype", "'float64' or 'float32'", dtype)
    require(isinstance(d, int | np.integer) and d >= 2 and d % 2 == 0, "rope_base_criterion", "d",
            "an even int >= 2", d)
    ft = np.float64 if dtype == "float64" else np.float32
    b = np.asarray(base, np.float64)[..., None]
    theta = np.power(b, -2.0 * np.arange(d // 2) / d).astype(ft)
    mm = np.asarray(m, np.float64)[..., None].astype(ft)
    return np.cos(mm * theta).sum(-1, dtype=ft).astype(np.float64)


def rope_base_first_violation(bases: Any, L: int, d: int = 128, dtype: str = "float64",
                              chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """For each base: the first m < L with ``B_{m,theta} < 0`` (-1 if none) and ``min_{m<L} B`` over the m
    evaluated (all of them when no violation).  Vectorised over bases and ascending chunks of m (stops a base
    at its first violation).  Source: as :func:`rope_base_criterion`."""
    bs = np.atleast_1d(np.asarray(bases, np.float64))
    first = np.full(bs.shape, -1, np.int64)
    low = np.full(bs.shape, np.inf)
    alive = np.ones(bs.shape, bool)
    start, size = 0, 1024
    while start < L and alive.any():
        idx = np.flatnonzero(alive)
        step = max(1, min(size, chunk // max(1, idx.size * (d // 2) // 64)))
        m = np.arange(start, min(L, start + step))
        f = rope_base_criterion(bs[idx][:, None], m[None, :], d, dtype)  # [nb, M]
        low[idx] = np.minimum(low[idx], f.min(1))
        neg = f < 0
        hit = neg.any(1)
        first[idx[hit]] = m[np.argmax(neg[hit], 1)]
        alive[idx[hit]] = False
        start += step
        size *= 2
    return first, low


@dataclass(frozen=True)
class BaseBound:
    """Result of :func:`rope_base_lower_bound`: the smallest feasible base found, the first violating m just
    below it (at ``base * (1 - rel_step)`` for the exclusion scan, ``base - step`` for the grid scan), the margin
    ``min_{m<L} B`` at the base, the resolution and the precision."""

    L: int
    base: float
    first_violation: int
    margin: float
    step: float
    dtype: str
    method: str
    evaluations: int


def _exclusion_step(b: float, L: int, d: int, dtype: str, chunk: int) -> tuple[int, float, float]:
    """At base b: (the first violating m or -1, min B over the m evaluated, the largest step in u = ln b over which
    every base stays infeasible).  With ``c_i = (2i/d) m theta_i``, ``B' = dB/du = sum_i c_i sin(m theta_i)`` and
    ``|B''| <= M2 = sum_i c_i^2 + sum_i (2i/d) c_i`` for every b' >= b (c_i decreases in b), so
    ``B(b e^D, m) <= B + B' D + M2 D^2 / 2 < 0`` for ``D < (-B' + sqrt(B'^2 - 2 M2 B)) / M2`` when ``B < 0``
    (Taylor with the remainder bounded); the best such D over the violating m of the first violating chunk."""
    i = np.arange(d // 2)
    w = 2.0 * i / d
    th = np.power(float(b), -w)
    # rounding of the evaluated float64 sum; float32 is the criterion as evaluated (a search of the float32
    # criterion, not a certificate)
    slack = 4 * d * 2.0**-52 if dtype == "float64" else 0.0
    start, size, low = 0, 1024, np.inf
    while start < L:
        m = np.arange(start, min(L, start + max(1, min(size, chunk))))
        f = rope_base_criterion(b, m, d, dtype)
        low = min(low, float(f.min()))
        neg = np.flatnonzero(f < 0)
        if neg.size:
            a = m[neg].astype(np.float64)[:, None] * th[None, :]
            c = w * a
            fp = (np.sin(a) * c).sum(1)
            M2 = (c * c).sum(1) + (w * c).sum(1)
            fv = np.minimum(f[neg] + slack, 0.0)
            gain = (-fp + np.sqrt(fp * fp - 2 * M2 * fv)) / np.where(M2 > 0, M2, 1.0)
            return int(m[neg[0]]), low, float(min(0.5, 0.999 * gain.max()))
        start += m.size
        size *= 2
    return -1, low, 0.0


def rope_base_lower_bound(L: int, d: int = 128, *, method: str = "exclusion", levels: int = 5,
                          rel_step: float = 1e-6, dtype: str = "float64", start: float | None = None) -> BaseBound:
    """Smallest base b with ``B_{m,theta} = sum_{i<d/2} cos(m b^(-2i/d)) >= 0`` for every m < L (Men et al. 2024).

    The feasible set is not monotone in b and has narrow windows (at L = 1000: [4207, 4331) then feasible again
    only from 6019), so bisection is invalid and a coarse grid can jump over a window.

    * ``method="exclusion"`` (default): scan upward from ``start`` (default 2) in u = ln b; at an infeasible b a
      violating m stays violating over ``[b, b e^D)`` by Taylor's theorem with the second derivative bounded
      (``_exclusion_step``); the scan jumps by the best such D among the violating m of the first violating
      chunk, at least ``rel_step``.  The result is the first
      feasible base met: no base below it is feasible except in windows narrower than ``rel_step`` (relative),
      up to the rounding of the evaluated sums.
    * ``method="grid"``: the nested coarse-to-fine grid of the spec (level 1 ``B linspace(0,1,11)[1:]``,
      ``B = 1000 L``; each level rescans the last step ten times finer): fast, but it returns the first feasible
      point of a grid that may have jumped over windows.

    Vectorised over m in ascending chunks (a base stops at its first violation).
    Source: Men et al. 2024 (arXiv:2405.14591) section 3; Su kexue.fm/archives/10122."""
    func = "rope_base_lower_bound"
    require(isinstance(L, int | np.integer) and L >= 1, func, "L", "an int >= 1", repr(L))
    require(method in ("exclusion", "grid"), func, "method", "'exclusion' or 'grid'", repr(method))
    require(isinstance(levels, int) and 1 <= levels <= 8, func, "levels", "an int in [1, 8]", repr(levels))
    require(0 < rel_step < 0.1, func, "rel_step", "in (0, 0.1)", repr(rel_step))
    L, chunk, evals = int(L), 1 << 16, 0
    if method == "exclusion":
        b = float(2.0 if start is None else start)
        require(b > 1, func, "start", "a base > 1", repr(start))
        prev_m = -1
        while True:
            m, low, step = _exclusion_step(b, L, d, dtype, chunk)
            evals += 1
            if m < 0:
                first, _ = rope_base_first_violation([b * (1 - rel_step)], L, d, dtype)
                return BaseBound(L, b, int(first[0]) if evals > 1 else prev_m, low, rel_step, dtype, method, evals)
            prev_m = m
            b = b * math.exp(max(step, rel_step))
    B = float(1000 * L if start is None else start)
    lo, h = 0.0, B / 10
    g = B
    for _level in range(levels):
        grid = lo + h * np.arange(1, 11)
        first, _ = rope_base_first_violation(grid, L, d, dtype)
        evals += grid.size
        ok = np.flatnonzero(first < 0)
        require(ok.size > 0, func, "start", f"a feasible base (none in ({lo:.6g}, {grid[-1]:.6g}])", B)
        g = float(grid[ok[0]])
        lo, h = g - h, h / 10
    h *= 10
    below, _ = rope_base_first_violation([g - h], L, d, dtype)
    _, low = rope_base_first_violation([g], L, d, dtype)
    return BaseBound(L, g, int(below[0]), float(low[0]), h, dtype, method, evals)


def _fmt(b: float) -> str:
    return f"{b:.2g}" if b < 1e3 else f"{b:.1e}".replace("e+0", "e").replace("e+", "e")


def rope_base_table(lengths: Any = None, d: int = 128, *, float32: bool = True, grid: bool = True) -> str:
    """Markdown table: per L, the paper's value and Su's (post 10122; looked up at 1000 k for L = 1000 k or
    1024 k), our float64 exclusion-scan minimum and its margin, the float32 one, the nested-grid result, whether
    each published value satisfies the float64 criterion (``ok``, or the first violating m) and ``L / x0``
    (x0 = 0.6165... the first zero of Ci).  Source: Men et al. 2024; Su kexue.fm/archives/10122."""
    Ls = sorted(PAPER_BASE_TABLE) if lengths is None else list(lengths)
    x0 = 0.6165054856207162
    rows = ["| L | paper | Su (post) | ours float64 | margin | ours float32 | nested grid | paper under float64 "
            "| Su under float64 | L/x0 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for L in Ls:
        pv, sv = PAPER_BASE_TABLE.get(L) or PAPER_BASE_TABLE.get(L // 1024 * 1000, (math.nan, math.nan))
        r64 = rope_base_lower_bound(L, d)
        r32 = rope_base_lower_bound(L, d, dtype="float32") if float32 else None
        rg = rope_base_lower_bound(L, d, method="grid") if grid else None

        def verdict(b: float, L: int = L) -> str:
            if not math.isfinite(b):
                return "-"
            f, _ = rope_base_first_violation([b], L, d)
            return "ok" if f[0] < 0 else f"violates at m = {f[0]}"

        rows.append(f"| {L} | {_fmt(pv)} | {_fmt(sv)} | {r64.base:.6g} | {r64.margin:.2g} | "
                    f"{'-' if r32 is None else f'{r32.base:.6g}'} | {'-' if rg is None else f'{rg.base:.6g}'} | "
                    f"{verdict(pv)} | {verdict(sv)} | {L / x0:.6g} |")
    return "\n".join(rows)


# -- long-range decay (RoFormer section 3.4.3) ----------------------------------------------------------------------

def rope_decay_indicator(r: Any, d: int = 128, base: float = 10000.0) -> np.ndarray:
    """RoFormer's decay indicator ``(1/(d/2)) sum_{j=1}^{d/2} |S_j|``, ``S_j = sum_{i<j} exp(i r theta_i)``, at
    relative distances r (any shape).  The post quotes 32.5, 17.95, 10.23, 6.54 at r = 0, 10, 100, 256 (d = 128).
    Source: Su et al. 2021 (RoFormer) section 3.4.3, fig. 2; Su kexue.fm/archives/8265."""
    theta = scaled_frequencies(d, base)
    rr = np.asarray(r, np.float64)[..., None]
    S = np.cumsum(np.exp(1j * rr * theta), -1)
    return np.abs(S).sum(-1) / (d // 2)


def rope_abel_terms(h: Any, r: float, base: float = 10000.0) -> tuple[complex, complex, float]:
    """For complex h [d/2]: ``(sum_i h_i e^{i r theta_i}``, its Abel summation ``sum_{j=1}^{d/2} S_j (h_{j-1} -
    h_j)`` with ``h_{d/2} = 0``, and the bound ``max_j |h_j - h_{j-1}| sum_j |S_j|)``.  Source: Su et al. 2021
    (RoFormer) eq. 36-37."""
    hh = np.asarray(h, np.complex128)
    d = 2 * hh.size
    theta = scaled_frequencies(d, base)
    e = np.exp(1j * float(r) * theta)
    S = np.cumsum(e)  # S_1..S_{d/2}
    dh = hh - np.append(hh[1:], 0.0)  # h_{j-1} - h_j, j = 1..d/2
    return complex(np.sum(hh * e)), complex(np.sum(S * dh)), float(np.abs(dh).max() * np.abs(S).sum())


if __name__ == "__main__":  # python -m veriformer.reference.positions [L ...] > docs/rope_base_bound.md
    import sys

    Ls = [int(a) for a in sys.argv[1:]] or None
    print("# RoPE base lower bound (Men et al. 2024; Su kexue.fm/archives/10122)\n")
    print("Generated by `python -m veriformer.reference.positions L ...` (d = 128).  'ours': the exclusion scan of "
          "`rope_base_lower_bound` (certified up to windows narrower than 1e-6 relative); 'nested grid': the "
          "coarse-to-fine grid (B = 1000 L, 5 levels), which can jump over feasible windows; 'under float64': "
          "the first m < L where the published base violates B_{m,theta} >= 0.\n")
    print(rope_base_table(Ls))
