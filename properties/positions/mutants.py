"""Planted bugs of the positions family: oracle mutants that the family's laws must catch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

# -- scaling -------------------------------------------------------------------------------------------------------


@mutant("positions.ntk_base_times_k", family="positions", replaces="scaled_frequencies",
        caught_by=["positions.scaling_lowest_frequency_is_pi", "positions.beta_base_reading"])
def ntk_times_k(rotary_dim: int, base: float = 10000.0, scaling: Any = None, **kw: Any) -> Any:
    """bloc97-NTK implemented as ``b' = b k`` (the exponent r/(r-2) dropped): the lowest frequency misses PI's."""
    if scaling and scaling.get("type") == "ntk":
        scaling = {**scaling, "type": "ntk_base"}
    return ref.scaled_frequencies(rotary_dim, base, scaling, **kw)


@mutant("positions.mixed_counts_from_zero", family="positions", replaces="scaled_frequencies",
        caught_by=["positions.mixed_limits", "positions.scaling_lowest_frequency_is_pi"])
def mixed_from_zero(rotary_dim: int, base: float = 10000.0, scaling: Any = None, **kw: Any) -> Any:
    """Mixed base with ``exp(-a i^g)`` instead of ``exp(-a (i+1)^g)`` (digits counted from 0)."""
    th = ref.scaled_frequencies(rotary_dim, base, scaling, **kw)
    if scaling and scaling.get("type") in ("mixed", "ntk_fixed") and kw.get("backend") is None:
        g = float(scaling.get("gamma", 1.0))
        half = rotary_dim // 2
        a = math.log(scaling["factor"]) / half**g
        i = np.arange(half, dtype=float)
        return th * np.exp(a * ((i + 1) ** g - np.where(i == 0, 0.0, i**g)))
    return th


@mutant("positions.mixed_factors_zero_pow_zero_is_one", family="positions", replaces="mixed_base_factors",
        caught_by=["positions.mixed_base_factors"])
def mixed_factors_numpy_pow(factor: float, gamma: float, half: int) -> np.ndarray:
    """Per-digit factors with NumPy's ``0.0 ** 0 = 1``: at gamma = 0 the first factor is 1, the product 1, not k."""
    m = np.arange(1, half + 1, dtype=float)
    a = math.log(factor) / half**gamma
    return np.exp(a * (m**gamma - (m - 1) ** gamma))


@mutant("positions.linear_scales_up", family="positions", replaces="rope",
        caught_by=["positions.linear_is_position_interpolation"])
def linear_scales_up(x: Any, positions: Any = None, *, scaling: Any = None, **kw: Any) -> np.ndarray:
    """"linear" multiplies the positions by k instead of dividing (factor read as a compression ratio)."""
    if scaling and scaling.get("type") == "linear":
        T = np.shape(x)[-2]
        pos = np.arange(T) if positions is None else np.asarray(positions)
        return ref.rope(x, pos * int(scaling["factor"]) if float(scaling["factor"]).is_integer() else pos, **kw)
    return ref.rope(x, positions, scaling=scaling, **kw)


@mutant("positions.scaled_rope_position_dependent_factor", family="positions", replaces="rope",
        caught_by=["positions.scaled_rope_is_relative"])
def position_dependent(x: Any, positions: Any = None, *, scaling: Any = None, **kw: Any) -> np.ndarray:
    """Scaling applied per token as a dynamic factor of the token's own position (each token its own base)."""
    if scaling is None:
        return ref.rope(x, positions, **kw)
    xa = np.asarray(x, np.float64)
    pos = np.arange(xa.shape[-2]) if positions is None else np.asarray(positions)
    out = np.empty_like(xa)
    for t, p in enumerate(pos):
        sc = {"type": "dynamic", "factor": float(scaling["factor"]) + 1.0, "original_max_position": 1,
              "seq_len": int(abs(p)) + 1}
        out[..., t:t + 1, :] = ref.rope(xa[..., t:t + 1, :], np.array([p]), scaling=sc, **kw)
    return out


