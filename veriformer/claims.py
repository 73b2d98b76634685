"""What a law returns: claims that the framework measures and judges.

A law returns one claim, a tuple ``(lhs, rhs)`` (shorthand for ``Agreement(lhs, rhs)``), or a list of
claims.  Each claim evaluates to a :class:`ClaimResult` with figures, never a bare boolean.

* :class:`Agreement` — two arrays equal to rounding (exact identity) or within an explicit bound.
* :class:`Bound` — ``value <= limit`` elementwise (an inequality such as ``p >= 0`` or an lse bound).
* :class:`ZScore` — a statistical claim: a Monte-Carlo mean within ``z_max`` standard errors of its
  expectation (fixed seed; ``z_max`` states the confidence).
* :class:`Rate` — an asymptotic claim: errors at step sizes h shrink like h^order (fitted log-log slope).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from veriformer.tolerances import tolerance

__all__ = ["Agreement", "Bound", "ClaimResult", "Rate", "ZScore", "as_claims"]

U64 = 2.0**-53


@dataclass(frozen=True)
class ClaimResult:
    """Figures of one claim.  ``margin = max error / allowed`` (<= 1 passes); ulps are float64 ulps of
    the scale."""

    what: str
    passed: bool
    max_abs: float
    rel_rms: float
    max_ulp: float
    allowed: float
    margin: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.complex128 if np.iscomplexobj(x) else np.float64)


@dataclass(frozen=True)
class Agreement:
    """``lhs == rhs`` to rounding.

    Allowed error: ``atol`` if given, else ``factor * terms * u * scale`` with u = 2^-53, ``factor`` from
    tolerance row ``tolerance`` and ``scale`` (default: the largest finite |lhs|, |rhs|).  Infinities must
    agree exactly; NaN anywhere fails.
    """

    lhs: Any
    rhs: Any
    what: str = "lhs == rhs"
    terms: float = 1.0
    scale: float | None = None
    atol: float | None = None
    tolerance: str = "law.exact"

    def evaluate(self) -> ClaimResult:
        a, b = _f64(self.lhs), _f64(self.rhs)
        if a.shape != b.shape:
            return ClaimResult(self.what, False, np.inf, np.inf, np.inf, 0.0, np.inf,
                               f"shape mismatch {a.shape} vs {b.shape}")
        nan = int(np.sum(np.isnan(a) | np.isnan(b)))
        fin = np.isfinite(a) & np.isfinite(b)
        inf_mismatch = int(np.sum(~fin & (a != b))) - nan
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.where(fin, np.abs(a - b), 0.0)
        mags = np.where(fin, np.maximum(np.abs(a), np.abs(b)), 0.0)
        scale = float(mags.max()) if self.scale is None and mags.size else float(self.scale or 0.0)
        allowed = self.atol if self.atol is not None else \
            tolerance(self.tolerance).factor * self.terms * U64 * scale
        max_abs = float(err.max()) if err.size else 0.0
        with np.errstate(over="ignore"):
            norm = float(np.sqrt(np.sum(np.abs(np.where(fin, b, 0.0)) ** 2)))
            rel_rms = float(np.sqrt(np.sum(err**2))) / norm if norm > 0 else (0.0 if max_abs == 0 else np.inf)
        ulp_scale = U64 * 2 * scale  # 0 when scale is subnormal: no ulp figure then
        max_ulp = max_abs / ulp_scale if ulp_scale > 0 else (0.0 if max_abs == 0 else np.inf)
        margin = max_abs / allowed if allowed > 0 else (0.0 if max_abs == 0 else np.inf)
        detail = ""
        if nan or inf_mismatch:
            detail = f"{nan} NaN, {inf_mismatch} infinity mismatch(es)"
            margin = np.inf
        return ClaimResult(self.what, margin <= 1.0, max_abs, rel_rms, max_ulp, float(allowed), margin,
                           detail)


@dataclass(frozen=True)
class Bound:
    """``value <= limit`` elementwise, with an allowed rounding slack ``slack`` (absolute)."""

    value: Any
    limit: Any
    what: str = "value <= limit"
    slack: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def evaluate(self) -> ClaimResult:
        v, lim = np.broadcast_arrays(_f64(self.value), _f64(self.limit))
        if np.any(np.isnan(v)) or np.any(np.isnan(lim)):
            return ClaimResult(self.what, False, np.inf, np.inf, np.inf, self.slack, np.inf, "NaN")
        with np.errstate(invalid="ignore"):
            excess = np.where(v == lim, 0.0, v - lim)  # equal infinities satisfy the bound
        worst = float(excess.max()) if excess.size else -np.inf
        over = max(worst, 0.0)
        margin = over / self.slack if self.slack > 0 else (0.0 if over == 0 else np.inf)
        return ClaimResult(self.what, over <= self.slack, over, 0.0, 0.0, self.slack, margin,
                           f"max(value - limit) = {worst:.3g}")


@dataclass(frozen=True)
class ZScore:
    """``|estimate - expected| <= z_max * stderr`` elementwise.  With independent samples and a fixed seed,
    ``z_max = 4`` is a two-sided confidence of 99.994% per element under the normal approximation; state
    the sample size and keep heavy-tailed estimators out (the law's docstring says why it is safe)."""

    estimate: Any
    expected: Any
    stderr: Any
    what: str = "mean == expectation"
    z_max: float = 4.0

    def evaluate(self) -> ClaimResult:
        e, x, se = np.broadcast_arrays(_f64(self.estimate), _f64(self.expected), _f64(self.stderr))
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(x)) and np.all(np.isfinite(se))):
            return ClaimResult(self.what, False, np.inf, np.inf, np.inf, self.z_max, np.inf, "non-finite")
        dev = np.abs(e - x)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, dev / se, np.where(dev == 0, 0.0, np.inf))
        zmax = float(z.max()) if z.size else 0.0
        norm = float(np.linalg.norm(x))
        return ClaimResult(self.what, zmax <= self.z_max, float(dev.max()) if dev.size else 0.0,
                           float(np.linalg.norm(e - x)) / norm if norm > 0 else 0.0, 0.0, self.z_max,
                           zmax / self.z_max, f"max z = {zmax:.3g} (limit {self.z_max})")


