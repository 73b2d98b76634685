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
    Tolerance("op.softmax_attention", rho=2.0, floor_ulps=4.0, reason=(
        "Issue policy rho = 2 over the naive torch formula in the same dtype, plus a 4 ulp floor at each "
        "output's magnitude (an exactly rounded baseline cannot fail a kernel that reorders its sums), 4 ulp of "
        "the dtype at sigma_i = sqrt(sum_j p_ij^2 v_jd^2) (P rounded to the dtype for the P V product: independent "
        "roundings add in quadrature, Hoeffding bound, fails a correct kernel with probability < 2 exp(-32) per "
        "element) and 4 ulp x L at s_i = sum_j p_ij |v_jd| (L = max|logit|) in the accumulator's precision "
        "(float32 for half inputs): rounding a logit of size L once moves its weight by a relative u L, which "
        "any correct kernel may incur (observed: torch SDPA's CPU forward in float32 at L ~ 300 had 3-8x the "
        "naive error on cases where naive was lucky).  The log-sum-exp (feature lse) is judged with condition "
        "1 at L + 1 (a logit rounded once moves it by u L).  Measured at S = 4096 in bf16: the old floor at "
        "max|v| passed an all-zero output; per element it fails at margin ~50.")),
    Tolerance("op.softmax_attention.grad", rho=2.0, floor_ulps=8.0, reason=(
        "Gradients: rho = 2; an 8 ulp floor at each element, and 8 ulp x (1 + L) at the size of the "
        "summands of each gradient (global Cauchy-Schwarz bounds, op_attention._attention_conditioning; the "
        "normwise guard keeps a scaled or zero gradient from hiding in them): dS = P (dP - "
        "rowsum(dO O)) cancels, and a flash-style backward recomputes P = exp(s - lse) from the saved "
        "log-sum-exp, rounding a logit-sized number (observed: torch SDPA's CPU backward in float32 at "
        "L ~ 300 had 30x the naive autograd error, which keeps P).")),
    Tolerance("op.rope", rho=2.0, floor_ulps=2.0, reason=(
        "One rotation per pair: two products and a sum per output (<= 1.5 ulp when the angle is exact), so the "
        "floor is 2 ulp at the output, at the root-sum-square of its two summands x_a cos, x_b sin (which may "
        "cancel) and, with condition 1, at their sum in the accumulator's precision (cos/sin rounded).  Judged "
        "against the better of two same-dtype baselines: the usual one (HF transformers: angles n theta in "
        "float32, which at position 1e6 is off by up to 0.06 rad, losing ~20 of float32's 24 bits) and a careful "
        "one (angles and cos/sin in float64, cast once): a kernel as sloppy as the usual code fails where the "
        "careful code is exact, instead of passing 'as good as the baseline'.")),
    Tolerance("op.rope.grad", rho=2.0, floor_ulps=2.0, reason="The VJP is the inverse rotation: as op.rope, "
              "with the floor at the two summands of each gradient element."),
]

TOLERANCES: dict[str, Tolerance] = {row.key: row for row in _ROWS}


def tolerance(key: str) -> Tolerance:
    """Row ``key`` of the table (KeyError names the known keys)."""
    try:
        return TOLERANCES[key]
    except KeyError:
        raise KeyError(f"no tolerance row {key!r}; known: {sorted(TOLERANCES)}") from None


def register_tolerance(row: Tolerance) -> Tolerance:
    """Add a row (families register theirs next to their ops, in ``veriformer/op_<family>.py``)."""
    if row.key in TOLERANCES and TOLERANCES[row.key] != row:
        raise ValueError(f"tolerance row {row.key!r} registered twice with different values")
    if not row.reason:
        raise ValueError(f"tolerance row {row.key!r} needs a reason")
    TOLERANCES[row.key] = row
    return row
