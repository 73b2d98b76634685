"""Pinned values and independent cross-checks of the oracles (beyond the laws)."""

from __future__ import annotations

import numpy as np
import torch

from veriformer import reference as ref


def test_attention_matches_torch_float64_on_every_feature() -> None:
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 4, 5, 8)), rng.standard_normal((2, 2, 9, 8)), rng.standard_normal((2, 2, 9, 3))
    for kw in ({}, {"causal": True}, {"window": 3}, {"window": 2, "sinks": 2}, {"causal": True, "window": 4}):
        vis = torch.from_numpy(ref.visibility_mask(5, 9, **kw))
        want = torch.nn.functional.scaled_dot_product_attention(
            torch.tensor(q), torch.tensor(k).repeat_interleave(2, 1), torch.tensor(v).repeat_interleave(2, 1),
            attn_mask=vis)
        np.testing.assert_allclose(ref.softmax_attention(q, k, v, **kw), want.numpy(), atol=1e-14)


def test_visibility_pinned() -> None:
    # T=2 queries at positions 3, 4 over S=5 keys, window 2, one sink
    vis = ref.visibility_mask(2, 5, window=2, sinks=1)
    np.testing.assert_array_equal(vis, [[1, 0, 1, 1, 0], [1, 0, 0, 1, 1]])
    np.testing.assert_array_equal(ref.visibility_mask(3, 2, causal=True), [[0, 0], [1, 0], [1, 1]])


def test_rope_pinned_value_and_hf_rotate_half() -> None:
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    y = ref.rope(x, np.array([1]), base=10000.0, layout="half")
    # pairs (0, 2) with theta_0 = 1 and (1, 3) with theta_1 = 1e-2
    np.testing.assert_allclose(y, [[np.cos(1), -np.sin(1e-2), np.sin(1), np.cos(1e-2)]], atol=1e-16)
    yi = ref.rope(x, np.array([1]), layout="interleaved")
    np.testing.assert_allclose(yi, [[np.cos(1), np.sin(1), -np.sin(1e-2), np.cos(1e-2)]], atol=1e-16)


def test_fully_masked_rows_and_lse() -> None:
    q, k, v = np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 2)), np.arange(6.0).reshape(1, 1, 3, 2)
    mask = np.array([[[[True, True, False], [False, False, False]]]])
    o, lse = ref.softmax_attention(q, k, v, mask=mask, return_lse=True)
    np.testing.assert_array_equal(o[0, 0, 1], [0.0, 0.0])
    assert lse[0, 0, 1] == -np.inf
    np.testing.assert_allclose(o[0, 0, 0], [1.0, 2.0])
    np.testing.assert_allclose(lse[0, 0, 0], 2 / np.sqrt(2) + np.log(2))


def test_extreme_logits_do_not_overflow() -> None:
    x = np.array([[1e4, 0.0, -1e4, 1e4 - 1]])
    p = ref.softmax(x)
    np.testing.assert_allclose(p, [[1 / (1 + np.exp(-1)), 0, 0, np.exp(-1) / (1 + np.exp(-1))]], rtol=1e-15)
    assert ref.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
