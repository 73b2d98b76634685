"""Error measurement: ulps, figures, and the verdicts of the tolerance policy.

Figures for an output ``c`` against the gold answer ``g`` (float64):

* ``max_abs``  = max_i |c_i - g_i|
* ``rel_rms``  = ||c - g||_2 / max(||g||_2, u ||s||_2)  (0 when both are 0): the plain relative error, so a
  100% error reads 1.0; only an output that is the cancellation of its summands (||g|| < u ||s||) is measured
  against the unit roundoff of its summands
* ``max_ulp``  = max_i |c_i - g_i| / ulp_dtype(max(|g_i|, s)): error in units in the last place of the *dtype
  under test* at each element's own magnitude, over the elements where that magnitude is a normal number of
  that dtype (an exact 0 or a subnormal gold value has a spacing of ~1e-45 in float32, so any rounding there
  would read as 1e38 ulp; those elements are covered by ``max_abs`` and by the verdict's floors)
* ``s`` is the size of the summands of each element when the op declares a conditioning (``sigma`` in
  :func:`judge_against_baseline`: their root-sum-square, e.g. sqrt(sum_j p_ij^2 v_j^2) for attention), else 0:
  an element that is the cancellation of summands of size s is not known better than an ulp of s, so a gradient
  that cancels to ~1e-30 does not read as 1e30 ulp or a relative RMS of 1e140.  It is measured per element,
  never at a global maximum, so a wrong answer cannot hide behind it.
* ``nonfinite`` = number of elements where c is NaN/inf but g is finite, or where g is +-inf and c is not
  the same infinity.  Judged before any ratio: a single one fails the case.

Sources: Higham, "Accuracy and Stability of Numerical Algorithms" (2002), ch. 2-3 (ulp, unit roundoff);
IEEE 754-2019 formats; bfloat16 as in Google's TPU format (8 significand bits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "DTYPES",
    "Figures",
    "OpVerdict",
    "Worst",
    "bits_lost",
    "judge_against_baseline",
    "measure",
    "ulp",
    "unit_roundoff",
]

# significand bits p (with the implicit bit) and minimum normal exponent emin, per dtype name.
DTYPES: dict[str, tuple[int, int]] = {
    "float16": (11, -14),
    "bfloat16": (8, -126),
    "float32": (24, -126),
    "float64": (53, -1022),
}


def _format(dtype: str) -> tuple[int, int]:
    name = str(dtype).replace("torch.", "")
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def unit_roundoff(dtype: str) -> float:
    """u = 2^-p: the relative error bound of one correctly rounded operation in ``dtype``."""
    p, _ = _format(dtype)
    return 2.0 ** -p


def ulp(x: Any, dtype: str) -> np.ndarray:
    """Spacing of ``dtype`` numbers at magnitude |x| (elementwise): ``2^(max(e, emin) - p + 1)`` with
    ``e = floor(log2 |x|)``; the subnormal spacing at 0.  Computed in float64 for any dtype (bf16 too)."""
    p, emin = _format(dtype)
    a = np.abs(np.asarray(x, dtype=np.float64))
    _, e = np.frexp(a)  # a = m 2^e, m in [0.5, 1): floor(log2 a) = e - 1
    exp = np.maximum(np.where(a > 0, e - 1, emin), emin)
    return np.ldexp(1.0, exp - p + 1)


@dataclass(frozen=True)
class Figures:
    """Errors of one output tensor against gold; see the module docstring for definitions."""

    max_abs: float
    rel_rms: float
    max_ulp: float
    nonfinite: int
    size: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _split(c: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, int]:
    """Mask of comparable elements (gold finite) and the count of non-finite disagreements."""
    g_fin = np.isfinite(g)
    bad = int(np.sum(g_fin & ~np.isfinite(c)))
    inf_g = ~g_fin
    bad += int(np.sum(inf_g & (c != g)))  # gold +-inf must be matched exactly (e.g. lse of empty rows)
    return g_fin & np.isfinite(c), bad


def measure(candidate: Any, gold: Any, dtype: str = "float64", scale: Any = 0.0) -> Figures:
    """Figures of ``candidate`` (any array-like, cast exactly to float64) against float64 ``gold``; ``scale`` is
    the summand size s of the module docstring, one number or one per element (0: figures at the gold values'
    own magnitudes)."""
    c = np.asarray(candidate, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if c.shape != g.shape:
        raise ValueError(f"measure: candidate shape {c.shape} differs from gold shape {g.shape}")
    ok, bad = _split(c, g)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(ok, np.abs(c - g), 0.0)
    gg = np.where(ok, g, 0.0)
    max_abs = float(err.max()) if err.size else 0.0
    s = np.asarray(scale, dtype=np.float64)
    s = np.broadcast_to(np.where(np.isfinite(s) & (s > 0), s, 0.0), g.shape)
    with np.errstate(over="ignore"):
        gnorm = float(np.sqrt(np.sum(gg * gg)))
        denom = max(gnorm, unit_roundoff(dtype) * float(np.sqrt(np.sum(s * s))))
        num = float(np.sqrt(np.sum(err * err)))
    rel_rms = num / denom if denom > 0 else (0.0 if num == 0 else float("inf"))
    mag = np.maximum(np.abs(gg), s)
    normal = mag >= 2.0 ** _format(dtype)[1]
    max_ulp = float(np.max(err / ulp(mag, dtype), where=normal, initial=0.0)) if err.size else 0.0
    return Figures(max_abs, rel_rms, max_ulp, bad, int(g.size))


@dataclass(frozen=True)
class Worst:
    """The element with the largest error relative to its allowance: where it is, what came back, what was
    expected (gold), what the naive baseline gave, and its allowance."""

    index: tuple[int, ...]
    got: float
    expected: float
    baseline: float
    allowed: float

    def __str__(self) -> str:
        return (f"worst element at index {self.index}: got {self.got:.6g}, expected {self.expected:.6g} "
                f"(baseline {self.baseline:.6g}, allowed error {self.allowed:.3g})")


@dataclass(frozen=True)
class OpVerdict:
    """Verdict of one output of one case: candidate and baseline figures, the ratio, the margins.

    ``margin`` is the larger of the elementwise margin (max_i |e_i| / allowed_i) and the normwise one
    (``rms_margin``: ||e||_2 / (rho ||b - g||_2 + ||phi||_2)); each must be <= 1 to pass."""

    output: str
    candidate: Figures
    baseline: Figures
    ratio: float  # max_abs(candidate) / max_abs(baseline); 0/0 = 0, x/0 = inf
    margin: float  # max(elementwise margin, rms_margin); <= 1 passes
    passed: bool
    reason: str
    floor: float = 0.0  # max_i of the floor term of allowed_i (the part that does not scale with the baseline)
    rms_margin: float = 0.0  # the normwise guard's margin
    failing: int = 0  # elements over their allowance
    worst: Worst | None = None

    @property
    def bits_lost(self) -> float:
        """Bits of the candidate lost against the correctly rounded result at each element's magnitude."""
        return bits_lost(self.candidate.max_ulp)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidate"], d["baseline"] = self.candidate.as_dict(), self.baseline.as_dict()
        d["candidate"]["bits_lost"] = bits_lost(self.candidate.max_ulp)
        d["baseline"]["bits_lost"] = bits_lost(self.baseline.max_ulp)
        return d


