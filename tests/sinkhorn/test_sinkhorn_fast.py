"""The batched log-domain torch kernel of op ``sinkhorn``: check() in half and single precision, the corners (tiny
eps, rectangular, n = 1), autograd against the oracle's VJP, clear errors; the naive baseline's failure mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import veriformer
from veriformer import reference as ref
from veriformer.fast.sinkhorn import naive
from veriformer.fast.sinkhorn.log_domain import sinkhorn_log
from veriformer.properties.sinkhorn.strategies import SinkhornCase


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_log_domain_kernel_passes_check(dtype: str) -> None:
    r = veriformer.check(sinkhorn_log, op="sinkhorn", dtypes=(dtype,), max_examples=8)
    assert r.passed, r.summary()
    assert not r.coverage["regions_missed"], r.coverage


def test_corners_tiny_eps_rectangular_n1() -> None:
    cases = [SinkhornCase(B=2, n=5, m=3, eps=0.001, n_iters=30, cost="gauss", marginals="random", seed=1),
             SinkhornCase(B=1, n=1, m=6, eps=0.2, n_iters=3, seed=2),
             SinkhornCase(B=1, n=9, m=1, eps=0.2, n_iters=3, seed=3),
             SinkhornCase(B=1, n=8, m=8, eps=0.01, n_iters=40, cost="uniform", shift=10.0, seed=4)]
    r = veriformer.check(sinkhorn_log, op="sinkhorn", dtypes=("float32", "bfloat16"), cases=cases)
    assert r.passed, r.summary()


def test_naive_baseline_is_nan_where_exp_underflows() -> None:
    case = SinkhornCase(B=1, n=8, m=8, eps=0.01, n_iters=10, cost="uniform", shift=10.0, seed=4)
    a = {k: torch.from_numpy(v).float() for k, v in case.arrays().items()}
    assert torch.isnan(naive.sinkhorn(a["C"], a["a"], a["b"], eps=case.eps, n_iters=10)).all()
    assert torch.isfinite(sinkhorn_log(a["C"], a["a"], a["b"], eps=case.eps, n_iters=10)).all()


def test_float64_kernel_matches_oracle_and_autograd_matches_vjp() -> None:
    case = SinkhornCase(B=2, n=4, m=6, eps=0.3, n_iters=7, marginals="random", seed=11)
    a = case.arrays()
    C = torch.from_numpy(a["C"]).requires_grad_(True)
    P = sinkhorn_log(C, torch.from_numpy(a["a"]), torch.from_numpy(a["b"]), eps=case.eps, n_iters=case.n_iters)
    gold = ref.sinkhorn_log(a["C"], a["a"], a["b"], eps=case.eps, n_iters=case.n_iters)
    assert np.abs(P.detach().numpy() - gold).max() < 1e-14
    G = np.random.default_rng(0).standard_normal(gold.shape)
    (dC,) = torch.autograd.grad(P, C, torch.from_numpy(G))
    dref = ref.sinkhorn_vjp(a["C"], a["a"], a["b"], G, eps=case.eps, n_iters=case.n_iters)
    assert np.abs(dC.numpy() - dref).max() < 1e-12 * (1 + np.abs(dref).max())


def test_gradients_pass_check_in_float32() -> None:
    r = veriformer.check(sinkhorn_log, op="sinkhorn", dtypes=("float32",), max_examples=6, grad=True)
    assert r.passed, r.summary()


@pytest.mark.parametrize(("args", "kw", "arg"), [
    ((torch.zeros(3, 4), torch.ones(1, 3), torch.ones(1, 4)), {}, "C"),
    ((torch.zeros(1, 3, 4), torch.ones(1, 4), torch.ones(1, 4)), {}, "a"),
    ((torch.zeros(1, 3, 4), torch.ones(1, 3), torch.ones(1, 3)), {}, "b"),
    ((torch.zeros(1, 3, 4), torch.ones(1, 3), torch.ones(1, 4)), {"eps": -1.0}, "eps"),
    ((torch.zeros(1, 3, 4), torch.ones(1, 3), torch.ones(1, 4)), {"n_iters": 0}, "n_iters"),
])
def test_kernel_errors_name_the_argument(args: tuple, kw: dict, arg: str) -> None:
    kwargs = {"eps": 0.1, "n_iters": 2, **kw}
    with pytest.raises(ValueError, match=f"argument '{arg}'"):
        sinkhorn_log(*args, **kwargs)
