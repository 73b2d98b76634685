"""Laws of the SeT layer's transport-plan pooling (SeTformer, Shamsolmoali et al. 2024, arXiv:2401.15818), in the
form the spec confirms through OTK (Mialon et al. 2021, arXiv:2006.12065; code claying/OTK): Nyström kernel
features, a Sinkhorn plan between the tokens and a reference set, and weights W = p T^T that pool the features."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound, Rate
from veriformer.properties.sinkhorn.strategies import SetCase, set_cases
from veriformer.registry import law

U = 2.0**-53
SRC = ("Mialon et al. 2021 (OTK, arXiv:2006.12065) eq. 4-6; claying/OTK otk/layers.py, otk/sinkhorn.py; "
       "Shamsolmoali et al. 2024 (SeTformer, arXiv:2401.15818)")


def _kw(case: SetCase, **over: Any) -> dict[str, Any]:
    return {"alpha": case.alpha, "eps": case.eps, "n_iters": case.n_iters, **over}


@law("sinkhorn.set_kernel_nystrom", family="sinkhorn",
     source="Mialon et al. 2021 §3.3; Williams & Seeger 2001 (Nyström); claying/OTK ckn/layers.py")
def set_kernel_nystrom(ref: Any, case: SetCase = set_cases()) -> list[Any]:
    """The kernel kappa(x, x') = |x||x'| exp(alpha (<x^, x'^> - 1)) has a positive semi-definite Gram matrix
    (lambda_min >= -1e-12 ||G||), values in (0, 1] on unit vectors; the Nyström features reproduce kappa on the
    anchors (Psi_Z Psi_Z^T = kappa(Z, Z)) and never exceed it: kappa(x, x) - |psi(x)|^2 >= 0."""
    a = case.arrays()
    X, Z = a["X"], a["Z"]
    G = ref.set_kernel(X, X, alpha=case.alpha)
    lam = np.linalg.eigvalsh((G + G.T) / 2)
    nrm = float(np.abs(G).max()) * case.n
    Xh = X / np.linalg.norm(X, axis=1, keepdims=True)
    Gu = ref.set_kernel(Xh, Xh, alpha=case.alpha)
    PsiZ = ref.set_nystrom_features(Z, Z, alpha=case.alpha)
    Kzz = ref.set_kernel(Z, Z, alpha=case.alpha)
    Psi = ref.set_nystrom_features(X, Z, alpha=case.alpha)
    cond = float(np.linalg.cond(Kzz))
    resid = np.diag(G) - np.sum(Psi**2, 1)
    return [Bound(-lam, 1e-12 * nrm, "Gram PSD: lambda_min >= -1e-12 ||G||"),
            Bound(Gu, 1.0, "kappa <= 1 on unit vectors", slack=8 * (1 + case.alpha) * U),
            Bound(-Gu, 0.0, "kappa > 0 on unit vectors"),
            Agreement(PsiZ @ PsiZ.T, Kzz, "Psi_Z Psi_Z^T == kappa(Z, Z)", terms=16 * case.k * cond, scale=1.0),
            Bound(-resid, 0.0, "kappa(x, x) - |psi(x)|^2 >= 0", slack=64 * U * case.k * cond * float(np.diag(G).max()))]


@law("sinkhorn.set_weights_pool", family="sinkhorn", source=SRC)
def set_weights_pool(ref: Any, case: SetCase = set_cases()) -> list[Any]:
    """Without the position filter and with s_p = p, after any number of sweeps W = p T^T >= 0 has unit row sums
    (the plan's column marginals are exact after the column update), so each output row is a convex combination of
    the features psi(x_i) and lies within Psi's coordinate-wise range."""
    a = case.arrays()
    A, W = ref.set_layer(a["X"], a["Z"], a["Y"], return_weights=True, **_kw(case))
    Psi = ref.set_nystrom_features(a["X"], a["Z"], alpha=case.alpha)
    sc = float(np.abs(Psi).max())
    t = 16 * (case.n + case.p) + 4 * float(np.abs(Psi @ a["Y"].T).max()) / case.eps * 4
    return [Bound(-W, 0.0, "W >= 0"),
            Agreement(W.sum(1), np.ones(case.p), "W 1 == 1", terms=t, scale=1.0),
            Bound(A, np.broadcast_to(Psi.max(0), A.shape), "A <= max_i psi(x_i)", slack=t * U * sc),
            Bound(np.broadcast_to(Psi.min(0), A.shape), A, "A >= min_i psi(x_i)", slack=t * U * sc)]


@law("sinkhorn.set_permutations", family="sinkhorn", source=SRC)
def set_permutations(ref: Any, case: SetCase = set_cases(), seed: int = st.integers(0, 2**31)) -> list[Agreement]:
    """Without the position filter the output is invariant to the order of the input tokens and equivariant to a
    permutation of the reference rows (a set-to-set map)."""
    a = case.arrays()
    rng = np.random.default_rng(seed)
    pi, sig = rng.permutation(case.n), rng.permutation(case.p)
    A = ref.set_layer(a["X"], a["Z"], a["Y"], **_kw(case))
    A_pi = ref.set_layer(a["X"][pi], a["Z"], a["Y"], **_kw(case))
    A_sig = ref.set_layer(a["X"], a["Z"], a["Y"][sig], **_kw(case))
    Psi = ref.set_nystrom_features(a["X"], a["Z"], alpha=case.alpha)
    t = (16 * (case.n + case.p) + 16 * float(np.abs(Psi @ a["Y"].T).max()) / case.eps) * min(case.n_iters, 8)
    sc = float(np.abs(Psi).max())
    return [Agreement(A_pi, A, "A(X[pi]) == A(X)", terms=t, scale=sc),
            Agreement(A_sig, A[sig], "A(Y[sigma]) == A(Y)[sigma]", terms=t, scale=sc)]


@law("sinkhorn.set_position_filter", family="sinkhorn", source="claying/OTK otk/layers.py (get_position_filter)")
def set_position_filter(ref: Any, case: SetCase = set_cases(),
                        sigma: float = st.sampled_from((0.05, 0.1, 0.5, 2.0))) -> list[Any]:
    """F_ij = exp(-((i/n - j/p)/sigma)^2) lies in (0, 1], equals 1 where i/n = j/p (i = j = 0 always), and with the
    filter applied before and after Sinkhorn the weights satisfy 0 <= W 1 <= 1."""
    F = ref.set_position_filter(case.n, case.p, sigma=sigma)
    i, j = np.nonzero(np.arange(case.n)[:, None] * case.p == np.arange(case.p)[None, :] * case.n)
    a = case.arrays()
    _, W = ref.set_layer(a["X"], a["Z"], a["Y"], pos_sigma=sigma, return_weights=True, **_kw(case))
    Psi = ref.set_nystrom_features(a["X"], a["Z"], alpha=case.alpha)
    t = 16 * (case.n + case.p) + 16 * float(np.abs(Psi @ a["Y"].T).max()) / case.eps  # exponent rounding of T
    return [Bound(F, 1.0, "F <= 1"), Bound(-F, 0.0, "F >= 0"),
            Agreement(F[i, j], np.ones(i.size), "F == 1 where i/n == j/p", atol=0.0, tolerance="law.defined"),
            Bound(W.sum(1), 1.0, "W 1 <= 1", slack=t * U), Bound(-W, 0.0, "W >= 0")]


@law("sinkhorn.set_mean_pooling_limit", family="sinkhorn", kind="asymptotic", source=SRC)
def set_mean_pooling(ref: Any, case: SetCase = set_cases()) -> list[Any]:
    """As eps -> infinity the plan tends to the independent coupling, so each output row tends to the mean of the
    features (s_p / p times it): error O(1/eps), fitted order >= 0.75 over eps = 10, 100, 1000 x max|S|."""
    a = case.arrays()
    Psi = ref.set_nystrom_features(a["X"], a["Z"], alpha=case.alpha)
    S = float(np.abs(Psi @ a["Y"].T).max()) or 1.0
    mean = np.broadcast_to(Psi.mean(0), (case.p, case.k))
    epss = np.array([10.0, 100.0, 1000.0]) * S
    errs = [float(np.abs(ref.set_layer(a["X"], a["Z"], a["Y"], alpha=case.alpha, eps=float(e), n_iters=5)
                         - mean).max()) for e in epss]
    if case.n == 1 or case.p == 1 or max(errs) < 1e-12 * (float(np.abs(Psi).max()) + 1e-300):
        return [Bound(max(errs), 64 * U * (case.n + case.p) * float(np.abs(Psi).max()),
                      "n = 1 or p = 1: the output is the mean pooling at every eps")]
    return [Rate(1 / epss, errs, order=1.0, what="A(eps) - mean pooling = O(1/eps)")]
