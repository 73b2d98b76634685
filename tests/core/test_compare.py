"""The measuring instruments: ulps, figures, the baseline-relative verdict, claims."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriformer.claims import Agreement, Bound, Rate, ZScore
from veriformer.compare import judge_against_baseline, measure, ulp


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_ulp_matches_numpy_spacing(dtype: str) -> None:
    x = np.array([0.0, 1e-30, 3e-8, 0.1, 1.0, 1.5, 1000.0, -7.25, 60000.0])
    if dtype == "float16":
        x = x[np.abs(x) < 65000]
    want = np.spacing(np.abs(x).astype(dtype)).astype(np.float64)
    np.testing.assert_array_equal(ulp(x.astype(dtype).astype(np.float64), dtype), want)


def test_ulp_bfloat16_from_torch() -> None:
    for v in (1.0, 3.0, 0.007, 1e20, 2.0**-130):
        t = torch.tensor(v, dtype=torch.bfloat16)
        nxt = torch.nextafter(t, torch.tensor(float("inf"), dtype=torch.bfloat16))
        assert ulp(np.array(float(t)), "bfloat16") == float(nxt) - float(t)


def test_measure_figures_and_nonfinite() -> None:
    g = np.array([1.0, -2.0, 0.0, -np.inf])
    c = np.array([1.0 + 2**-20, -2.0, np.nan, -np.inf])
    f = measure(c, g, "float32")
    assert f.nonfinite == 1 and f.max_abs == 2**-20
    assert f.max_ulp == pytest.approx(2**-20 / 2**-23)
    assert measure(np.array([1.0, 0.0]), np.array([1.0, -np.inf])).nonfinite == 1


def test_judge_policy() -> None:
    g = np.array([1.0, 2.0])
    base = g + 2.0**-10
    assert judge_against_baseline("o", g + 2.0**-9, base, g, "float32", rho=2, floor_ulps=0).passed
    v = judge_against_baseline("o", g + 2.0**-9 + 2.0**-12, base, g, "float32", rho=2, floor_ulps=0)
    assert not v.passed and v.ratio == pytest.approx(2.25)
    # an exact baseline cannot fail a kernel within the ulp floor
    assert judge_against_baseline("o", g + 2**-23, g, g, "float32", rho=2, floor_ulps=2).passed
    assert not judge_against_baseline("o", g + 2**-20, g, g, "float32", rho=2, floor_ulps=2).passed
    # non-finite output fails at once, even with a terrible baseline
    v = judge_against_baseline("o", np.array([np.nan, 2.0]), g + 100, g, "float32", rho=2, floor_ulps=2)
    assert not v.passed and "non-finite" in v.reason
    # a non-finite baseline never loosens the test
    assert not judge_against_baseline("o", g + 1.0, np.array([np.inf, 2.0]), g, "float32", rho=2,
                                      floor_ulps=2).passed


def test_claims() -> None:
    assert Agreement(np.ones(3), np.ones(3) + 1e-16, terms=2).evaluate().passed
    r = Agreement(np.ones(3), np.ones(3) + 1e-12).evaluate()
    assert not r.passed and r.margin > 1 and r.max_abs == pytest.approx(1e-12, rel=1e-3)
    assert not Agreement(np.array([np.nan]), np.array([1.0])).evaluate().passed
    assert not Agreement(np.array([-np.inf]), np.array([0.0])).evaluate().passed
    assert Agreement(np.array([-np.inf]), np.array([-np.inf])).evaluate().passed
    assert not Agreement(np.ones(3), np.ones(4)).evaluate().passed
    assert Bound(np.array([0.0, -1.0]), 0.0).evaluate().passed
    assert not Bound(np.array([1e-9]), 0.0).evaluate().passed
    assert Bound(np.array([1e-9]), 0.0, slack=1e-8).evaluate().passed


def test_statistical_and_rate_claims() -> None:
    assert ZScore(1.01, 1.0, 0.01).evaluate().passed
    assert not ZScore(1.05, 1.0, 0.01).evaluate().passed
    assert not ZScore(np.nan, 1.0, 0.01).evaluate().passed
    h = np.array([0.1, 0.05, 0.025])
    assert Rate(h, 3 * h**3, order=3).evaluate().passed
    r = Rate(h, 3 * h**2, order=3).evaluate()
    assert not r.passed and "fitted order 2.000" in r.detail
    assert not Rate(h, np.zeros(3), order=1).evaluate().passed


def test_max_ulp_skips_exact_zero_gold_but_max_abs_keeps_it() -> None:
    """A gold value of exactly 0 has a subnormal spacing (~1e-45 in float32): its error is reported by max_abs,
    not as ~1e38 ulp; elements with normal gold values are measured in ulps as usual."""
    from veriformer.compare import measure

    f = measure(np.array([1e-7, 1.0 + 2.0**-22]), np.array([0.0, 1.0]), "float32")
    assert f.max_abs == 2.0**-22 and f.max_ulp == pytest.approx(2.0)
    g = measure(np.array([1e-7]), np.array([0.0]), "float32")
    assert g.max_abs == 1e-7 and g.max_ulp == 0.0


def test_law_cases_outside_the_domain_are_discarded_with_assume() -> None:
    """A law may call hypothesis.assume() to discard a case outside its domain (e.g. an RTF conversion with a
    pole on the unit circle); only real claim failures fail the law."""
    from hypothesis import assume
    from hypothesis import strategies as st

    from veriformer.laws import run_law
    from veriformer.registry import Law

    def odd_only(ref: object, n: int) -> Agreement:
        assume(n % 2 == 1)
        return Agreement(float(n % 2), 1.0, "n is odd")

    r = run_law(Law("test.assume", "test", "here", "exact", odd_only, {"n": st.integers(0, 100)}), max_examples=20)
    assert r.passed and r.cases and all(int(c.inputs.split("=")[1]) % 2 == 1 for c in r.cases)


def test_figures_at_the_summand_scale_for_cancelling_outputs() -> None:
    """With the op's summand size s, an element that cancels to ~0 is measured in ulps of s and the relative RMS
    against u ||s||: a gradient of 1e-30 off by one float32 rounding of summands of size 1 reads ~1 ulp, not
    1e30; without s the figures stay at the gold values' own magnitudes."""
    g = np.array([1e-30, 1.0])
    c = g + np.array([2.0**-24, 2.0**-23])
    plain, scaled = measure(c, g, "float32"), measure(c, g, "float32", scale=1.0)
    assert plain.max_ulp > 1e20 and scaled.max_ulp == pytest.approx(1.0)
    assert scaled.max_abs == plain.max_abs and scaled.rel_rms <= plain.rel_rms
    z = measure(np.array([1e-8, -1e-8]), np.zeros(2), "float32", scale=0.5)
    # an output that cancels to 0 is measured in unit roundoffs of its summands (here 1e-8 / (2^-24 x 0.5))
    assert np.isfinite(z.rel_rms) and z.rel_rms == pytest.approx(1e-8 / (2.0**-24 * 0.5))
