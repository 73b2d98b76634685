"""Monarch oracles: bad input names the argument; the spec's checks at its sizes (n = m^2, m = 1..8, and general
n in {6, 12, 15, 16, 36, 48}); the DFT against numpy.fft; the laws and mutants are registered (the catalogue,
veriformer/test_catalogue.py, runs them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import veriformer
from veriformer import InputError
from veriformer import reference as ref

rng = np.random.default_rng(0)
W1, W2 = rng.standard_normal((3, 3, 3)), rng.standard_normal((3, 3, 3))

ERRORS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: ref.monarch_shuffle(0, 2), "a", "positive int"),
    (lambda: ref.monarch_matmul(np.zeros((2, 8)), W1, W2), "x", "[..., k p]"),
    (lambda: ref.monarch_matmul(np.zeros(9), W1[0], W2), "w1", "rank 3"),
    (lambda: ref.monarch_matmul(np.zeros(9), W1, W2[:, :, :2]), "w2", "l * r = k * q"),
    (lambda: ref.monarch_matmul(np.full(9, np.nan), W1, W2), "x", "finite"),
    (lambda: ref.monarch_project(np.zeros((9, 9)), 2, 3), "k", "divisor"),
    (lambda: ref.monarch_project(np.zeros((9, 9)), 3, 4), "l", "divisor"),
    (lambda: ref.monarch_dft_factors(0, 2), "k", "positive int"),
]


@pytest.mark.parametrize(("call", "arg", "words"), ERRORS)
def test_errors_name_the_argument(call: Callable[[], Any], arg: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        call()
    assert f"'{arg}'" in str(e.value) and words in str(e.value), str(e.value)


@pytest.mark.parametrize("m", range(1, 9))
def test_square_projection_and_shuffle(m: int) -> None:
    P = np.eye(m * m)[ref.monarch_shuffle(m, m)]
    assert np.array_equal(P, P.T) and np.array_equal(P @ P, np.eye(m * m))
    w1, w2 = rng.standard_normal((m, m, m)), rng.standard_normal((m, m, m))
    M = ref.monarch_dense(w1, w2)
    # Su's M = P L P R with block-diagonal L, R (F.linear blocks)
    L = np.zeros((m * m, m * m))
    R = np.zeros((m * m, m * m))
    for b in range(m):
        L[b * m:(b + 1) * m, b * m:(b + 1) * m] = w2[b]
        R[b * m:(b + 1) * m, b * m:(b + 1) * m] = w1[b]
    np.testing.assert_allclose(M, P @ L @ P @ R, atol=1e-13)
    np.testing.assert_allclose(ref.monarch_dense(*ref.monarch_project(M, m, m)), M, atol=1e-12)


@pytest.mark.parametrize(("n", "b"), [(6, 2), (12, 4), (15, 5), (16, 4), (36, 6), (48, 4), (12, 3)])
def test_general_n_matches_fly_version3(n: int, b: int) -> None:
    """Spec 5.3: M = P_(b, n/b) L P_(n/b, b) R with R: n/b blocks b x b, L: b blocks (n/b) x (n/b); fly's
    version-3 reference builds the dense block diagonals and rearranges '(r l) -> (l r)', '(l s) -> (s l)'."""
    k, l_ = n // b, b
    w1, w2 = rng.standard_normal((k, l_, b)), rng.standard_normal((l_, k, k))
    x = rng.standard_normal((3, n))
    R = np.zeros((n, n))
    L = np.zeros((n, n))
    for i in range(k):
        R[i * b:(i + 1) * b, i * b:(i + 1) * b] = w1[i]
    for i in range(l_):
        L[i * k:(i + 1) * k, i * k:(i + 1) * k] = w2[i]
    u = x @ R.T
    u = u.reshape(3, k, l_).transpose(0, 2, 1).reshape(3, n)  # 'b (r l) -> b (l r)'
    y = (u @ L.T).reshape(3, l_, k).transpose(0, 2, 1).reshape(3, n)  # 'b (l s) -> b (s l)'
    np.testing.assert_allclose(ref.monarch_matmul(x, w1, w2), y, atol=1e-12)
    M = ref.monarch_dense(w1, w2)
    np.testing.assert_allclose(ref.monarch_dense(*ref.monarch_project(M, k, l_)), M, atol=1e-12)


def test_dft_is_monarch_after_shuffle() -> None:
    w1, w2, perm = ref.monarch_dft_factors(4, 4)
    F = np.fft.fft(np.eye(16))
    np.testing.assert_allclose(ref.monarch_dense(w1, w2), F[:, perm], atol=1e-14)
    x = rng.standard_normal(16)
    np.testing.assert_allclose(ref.monarch_matmul(x[perm], w1, w2), np.fft.fft(x), atol=5e-15 * 16)
    assert np.array_equal(perm, ref.monarch_shuffle(4, 4))  # n = m^2: the perfect shuffle P itself


def test_projection_error_is_trailing_singular_values() -> None:
    A = rng.standard_normal((12, 12))
    Mp = ref.monarch_dense(*ref.monarch_project(A, 3, 4))
    sv = ref.monarch_slab_singular_values(A, 3, 4)
    assert np.isclose(np.sum((A - Mp) ** 2), np.sum(sv[..., 1:] ** 2), rtol=1e-12)


def test_laws_and_mutants_registered() -> None:
    laws = {n for n in veriformer.LAWS if n.startswith("monarch.")}
    assert len(laws) == 9, laws
    catchers = {t for m in veriformer.MUTANTS.values() for t in m.caught_by}
    assert laws <= catchers