@dataclass(frozen=True)
class Rate:
    """Errors ``errors[i]`` at step sizes ``steps[i]`` decay at least like ``h^order``: the least-squares
    slope of log(error) against log(h) is ``>= order - slack``."""

    steps: Any
    errors: Any
    order: float
    what: str = "error = O(h^order)"
    slack: float = 0.25

    def evaluate(self) -> ClaimResult:
        h, e = _f64(self.steps).ravel(), _f64(self.errors).ravel()
        if h.size < 2 or np.any(h <= 0) or np.any(~np.isfinite(e)) or np.any(e <= 0):
            return ClaimResult(self.what, False, np.inf, 0.0, 0.0, 0.0, np.inf,
                               "need >= 2 positive steps and positive finite errors")
        slope = float(np.polyfit(np.log(h), np.log(e), 1)[0])
        short = max(self.order - self.slack - slope, 0.0)
        return ClaimResult(self.what, short == 0.0, float(e.max()), 0.0, 0.0, self.slack,
                           (self.order - slope) / self.slack if self.slack > 0 else np.inf,
                           f"fitted order {slope:.3f} (expected {self.order})")


Claim = Agreement | Bound | ZScore | Rate
_CLAIMS = (Agreement, Bound, ZScore, Rate)


def as_claims(out: Any) -> list[Claim]:
    """Normalise a law's return value into a list of claims."""
    if isinstance(out, _CLAIMS):
        return [out]
    if isinstance(out, tuple) and len(out) == 2 and not isinstance(out[0], _CLAIMS):
        return [Agreement(out[0], out[1])]
    if isinstance(out, list | tuple) and all(isinstance(c, _CLAIMS) for c in out):
        return list(out)
    raise TypeError("a law must return a claim, (lhs, rhs), or a list of claims; got "
                    f"{type(out).__name__}")