def bits_lost(max_ulp: float) -> float:
    """``log2(2 max_ulp)`` clamped at 0: a correctly rounded result (<= 0.5 ulp) loses 0 bits; a 100% error in
    a p-bit format loses about p bits."""
    return float(max(0.0, np.log2(2.0 * max_ulp))) if max_ulp > 0 and np.isfinite(max_ulp) else (
        0.0 if max_ulp == 0 else float("inf"))


def judge_against_baseline(output: str, candidate: Any, baseline: Any, gold: Any, dtype: str, *,
                           rho: float, floor_ulps: float, condition: float = 0.0,
                           floor_scale: Any = 0.0, sigma: Any = None) -> OpVerdict:
    """The tolerance policy.  Pass iff (0) no non-finite value appears where gold is finite, (1) every element
    satisfies ``|e_i| <= rho * max_j |b_j - g_j| + floor_i`` with

        floor_i = floor_ulps * (ulp(g_i) + ulp(sigma_i) + condition * ulp_acc(s_i)),

    and (2) the whole output satisfies the normwise guard ``||e||_2 <= rho * ||b - g||_2 + ||phi||_2`` with
    ``phi_i = 2u |g_i| + k (u sigma_i + condition * u_acc * s_i)`` (a faithfully rounded result, the rms of
    independent roundings of the summands, and the conditioned error; ``k = max(1, floor_ulps / 4)``, so the
    gradients' 8 ulp rows allow twice the outputs').

    ``s_i`` (``floor_scale``) is the sum of |summands| of element i (an array, or one number for the whole
    output) and ``sigma_i`` (``sigma``, default ``s_i``) their root-sum-square, both present only when the op
    declares a conditioning.  Terms of floor_i: a few ulps at the element's own magnitude, so an exactly rounded
    baseline cannot fail a kernel; one rounding of each summand to the dtype (P fed to a tensor-core dot in the
    input dtype), whose errors are independent and add in quadrature, so ``floor_ulps`` ulps at sigma_i bound it
    with probability >= 1 - 2 exp(-floor_ulps^2 / 2) per element (Hoeffding; Higham & Mary 2019, "A new approach
    to probabilistic rounding error analysis"); and the unavoidable error of an ill-conditioned op, condition x
    an ulp of the accumulator (float32 for float16/bfloat16 inputs, the dtype otherwise) at s_i.
    The normwise guard keeps a wrong answer from hiding in the floors: an all-zero, scaled or truncated output
    has a relative error far above the baseline's and above the unit roundoff, whatever the length.
    A non-finite baseline error counts as 0 (the candidate must meet the floors alone), so a broken baseline
    never loosens the test."""
    c = np.asarray(candidate, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    cond = condition > 0
    s = np.broadcast_to(np.asarray(floor_scale, dtype=np.float64), g.shape) if cond else np.zeros(g.shape)
    sig = s if (sigma is None or not cond) else np.broadcast_to(np.asarray(sigma, dtype=np.float64), g.shape)
    fc = measure(c, g, dtype, sig)
    fb = measure(b, g, dtype, sig)
    base_err = fb.max_abs if fb.nonfinite == 0 else 0.0
    ratio = fc.max_abs / base_err if base_err > 0 else (0.0 if fc.max_abs == 0 else float("inf"))
    if fc.nonfinite:
        return OpVerdict(output, fc, fb, ratio, float("inf"), False,
                         f"{fc.nonfinite} non-finite value(s) where gold is finite (or infinity mismatch)",
                         failing=fc.nonfinite)
    ok, _ = _split(c, g)
    acc = "float32" if dtype in ("float16", "bfloat16") else dtype  # the kernels' accumulator precision
    gz = np.where(ok, g, 0.0)
    floor = floor_ulps * (ulp(gz, dtype) + (ulp(sig, dtype) if cond else 0.0) + condition * ulp(s, acc))
    allowed = rho * base_err + floor
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.where(ok, np.abs(c - g), 0.0)
        ratio_i = np.where(err > 0, err / np.where(allowed > 0, allowed, np.inf), 0.0)
        ratio_i = np.where((err > 0) & (allowed <= 0), np.inf, ratio_i)
    elem_margin = float(ratio_i.max()) if err.size else 0.0
    u, u_acc = unit_roundoff(dtype), unit_roundoff(acc)
    k = max(1.0, floor_ulps / 4.0)  # gradients (8 ulp floors) get twice the outputs' (4 ulp) normwise allowance
    phi = 2 * u * np.abs(gz) + k * ((u * sig if cond else 0.0) + condition * u_acc * s)
    with np.errstate(invalid="ignore"):
        b_err = np.where(ok & np.isfinite(b), np.abs(b - g), 0.0) if fb.nonfinite == 0 else np.zeros(g.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        budget = rho * float(np.sqrt(np.sum(b_err * b_err))) + float(np.sqrt(np.sum(phi * phi)))
        e2 = float(np.sqrt(np.sum(err * err)))
    rms_margin = e2 / budget if budget > 0 else (0.0 if e2 == 0 else float("inf"))
    margin = max(elem_margin, rms_margin)
    passed = margin <= 1.0
    failing = int(np.sum(ratio_i > 1.0))
    worst = None
    if err.size and (err > 0).any():
        i = np.unravel_index(int(np.argmax(ratio_i)), g.shape)
        worst = Worst(tuple(int(x) for x in i), float(c[i]), float(g[i]), float(b[i]), float(allowed[i]))
    reason = ""
    if not passed:
        parts = []
        if elem_margin > 1:
            parts.append(f"{failing} of {g.size} element(s) exceed rho={rho} x baseline max error {base_err:.3g} "
                         f"+ {floor_ulps} ulp floor (margin {elem_margin:.3g}); {worst}")
        if rms_margin > 1:
            gn = float(np.sqrt(np.sum(gz * gz)))
            rel = f"relative {e2 / gn:.3g}" if gn > 0 else "gold is 0"
            parts.append(f"normwise error {e2:.3g} ({rel}) exceeds rho={rho} x baseline's "
                         f"{budget and float(np.sqrt(np.sum(b_err * b_err))):.3g} + unit-roundoff guard "
                         f"(margin {rms_margin:.3g})")
        reason = "; ".join(parts)
    return OpVerdict(output, fc, fb, ratio, margin, passed, reason, float(floor.max()) if floor.size else 0.0,
                     rms_margin, failing, worst)
