"""Oracles of the sinkhorn family: forms agree, errors name the argument, the VJP matches finite differences, the
log form survives where the scaling form underflows, POT as a peer (skipped when not installed), the SeT layer."""

from __future__ import annotations

import numpy as np
import pytest

from veriformer import reference as ref
from veriformer.reference import InputError


def _problem(n: int = 5, m: int = 4, B: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((B, n, m))
    a, b = rng.random((B, n)) + 0.1, rng.random((B, m)) + 0.1
    return C, a / a.sum(-1, keepdims=True), b / b.sum(-1, keepdims=True)


def test_log_and_scaling_agree_and_column_marginal_exact() -> None:
    C, a, b = _problem()
    P = ref.sinkhorn_log(C, a, b, eps=0.5, n_iters=30)
    Ps = ref.sinkhorn_scaling(C, a, b, eps=0.5, n_iters=30)
    assert np.abs(P - Ps).max() < 1e-15
    assert np.abs(P.sum(-2) - b).max() < 1e-15
    Pc, f, g, sweeps = ref.sinkhorn_log(C, a, b, eps=0.5, n_iters=5000, tol=1e-14, return_potentials=True)
    assert sweeps < 5000 and np.abs(Pc.sum(-1) - a).max() <= 1e-14
    gap = ref.entropic_ot_primal(Pc, C, eps=0.5) - ref.entropic_ot_dual(f, g, C, a, b, eps=0.5)
    assert np.abs(gap).max() < 1e-13


def test_mpmath_backend_certifies_float64() -> None:
    C, a, b = _problem(3, 2, 1)
    P = ref.sinkhorn_log(C, a, b, eps=0.05, n_iters=10)
    Pm = ref.sinkhorn_log(C, a, b, eps=0.05, n_iters=10, backend=ref.MP(40))
    assert np.abs(P - Pm).max() < 1e-14


def test_scaling_form_underflows_log_form_does_not() -> None:
    """C + 10 at eps = 0.01: every exp(-C/eps) underflows in float64 (spec: scaling 64/64 NaN)."""
    rng = np.random.default_rng(1)
    C = rng.random((1, 8, 8)) + 10.0
    a = np.full((1, 8), 1 / 8)
    Ps = ref.sinkhorn_scaling(C, a, a, eps=0.01, n_iters=50)
    P = ref.sinkhorn_log(C, a, a, eps=0.01, n_iters=50)
    P0 = ref.sinkhorn_log(C - 10.0, a, a, eps=0.01, n_iters=50)
    assert np.isnan(Ps).all()
    assert np.isfinite(P).all() and np.abs(P - P0).max() < 1e-12


def test_vjp_matches_central_differences() -> None:
    C, a, b = _problem(4, 3, 1, seed=3)
    rng = np.random.default_rng(4)
    G, E = rng.standard_normal(C.shape), rng.standard_normal(C.shape)
    for eps, L in ((0.5, 7), (2.0, 1), (0.2, 20)):
        d = ref.sinkhorn_vjp(C, a, b, G, eps=eps, n_iters=L)
        h = 1e-6
        fd = (np.sum(G * ref.sinkhorn_log(C + h * E, a, b, eps=eps, n_iters=L))
              - np.sum(G * ref.sinkhorn_log(C - h * E, a, b, eps=eps, n_iters=L))) / (2 * h)
        assert abs(fd - np.sum(d * E)) < 1e-7 * (1 + abs(fd))


@pytest.mark.parametrize(("kwargs", "arg"), [
    ({"C": np.zeros(3)}, "C"),
    ({"a": np.full((1, 2), 0.5)}, "a"),
    ({"b": -np.ones((1, 4)) / 4}, "b"),
    ({"eps": 0.0}, "eps"),
    ({"n_iters": 0}, "n_iters"),
    ({"C": np.full((1, 3, 4), np.nan)}, "C"),
])
def test_bad_input_names_the_argument(kwargs: dict, arg: str) -> None:
    base = {"C": np.zeros((1, 3, 4)), "a": np.full((1, 3), 1 / 3), "b": np.full((1, 4), 0.25), "eps": 0.1,
            "n_iters": 3}
    base.update(kwargs)
    C, a, b = base.pop("C"), base.pop("a"), base.pop("b")
    with pytest.raises(InputError, match=f"argument '{arg}'"):
        ref.sinkhorn_log(C, a, b, **base)


def test_eps_to_zero_reaches_linear_sum_assignment() -> None:
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(5)
    n = 6
    C = 0.5 + rng.random((n, n))
    C[np.arange(n), rng.permutation(n)] = 0.0
    r, c = linear_sum_assignment(C)
    Pm = np.zeros((n, n))
    Pm[r, c] = 1.0
    errs = [np.abs(n * ref.sinkhorn_log(C, np.full(n, 1 / n), np.full(n, 1 / n), eps=e, n_iters=2000,
                                        tol=1e-10) - Pm).max() for e in (0.3, 0.1)]
    assert errs[1] < 0.01 < errs[0]


def test_pot_peer_agrees_at_convergence() -> None:
    ot = pytest.importorskip("ot", reason="POT (pip install pot) is not installed: the peer comparison with "
                                          "ot.sinkhorn(method='sinkhorn' / 'sinkhorn_log') is skipped")
    C, a, b = _problem(5, 4, 1, seed=7)
    P = ref.sinkhorn_log(C, a, b, eps=0.3, n_iters=10000, tol=1e-13)[0]
    # POT minimises <P, M> + reg sum P log P (no "- 1"); on U(a, b) that differs by a constant: the same plan.
    # POT's sweep updates v first and u last, so only the converged plans are comparable.
    for method in ("sinkhorn", "sinkhorn_log"):
        Q = ot.sinkhorn(a[0], b[0], C[0], 0.3, method=method, numItermax=100000, stopThr=1e-13)
        assert np.abs(np.asarray(Q) - P).max() < 1e-10, method


def test_set_layer_shapes_weights_and_errors() -> None:
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((7, 4)), rng.standard_normal((5, 3))
    Z = np.linalg.qr(rng.standard_normal((4, 4)))[0][:3]
    A, W = ref.set_layer(X, Z, Y, alpha=1.0, eps=0.5, n_iters=10, return_weights=True)
    assert A.shape == (5, 3) and W.shape == (5, 7)
    assert np.abs(W.sum(1) - 1).max() < 1e-14
    A2 = ref.set_layer(X, Z, Y, alpha=1.0, eps=0.5, n_iters=10, pos_sigma=0.3)
    assert A2.shape == (5, 3)
    with pytest.raises(InputError, match="argument 'Y'"):
        ref.set_layer(X, Z, rng.standard_normal((5, 2)), alpha=1.0, eps=0.5, n_iters=3)
    with pytest.raises(InputError, match="argument 'Z'"):
        ref.set_nystrom_features(X, rng.standard_normal((3, 2)), alpha=1.0)
