"""check(): verdicts, figures, NaN poisoning, replay, determinism, and what the strategies reach."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import find, settings
from hypothesis import strategies as st

import veriformer
from veriformer.fast.attention import naive
from veriformer.fast.rope import naive as naive_rope
from veriformer.implementations import oracle_attention, torch_sdpa
from veriformer.properties.attention.strategies import AttentionCase, attention_cases
from veriformer.properties.rope.strategies import rope_cases

FEATURES = {"causal", "gqa", "window", "sinks", "mask"}


def test_issue_example_runs_and_reports_figures() -> None:
    r = veriformer.check(torch_sdpa, op="softmax_attention", dtypes=("float16", "bfloat16", "float32"),
                         device="cpu", features={"causal", "gqa"})
    assert r.passed, r.summary()
    assert {c.dtype for c in r.cases} == {"float16", "bfloat16", "float32"}
    assert r.worst is not None and r.worst.verdicts[0].candidate.max_abs >= 0
    text = r.summary()
    assert "PASSED" in text and "max ratio" in text and "bfloat16" in text


def test_same_seed_same_cases_and_other_seed_other_cases() -> None:
    a = veriformer.check(naive.softmax_attention, op="softmax_attention", features=FEATURES, seed=3)
    b = veriformer.check(naive.softmax_attention, op="softmax_attention", features=FEATURES, seed=3)
    c = veriformer.check(naive.softmax_attention, op="softmax_attention", features=FEATURES, seed=4)
    assert [x.case for x in a.cases] == [x.case for x in b.cases]
    assert [x.case for x in a.cases] != [x.case for x in c.cases]


def test_unwritten_output_is_caught_by_nan_poisoning() -> None:
    def lazy(q, k, v, *, causal, scale):  # writes all but the last query row
        o = torch.empty((*q.shape[:3], v.shape[-1]), dtype=q.dtype)
        o[:, :, :-1] = naive.softmax_attention(q, k, v, causal=causal, scale=scale)[:, :, :-1]
        return o

    r = veriformer.check(lazy, op="softmax_attention")
    assert not r.passed and "non-finite" in r.failure.message


def test_failure_is_shrunk_printed_and_replayable() -> None:
    def wrong(q, k, v, *, causal, scale):
        return naive.softmax_attention(q, k, v, causal=causal, scale=scale * 1.01)

    r = veriformer.check(wrong, op="softmax_attention")
    assert not r.passed
    assert "AttentionCase(" in r.failure.example and "reproduce_failure" not in r.failure.replay
    assert r.summary().count("reproduce_failure") == 0 and "worst element at index" in r.summary()
    failing = [c for c in r.cases if not c.passed][-1]
    again = veriformer.check(wrong, op="softmax_attention", cases=[failing.case])  # case objects round-trip
    assert not again.passed and again.cases[0].case == failing.case
    # the printed replay line works as printed, with fn the callable under test
    scope: dict[str, object] = {"veriformer": veriformer, "fn": wrong}
    exec(r.failure.replay.replace("veriformer.check(", "result = veriformer.check("), scope)
    assert not scope["result"].passed  # type: ignore[attr-defined]
    # and the printed constructor string is accepted too
    assert not veriformer.check(wrong, op="softmax_attention", cases=[repr(failing.case)]).passed


@pytest.mark.parametrize(("out", "words"), [
    (lambda q, k, v, **kw: (naive.softmax_attention(q, k, v, **kw), None), "expected a torch.Tensor"),
    (lambda q, k, v, **kw: naive.softmax_attention(q, k, v, **kw)[..., :1], "shape"),
    (lambda q, k, v, **kw: naive.softmax_attention(q, k, v, **kw).double(), "dtype"),
    (lambda q, k, v, *, causal, scale: 1 / 0, "ZeroDivisionError"),
])
def test_malformed_candidates_fail_with_a_reason(out: object, words: str) -> None:
    r = veriformer.check(out, op="softmax_attention")  # type: ignore[arg-type]
    assert not r.passed and words in r.failure.message


def test_grad_check_needs_autograd_and_catches_a_wrong_backward() -> None:
    r = veriformer.check(oracle_attention, op="softmax_attention", grad=True)
    assert not r.passed and "autograd" in r.failure.message

    class BadBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            with torch.enable_grad():
                q_, k_, v_ = (t.detach().requires_grad_() for t in (q, k, v))
                o = naive.softmax_attention(q_, k_, v_)
            ctx.save_for_backward(q_, k_, v_, o)
            return o.detach()

        @staticmethod
        def backward(ctx, g):
            q_, k_, v_, o = ctx.saved_tensors
            dq, dk, dv = torch.autograd.grad(o, (q_, k_, v_), g)
            return dq, dk * 1.05, dv  # a 5% slip in dK

    def fn(q, k, v, *, causal, scale):
        return BadBackward.apply(q, k, v)

    r = veriformer.check(fn, op="softmax_attention", grad=True, dtypes=("float32",))
    assert not r.passed and "dk" in r.failure.message


def test_rope_check_layouts_and_partial() -> None:
    assert veriformer.check(naive_rope.rope_careful, op="rope", layout="half", grad=True).passed
    r = veriformer.check(lambda x, p, *, base: naive_rope.rope_careful(x, p, base=base, layout="interleaved"),
                         op="rope",
                         layout="half")
    assert not r.passed
    part = veriformer.check(lambda x, p, *, base: naive_rope.rope_careful(x, p, base=base, rotary_dim=8), op="rope",
                            rotary_dim=8, grad=True)
    assert part.passed, part.summary()


def _reaches(strategy: st.SearchStrategy, predicate: object) -> None:
    find(strategy, predicate, settings=settings(max_examples=2000, database=None, derandomize=True))


@pytest.mark.parametrize("predicate", [
    lambda c: c.T == 1,
    lambda c: c.S > c.T and c.causal,
    lambda c: c.D == 1,
    lambda c: c.D == 256,
    lambda c: c.D % 2 == 1 and c.D > 1,
    lambda c: c.amp == 1e4,
    lambda c: c.H > c.Hkv > 1,
    lambda c: c.mask == "additive" and c.window is not None and c.sinks > 0,
])
def test_attention_strategy_reaches_the_hard_corners(predicate: object) -> None:
    _reaches(attention_cases(features=FEATURES), predicate)


def test_strategy_draws_fully_masked_rows_and_extreme_positions() -> None:
    def fully_masked(c: AttentionCase) -> bool:
        m = c.arrays().get("mask")
        return m is not None and bool((~np.any(m if m.dtype == bool else np.isfinite(m), axis=-1)).any())

    _reaches(attention_cases(features={"mask"}), fully_masked)
    _reaches(rope_cases(), lambda c: np.abs(c.arrays()["positions"]).max() >= 10**5)
    _reaches(rope_cases(), lambda c: c.arrays()["positions"].min() < 0)


def test_a_failed_check_names_the_likely_cause() -> None:
    """check(fast.rope, layout='interleaved') fails because fast.rope defaults to the half layout: say so; the
    same for a causal mask aligned top-left, a scale of 1/D and a linear attention that ignores its scale."""
    from veriformer import fast
    from veriformer.fast.linear_attention import naive as nla

    r = veriformer.check(fast.rope, op="rope", layout="interleaved", shrink=False)
    assert not r.passed and "layout='half'" in r.failure.message and "likely cause" in r.failure.message

    def top_left(q, k, v, *, causal, scale):  # type: ignore[no-untyped-def]
        T, S = q.shape[2], k.shape[2]
        m = torch.ones(1, 1, T, S, dtype=torch.bool).tril() if causal else None
        return naive.softmax_attention(q, k, v, scale=scale, mask=m)

    r = veriformer.check(top_left, op="softmax_attention", features={"causal"}, shrink=False)
    assert not r.passed and "top-left" in r.failure.message

    def one_over_d(q, k, v, *, causal, scale):  # type: ignore[no-untyped-def]
        return naive.softmax_attention(q, k, v, causal=causal, scale=1.0 / q.shape[-1])

    r = veriformer.check(one_over_d, op="softmax_attention", features={"causal"}, shrink=False)
    assert not r.passed and "scale 1/D" in r.failure.message

    def no_scale(q, k, v, *, g=None, scale, initial_state=None, output_final_state):  # type: ignore[no-untyped-def]
        return nla.linear_attention(q, k, v, g=g, scale=1.0, initial_state=initial_state,
                                    output_final_state=output_final_state)

    r = veriformer.check(no_scale, op="linear_attention", shrink=False)
    assert not r.passed and "scale ignored" in r.failure.message


def test_log_sum_exp_is_a_checked_output() -> None:
    """With the 'lse' feature the callable is asked for return_lse=True and its lse is judged (-inf rows too);
    an lse off by log(2) (a missing factor in the normaliser) fails while the output is right."""
    from veriformer.implementations import oracle_attention

    r = veriformer.check(oracle_attention, op="softmax_attention", dtypes=("bfloat16", "float32"),
                         features={"causal", "lse", "mask"}, max_examples=8)
    assert r.passed and any(v.output == "lse" for c in r.cases for v in c.verdicts)

    def lse_off(q, k, v, *, causal, scale, return_lse=False):  # type: ignore[no-untyped-def]
        o, lse = naive.softmax_attention(q, k, v, causal=causal, scale=scale, return_lse=True)
        return (o, lse + 0.6931) if return_lse else o

    bad = veriformer.check(lse_off, op="softmax_attention", features={"causal", "lse"}, shrink=False)
    assert not bad.passed and "lse" in bad.failure.message
