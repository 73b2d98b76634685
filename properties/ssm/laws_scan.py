"""Laws of the selective scan (Mamba) and SSD (Mamba-2) (Gu & Dao 2023; Dao & Gu 2024).

Rounding budgets: a scan of L affine steps with decays in (0, 1] accumulates at most ~ L u times the
summand mass (the scan run on |u|, |B|, |C|), so agreements use ``scale = mass`` and ``terms ~ L + n``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.ssm.strategies import ScanCase, SSDCase, scan_cases, ssd_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
FAMILY = "ssm"
SRC_SCAN = "mamba selective_scan_interface.py::selective_scan_ref; Gu & Dao 2023"
SRC_SSD = "mamba ssd_minimal.py; Dao & Gu 2024 (Mamba-2) Listing 1"


def _kw(case: ScanCase, a: dict[str, np.ndarray]) -> dict[str, Any]:
    kw: dict[str, Any] = {k: a[k] for k in ("D", "z", "delta_bias") if k in a}
    kw["delta_softplus"] = case.softplus
    return kw


def _mass(ref: Any, case: ScanCase, a: dict[str, np.ndarray]) -> float:
    kw = {"delta_bias": a.get("delta_bias"), "delta_softplus": case.softplus}
    m = ref.selective_scan(np.abs(a["u"]), a["delta"], a["A"], np.abs(a["B"]), np.abs(a["C"]), **kw)
    extra = np.abs(a["u"] * a["D"][:, None]) if "D" in a else 0.0
    gate = np.abs(a["z"]) if "z" in a else 1.0
    return float(np.max((m + extra) * gate)) + 1e-300


@law("ssm.selective_scan_assoc_equals_sequential", family=FAMILY, source=SRC_SCAN + "; Blelloch 1990")
def scan_assoc(ref: Any, case: ScanCase = scan_cases()) -> list[Agreement]:
    """The inclusive associative scan with (a, b) . (a', b') = (a' a, a' b + b') equals the sequential loop
    (outputs and last state), up to the reassociated sums (not bitwise)."""
    a = case.arrays()
    args = (a["u"], a["delta"], a["A"], a["B"], a["C"])
    o, s = ref.selective_scan(*args, return_last_state=True, **_kw(case, a))
    o2, s2 = ref.selective_scan_assoc(*args, return_last_state=True, combine=ref.scan_combine, **_kw(case, a))
    t = 8 * (np.log2(case.L + 1) + case.n + 4)
    return [Agreement(o2, o, "associative scan == sequential (out)", terms=t, scale=_mass(ref, case, a)),
            Agreement(s2, s, "associative scan == sequential (last state)", terms=t,
                      scale=float(np.abs(s).max()) + _mass(ref, case, a))]


@law("ssm.scan_combine_associative", family=FAMILY, source="Blelloch 1990")
def combine_assoc(ref: Any, seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """(x . y) . z == x . (y . z) for affine maps h -> a h + b, and x . y applied to h is y(x(h))."""
    rng = np.random.default_rng(seed)
    x, y, z = ((rng.uniform(0, 1, 5), rng.standard_normal(5)) for _ in range(3))
    l = ref.scan_combine(ref.scan_combine(x, y), z)
    r = ref.scan_combine(x, ref.scan_combine(y, z))
    h = rng.standard_normal(5)
    comp = ref.scan_combine(x, y)
    return [Agreement(l[0], r[0], "a associative", terms=4, scale=1.0),
            Agreement(l[1], r[1], "b associative", terms=8, scale=8.0),
            Agreement(comp[0] * h + comp[1], y[0] * (x[0] * h + x[1]) + y[1], "x . y == y after x", terms=8,
                      scale=8.0 + float(np.abs(h).max()))]


@law("ssm.selective_scan_lti_is_convolution", family=FAMILY, source=SRC_SCAN + "; Gu et al. 2022 (S4 convolution)")
def scan_lti(ref: Any, case: ScanCase = scan_cases(features=frozenset({"D"})),
             dt: float = st.sampled_from((1e-3, 0.05, 0.2))) -> Agreement:
    """With constant delta and constant B, C the selective scan is the LTI diagonal system
    Ad = e^{dt A}, Bd = dt B (Euler input map, mamba's convention), i.e. the causal convolution with
    K_j = sum_n C_n e^{j dt A_n} dt B_n (+ D u)."""
    a = case.arrays()
    delta = np.full(a["u"].shape, dt)
    y = ref.selective_scan(a["u"], delta, a["A"], a["B"], a["C"], a.get("D"))
    j = np.arange(case.L)
    K = np.einsum("dn,dnj->dj", a["C"] * dt * a["B"], np.exp(dt * a["A"][..., None] * j))  # [d, L]
    want = ref.causal_convolution(a["u"], K) + (a["u"] * a["D"][:, None] if "D" in a else 0.0)
    mass = ref.causal_convolution(np.abs(a["u"]), np.einsum("dn,dnj->dj", np.abs(a["C"] * a["B"]) * dt,
                                                            np.exp(dt * a["A"][..., None] * j)))
    return Agreement(y, want, "LTI selective scan == causal convolution", terms=8 * (case.L + case.n + 4),
                     scale=float(mass.max()) + float(np.abs(want).max()))


@law("ssm.selective_scan_delta_preprocessing", family=FAMILY, source=SRC_SCAN)
def scan_delta(ref: Any, case: ScanCase = scan_cases(features=frozenset({"variable_BC"}))) -> Agreement:
    """delta_bias is added before softplus: scan(delta, bias, softplus) == scan(log(1 + e^{delta + bias}))."""
    case = dataclasses.replace(case, softplus=True, use_bias=True)
    a = case.arrays()
    args = (a["u"], a["delta"], a["A"], a["B"], a["C"])
    y = ref.selective_scan(*args, delta_bias=a["delta_bias"], delta_softplus=True)
    pre = np.logaddexp(0.0, a["delta"] + a["delta_bias"][:, None])
    y2 = ref.selective_scan(a["u"], pre, a["A"], a["B"], a["C"])
    return Agreement(y, y2, "softplus(delta + bias) applied before the scan", terms=8 * (case.L + case.n),
                     scale=_mass(ref, case, a))


@law("ssm.selective_scan_complex_real_part", family=FAMILY, source=SRC_SCAN + " (complex A: y = 2 Re)")
def scan_complex(ref: Any, case: ScanCase = scan_cases(features=frozenset({"variable_BC", "grouped_BC"}))) \
        -> list[Agreement]:
    """Complex A with zero imaginary part and variable B, C given interleaved (re, im) with zero imaginary parts
    gives exactly twice the real scan (y = 2 Re sum x C), and the same (complex) last state."""
    a = case.arrays()
    A = a["A"] + 0j

    def interleave(M: np.ndarray) -> np.ndarray:
        out = np.zeros((*M.shape[:-1], 2 * M.shape[-1]))
        out[..., 0::2] = M
        return out

    B, C = interleave(a["B"]), interleave(a["C"])
    y, s = ref.selective_scan(a["u"], a["delta"], A, B, C, return_last_state=True)
    yr, sr = ref.selective_scan(a["u"], a["delta"], a["A"], a["B"], a["C"], return_last_state=True)
    return [Agreement(y, 2 * yr, "complex scan == 2 x real scan", terms=4, scale=2 * _mass(ref, case, a)),
            Agreement(s.real, sr, "complex last state == real last state", terms=4 * (case.L + 1),
                      scale=float(np.abs(sr).max()) + 1e-300)]


@law("ssm.selective_scan_mpmath_certificate", family=FAMILY, kind="certificate", max_examples=10,
     source=SRC_SCAN + "; mpmath 30 digits (object arrays)")
def scan_certificate(ref: Any, case: ScanCase = scan_cases(max_L=6)) -> Agreement:
    """The float64 selective scan agrees with the same code in mpmath (30 digits) within 8 (L + n + 4) u times
    the summand mass (each of L steps and the n-term read-out rounds once per summand; exp and softplus
    add a few u)."""
    case = dataclasses.replace(case, b=1, n=min(case.n, 4))
    a = case.arrays()
    args = (a["u"], a["delta"], a["A"], a["B"], a["C"])
    y = ref.selective_scan(*args, **_kw(case, a))
    ym = ref.selective_scan(*args, backend=MP(30), **_kw(case, a))
    mass = _mass(ref, case, a)
    return Agreement(y, ym, "float64 scan == mpmath scan", atol=32 * (case.L + case.n + 8) * U * mass,
                     tolerance="law.certificate")


# -- SSD ----------------------------------------------------------------------------------------------------------


def _ssd_mass(ref: Any, case: SSDCase, a: dict[str, np.ndarray]) -> tuple[float, float]:
    h0 = a.get("initial_states")
    Y, H = ref.ssd_recurrence(np.abs(a["X"]), a["A"], np.abs(a["B"]), np.abs(a["C"]),
                              None if h0 is None else np.abs(h0))
    return float(Y.max()) + 1e-300, float(H.max()) + 1e-300


@law("ssm.ssd_duality", family=FAMILY, source=SRC_SSD)
def ssd_duality(ref: Any, case: SSDCase = ssd_cases()) -> list[Agreement]:
    """Recurrence == masked linear attention (Y = (Lmask o C B^T) X with the 1-semiseparable mask) == chunked
    scan (stable segsum), outputs and final states; steep decays underflow to 0 without NaN."""
    a = case.arrays()
    args = (a["X"], a["A"], a["B"], a["C"])
    h0 = a.get("initial_states")
    Y, H = ref.ssd_recurrence(*args, h0)
    Yq, Hq = ref.ssd_quadratic(*args, h0)
    Yc, Hc = ref.ssd_chunked(*args, case.chunk_size, h0)
    my, mh = _ssd_mass(ref, case, a)
    t = 8 * (case.length + case.n + 8)
    return [Agreement(Yq, Y, "quadratic == recurrence (Y)", terms=t, scale=my),
            Agreement(Hq, H, "quadratic == recurrence (final state)", terms=t, scale=mh),
            Agreement(Yc, Y, "chunked == recurrence (Y)", terms=t, scale=my),
            Agreement(Hc, H, "chunked == recurrence (final state)", terms=t, scale=mh)]


@law("ssm.ssd_semiseparable_rank", family=FAMILY, source=SRC_SSD + " (1-semiseparable mask)")
def ssd_rank(ref: Any, T: int = st.integers(2, 48), cut: float = st.floats(0.1, 0.9),
             seed: int = st.integers(0, 2**32 - 1)) -> list[Any]:
    """Every block of the mask strictly below the diagonal has rank 1: Lmask[t, s] = e^{cs_t} e^{-cs_s}, so
    Lmask[t, s] Lmask[t', s'] == Lmask[t, s'] Lmask[t', s] for t, t' >= r > s, s'; the diagonal is 1 and the
    upper triangle 0."""
    a = -np.random.default_rng(seed).uniform(0.0, 0.3, (1, T, 1))
    Lm = ref.ssd_mask(a)[0, 0]
    r = max(1, min(T - 1, round(cut * T)))
    blk = Lm[r:, :r]
    lhs = blk[:, :, None, None] * blk[None, None, :, :]  # [t, s, t', s']
    rhs = np.einsum("ab,cd->adcb", blk, blk)  # Lm[t, s'] Lm[t', s]
    return [Agreement(lhs, rhs, "2x2 minors of a lower block vanish", terms=4 * T, scale=1.0),
            Agreement(np.diag(Lm), np.ones(T), "Lmask_tt == 1", atol=0.0, tolerance="law.defined"),
            Bound(np.abs(np.triu(Lm, 1)), 0.0, "Lmask is 0 above the diagonal")]


@law("ssm.ssd_segsum_stable", family=FAMILY, kind="certificate", max_examples=12,
     source=SRC_SSD + " (segsum vs segsum_unstable); mpmath fsum")
def ssd_segsum(ref: Any, T: int = st.integers(2, 64), scale: float = st.sampled_from((1.0, 30.0, 1e3)),
               seed: int = st.integers(0, 2**32 - 1)) -> Agreement:
    """The stable segsum sum_{k=s+1}^t a_k has error <= (t - s) u sum_{k=s+1}^t |a_k| per entry (the sequential
    sum of its own terms), checked against mpmath; the naive cs_t - cs_s loses |cs| u, i.e. T u relative on
    short segments late in the sequence."""
    a = -np.random.default_rng(seed).uniform(0.0, 1.0, T) * scale
    S = ref.segsum(a)
    Sm = ref.segsum(a, backend=MP(30))
    t, s = np.tril_indices(T, -1)
    absmass = np.array([np.sum(np.abs(a[j + 1:i + 1])) for i, j in zip(t, s, strict=True)])
    rel = np.abs(S[t, s] - Sm[t, s]) / ((t - s) * absmass)
    return Agreement(rel, np.zeros_like(rel), "|segsum - exact| / ((t-s) sum|a|)", atol=2 * U,
                     tolerance="law.certificate")
