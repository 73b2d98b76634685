"""Laws of RoPE frequency scaling, log-n scaling, the base lower bound and the decay bound.

Sources: Chen et al. 2023 (arXiv:2306.15595, PI); bloc97 "NTK-Aware Scaled RoPE" (reddit r/LocalLLaMA);
Su kexue.fm/archives/9675 and 9706 (base conversion, fixed, mixed base, logn); ``bojone/rerope`` ntk_patch.py;
Men et al. 2024 (arXiv:2405.14591) and Su kexue.fm/archives/10122 (base bound); Su et al. 2021 (RoFormer) 3.4.3.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound, ZScore
from veriformer.properties.positions.strategies import RopeScalingCase, scaling_cases, scaling_descriptions
from veriformer.reference import MP
from veriformer.registry import law

SRC_SCALE = "Su kexue.fm/archives/9675, 9706; bloc97 NTK-aware scaled RoPE (reddit); Chen et al. 2023 arXiv:2306.15595"
SRC_BOUND = "Men et al. 2024 (arXiv:2405.14591); Su kexue.fm/archives/10122"
U = 2.0**-53


@law("positions.scaling_lowest_frequency_is_pi", family="positions", source=SRC_SCALE)
def lowest_frequency(ref: Any, r: int = st.sampled_from((4, 8, 64, 128, 256)),
                     sc: dict = scaling_descriptions(("ntk", "ntk_fixed", "mixed")),
                     base: float = st.sampled_from((10000.0, 5e5, 10.5))) -> list[Agreement]:
    """bloc97-NTK, fixed and mixed scaling all give the lowest frequency of PI, ``theta'_{r/2-1} =
    theta_{r/2-1} / k``; bloc97-NTK keeps the highest, ``theta'_0 = 1``."""
    th = ref.scaled_frequencies(r, base)
    ts = ref.scaled_frequencies(r, base, sc)
    k = sc["factor"]
    out = [Agreement(ts[-1], th[-1] / k, "theta'_low == theta_low / k", terms=8 + 2 * r)]
    if sc["type"] == "ntk":
        out.append(Agreement(ts[0], 1.0, "NTK: theta'_0 == 1", terms=2))
    return out