@mutant("positions.dynamic_without_minus_k_minus_1", family="positions", replaces="scaled_frequencies",
        caught_by=["positions.dynamic_ntk"])
def dynamic_wrong(rotary_dim: int, base: float = 10000.0, scaling: Any = None, **kw: Any) -> Any:
    """Dynamic NTK with ``b (k s / L)^(r/(r-2))`` (the ``- (k - 1)`` dropped): not plain RoPE at s = L."""
    if scaling and scaling.get("type") == "dynamic":
        s = max(int(scaling.get("seq_len", scaling["original_max_position"])), scaling["original_max_position"])
        kp = scaling["factor"] * s / scaling["original_max_position"]
        r = rotary_dim
        return ref.scaled_frequencies(r, base * kp ** (r / (r - 2)) if r > 2 else base, None, **kw)
    return ref.scaled_frequencies(rotary_dim, base, scaling, **kw)


@mutant("positions.float32_scaled_frequencies", family="positions", replaces="scaled_frequencies",
        caught_by=["positions.scaling_mpmath_certificate"])
def float32_freqs(rotary_dim: int, base: float = 10000.0, scaling: Any = None, **kw: Any) -> Any:
    """Scaled frequencies rounded to float32 (as HF computes inv_freq), presented as the float64 oracle."""
    th = ref.scaled_frequencies(rotary_dim, base, scaling, **kw)
    if kw.get("backend") is None:
        return th.astype(np.float32).astype(np.float64)
    return th


@mutant("positions.logn_of_n_not_n_plus_1", family="positions", replaces="logn_scale",
        caught_by=["positions.logn_scale"])
def logn_wrong(positions: Any, max_len: int) -> np.ndarray:
    """log-n factor from the 0-based position, ``log(max(n, 1)) / log L`` (the code's ``position_ids + 1``
    missed)."""
    p = np.asarray(positions, np.float64)
    return np.maximum(1.0, np.log(np.maximum(p, 1.0)) / math.log(max_len))


# -- base bound and decay ------------------------------------------------------------------------------------------


@mutant("positions.base_bound_coarse_grid", family="positions", replaces="rope_base_lower_bound",
        caught_by=["positions.base_bound_is_first_feasible"])
def base_bound_grid(L: int, d: int = 128, **kw: Any) -> Any:
    """The base bound by the nested coarse grid alone (it can jump over a narrow feasible window)."""
    kw.pop("method", None)
    return ref.rope_base_lower_bound(L, d, method="grid", **kw)


@mutant("positions.base_criterion_missing_factor_2", family="positions", replaces="rope_base_criterion",
        caught_by=["positions.base_criterion_is_the_expectation"])
def criterion_no_2(base: Any, m: Any, d: int = 128, dtype: str = "float64") -> np.ndarray:
    """``theta_i = b^(-i/d)`` (the 2 of 2i/d dropped) in the criterion."""
    return ref.rope_base_criterion(np.asarray(base, float) ** 0.5, m, d, dtype)


@mutant("positions.decay_partial_sums_inclusive", family="positions", replaces="rope_decay_indicator",
        caught_by=["positions.decay_indicator_values"])
