"""check() validates its arguments and reports what a user needs (issue: a tool kernel engineers can live with).
Each test failed before the change it names."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import veriformer
from veriformer import reference as ref
from veriformer.fast.attention import naive
from veriformer.fast.rope import naive as naive_rope
from veriformer.properties.rope.implementations import oracle_rope


def test_torch_dtypes_are_accepted_as_well_as_names() -> None:
    r = veriformer.check(oracle_rope, op="rope", dtypes=(torch.float16, "bfloat16"), max_examples=2)
    assert r.passed and r.dtypes == ("float16", "bfloat16")
    assert "float16" in r.summary()


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"rho": -1}, "'rho' must be a finite number >= 0"),
    ({"floor_ulps": float("nan")}, "'floor_ulps'"),
    ({"max_examples": 0}, "'max_examples' must be an int >= 1"),
    ({"dtypes": ("fp16",)}, "'dtypes' has 'fp16'"),
    ({"dtypes": ()}, "'dtypes' is empty"),
    ({"cases": []}, "'cases' is empty"),
    ({"cases": [object()]}, "not a case"),
    ({"features": "causal"}, "not the string"),
    ({"seed": 1.5}, "'seed' must be an int"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises((ValueError, TypeError), match=words.replace("(", r"\(")):
        veriformer.check(naive.softmax_attention, op="softmax_attention", **kwargs)  # type: ignore[arg-type]


def test_rho_and_floor_zero_leak_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = veriformer.check(oracle_rope, op="rope", rho=0, floor_ulps=0, max_examples=3)
    assert r.cases


def test_non_finite_failure_shows_its_count() -> None:
    def nan_rope(x, positions, *, base):  # type: ignore[no-untyped-def]
        y = naive_rope.rope(x, positions, base=base)
        y.view(-1)[0] = float("nan")
        return y

    r = veriformer.check(nan_rope, op="rope", max_examples=2, shrink=False)
    s = r.summary()
    assert not r.passed and "NaN/Inf" in s and "non-finite" in s
    assert r.per_dtype()["float32"]["nonfinite"] >= 1


def test_selective_scan_oracle_rejects_an_empty_sequence_clearly() -> None:
    u = np.zeros((1, 2, 0))
    with pytest.raises(veriformer.InputError, match=r"argument 'u'.*no empty sequence"):
        ref.selective_scan(u, u, -np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 4)))


def test_baseline_far_from_correct_is_flagged() -> None:
    """At positions near 1e6 the usual HF-style baseline (angles n theta in float32) loses all its bits: the case
    is judged against the careful baseline instead, and the summary says so."""
    from veriformer.properties.rope.strategies import RopeCase

    case = RopeCase(B=1, H=1, T=4, D=64, positions="offset", offset=10**6, seed=0)
    r = veriformer.check(oracle_rope, op="rope", cases=[case])
    assert "the usual baseline loses" in r.summary() and "careful" in r.summary()
