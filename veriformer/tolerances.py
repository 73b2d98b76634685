"""The tolerance table: every threshold the suite applies, as data, each with its reason.

Two kinds of entries:

* ``law.*`` — identities between float64 oracles.  An :class:`~veriformer.claims.Agreement` of two forms
  that each sum at most ``terms`` rounded products passes when ``|lhs - rhs| <= factor * terms * u *
  scale`` with u = 2^-53 and ``scale`` the magnitude of the summands (Higham 2002, eq. 3.5:
  ``|fl(sum x) - sum x| <= gamma_n sum |x|``, ``gamma_n ~ n u``).
* ``op.*`` — kernels under test.  A case passes when every element satisfies ``|c_i - g_i| <= rho * max|b - g| +
  floor_ulps * (ulp(g_i) + ulp(sigma_i) + C ulp_acc(s_i))`` and the whole output the normwise guard
  ``||c - g||_2 <= rho ||b - g||_2 + ||2u g + u sigma + C u_acc s||_2``, where b is the naive torch baseline in
  the same dtype (or the better of it and a careful one, where the op has one), s_i the sum of |summands| of
  element i and sigma_i their root-sum-square (measured per element, never at a global maximum), C the
  condition the op declares (the last two floor terms only where it declares them), ulp_acc the spacing of
  float32 for half inputs (the kernels' accumulators) and of the dtype otherwise (see
  ``compare.judge_against_baseline``).  The reasons below say "k ulp x L at s" for the conditioned term.

Override per call: ``check(..., rho=3.0, floor_ulps=8)``; families add rows with :func:`register_tolerance`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["TOLERANCES", "Tolerance", "register_tolerance", "tolerance"]


@dataclass(frozen=True)
class Tolerance:
    """One row of the table.  ``factor`` applies to law agreements; ``rho``/``floor_ulps`` to op checks."""

    key: str
    reason: str
    factor: float = 0.0
    rho: float = 0.0
    floor_ulps: float = 0.0

    def with_overrides(self, **kw: float | None) -> Tolerance:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


_ROWS = [
    Tolerance("law.exact", factor=4.0, reason=(
        "Identity in exact arithmetic; the two float64 forms differ only by the order of at most `terms` "
        "rounded operations per element, bounded by gamma_n * sum|x| <= n u sum|x| (Higham 2002, 3.5); "
        "a factor 4 covers the exp/log/division steps around each sum.")),
    Tolerance("law.certificate", factor=4.0, reason=(
        "float64 oracle vs the same code in mpmath at >= 40 digits: the error bound is derived per law "
        "(condition estimate x u) and multiplied by this safety factor.")),
    Tolerance("law.defined", factor=0.0, reason=(
        "Defined behaviour (e.g. fully masked rows give exactly 0 and lse = -inf): no rounding allowed.")),
]

TOLERANCES: dict[str, Tolerance] = {row.key: row for row in _ROWS}


def tolerance(key: str) -> Tolerance:
    """Row ``key`` of the table (KeyError names the known keys); the families' rows load with the catalogue."""
    if key not in TOLERANCES:
        from veriformer import load_catalogue

        load_catalogue()
    try:
        return TOLERANCES[key]
    except KeyError:
        raise KeyError(f"no tolerance row {key!r}; known: {sorted(TOLERANCES)}") from None


def register_tolerance(row: Tolerance) -> Tolerance:
    """Add a row (families register theirs next to their ops, in ``properties/<family>/op*.py``)."""
    if row.key in TOLERANCES and TOLERANCES[row.key] != row:
        raise ValueError(f"tolerance row {row.key!r} registered twice with different values")
    if not row.reason:
        raise ValueError(f"tolerance row {row.key!r} needs a reason")
    TOLERANCES[row.key] = row
    return row
