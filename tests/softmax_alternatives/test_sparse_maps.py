"""Sparsemax, 1.5-entmax and the other alternatives to softmax: pinned values, axis and input handling, the ops
under check() (naive baselines, a float32 implementation, planted kernel bugs) and the entmax package's rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import veriformer
from veriformer import reference as ref
from veriformer.fast.softmax_alternatives import naive
from veriformer.properties.softmax_alternatives import third_party as tp
from veriformer.properties.softmax_alternatives.strategies import ProbMapCase
from veriformer.reference import InputError

_DTYPES = ("float16", "bfloat16", "float32")


@pytest.mark.parametrize(("z", "p"), [
    ([1.0, 1.0, 1.0], [1 / 3, 1 / 3, 1 / 3]),
    ([1.0, 0.0], [1.0, 0.0]),                       # boundary: z_2 = tau
    ([1e300, 0.0], [1.0, 0.0]),                     # the post's NumPy code returns [0, 0]
    ([0.5, 0.0, -0.25], [0.75, 0.25, 0.0]),
    ([3.0], [1.0]),
])
def test_sparsemax_values(z: list[float], p: list[float]) -> None:
    np.testing.assert_allclose(ref.sparsemax(np.array(z)), p, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("z", "p"), [
    ([2.0, 0.0], [1.0, 0.0]),                       # boundary tie: the post's strict test raises here
    ([1.0, 1.0, 1.0], [1 / 3, 1 / 3, 1 / 3]),
    ([0.0, 0.0, -1e300], [0.5, 0.5, 0.0]),
    ([1.0, 0.0], [(0.25 + np.sqrt(7 / 16)) ** 2, (np.sqrt(7 / 16) - 0.25) ** 2]),  # tau = -1/4 - sqrt(7/16)
])
def test_entmax15_values(z: list[float], p: list[float]) -> None:
    np.testing.assert_allclose(ref.entmax15(np.array(z)), p, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ref.entmax15(np.array(z)), ref.entmax_bisect(np.array(z), 1.5), rtol=0, atol=1e-15)


def test_axis_and_leading_shape() -> None:
    z = np.random.default_rng(0).standard_normal((2, 5, 3))
    for f in (ref.sparsemax, ref.entmax15, ref.taylor_softmax, lambda x, axis=-1: ref.topk_softmax(x, 2, axis=axis),
              lambda x, axis=-1: ref.entmax_bisect(x, 1.3, axis=axis)):
        np.testing.assert_allclose(f(z, axis=1), np.moveaxis(f(np.moveaxis(z, 1, -1)), -1, 1), rtol=0, atol=0)
    g = np.ones_like(z)
    np.testing.assert_allclose(ref.sparsemax_vjp(z, g, axis=0), 0.0, atol=1e-15)   # J 1 = 0 on the simplex
    np.testing.assert_allclose(ref.entmax15_vjp(z, g, axis=0), 0.0, atol=1e-15)


def test_mpmath_backend_agrees() -> None:
    z = np.random.default_rng(1).standard_normal((2, 5)) * 3
    g = np.random.default_rng(2).standard_normal((2, 5))
    for f in (ref.sparsemax, ref.entmax15):
        np.testing.assert_allclose(f(z), f(z, backend=ref.MP(40)), rtol=0, atol=1e-15)
    for f in (ref.sparsemax_vjp, ref.entmax15_vjp):
        np.testing.assert_allclose(f(z, g), f(z, g, backend=ref.MP(40)), rtol=0, atol=1e-14)
    t = np.array([0, 3])
    np.testing.assert_allclose(ref.sparsemax_loss(z, t), ref.sparsemax_loss(z, t, backend=ref.MP(40)), atol=1e-14)


@pytest.mark.parametrize(("call", "arg"), [
    (lambda: ref.sparsemax(np.array([1.0, np.nan])), "'z'"),
    (lambda: ref.entmax15(np.array([1.0, np.inf])), "'z'"),
    (lambda: ref.sparsemax(np.array([1.0, 2.0]), axis=3), "'axis'"),
    (lambda: ref.sparsemax(np.array([1, 2])), "'z'"),
    (lambda: ref.sparsemax_loss(np.zeros((2, 3)), np.array([0, 3])), "'target'"),
    (lambda: ref.sparsemax_vjp(np.zeros((2, 3)), np.zeros(3)), "'grad_p'"),
    (lambda: ref.entmax_bisect(np.zeros(3), 0.5), "'alpha'"),
    (lambda: ref.taylor_softmax(np.zeros(3), order=3), "'order'"),
    (lambda: ref.topk_softmax(np.zeros(3), 0), "'k'"),
    (lambda: ref.topk_softmax(np.zeros(3), 1, ties="random"), "'ties'"),
    (lambda: ref.gumbel_max_sample(np.zeros(3), 0), "'n_samples'"),
    (lambda: ref.sg_surrogate_grad(np.zeros(3), np.array(0), form="x"), "'form'"),
])
def test_bad_input_names_the_argument(call: object, arg: str) -> None:
    with pytest.raises(InputError, match=arg):
        call()  # type: ignore[operator]


def test_naive_in_float64_equals_oracle_with_gradients() -> None:
    z = torch.tensor(ProbMapCase(lead=2, rows=3, n=11, amp=1.0, ties="grid", seed=7).arrays()["z"],
                     requires_grad=True)
    g = torch.randn(z.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for f, o, v in ((naive.sparsemax, ref.sparsemax, ref.sparsemax_vjp),
                    (naive.entmax15, ref.entmax15, ref.entmax15_vjp)):
        p = f(z)
        (dz,) = torch.autograd.grad(p, z, g)
        np.testing.assert_allclose(p.detach().numpy(), o(z.detach().numpy()), atol=1e-15)
        np.testing.assert_allclose(dz.numpy(), v(z.detach().numpy(), g.numpy()), atol=1e-14)


@pytest.mark.parametrize("op", ["sparsemax", "entmax15"])
def test_naive_passes_check_with_grad(op: str) -> None:
    fn = naive.sparsemax if op == "sparsemax" else naive.entmax15
    r = veriformer.check(fn, op=op, dtypes=_DTYPES, grad=True)
    assert r.passed, r.summary()
    assert not r.coverage["regions_missed"], r.coverage


@pytest.mark.parametrize("op", ["sparsemax", "entmax15"])
def test_a_mass_leak_fails_check(op: str) -> None:
    """A map that puts 1e-4 of mass on every entry off the support (and renormalises) fails in float32."""
    base = naive.sparsemax if op == "sparsemax" else naive.entmax15

    def leaky(z: torch.Tensor) -> torch.Tensor:
        p = base(z) + 1e-4
        return p / p.sum(-1, keepdim=True)

    r = veriformer.check(leaky, op=op, dtypes=("float32",), shrink=False)
    assert not r.passed


def test_adapter_maps_the_convention_with_our_kernel() -> None:
    z = torch.randn(2, 3, 7, dtype=torch.float64)
    seen = {}

    def kernel(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
        seen["dim"] = dim
        return naive.sparsemax(x)

    np.testing.assert_array_equal(tp.along_last_axis(kernel, z).numpy(), naive.sparsemax(z).numpy())
    assert seen["dim"] == -1


@pytest.mark.parametrize("op", ["sparsemax", "entmax15"])
def test_entmax_package_rows(op: str) -> None:
    pytest.importorskip("entmax", reason="the entmax package is not installed (pip install entmax); its rows of "
                                         "ops sparsemax/entmax15 are not registered")
    r = veriformer.check(tp.entmax_kernel(op), op=op, dtypes=_DTYPES, grad=True)
    assert r.passed, r.summary()
