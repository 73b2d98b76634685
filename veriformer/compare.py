"""Error measurement: ulps, figures, and the verdicts of the tolerance policy.

Figures for an output ``c`` against the gold answer ``g`` (float64):

* ``max_abs``  = max_i |c_i - g_i|
* ``rel_rms``  = ||c - g||_2 / max(||g||_2, s sqrt(n))  (0 when both are 0)
* ``max_ulp``  = max_i |c_i - g_i| / ulp_dtype(max(|g_i|, s)): error in units in the last place of the *dtype
  under test* at each element's own magnitude, over the elements where that magnitude is a normal number of
  that dtype (an exact 0 or a subnormal gold value has a spacing of ~1e-45 in float32, so any rounding there
  would read as 1e38 ulp; those elements are covered by ``max_abs`` and by the verdict's floors)
* ``s`` is the size of the summands of the output when the op declares a conditioning (``floor_scale`` in
  :func:`judge_against_baseline`, e.g. max|v| for attention), else 0: an element that is the cancellation of
  summands of size s is not known better than an ulp of s, so a gradient that cancels to ~1e-30 does not read
  as 1e30 ulp or a relative RMS of 1e140.
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


def measure(candidate: Any, gold: Any, dtype: str = "float64", scale: float = 0.0) -> Figures:
    """Figures of ``candidate`` (any array-like, cast exactly to float64) against float64 ``gold``; ``scale`` is
    the summand size s of the module docstring (0: figures at the gold values' own magnitudes)."""
    c = np.asarray(candidate, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if c.shape != g.shape:
        raise ValueError(f"measure: candidate shape {c.shape} differs from gold shape {g.shape}")
    ok, bad = _split(c, g)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(ok, np.abs(c - g), 0.0)
    gg = np.where(ok, g, 0.0)
    max_abs = float(err.max()) if err.size else 0.0
    s = max(float(scale), 0.0) if np.isfinite(scale) else 0.0
    denom = max(float(np.sqrt(np.sum(gg * gg))), s * float(np.sqrt(g.size)))
    num = float(np.sqrt(np.sum(err * err)))
    rel_rms = num / denom if denom > 0 else (0.0 if num == 0 else float("inf"))
    mag = np.maximum(np.abs(gg), s)
    normal = mag >= 2.0 ** _format(dtype)[1]
    max_ulp = float(np.max(err / ulp(mag, dtype), where=normal, initial=0.0)) if err.size else 0.0
    return Figures(max_abs, rel_rms, max_ulp, bad, int(g.size))


@dataclass(frozen=True)
class OpVerdict:
    """Verdict of one output of one case: candidate and baseline figures, the ratio, the margin."""

    output: str
    candidate: Figures
    baseline: Figures
    ratio: float  # max_abs(candidate) / max_abs(baseline); 0/0 = 0, x/0 = inf
    margin: float  # max_i |e_i| / allowed_i; <= 1 passes
    passed: bool
    reason: str
    floor: float = 0.0  # max_i of the floor term of allowed_i (the part that does not scale with the baseline)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidate"], d["baseline"] = self.candidate.as_dict(), self.baseline.as_dict()
        return d


def judge_against_baseline(output: str, candidate: Any, baseline: Any, gold: Any, dtype: str, *,
                           rho: float, floor_ulps: float, condition: float = 0.0,
                           floor_scale: float = 0.0) -> OpVerdict:
    """The tolerance policy: pass iff no non-finite value appears where gold is finite and every element
    satisfies ``|c_i - g_i| <= rho * max_j |b_j - g_j| + floor_ulps * (ulp(g_i) + ulp(scale) + condition *
    ulp_acc(scale))``.

    The first floor term is a few ulps at each element's own magnitude, so an exactly rounded baseline
    cannot fail a kernel.  The second is one rounding of a summand-sized operand to the dtype (P or dS fed to a
    tensor-core dot in the input dtype), present when the op declares a conditioning.  The third is the
    unavoidable error of an ill-conditioned op: ``condition`` (e.g. max|logit| for softmax) times an ulp at
    ``floor_scale``, the size of the summands (e.g. max|v|), in the accumulator's precision — float32 for
    float16/bfloat16 inputs (logits, decays and states are formed in float32 by every kernel we know of),
    the dtype itself otherwise.
    A non-finite baseline error counts as 0 (the candidate must meet the floor alone), so a broken
    baseline never loosens the test."""
    c = np.asarray(candidate, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    s = floor_scale if condition > 0 else 0.0
    fc = measure(c, g, dtype, s)
    fb = measure(baseline, g, dtype, s)
    base_err = fb.max_abs if fb.nonfinite == 0 else 0.0
    ratio = fc.max_abs / base_err if base_err > 0 else (0.0 if fc.max_abs == 0 else float("inf"))
    if fc.nonfinite:
        return OpVerdict(output, fc, fb, ratio, float("inf"), False,
                         f"{fc.nonfinite} non-finite value(s) where gold is finite (or infinity mismatch)")
    ok, _ = _split(c, g)
    acc = "float32" if dtype in ("float16", "bfloat16") else dtype  # the kernels' accumulator precision
    summand = float(ulp(floor_scale, dtype)) if condition > 0 else 0.0
    floor = floor_ulps * (ulp(np.where(ok, g, 0.0), dtype) + summand + condition * float(ulp(floor_scale, acc)))
    allowed = rho * base_err + floor
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(ok, np.abs(c - g), 0.0)
    margin = float((err / allowed).max()) if err.size else 0.0
    passed = margin <= 1.0
    reason = "" if passed else (f"error {fc.max_abs:.3g} exceeds rho={rho} x baseline {base_err:.3g} "
                                f"+ {floor_ulps} ulp floor (margin {margin:.3g})")
    return OpVerdict(output, fc, fb, ratio, margin, passed, reason, float(floor.max()) if floor.size else 0.0)
