"""Laws of the diffusion identities: SNR shift under pooling, shifted schedules, variance preservation, the pinned
value 1/sqrt(65), and the SiD conditional-score identity with its Stein form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, ZScore
from veriformer.properties.diffusion.strategies import MixtureCase, ScheduleCase, mixture_cases, schedule_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
HOOG = "Hoogeboom et al. 2023 (simple diffusion, arXiv:2301.11093), section 3; Su kexue.fm/archives/10047"
CHEN = "Chen 2023 (arXiv:2301.10972), Algorithm 1 and section 2"
SID = "Zhou et al. 2024 (Score identity Distillation); Su kexue.fm/archives/10085"


def _pool_matrix(ref: Any, H: int, s: int) -> np.ndarray:
    """The linear map of s x s pooling on H x H images, as a matrix [(H/s)^2, H^2]."""
    eye = np.eye(H * H).reshape(H * H, H, H)
    return ref.avg_pool(eye, s).reshape(H * H, -1).T


@law("diffusion.pooling_divides_noise_variance", family="diffusion", source=HOOG)
def pooling_variance(ref: Any, s: int = st.sampled_from((1, 2, 3, 4)), blocks: int = st.integers(1, 3),
                     seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """s x s average pooling is a linear map Pi with Pi Pi^T = I / s^2: iid unit noise becomes iid noise of variance
    1/s^2, while a block-constant image is kept (Pi up(y) = y): the pooled SNR is s^2 times the original."""
    H = s * blocks
    Pi = _pool_matrix(ref, H, s)
    y = np.random.default_rng(seed).standard_normal((blocks, blocks))
    up = np.kron(y, np.ones((s, s)))
    return [Agreement(Pi @ Pi.T, np.eye(blocks * blocks) / s**2, "Pi Pi^T == I / s^2", terms=s * s, scale=1.0),
            Agreement(ref.avg_pool(up, s), y, "pool(block-constant) == mean kept", terms=s * s,
                      scale=float(np.abs(y).max()))]


@law("diffusion.pooled_noise_variance_mc", family="diffusion", kind="statistical", max_examples=6, source=HOOG)
def pooled_noise_mc(ref: Any, s: int = st.sampled_from((2, 4, 8)), seed: int = st.integers(0, 2**16)) -> ZScore:
    """Monte Carlo (fixed seed, 4096 images of 32 x 32 pixels of N(0, 1) noise): the sample variance of the
    pooled pixels is 1/s^2 within 4 standard errors (stderr = var sqrt(2 / (N - 1)) for Gaussian samples;
    99.994% two-sided).  The spec measured 0.06248 against 0.0625 at s = 4."""
    eps = np.random.default_rng(seed).standard_normal((4096, 32, 32))
    p = ref.avg_pool(eps, s).reshape(-1)
    N = p.size
    return ZScore(np.var(p, ddof=1), 1.0 / s**2, (1.0 / s**2) * math.sqrt(2.0 / (N - 1)),
                  "Var pooled noise == 1/s^2")


@law("diffusion.snr_shift", family="diffusion", source=HOOG + "; " + CHEN)
def snr_shift(ref: Any, case: ScheduleCase = schedule_cases(interior=True)) -> list[Agreement]:
    """The shifted schedule satisfies s^2 SNR_hi = SNR_lo with abar_hi^2 + bbar_hi^2 = 1; logSNR_hi = logSNR_lo -
    2 log s; Hoogeboom's shifted cosine logSNR(t) + 2 log(64/d) at d = 64 s is the same curve; and the s x s
    pooled high-resolution process (block-constant x0) has SNR_lo again: s^2 abar_hi^2 / bbar_hi^2."""
    t = case.arrays()["t"]
    a, b = ref.cosine_schedule(t)
    ah, bh = ref.shifted_schedule(a, b, float(case.s))
    lo, hi = ref.log_snr(a, b), ref.log_snr(ah, bh)
    sc = float(np.abs(lo).max()) + 2 * math.log(case.s) + 1
    return [Agreement(ah**2 + bh**2, np.ones_like(t), "abar_hi^2 + bbar_hi^2 == 1", terms=8, scale=1.0),
            Agreement(hi, lo - 2 * math.log(case.s), "logSNR_hi == logSNR_lo - 2 log s", terms=16, scale=sc),
            Agreement(ref.shifted_cosine_log_snr(t, 64.0 * case.s), hi, "shifted cosine (d = 64 s) == shifted",
                      terms=16, scale=sc),
            Agreement(case.s**2 * ah**2 * b**2, a**2 * bh**2, "s^2 SNR_hi == SNR_lo (cross-multiplied)", terms=16,
                      scale=float(case.s**2))]


def _log_odds_atol(g: np.ndarray, val: np.ndarray) -> float:
    """Rounding of log(g b^2 / (1 - g)): g and 1 - g carry ~u / min(g, 1 - g) relative error (1 - g cancels)."""
    if g.size == 0:
        return 0.0
    return 16 * U * (1.0 / float(np.min(np.minimum(g, 1 - g))) + float(np.abs(val).max()) + 1.0)


@law("diffusion.variance_preserving", family="diffusion", source=HOOG + "; " + CHEN)
def variance_preserving(ref: Any, case: ScheduleCase = schedule_cases(),
                        b: float = st.sampled_from((1.0, 0.5, 0.25, 0.125, 2.0))) -> list[Agreement]:
    """abar^2 + bbar^2 = 1 (cosine), so Var x_t = abar^2 Var x0 + bbar^2 = 1 for unit-variance data; Chen's gamma(t)
    (start 0, end 1, tau 1) is abar^2; scaling the data by b gives SNR b^2 gamma / (1 - gamma) (logSNR + 2 log b)
    and Var x_t = gamma b^2 + 1 - gamma."""
    t = case.arrays()["t"]
    a, bb = ref.cosine_schedule(t)
    g = ref.chen_cosine_gamma(t, clip_min=0.0)
    inner = (t > 1e-6) & (t < 1 - 1e-6)
    gi = g[inner]
    lsnr = np.log(gi * b * b / (1 - gi))
    return [Agreement(a**2 + bb**2, np.ones_like(t), "abar^2 + bbar^2 == 1", terms=4, scale=1.0),
            Agreement(g, a**2, "Chen gamma(t) == cos^2(pi t / 2)", atol=16 * U + 1e-30, tolerance="law.exact"),
            Agreement(lsnr, ref.log_snr(a[inner], bb[inner]) + 2 * math.log(b), "scaled-input logSNR == + 2 log b",
                      atol=_log_odds_atol(gi, lsnr), tolerance="law.exact"),
            Agreement(gi * b * b + 1 - gi, 1 + (b * b - 1) * a[inner] ** 2, "Var x_t == gamma b^2 + 1 - gamma",
                      terms=8, scale=max(1.0, b * b))]


@law("diffusion.pinned_one_over_sqrt65", family="diffusion", kind="certificate", max_examples=3,
     source="spec ssm-monarch-lora.md section 8 (computed there); " + HOOG + " (base 64, s = 512/64 = 8)")
def pinned_value(ref: Any, dps: int = st.sampled_from((30, 40, 60))) -> list[Agreement]:
    """Cosine at t = 1/2 (SNR_lo = 1) shifted by s = 8: abar_hi = 1/sqrt(65) = 0.124034734589, bbar_hi = 8/sqrt(65) =
    0.992277876714, logSNR shift = -2 ln 8 = -4.158883083360; float64 within 4 ulp of mpmath at ``dps`` digits."""
    a, b = ref.cosine_schedule(np.array([0.5]))
    ah, bh = ref.shifted_schedule(a, b, 8.0)
    am, bm = ref.cosine_schedule(np.array([0.5]), backend=MP(dps))
    ahm, bhm = ref.shifted_schedule(am, bm, 8.0, backend=MP(dps))
    q = 4 * U * 0.125
    d = ref.log_snr(ah, bh) - ref.log_snr(a, b)
    return [Agreement(ah, [1 / math.sqrt(65)], "abar_hi == 1/sqrt(65)", atol=q, tolerance="law.certificate"),
            Agreement(bh, [8 / math.sqrt(65)], "bbar_hi == 8/sqrt(65)", atol=4 * U, tolerance="law.certificate"),
            Agreement(ah, ahm, "float64 == mpmath abar_hi", atol=q, tolerance="law.certificate"),
            Agreement(bh, bhm, "float64 == mpmath bbar_hi", atol=4 * U, tolerance="law.certificate"),
            Agreement(np.round([ah[0], bh[0], d[0]], 12), [0.124034734589, 0.992277876714, -4.158883083360],
                      "pinned 12-digit values", atol=0.0, tolerance="law.defined"),
            Agreement(d, [-2 * math.log(8)], "logSNR shift == -2 ln 8", atol=64 * U, tolerance="law.certificate")]


@law("diffusion.conditional_score_identity", family="diffusion", source=SID)
def conditional_score(ref: Any, case: MixtureCase = mixture_cases(),
                      sigma: float = st.sampled_from((0.1, 1.0, 5.0))) -> list[Agreement]:
    """grad log p(x_t) = E[(abar x0 - x_t)/bbar^2 | x_t]: for discrete data the posterior-mean score equals the
    complex-step derivative Im log p(x + i h) / h (h = 1e-30, no cancellation); for Gaussian data
    x0 ~ N(0, sigma^2) the posterior mean E[x0 | x] = abar sigma^2 x / v gives the closed form -x / v,
    v = abar^2 sigma^2 + bbar^2."""
    arr = case.arrays()
    a, b = case.abar_bbar
    x, c, w = arr["x"], arr["centers"], arr["weights"]
    h = 1e-30
    cs = np.imag(ref.mixture_log_density(x + 1j * h, c, w, a, b)) / h
    sc = ref.mixture_score(x, c, w, a, b)
    v = a * a * sigma * sigma + b * b
    post = a * sigma * sigma * x / v
    big = (float(np.abs(x).max()) + a * float(np.abs(c).max())) / (b * b)
    return [Agreement(sc, cs, "posterior-mean score == d/dx log p (complex step)", terms=16 * case.K + 32, scale=big),
            Agreement(ref.gaussian_score(x, a, sigma=sigma, bbar=b), (a * post - x) / (b * b),
                      "Gaussian: -x/v == (abar E[x0|x] - x)/bbar^2", terms=16,
                      scale=float(np.abs(x).max()) / (b * b))]


def _gauss_moment(j: int, var: float) -> float:
    """E[z^j] for z ~ N(0, var): 0 for odd j, (j-1)!! var^(j/2) for even j."""
    return 0.0 if j % 2 else float(np.prod(np.arange(j - 1, 0, -2))) * var ** (j // 2)


@law("diffusion.stein_gaussian_closed_form", family="diffusion", source=SID)
def stein_gaussian(ref: Any, j: int = st.sampled_from((1, 3, 5)), t: float = st.floats(0.05, 0.95),
                   sigma: float = st.sampled_from((0.3, 1.0, 2.0))) -> list[Agreement]:
    """Stein form E[f(x_t) bbar grad log p(x_t)] = -E[f(x_t) eps] for x0 ~ N(0, sigma^2), f = x^j: the left side from
    the Gaussian score and the moments of x_t ~ N(0, v); the right side by expanding (abar x0 + bbar eps)^j eps with
    independent moments.  Pins: f = x gives -bbar; f = x^3 gives -3 bbar (abar^2 sigma^2 + bbar^2)."""
    a, b = ref.cosine_schedule(np.array([t]))
    a, b = float(a[0]), float(b[0])
    v = a * a * sigma * sigma + b * b
    kappa = float(ref.gaussian_score(np.array([1.0]), a, b, sigma)[0])  # score(x) = kappa x
    lhs = b * kappa * _gauss_moment(j + 1, v)
    rhs = -sum(math.comb(j, i) * _gauss_moment(j - i, a * a * sigma * sigma) * b**i * _gauss_moment(i + 1, 1.0)
               for i in range(j + 1))
    pin = {1: -b, 3: -3 * b * v, 5: -15 * b * v * v}[j]
    return [Agreement(lhs, rhs, "E[f bbar score] == -E[f eps]", terms=32, scale=abs(pin) + 1e-300),
            Agreement(rhs, pin, "closed form", terms=32, scale=abs(pin) + 1e-300)]


@law("diffusion.stein_monte_carlo", family="diffusion", kind="statistical", max_examples=4, source=SID)
def stein_mc(ref: Any, case: MixtureCase = mixture_cases(), seed: int = st.integers(0, 2**16)) -> list[ZScore]:
    """Monte Carlo (fixed seed, N = 200000) for discrete-mixture data and f = tanh: the per-sample difference
    D = tanh(x_t) bbar score(x_t) + tanh(x_t) eps has mean 0 within 4 standard errors (|D| is bounded by
    |eps| + bbar |score|, all moments finite; 99.994% two-sided; a rounding floor of 64 u covers K = 1, where
    D = 0 exactly).  Equivalently E[eps | x_t] = -bbar score: the residual eps + bbar score(x_t) is uncorrelated
    with tanh(x_t)."""
    arr = case.arrays()
    a, b = case.abar_bbar
    rng = np.random.default_rng(seed)
    N = 200_000
    x0 = rng.choice(arr["centers"], N, p=arr["weights"])
    eps = rng.standard_normal(N)
    xt = a * x0 + b * eps
    f = np.tanh(xt)
    D = f * b * ref.mixture_score(xt, arr["centers"], arr["weights"], a, b) + f * eps
    floor = 64 * U * float(np.mean(np.abs(f * eps)) + 1.0)  # K = 1: D is 0 up to rounding (score = -eps / bbar)
    return [ZScore(D.mean(), 0.0, D.std(ddof=1) / math.sqrt(N) + floor, "E[f bbar score] + E[f eps] == 0")]