@law("positions.beta_base_reading", family="positions", source="Su kexue.fm/archives/9675")
def beta_base(ref: Any, r: int = st.sampled_from((4, 8, 64, 128)), k: float = st.sampled_from((1.0, 2.0, 8.0, 64.0)),
              base: float = st.sampled_from((10000.0, 5e5))) -> list[Agreement]:
    """The beta-base reading: ``theta_i = beta^(-i)`` with ``beta = b^(2/r)``; bloc97-NTK multiplies every digit's
    base by ``lambda = k^(2/(r-2))`` (so the last of the r/2 digits, i = r/2 - 1, is divided by exactly k) and
    Su's base conversion ``b k`` multiplies it by ``k^(2/r)``."""
    beta = base ** (2.0 / r)
    i = np.arange(r // 2)
    lam = k ** (2.0 / (r - 2))
    t = 8 * r
    return [Agreement(ref.scaled_frequencies(r, base), beta ** (-i), "theta_i == beta^-i", terms=t),
            Agreement(ref.scaled_frequencies(r, base, {"type": "ntk", "factor": k}), (beta * lam) ** (-i),
                      "NTK: digits of base beta k^(2/(r-2))", terms=t),
            Agreement(ref.scaled_frequencies(r, base, {"type": "ntk_base", "factor": k}),
                      (beta * k ** (2.0 / r)) ** (-i), "b k: digits of base beta k^(2/r)", terms=t)]


@law("positions.mixed_base_factors", family="positions", source=SRC_SCALE + "; bojone/rerope ntk_patch.py")
def mixed_factors(ref: Any, k: float = st.sampled_from((1.0, 2.0, 8.0, 12.0, 64.0)),
                  gamma: float = st.one_of(st.sampled_from((0.0, 0.625, 0.75, 1.0)), st.floats(0.0, 1.0)),
                  r: int = st.sampled_from((2, 8, 64, 128))) -> list[Any]:
    """Mixed base: the per-digit factors multiply to k, are nonincreasing and >= 1 (0 <= gamma <= 1), and
    ``theta'_i = theta_i / prod_{m <= i+1} lambda_m``."""
    lam = ref.mixed_base_factors(k, gamma, r // 2)
    th = ref.scaled_frequencies(r, 10000.0)
    ts = ref.scaled_frequencies(r, 10000.0, {"type": "mixed", "factor": k, "gamma": gamma})
    t = 4 * r
    return [Agreement(np.prod(lam), k, "prod lambda == k", terms=t),
            Bound(np.diff(lam), 0.0, "lambda nonincreasing", slack=t * U * k),
            Bound(1.0 - lam, 0.0, "lambda >= 1", slack=t * U),
            Agreement(ts, th / np.cumprod(lam), "theta' == theta / cumprod(lambda)", terms=t)]


@law("positions.mixed_limits", family="positions", source=SRC_SCALE)
def mixed_limits(ref: Any, k: float = st.sampled_from((1.0, 2.0, 12.0, 64.0)),
                 r: int = st.sampled_from((2, 8, 64, 128)), base: float = st.sampled_from((10000.0, 10.5))) -> list:
    """The mixed base at gamma = 1 is "NTK-RoPE-fixed" (``theta_i k^(-2(i+1)/r)``) and at gamma = 0 is PI
    (``theta_i / k``), computed here from their own formulas."""
    th = np.power(base, -2.0 * np.arange(r // 2) / r)
    m1 = ref.scaled_frequencies(r, base, {"type": "mixed", "factor": k, "gamma": 1.0})
    m0 = ref.scaled_frequencies(r, base, {"type": "mixed", "factor": k, "gamma": 0.0})
    fixed = th * np.power(k, -2.0 * (np.arange(r // 2) + 1) / r)
    return [Agreement(m1, fixed, "mixed(gamma=1) == fixed", terms=4 * r),
            Agreement(m0, th / k, "mixed(gamma=0) == PI", terms=4 * r),
            Agreement(ref.scaled_frequencies(r, base, {"type": "ntk_fixed", "factor": k}), fixed,
                      "ntk_fixed == theta k^(-2(i+1)/r)", terms=4 * r)]


@law("positions.linear_is_position_interpolation", family="positions", source="Chen et al. 2023 (arXiv:2306.15595)")
def linear_pi(ref: Any, case: RopeScalingCase = scaling_cases(("linear",))) -> Agreement:
    """Linear scaling by k rotates token n exactly as plain RoPE at the fractional position n/k."""
    a = case.arrays()
    k = case.scaling_dict["factor"]
    y = ref.rope(a["x"], a["positions"], base=case.base, scaling=case.scaling_dict)
    y2 = ref.rope_at(a["x"], a["positions"] / k, base=case.base)
    return Agreement(y, y2, "rope(n; linear k) == rope(n / k)", terms=8 + 4 * float(a["positions"].max()),
                     scale=float(np.abs(a["x"]).max()))


@law("positions.scaled_rope_is_relative", family="positions", source=SRC_SCALE)
def scaled_relative(ref: Any, case: RopeScalingCase = scaling_cases(("linear", "ntk", "ntk_base", "ntk_fixed",
                                                                        "mixed")),
                    shift: int = st.integers(-3000, 3000)) -> list[Agreement]:
    """Every static scaling is still a rotation by ``n theta'_i``: scores depend on n - m only, and norms are
    kept."""
    a = case.arrays()
    x, pos = a["x"], a["positions"]
    kw = {"base": case.base, "scaling": case.scaling_dict}
    q, k = x, np.roll(x, 1, axis=-2)

    def scores(p: np.ndarray) -> np.ndarray:
        return ref.rope(q, p, **kw) @ np.swapaxes(ref.rope(k, p, **kw), -1, -2)

    nmax = float(np.abs(pos).max() + abs(shift))
    sc = float(np.linalg.norm(x, axis=-1).max() ** 2)
    return [Agreement(scores(pos + shift), scores(pos), "scores(pos + c) == scores(pos)", terms=case.D + 16 * nmax + 16,
                      scale=sc),
            Agreement(np.linalg.norm(ref.rope(x, pos, **kw), axis=-1), np.linalg.norm(x, axis=-1), "norms kept",
                      terms=case.D + 8)]


@law("positions.dynamic_ntk", family="positions", source="HF transformers modeling_rope_utils "
     "_compute_dynamic_ntk_parameters; bloc97 / emozilla dynamic NTK")
def dynamic_ntk(ref: Any, r: int = st.sampled_from((4, 16, 128)), k: float = st.sampled_from((1.0, 2.0, 8.0)),
                L: int = st.sampled_from((16, 4096)), s: int = st.integers(1, 20000)) -> list[Agreement]:
    """Dynamic NTK is plain RoPE while seq_len <= L, and otherwise bloc97-NTK with the factor
    ``k' = k s / L - (k - 1)`` (``k' = 1`` at ``s = L`` and ``k' = k^2 - k + 1``, not k, at ``s = k L``)."""
    dyn = ref.scaled_frequencies(r, 10000.0, {"type": "dynamic", "factor": k, "original_max_position": L,
                                              "seq_len": s})
    if s <= L:
        return [Agreement(dyn, ref.scaled_frequencies(r, 10000.0), "dynamic == plain for s <= L", terms=4 * r)]
    kp = k * s / L - (k - 1)
    return [Agreement(dyn, ref.scaled_frequencies(r, 10000.0, {"type": "ntk", "factor": kp}),
                      "dynamic == NTK(k')", terms=16 * r)]


@law("positions.scaling_mpmath_certificate", family="positions", kind="certificate", max_examples=10,
     source="mpmath at 40 digits")
def scaling_certificate(ref: Any, sc: dict = scaling_descriptions(("linear", "ntk_fixed", "mixed")),
                        r: int = st.sampled_from((2, 8, 64))) -> Agreement:
    """The float64 scaled frequencies agree with the mpmath ones to a few ulp (relative)."""
    f = ref.scaled_frequencies(r, 10000.0, sc)
    m = np.array(ref.scaled_frequencies(r, 10000.0, sc, backend=MP(40)), dtype=np.float64)
    return Agreement(f / m, np.ones_like(f), "float64 / mpmath == 1", atol=(8 + 2 * r) * U,
                     tolerance="law.certificate")


@law("positions.logn_scale", family="positions", source="Su kexue.fm/archives/9706; bojone/rerope rerope_patch.py")
def logn(ref: Any, max_len: int = st.sampled_from((2, 512, 4096)), n: int = st.integers(0, 10**7)) -> list[Any]:
    """``max(1, log(n+1)/log(max_len))`` (0-based n): exactly 1 up to n + 1 = max_len, exactly 2 at
    n + 1 = max_len^2, nondecreasing, and log_max_len(n + 1) above max_len."""
    pos = np.array([0, max_len - 1, max_len**2 - 1, n, n + 1])
    s = ref.logn_scale(pos, max_len)
    want = np.maximum(1.0, np.log1p(pos.astype(float)) / math.log(max_len))
    return [Agreement(s[:3], [1.0, 1.0, 2.0], "s(0) = s(L-1) = 1, s(L^2-1) = 2", terms=4),
            Bound(s[3] - s[4], 0.0, "nondecreasing"),
            Agreement(s, want, "== max(1, log(n+1)/log L)", terms=8)]


# -- base bound ----------------------------------------------------------------------------------------------------


@law("positions.base_bound_is_first_feasible", family="positions", source=SRC_BOUND, max_examples=4)
def base_bound(ref: Any, L: int = st.sampled_from((64, 200, 1000))) -> list[Any]:
    """The computed b*(L) satisfies the criterion for every m < L (margin >= 0), ``b*(1 - 1e-5)`` violates it,
    no base on a 1%-geometric grid in [L/4, b*) satisfies it (the window at L = 1000 is 3% wide), the nested
    grid search lands at or above b*, and ``L / x0 < b*``."""
    r = ref.rope_base_lower_bound(L)
    first, low = ref.rope_base_first_violation([r.base, r.base * (1 - 1e-5)], L)
    grid = np.exp(np.arange(math.log(L / 4), math.log(r.base), 0.01))
    g_first, _ = ref.rope_base_first_violation(grid, L)
    feasible_below = grid[g_first < 0]
    rg = ref.rope_base_lower_bound(L, method="grid")
    return [Bound(-low[0], 0.0, "margin at b* >= 0"),
            Bound(0.5 - first[1], 0.0, "b*(1-1e-5) violates (first violating m >= 1)"),
            Bound(feasible_below.size, 0, "no feasible base on the 1% grid below b*"),
            Bound(r.base, rg.base, "b* <= nested-grid result", slack=1e-9 * r.base),
            Bound(L / 0.6165054856207162, r.base, "L/x0 < b*")]


@law("positions.base_criterion_is_the_expectation", family="positions", source=SRC_BOUND, kind="statistical")
def base_expectation(ref: Any, m: int = st.sampled_from((0, 3, 100, 5000)),
                     b: float = st.sampled_from((100.0, 10000.0, 1e6))) -> ZScore:
    """With q i.i.d. (mean 0.5, variance 1), a related key ``q + eps`` and an unrelated key k (an independent
    copy of q): ``E[q^T R_m (q + eps) - q^T R_m k] = 2 sigma^2 B_{m,theta}`` (d = 16; 20000 samples, fixed seed,
    z <= 4.5: two-sided 99.9993% per case; the summand has all moments)."""
    d, n = 16, 20000
    rng = np.random.default_rng(7 + m)
    q = rng.standard_normal((n, d)) + 0.5
    k = rng.standard_normal((n, d)) + 0.5
    eps = 0.3 * rng.standard_normal((n, d))
    R = ref.rope_rotation_matrix(m, d, base=b, layout="interleaved")
    s = np.einsum("nd,de,ne->n", q, R, q + eps) - np.einsum("nd,de,ne->n", q, R, k)
    want = 2.0 * float(ref.rope_base_criterion(b, m, d))
    return ZScore(s.mean(), want, s.std(ddof=1) / math.sqrt(n), "mean == 2 sigma^2 B_{m,theta}", z_max=4.5)


@law("positions.decay_indicator_values", family="positions", source="Su et al. 2021 (RoFormer) 3.4.3; "
     "Su kexue.fm/archives/8265")
def decay_values(ref: Any, _unused: int = st.just(0)) -> Agreement:
    """RoFormer's decay indicator ``(2/d) sum_j |S_j|`` at d = 128, r = 0, 10, 100, 256 is 32.5, 17.95, 10.23,
    6.54 as published (to the published two decimals)."""
    v = ref.rope_decay_indicator(np.array([0, 10, 100, 256]))
    return Agreement(v, [32.5, 17.95, 10.23, 6.54], "indicator == published", atol=0.005 + 1e-12,
                     tolerance="law.defined")


@law("positions.abel_bound", family="positions", source="Su et al. 2021 (RoFormer) eq. 36-37")
def abel(ref: Any, half: int = st.sampled_from((1, 4, 64)), r: float = st.floats(0, 1e4),
         seed: int = st.integers(0, 2**32 - 1)) -> list[Any]:
    """Abel summation: ``sum_i h_i e^{i r theta_i} = sum_j S_j (h_{j-1} - h_j)`` (``h_{d/2} = 0``), hence
    ``|sum| <= max_j |h_{j-1} - h_j| sum_j |S_j|``."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(half) + 1j * rng.standard_normal(half)
    direct, abel_sum, bound = ref.rope_abel_terms(h, r)
    sc = float(np.abs(h).sum() * half)
    return [Agreement(np.array([direct.real, direct.imag]), np.array([abel_sum.real, abel_sum.imag]),
                      "direct == Abel", terms=16 * half + 4 * r + 8, scale=sc),
            Bound(abs(direct), bound, "|sum| <= max|dh| sum|S|", slack=64 * half * U * sc)]


@law("positions.yarn_frequencies", family="positions", source="Peng et al. 2023 (YaRN, arXiv:2309.00071) eq. 17-18; "
     "HF transformers modeling_rope_utils _compute_yarn_parameters")
def yarn(ref: Any, r: int = st.sampled_from((16, 64, 128)), k: float = st.sampled_from((1.0, 2.0, 4.0, 32.0)),
         L: int = st.sampled_from((64, 2048, 4096, 32768)), base: float = st.sampled_from((10000.0, 5e5)),
         truncate: bool = st.booleans()) -> list[Any]:
    """YaRN keeps the pairs that turn more than beta_fast times over the original length L, interpolates (theta/k)
    those that turn fewer than beta_slow times, and blends monotonically between: ``theta'_i / theta_i`` lies in
    [1/k, 1] and is nonincreasing in i; at the untruncated correction dims ``c`` of beta = 32 and 1,
    ``L base^(-2c/r) / (2 pi) = beta``."""
    sc = {"type": "yarn", "factor": k, "original_max_position": L, "truncate": truncate}
    th = ref.scaled_frequencies(r, base)
    ratio = ref.scaled_frequencies(r, base, sc) / th
    t = 8 * r * U
    i = np.arange(r // 2)
    keep = L * th / (2 * np.pi) > 32 * base ** (2.0 / r)  # a full pair index above the correction dim: kept
    interp = L * th / (2 * np.pi) < base ** (-2.0 / r)  # a full pair below the beta_slow dim: interpolated
    out = [Bound(np.diff(ratio), 0.0, "ratio nonincreasing", slack=t),
           Bound(ratio, 1.0, "ratio <= 1", slack=t), Bound(1.0 / k - ratio, 0.0, "ratio >= 1/k", slack=t),
           Agreement(ratio[keep & (i < r // 2)], np.ones(int(keep.sum())), "kept pairs unchanged", terms=8),
           Agreement(ratio[interp], np.full(int(interp.sum()), 1.0 / k), "slow pairs = theta/k", terms=8)]
    for beta in (32.0, 1.0):
        c = r * math.log(L / (beta * 2 * math.pi)) / (2 * math.log(base))
        out.append(Agreement(L * base ** (-2 * c / r) / (2 * math.pi), beta, f"rotations at the dim of beta={beta}",
                             terms=64 + 4 * abs(c)))
    return out
