"""NBCE oracles against the reference code's own lines (bojone/NBCE test.py, transcribed in torch float64 with
Hugging Face's TopPLogitsWarper), the worked example, edge cases and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriformer import reference as ref
from veriformer.properties.nbce import laws
from veriformer.properties.nbce.strategies import NbceCase
from veriformer.reference import InputError


def _hf_top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """transformers TopPLogitsWarper.__call__ (min_tokens_to_keep = 1, filter_value = -inf), with a stable sort."""
    sorted_logits, sorted_indices = torch.sort(scores, descending=False, stable=True)
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_indices_to_remove = cumulative_probs <= (1 - top_p)
    sorted_indices_to_remove[..., -1:] = 0
    indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
    return scores.masked_fill(indices_to_remove, -float("inf"))


def _code_step(logits: torch.Tensor, k_prev: int | None, beta: float = 0.25, eta: float = 0.1,
               top_p: float = 0.95) -> tuple[torch.Tensor, int]:
    """The core lines of bojone/NBCE test.py ('核心代码'), plus the final normalisation the sampling softmax does."""
    logits = logits - logits.logsumexp(dim=-1, keepdims=True)
    logits = _hf_top_p(logits, top_p)
    entropy = -(logits.exp() * logits.clip(-100, 0)).sum(dim=-1)
    if k_prev is not None:
        entropy[k_prev] -= eta
    k = int(entropy[1:].argmin()) + 1
    logits_max = logits[k]
    logits_uncond = logits[0]
    logits_merged = (1 + beta) * logits_max - beta * logits_uncond
    out = torch.where(logits_uncond > -100, logits_merged, logits_max)
    return torch.log_softmax(out, dim=-1), k


@pytest.mark.parametrize("seed", range(12))
def test_step_equals_the_reference_code(seed: int) -> None:
    rng = np.random.default_rng(seed)
    case = NbceCase(n=int(rng.integers(1, 6)), V=int(rng.integers(2, 30)), amp=float(rng.choice([0.3, 1.0, 4.0])),
                    peaked=bool(seed % 2), seed=seed)
    x = case.arrays()["logits"]
    prev = None if seed % 3 == 0 else int(rng.integers(1, case.n + 1))
    ours, k = ref.nbce_step(x, previous=prev)
    theirs, k_code = _code_step(torch.tensor(x), prev)
    assert k == k_code
    np.testing.assert_allclose(np.exp(ours), np.exp(theirs.numpy()), rtol=0, atol=1e-14)
    assert np.array_equal(np.isfinite(ours), np.isfinite(theirs.numpy()))


def test_top_p_equals_hugging_face() -> None:
    rng = np.random.default_rng(3)
    for top_p in (0.3, 0.9, 0.95, 1.0):
        x = ref.nbce_log_softmax(rng.standard_normal((5, 17)) * 3)
        got = ref.nbce_top_p(x, top_p)
        want = _hf_top_p(torch.tensor(x), top_p).numpy()
        np.testing.assert_array_equal(got, want)


def test_worked_example_numbers() -> None:
    m1, k1 = ref.nbce_step(np.array(laws.WORKED_STEP1))
    m2, k2 = ref.nbce_step(np.array(laws.WORKED_STEP2), previous=k1)
    _, k_free = ref.nbce_step(np.array(laws.WORKED_STEP2))
    assert (k1, k2, k_free) == (2, 2, 3)
    np.testing.assert_allclose(np.exp(m1), laws.WORKED_P1, rtol=0, atol=2e-16)
    np.testing.assert_allclose(np.exp(m2), laws.WORKED_P2, rtol=0, atol=2e-16)
    # the fallback at step 1: the unconditional row's last token is truncated, context 2 alone decides it
    lp = ref.nbce_top_p(ref.nbce_log_softmax(np.array(laws.WORKED_STEP1)), 0.95)
    assert lp[0, 5] == -np.inf and np.isfinite(lp[2, 5]) and np.isfinite(m1[5])


def test_single_context_and_limits() -> None:
    x = NbceCase(n=1, V=9, amp=2.0, seed=5).arrays()["logits"]
    lp = ref.nbce_log_softmax(x)
    np.testing.assert_allclose(ref.nbce_merge(lp[1:], lp[0], beta=0.0), lp[1], atol=1e-15)
    np.testing.assert_allclose(ref.nbce_merge(lp[1:], lp[0], beta=-1.0), lp[0], atol=1e-15)
    for pooling in ref.NBCE_POOLINGS:
        np.testing.assert_allclose(ref.nbce_merge(lp[1:], lp[0], beta=2.0, pooling=pooling),
                                   ref.nbce_log_softmax(3 * lp[1] - 2 * lp[0]), atol=1e-14)
    # one token: everything is certain
    one = ref.nbce_step(np.array([[0.3], [7.0]]))
    assert one[1] == 1 and one[0].tolist() == [0.0]


def test_truncated_pooled_row_stays_minus_inf() -> None:
    c = np.array([[0.0, -np.inf, np.log(0.5)]])
    u = np.array([-np.inf, np.log(0.5), np.log(0.5)])
    m = ref.nbce_merge(c, u, beta=0.25, normalize=False)
    assert m[0] == 0.0 and m[1] == -np.inf and np.isfinite(m[2])
    assert not np.isnan(ref.nbce_merge(c, u, beta=-1.0)).any()


@pytest.mark.parametrize(("call", "arg"), [
    (lambda: ref.nbce_merge(np.zeros((2, 3)), np.zeros(4)), "'logp_uncond'"),
    (lambda: ref.nbce_merge(np.zeros((2, 3)), np.zeros(3), pooling="median"), "'pooling'"),
    (lambda: ref.nbce_merge(np.zeros((2, 3)), np.zeros(3), beta=np.inf), "'beta'"),
    (lambda: ref.nbce_select(np.zeros((2, 3)), previous=2), "'previous'"),
    (lambda: ref.nbce_top_p(np.zeros(3), 0.0), "'top_p'"),
    (lambda: ref.nbce_top_p(np.array([np.nan, 0.0]), 0.9), "'logp'"),
    (lambda: ref.nbce_step(np.zeros((1, 3))), "'logits'"),
    (lambda: ref.nbce_step(np.zeros((3, 3)), previous=0), "'previous'"),
    (lambda: ref.nbce_naive_bayes(np.array([[0.0, -np.inf]]), np.zeros(2)), "'logp_contexts'"),
])
def test_bad_input_names_the_argument(call: object, arg: str) -> None:
    with pytest.raises(InputError, match=arg):
        call()  # type: ignore[operator]
