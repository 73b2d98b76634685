"""Diffusion oracles: bad input names the argument; the pinned value 1/sqrt(65); the spec's closed forms of the
Stein identity and its Monte Carlo figure; the laws and mutants are registered (the catalogue runs them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import veriformer
from veriformer import InputError
from veriformer import reference as ref

ERRORS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: ref.cosine_schedule(np.array([1.5])), "t", "in [0, 1]"),
    (lambda: ref.shifted_schedule(np.array([0.5]), np.array([0.5]), 0.0), "s", "positive"),
    (lambda: ref.avg_pool(np.zeros((3, 4)), 2), "x", "multiples of s"),
    (lambda: ref.avg_pool(np.zeros((4, 4)), 0), "s", "positive int"),
    (lambda: ref.mixture_score(np.zeros(2), np.zeros(2), np.array([1.0, -1.0]), 1.0, 1.0), "weights", "positive"),
    (lambda: ref.mixture_score(np.zeros(2), np.zeros(2), np.ones(2), 1.0, 0.0), "bbar", "positive"),
    (lambda: ref.log_snr(np.array([np.nan]), np.array([1.0])), "abar", "finite"),
]


@pytest.mark.parametrize(("call", "arg", "words"), ERRORS)
def test_errors_name_the_argument(call: Callable[[], Any], arg: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        call()
    assert f"'{arg}'" in str(e.value) and words in str(e.value), str(e.value)


def test_pinned_one_over_sqrt65() -> None:
    a, b = ref.cosine_schedule(np.array([0.5]))
    ah, bh = ref.shifted_schedule(a, b, 8.0)
    assert abs(ah[0] - 1 / math.sqrt(65)) < 1e-16 and abs(bh[0] - 8 / math.sqrt(65)) < 1e-15
    assert round(float(ah[0]), 12) == 0.124034734589 and round(float(bh[0]), 12) == 0.992277876714
    assert abs(ref.log_snr(ah, bh)[0] - ref.log_snr(a, b)[0] + 4.158883083360) < 1e-12
    # Hoogeboom et al.'s base-64 shifted cosine at d = 512 is the same point
    assert abs(ref.shifted_cosine_log_snr(np.array([0.5]), 512.0)[0] - ref.log_snr(ah, bh)[0]) < 1e-14


def test_stein_tanh_monte_carlo_matches_spec_figure() -> None:
    """Spec: x0 ~ N(0, sigma^2), f = tanh: -0.3235 vs -0.3242 at n = 2e6.  We draw n = 4e5 with a fixed seed and
    compare both sides with each other within 4 standard errors of the paired difference."""
    rng = np.random.default_rng(1234)
    a, b, sigma, n = math.cos(math.pi / 4), math.sin(math.pi / 4), 1.0, 400_000
    eps = rng.standard_normal(n)
    x = a * sigma * rng.standard_normal(n) + b * eps
    lhs = np.tanh(x) * b * ref.gaussian_score(x, a, b, sigma)
    rhs = -np.tanh(x) * eps
    d = lhs - rhs
    assert abs(d.mean()) <= 4 * d.std() / math.sqrt(n)


def test_chen_gamma_default_is_cos_squared() -> None:
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(ref.chen_cosine_gamma(t, clip_min=0.0), np.cos(np.pi * t / 2) ** 2, atol=1e-15)
    assert ref.chen_cosine_gamma(np.array([1.0]))[0] == 1e-9  # clipped at clip_min


def test_laws_and_mutants_registered() -> None:
    laws = {n for n in veriformer.LAWS if n.startswith("diffusion.")}
    assert len(laws) == 8, laws
    catchers = {t for m in veriformer.MUTANTS.values() for t in m.caught_by}
    assert laws <= catchers