def decay_inclusive(r: Any, d: int = 128, base: float = 10000.0) -> np.ndarray:
    """``S_j`` summed over ``i <= j`` instead of ``i < j`` (one term too many)."""
    theta = ref.scaled_frequencies(d, base)
    rr = np.asarray(r, np.float64)[..., None]
    e = np.exp(1j * rr * theta)
    S = np.cumsum(e, -1) + e[..., -1:]
    return np.abs(S).sum(-1) / (d // 2)


@mutant("positions.abel_difference_sign", family="positions", replaces="rope_abel_terms",
        caught_by=["positions.abel_bound"])
def abel_sign(h: Any, r: float, base: float = 10000.0) -> tuple[complex, complex, float]:
    """Abel summation with ``h_j - h_{j-1}`` (sign flipped)."""
    a, b, c = ref.rope_abel_terms(h, r, base)
    return a, -b, c


# -- ReRoPE ---------------------------------------------------------------------------------------------------------


@mutant("positions.rerope_mask_window_minus_1", family="positions", replaces="rerope_scores_two_pass",
        caught_by=["positions.rerope_two_pass_equals_direct"])
def mask_short(q: Any, k: Any, window: float, **kw: Any) -> np.ndarray:
    """The merge mask ``|i - j| < w - 1``: the diagonal ``i - j = w - 1`` taken from pass 2.  (``<= w`` instead of
    ``< w`` is no bug: at ``i - j = w`` both passes give relative position w.)"""
    a = ref.rerope_scores_two_pass(q, k, window, **kw)
    if window < 1:
        return a
    T, S = a.shape[-2], a.shape[-1]
    d = np.arange(S - T, S)[:, None] - np.arange(S)[None, :]
    qa, ka = np.asarray(q, np.float64), np.asarray(k, np.float64)
    leak = kw.get("leak", math.inf)
    lay = {"base": kw.get("base", 10000.0), "layout": kw.get("layout", "half")}
    iq = np.arange(S - T, S, dtype=float)
    if math.isfinite(leak):
        p2 = ref.rope_at(qa, (iq - window) / leak + window, **lay) @ np.swapaxes(
            ref.rope_at(ka, np.arange(S) / leak, **lay), -1, -2)
    else:
        p2 = ref.rope_at(qa, np.full(T, float(window)), **lay) @ np.swapaxes(ka, -1, -2)
    return np.where(d == window - 1, p2, a)


@mutant("positions.rerope_decode_clip_w_minus_1", family="positions", replaces="rerope_decode_scores",
        caught_by=["positions.rerope_decode_equals_last_row"])
def decode_clip(q: Any, k_cache: Any, window: float, **kw: Any) -> np.ndarray:
    """Decode step with the relative positions clipped at w - 1 (the window's last in-window value)."""
    return ref.rerope_decode_scores(q, k_cache, max(window - 1, 0), **kw)


@mutant("positions.leaky_table_offset_wk", family="positions", replaces="rerope_decode_scores_table",
        caught_by=["positions.rerope_decode_equals_last_row"])
def table_offset(q: Any, k_cache: Any, window: int, *, leak: float = math.inf, **kw: Any) -> np.ndarray:
    """Leaky table built with ``offset = w k`` instead of ``w (k - 1)``: positions beyond the window shifted
    by w/k."""
    s = ref.rerope_decode_scores_table(q, k_cache, window, leak=leak, **kw)
    if not math.isfinite(leak) or leak == 1 or window == 0:
        return ref.rerope_decode_scores(q, k_cache, window + 1, leak=leak, **kw)  # (also wrong for ReRoPE)
    return ref.rerope_decode_scores(q, k_cache, window * (1 + 1 / leak), leak=leak, **kw) if window else s


@mutant("positions.leaky_far_branch_without_w", family="positions", replaces="rerope_relative_positions",
        caught_by=["positions.rerope_seam", "positions.leaky_decode_exponent"])
def far_without_w(i: Any, j: Any, window: float, leak: float = math.inf) -> np.ndarray:
    """Leaky far branch ``(i - j)/k`` (no ``w + (i - j - w)/k``): a jump at the seam."""
    P = ref.rerope_relative_positions(i, j, window, leak)
    r = np.asarray(i, np.float64) - np.asarray(j, np.float64)
    if math.isfinite(leak):
        return np.where(r >= window, r / leak, P)
    return np.where(r > window, window + 1.0, P)


@mutant("positions.rerope_rotates_by_plus_p", family="positions", replaces="rerope_scores",
        caught_by=["positions.rerope_limits"])
def plus_p(q: Any, k: Any, window: float, **kw: Any) -> np.ndarray:
    """Direct scores ``q^T R_{+P} k`` (rotation direction flipped)."""
    qa = np.asarray(q, np.float64)
    ka = np.asarray(k, np.float64)
    return ref.rerope_scores(ka, qa, window, **kw).swapaxes(-1, -2) if qa.shape == ka.shape else \
        ref.rerope_scores(qa[..., ::-1], ka, window, **kw)


@mutant("positions.rerope_far_keeps_growing", family="positions", replaces="rerope_scores",
        caught_by=["positions.rerope_flat_beyond_window"])
def far_growing(q: Any, k: Any, window: float, *, leak: float = math.inf, **kw: Any) -> np.ndarray:
    """ReRoPE implemented as Leaky with k = 1000 (positions still move beyond the window)."""
    return ref.rerope_scores(q, k, window, leak=1000.0 if not math.isfinite(leak) else leak, **kw)


# -- RoPE-2D / multimodal ------------------------------------------------------------------------------------------


@mutant("positions.rope2d_coordinates_wrap_at_256", family="positions", replaces="rope_2d",
        caught_by=["positions.rope2d_relative_in_each_axis"])
def wrap256(x: Any, coords: Any, **kw: Any) -> np.ndarray:
    """Coordinates stored as uint8 (wrap modulo 256) before the rotation."""
    return ref.rope_2d(x, np.mod(np.asarray(coords, float), 256.0), **kw)


@mutant("positions.rope2d_split_uses_full_dim_frequencies", family="positions", replaces="rope_2d",
        caught_by=["positions.rope2d_diagonal"])
def split_full_freqs(x: Any, coords: Any, *, layout: str = "interleaved", pairing: str = "interleaved",
                     **kw: Any) -> np.ndarray:
    """Split layout with axis blocks [pairs < D/4 -> x, rest -> y] of the full-dim frequencies (the interleaved
    layout's frequencies assigned in halves)."""
    xa = np.asarray(x, np.float64)
    if layout != "split":
        c = np.asarray(coords, float)
        return ref.rope_2d(xa, c[:, ::-1], layout=layout, pairing=pairing, **kw)  # axes swapped
    D = xa.shape[-1]
    c = np.asarray(coords, float)
    th = ref.scaled_frequencies(D, kw.get("base", 10000.0))
    ia, ib = ref.rope_pairs(D, pairing)
    axis = (np.arange(D // 2) >= D // 4).astype(int)
    ang = c[:, axis] * th
    out = xa.copy()
    out[..., ia] = xa[..., ia] * np.cos(ang) - xa[..., ib] * np.sin(ang)
    out[..., ib] = xa[..., ia] * np.sin(ang) + xa[..., ib] * np.cos(ang)
    return out


@mutant("positions.mrope_frequencies_restart_per_section", family="positions", replaces="mrope",
        caught_by=["positions.mrope_text_is_rope"])
def mrope_restart(x: Any, coords: Any, *, sections: tuple[int, ...] = (16, 24, 24), base: float = 10000.0,
                  layout: str = "half") -> np.ndarray:
    """M-RoPE whose frequencies restart in each section (``theta_p`` indexed within the section)."""
    xa = np.asarray(x, np.float64)
    D = xa.shape[-1]
    c = np.asarray(coords, float)
    th = ref.scaled_frequencies(D, base)
    idx = np.concatenate([np.arange(s) for s in sections])
    axis = np.repeat(np.arange(3), sections)
    ang = c[:, axis] * th[idx]
    ia, ib = ref.rope_pairs(D, layout)
    out = xa.copy()
    out[..., ia] = xa[..., ia] * np.cos(ang) - xa[..., ib] * np.sin(ang)
    out[..., ib] = xa[..., ia] * np.sin(ang) + xa[..., ib] * np.cos(ang)
    return out


@mutant("positions.rope_tie_steps_swapped", family="positions", replaces="rope_tie_positions",
        caught_by=["positions.rope_tie_gaps"])
def tie_swapped(segments: Any) -> np.ndarray:
    """RoPE-Tie with the steps swapped: patch (r, c) at ``(L + r(h+1), L + c(w+1))``."""
    out, L = [], -1
    for s in segments:
        if s[0] == "text":
            n = np.arange(L + 1, L + 1 + s[1], dtype=float)
            out.append(np.stack([n, n], 1))
            L += s[1]
        else:
            h, w = s[1], s[2]
            r, c = np.meshgrid(np.arange(1, h + 1), np.arange(1, w + 1), indexing="ij")
            out.append(np.stack([L + r.ravel() * (h + 1), L + c.ravel() * (w + 1)], 1).astype(float))
            L += (w + 1) * (h + 1) - 1
    return np.concatenate(out, 0)


@mutant("positions.rope_tv_next_text_without_plus_1", family="positions", replaces="rope_tv_positions",
        caught_by=["positions.rope_tie_gaps"])
def tv_no_plus1(segments: Any) -> np.ndarray:
    """RoPE-TV with the next text at ``L + wh`` (the + 1 dropped)."""
    p = ref.rope_tv_positions(segments)
    i, shift = 0, 0.0
    for s in segments:
        n = s[1] if s[0] == "text" else s[1] * s[2]
        p[i:i + n] -= shift
        if s[0] == "image":
            shift += 1.0
        i += n
    return p


@mutant("positions.mrope_next_text_counts_tokens", family="positions", replaces="mrope_positions",
        caught_by=["positions.mrope_positions"])
def mrope_count(segments: Any) -> np.ndarray:
    """M-RoPE whose text after an image continues at the token count (1-D position), not at max + 1."""
    out, i = [], 0
    for s in segments:
        if s[0] == "text":
            n = i + np.arange(s[1], dtype=float)
            out.append(np.stack([n, n, n], 1))
            i += s[1]
        else:
            p = ref.mrope_positions([("text", i), s])[i:] if i else ref.mrope_positions([s])
            out.append(p)
            i += s[1] * s[2] * s[3]
    return np.concatenate(out, 0)


# -- kernel mutants of op rope under scaling= (check(op="rope", scaling=...) must fail) ---------------------------

_NTK = {"type": "ntk", "factor": 8.0}


@mutant("positions.kernel_ignores_scaling", family="positions", op="rope", caught_by=["op:rope"], scaling=_NTK)
def kernel_ignores_scaling(x: Any, positions: Any, *, base: float) -> Any:
    """A kernel configured for NTK scaling that rotates with the plain frequencies."""
    from veriformer.fast.rope import naive

    return naive.rope_careful(x, positions, base=base)


@mutant("positions.kernel_ntk_base_times_k", family="positions", op="rope", caught_by=["op:rope"], scaling=_NTK)
def kernel_ntk_times_k(x: Any, positions: Any, *, base: float) -> Any:
    """NTK implemented as ``base * k`` (exponent d/(d-2) dropped)."""
    from veriformer.fast.rope import naive

    return naive.rope_careful(x, positions, base=base, scaling={"type": "ntk_base", "factor": 8.0})


@mutant("positions.kernel_dynamic_reads_length_not_positions", family="positions", op="rope", caught_by=["op:rope"],
        scaling={"type": "dynamic", "factor": 4.0, "original_max_position": 8})
def kernel_dynamic_length(x: Any, positions: Any, *, base: float) -> Any:
    """Dynamic NTK with seq_len = T (the tensor length) instead of the largest position + 1 (wrong at decode
    offsets)."""
    from veriformer.fast.rope import naive

    sc = {"type": "dynamic", "factor": 4.0, "original_max_position": 8, "seq_len": int(x.shape[-2])}
    return naive.rope_careful(x, positions, base=base, scaling=sc)


# -- kernel mutants of op rerope_attention -------------------------------------------------------------------------


@mutant("positions.kernel_rerope_window_off_by_one", family="positions", op="rerope_attention",
        caught_by=["op:rerope_attention"])
def kernel_rerope_window(q: Any, k: Any, v: Any, window: int, *, leak: float, base: float) -> Any:
    """The window shrunk by one (``|i - j| < w - 1``): the diagonal i - j = w - 1 rectified."""
    from veriformer.fast.positions import naive as pnaive

    if window == 0:
        return pnaive.rerope_attention(q, k, v, window, leak=2.0 if leak == 1.0 else 1.0, base=base)
    return pnaive.rerope_attention(q, k, v, window - 1, leak=leak, base=base)


@mutant("positions.kernel_rerope_plain_rope", family="positions", op="rerope_attention",
        caught_by=["op:rerope_attention"])
def kernel_rerope_plain(q: Any, k: Any, v: Any, window: int, *, leak: float, base: float) -> Any:
    """Plain RoPE attention (the rectification forgotten)."""
    from veriformer.fast.positions import naive as pnaive

    return pnaive.rerope_attention(q, k, v, window, leak=1.0 if leak != 1.0 else 2.0, base=base)


def _wrong_answer_cases() -> list[Any]:
    from veriformer.properties.positions.strategies import ReropeCase
    from veriformer.properties.wrong_answers import LONG

    return [ReropeCase(T=4, S=n, D=16, window=n // 4, leak=16.0, H=1, seed=n) for n in LONG]


def _register_wrong_answers() -> None:
    from veriformer.properties.wrong_answers import wrong_answer_mutants

    wrong_answer_mutants("rerope_attention", family="positions", seq_axis=-2, cases=_wrong_answer_cases())


_register_wrong_answers()


@mutant("positions.yarn_ramp_reversed", family="positions", replaces="scaled_frequencies",
        caught_by=["positions.yarn_frequencies"])
def yarn_reversed(rotary_dim: int, base: float = 10000.0, scaling: Any = None, **kw: Any) -> Any:
    """YaRN with the blend reversed: the fast pairs interpolated, the slow ones kept."""
    if scaling and scaling.get("type") == "yarn" and kw.get("backend") is None:
        th = ref.scaled_frequencies(rotary_dim, base)
        ramp = ref.yarn_ramp(rotary_dim, base, scaling)
        return th / scaling["factor"] * (1 - ramp) + th * ramp
    return ref.scaled_frequencies(rotary_dim, base, scaling, **kw)


@mutant("positions.rerope_vjp_conjugated_phase", family="positions", replaces="rerope_attention_vjp",
        caught_by=["positions.rerope_attention_vjp"])
def vjp_conjugated(q: Any, k: Any, v: Any, grad_o: Any, window: float, **kw: Any) -> Any:
    """The q gradient rotated back with the conjugate phase (``R_{+P}`` for ``R_{-P}``): dq of the score with the
    relative position's sign flipped."""
    _, dk, dv = ref.rerope_attention_vjp(q, k, v, grad_o, window, **kw)
    _ia, ib = ref.rope_pairs(np.shape(q)[-1], kw.get("layout", "half"))
    kq = np.asarray(q, np.float64).copy()
    kq[..., ib] = -kq[..., ib]  # conj(z(q)) . conj(c) = conj of the right product: the phase enters conjugated
    dqc, _, _ = ref.rerope_attention_vjp(kq, k, v, grad_o, window, **kw)
    dqc[..., ib] = -dqc[..., ib]
    return dqc, dk, dv


@mutant("positions.rope_tv_video_beta_uses_wh", family="positions", replaces="rope_tv_video_positions",
        caught_by=["positions.rope_tie_gaps"])
def tv_video_wh(segments: Any) -> np.ndarray:
    """RoPE-TV video offsets from the frame area ``(wh - size_k)/2`` instead of the volume ``(wht - size_k)/2``."""
    p = ref.rope_tv_video_positions(segments)
    i = 0
    for s in segments:
        n = s[1] if s[0] == "text" else s[1] * s[2] * s[3]
        if s[0] == "video":
            p[i:i + n] -= (n - s[2] * s[3]) / 2
        i += n
    return p
