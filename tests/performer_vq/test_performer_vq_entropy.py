"""Performer-as-soft-VQ and entropy-invariant softmax oracles: bad input names the argument, the mpmath run
certifies the float64 one, the code sampler draws from p, and the laws / mutants are registered (the catalogue,
veriformer/test_catalogue.py, runs them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import veriformer
from veriformer import InputError
from veriformer import reference as ref

rng = np.random.default_rng(0)
W = ref.equal_norm_projection(6, 4, seed=0)
Q4, K4, V4 = rng.standard_normal((1, 2, 3, 4)) * 0.5, rng.standard_normal((1, 2, 5, 4)) * 0.5, rng.standard_normal(
    (1, 2, 5, 3))
P = ref.soft_vq_assignments(K4, W)
Q, K, V = rng.standard_normal((1, 4, 3, 8)), rng.standard_normal((1, 2, 5, 8)), rng.standard_normal((1, 2, 5, 8))


def _p(**changes: Any) -> np.ndarray:
    p = P.copy()
    for where, val in changes.items():
        p[(0, 0, 0, int(where[1:]))] = val
    return p


PERFORMER_VQ_ERRORS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: ref.equal_norm_projection(4, 2, seed=0, norm=-1.0), "norm", "float > 0"),
    (lambda: ref.equal_norm_projection(0, 2, seed=0), "m", "int >= 1"),
    (lambda: ref.vq_query_features(np.zeros((2, 3)), W), "q", "d = 4"),
    (lambda: ref.vq_key_features(np.zeros((2, 4)), W[0]), "omega", "rank 2"),
    (lambda: ref.vq_key_features(np.full((2, 4), np.nan), W), "k", "finite"),
    (lambda: ref.reduced_favor_attention(Q4, K4, V4[:, :, :4], W), "v", "[B, H, S, e]"),
    (lambda: ref.reduced_favor_attention(Q4, K4[:, :1], V4, W), "k", "[B, H, S, d]"),
    (lambda: ref.reduced_favor_attention(Q4[0], K4, V4, W), "q", "rank 4"),
    (lambda: ref.soft_vq_assignments(K4, W, temperature=0.0), "temperature", "float > 0"),
    (lambda: ref.soft_vq_attention(Q4, K4, V4, W, temperature=-1.0), "temperature", "float > 0"),
    (lambda: ref.soft_vq_numerator(Q4, V4, W, _p(i0=P[0, 0, 0, 0] + 0.1)), "p", "summing to 1"),
    (lambda: ref.soft_vq_numerator(Q4, V4, W, _p(i0=-0.1, i1=P[0, 0, 0, 1] + P[0, 0, 0, 0] + 0.1)), "p",
     "non-negative"),
    (lambda: ref.soft_vq_numerator(Q4, V4, W, P[..., :5]), "p", "[B, H, S, m]"),
    (lambda: ref.soft_vq_numerator(Q4, V4[:, :1], W, P), "v", "[B, H, S, e]"),
    (lambda: ref.sample_vq_codes(P, n_samples=0, seed=0), "n_samples", "int >= 1"),
    (lambda: ref.sample_vq_codes(P[0], n_samples=2, seed=0), "p", "rank 4"),
    (lambda: ref.vq_numerator(Q4, V4, W, np.zeros((1, 2, 5))), "codes", "integer"),
    (lambda: ref.vq_numerator(Q4, V4, W, np.full((1, 2, 5), 6)), "codes", "[0, 6)"),
    (lambda: ref.vq_numerator(Q4, V4, W, np.zeros((1, 2, 4), np.int64)), "codes", "[..., B, H, S]"),
]

ENTROPY_ERRORS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: ref.entropy_invariant_attention(Q, K, V, mask=np.zeros((1, 1, 3, 5))), "mask", "boolean"),
    (lambda: ref.entropy_invariant_attention(Q, K, V, mask=np.ones((1, 1, 3, 4), bool)), "mask",
     "[B or 1, H or 1, T, S]"),
    (lambda: ref.entropy_invariant_attention(Q, K, V, clamp=0.5), "clamp", ">= 1"),
    (lambda: ref.entropy_invariant_attention(Q, K, V, base=1), "base", "> 1"),
    (lambda: ref.entropy_invariant_attention(Q, K, V, base=float("inf")), "base", "finite"),
    (lambda: ref.entropy_invariant_attention(Q[0], K, V), "q", "rank 4"),
    (lambda: ref.entropy_invariant_attention(Q, K[..., :7], V), "k", "D=8"),
    (lambda: ref.entropy_invariant_attention(Q, K, V[:, :, :4]), "v", "[B, Hkv, S, Dv]"),
    (lambda: ref.entropy_invariant_attention(Q, K, V, causal=1), "causal", "bool"),
    (lambda: ref.attention_probabilities(Q, K, kind="relu"), "kind", "one of"),
    (lambda: ref.attention_entropy(Q, K, kind="softmax"), "kind", "one of"),
    (lambda: ref.attention_entropy(Q, np.full((1, 2, 5, 8), np.inf)), "k", "finite"),
]


@pytest.mark.parametrize(("call", "arg", "words"), PERFORMER_VQ_ERRORS + ENTROPY_ERRORS)
def test_errors_name_the_argument(call: Callable[[], Any], arg: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        call()
    assert f"'{arg}'" in str(e.value) and words in str(e.value), str(e.value)


def test_equal_norm_projection() -> None:
    for orth in (False, True):
        w = ref.equal_norm_projection(10, 4, seed=3, norm=1.5, orthogonal=orth)
        assert w.shape == (10, 4)
        np.testing.assert_allclose(np.linalg.norm(w, axis=-1), 1.5, rtol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(ref.equal_norm_projection(5, 9, seed=1), axis=-1), 3.0, rtol=1e-15)
    g = ref.gaussian_projection(10, 4, seed=3, orthogonal=True)  # same directions as the Gaussian projection
    np.testing.assert_allclose(ref.equal_norm_projection(10, 4, seed=3, norm=1.0, orthogonal=True),
                               g / np.linalg.norm(g, axis=-1, keepdims=True), rtol=1e-15)


def test_mpmath_certifies_float64() -> None:
    mp = ref.MP(30)
    q, k, v = Q4[:, :1, :2], K4[:, :1, :3], V4[:, :1, :3]
    for f in (lambda **b: ref.reduced_favor_attention(q, k, v, W, **b),
              lambda **b: ref.soft_vq_attention(q, k, v, W, temperature=0.5, **b),
              lambda **b: ref.soft_vq_numerator(q, v, W, P[:, :1, :3], **b),
              lambda **b: ref.vq_numerator(q, v, W, np.array([[[0, 5, 2]]]), **b),
              lambda **b: ref.entropy_invariant_attention(Q[:, :2, :2, :4], K[:, :1, :3, :4], V[:, :1, :3, :2],
                                                          causal=True, clamp=2, base=3, **b),
              lambda **b: ref.attention_probabilities(Q[:, :1, :2, :4], K[:, :1, :3, :4], kind="relu2", **b),
              lambda **b: ref.attention_entropy(Q[:, :1, :2, :4], K[:, :1, :3, :4], base=2.5, **b)):
        hi, lo = f(backend=mp), f()
        np.testing.assert_allclose(lo, hi, rtol=1e-13, atol=1e-15)


def test_sampled_codes_follow_p() -> None:
    p = np.array([0.5, 0.0, 0.2, 0.3])[None, None, None, :].repeat(2, axis=2)
    codes = ref.sample_vq_codes(p, n_samples=20000, seed=7)
    assert codes.shape == (20000, 1, 1, 2) and codes.dtype == np.int64
    freq = np.bincount(codes.ravel(), minlength=4) / codes.size
    assert freq[1] == 0.0  # a zero-probability code is never drawn
    se = np.sqrt(p[0, 0, 0] * (1 - p[0, 0, 0]) / codes.size)
    assert np.all(np.abs(freq - p[0, 0, 0]) <= 4.5 * se + 1e-12), (freq, se)
    np.testing.assert_array_equal(codes, ref.sample_vq_codes(p, n_samples=20000, seed=7))  # deterministic


def test_one_hot_codes_make_soft_and_hard_numerators_equal() -> None:
    codes = np.array([[[0, 3, 3, 1, 5], [2, 2, 0, 4, 1]]])
    onehot = np.eye(6)[codes]
    np.testing.assert_allclose(ref.vq_numerator(Q4, V4, W, codes), ref.soft_vq_numerator(Q4, V4, W, onehot),
                               rtol=1e-14)


def test_entropy_invariant_torch_and_gqa() -> None:
    o = ref.entropy_invariant_attention(Q, K, V, causal=True)
    ot = ref.entropy_invariant_attention(*(torch.from_numpy(x) for x in (Q, K, V)), causal=True)
    np.testing.assert_array_equal(o, ot)
    k_rep, v_rep = np.repeat(K, 2, axis=1), np.repeat(V, 2, axis=1)  # GQA = repeated kv heads
    np.testing.assert_allclose(o, ref.entropy_invariant_attention(Q, k_rep, v_rep, causal=True), rtol=1e-14)
    # a query that sees no key (causal, T > S) gets output 0 and entropy 0
    q = rng.standard_normal((1, 1, 7, 8))
    assert np.all(ref.entropy_invariant_attention(q, K[:, :1], V[:, :1], causal=True)[0, 0, :2] == 0)
    assert np.all(ref.attention_entropy(q, K[:, :1], causal=True)[0, 0, :2] == 0)


def test_laws_and_mutants_registered() -> None:
    laws = {n for n in veriformer.LAWS if n.startswith(("performer_vq.", "entropy_softmax."))}
    assert len(laws) == 8, laws
    catchers = {t for m in veriformer.MUTANTS.values() for t in m.caught_by}
    assert laws <= catchers
