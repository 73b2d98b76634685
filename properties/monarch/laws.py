"""Laws of Monarch matrices (Dao et al. 2022, arXiv:2204.00595; Su kexue.fm/archives/10249; HazyResearch/fly
``src/ops/blockdiag_butterfly_projection.py`` and its test)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.monarch.strategies import MonarchCase, monarch_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
SRC = "Dao et al. 2022 (Monarch, arXiv:2204.00595); Su kexue.fm/archives/10249"
FLY = "HazyResearch/fly src/models/layers/blockdiag_butterfly_multiply.py, src/ops/blockdiag_butterfly_projection.py"


def _amax(*arrs: np.ndarray) -> float:
    return max(float(np.abs(a).max()) for a in arrs)


@law("monarch.shuffle", family="monarch", source=SRC + "; " + FLY)
def shuffle(ref: Any, a: int = st.integers(1, 12), b: int = st.integers(1, 12)) -> list[Agreement]:
    """P_(a,b) z = z.reshape(a, b).T.reshape(ab), i.e. (P z)[j a + i] = z[i b + j]; P_(b,a) P_(a,b) = I; and
    P_(m,m) is a symmetric involution (P = P^T = P^-1)."""
    idx = ref.monarch_shuffle(a, b)
    inv = ref.monarch_shuffle(b, a)
    n = a * b
    want = np.array([i * b + j for j in range(b) for i in range(a)], dtype=float)
    Pm = np.eye(a * a)[ref.monarch_shuffle(a, a)]
    return [Agreement(idx.astype(float), want, "(P z)[j a + i] == z[i b + j]", atol=0.0, tolerance="law.defined"),
            Agreement(idx[inv].astype(float), np.arange(n, dtype=float), "P_(b,a) P_(a,b) == I", atol=0.0,
                      tolerance="law.defined"),
            Agreement(Pm, Pm.T, "P_(m,m) symmetric", atol=0.0, tolerance="law.defined"),
            Agreement(Pm @ Pm, np.eye(a * a), "P_(m,m)^2 == I", atol=0.0, tolerance="law.defined")]


@law("monarch.four_index", family="monarch", source=SRC + " (M[i,j,k,l] = L_j[i,k] R_k[j,l])")
def four_index(ref: Any, case: MonarchCase = monarch_cases()) -> list[Any]:
    """M[s1 l + l1, k1 p + p1] = w2[l1, s1, k1] w1[k1, l1, p1]: every slab of a Monarch matrix is the rank-1
    outer product of an L-block column and an R-block row (its second singular value is 0)."""
    a = case.arrays()
    w1, w2 = a["w1"], a["w2"]
    M = ref.monarch_dense(w1, w2)
    want = np.einsum("lsk,klp->slkp", w2, w1).reshape(case.n_out, case.n_in)
    sv = ref.monarch_slab_singular_values(M, case.k, case.l)
    big = float(sv[..., 0].max()) if sv.size else 0.0
    claims: list[Any] = [Agreement(M, want, "dense == four-index outer products", terms=2)]
    if sv.shape[-1] > 1:
        claims.append(Bound(sv[..., 1:], 0.0, "sigma_2 of every slab == 0", slack=8 * U * big * max(case.s, case.p)))
    return claims


@law("monarch.fast_equals_dense", family="monarch", source=SRC + " (O(n^1.5) matvec); " + FLY)
def fast_equals_dense(ref: Any, case: MonarchCase = monarch_cases()) -> Agreement:
    """The fast product (two batched block products and two shuffles) equals the dense M x."""
    a = case.arrays()
    M = ref.monarch_dense(a["w1"], a["w2"])
    y = ref.monarch_matmul(a["x"], a["w1"], a["w2"])
    sc = _amax(a["w1"]) * _amax(a["w2"]) * _amax(a["x"])
    return Agreement(y, a["x"] @ M.T, "fast == dense M x", terms=2 * (case.p + case.k) + 4,
                     scale=sc * case.p * case.k)


@law("monarch.projection_idempotent", family="monarch", source=SRC + " (Theorem: projection); " + FLY)
def projection_idempotent(ref: Any, case: MonarchCase = monarch_cases()) -> list[Agreement]:
    """Projecting a Monarch matrix returns it; projecting a projection returns it (idempotence)."""
    a = case.arrays()
    M = ref.monarch_dense(a["w1"], a["w2"])
    once = ref.monarch_dense(*ref.monarch_project(a["a"], case.k, case.l))
    twice = ref.monarch_dense(*ref.monarch_project(once, case.k, case.l))
    again = ref.monarch_dense(*ref.monarch_project(M, case.k, case.l))
    t = 16 * (case.s + case.p) + 16
    return [Agreement(again, M, "proj(M) == M", terms=t, scale=_amax(M)),
            Agreement(twice, once, "proj(proj(A)) == proj(A)", terms=t, scale=_amax(once))]


@law("monarch.projection_error", family="monarch", source=SRC + "; Eckart-Young per slab")
def projection_error(ref: Any, case: MonarchCase = monarch_cases(),
                     tseed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """||A - proj(A)||_F^2 = sum over slabs of sum_{i>=2} sigma_i^2, and the residual is orthogonal to proj(A)
    and to the tangent space of the Monarch set there: <A - M_p, M(d1, w2p) + M(w1p, d2)> = 0 for any d1, d2
    (M is bilinear in the factors)."""
    a = case.arrays()
    A = a["a"]
    w1p, w2p = ref.monarch_project(A, case.k, case.l)
    Mp = ref.monarch_dense(w1p, w2p)
    sv = ref.monarch_slab_singular_values(A, case.k, case.l)
    res = A - Mp
    rng = np.random.default_rng(tseed)
    tangent = ref.monarch_dense(rng.standard_normal(w1p.shape), w2p) + \
        ref.monarch_dense(w1p, rng.standard_normal(w2p.shape))
    nA2 = float(np.sum(A**2))
    n = case.n_in * case.n_out
    return [Agreement(np.sum(res**2), np.sum(sv[..., 1:] ** 2), "||A - M_p||^2 == sum trailing sigma^2",
                      terms=8 * n, scale=nA2),
            Agreement(np.sum(res * Mp), 0.0, "<A - M_p, M_p> == 0", terms=8 * n, scale=nA2),
            Agreement(np.sum(res * tangent), 0.0, "<A - M_p, tangent> == 0", terms=8 * n,
                      scale=float(np.sqrt(nA2 * np.sum(tangent**2))) + nA2)]


@law("monarch.projection_optimal", family="monarch", kind="statistical", max_examples=20,
     source=SRC + " (Frobenius-optimal projection); Su kexue.fm/archives/10249")
def projection_optimal(ref: Any, case: MonarchCase = monarch_cases(kind="near"),
                       tseed: int = st.integers(0, 2**32 - 1)) -> Bound:
    """No random perturbation of the projected factors (200 draws, relative sizes 1e-3..1, fixed seed) lands
    closer to A than the projection: min_j ||A - M(w1 + d1_j, w2 + d2_j)||^2 >= ||A - M_p||^2 (up to
    rounding).  The projection is the global minimiser, so the bound holds for every draw, not just on average."""
    a = case.arrays()
    A = a["a"]
    w1, w2 = ref.monarch_project(A, case.k, case.l)
    best = float(np.sum((A - ref.monarch_dense(w1, w2)) ** 2))
    rng = np.random.default_rng(tseed)
    sc1, sc2 = _amax(w1) + 1e-300, _amax(w2) + 1e-300
    others = []
    for j in range(200):
        eps = 10.0 ** -(3 * (j % 4) / 3)
        d1 = rng.standard_normal(w1.shape) * eps * sc1
        d2 = rng.standard_normal(w2.shape) * eps * sc2
        others.append(float(np.sum((A - ref.monarch_dense(w1 + d1, w2 + d2)) ** 2)))
    return Bound(best, min(others), "||A - M_p||^2 <= min over 200 perturbations",
                 slack=64 * U * float(np.sum(A**2)) * (case.s + case.p))


@law("monarch.dft", family="monarch", source=SRC + " (DFT is Monarch up to a permutation); "
     "fly tests/ops/test_blockdiag_butterfly_projection.py; numpy.fft")
def dft(ref: Any, kl: tuple[int, int] = st.sampled_from(((1, 1), (2, 2), (4, 4), (3, 5), (2, 8), (8, 2), (6, 6),
                                                           (8, 8), (4, 12), (1, 7))),
        seed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """F_n[:, perm] = M(w1, w2) with L blocks F_k and R blocks twiddle x F_l (Cooley-Tukey); hence
    monarch_matmul(x[perm]) = numpy.fft.fft(x), and projecting F_n[:, perm] onto Monarch reproduces it."""
    k, l_ = kl
    n = k * l_
    w1, w2, perm = ref.monarch_dft_factors(k, l_)
    F = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)
    x = np.random.default_rng(seed).standard_normal((2, n))
    Fp = F[:, perm]
    proj = ref.monarch_dense(*ref.monarch_project(Fp, k, l_))
    return [Agreement(ref.monarch_dense(w1, w2), Fp, "M(dft factors) == F[:, perm]", terms=8 + 4 * n, scale=1.0),
            Agreement(ref.monarch_matmul(x[..., perm], w1, w2), np.fft.fft(x), "monarch(x[perm]) == fft(x)",
                      terms=8 * n, scale=float(np.abs(x).sum(-1).max())),
            Agreement(proj, Fp, "proj(F[:, perm]) == F[:, perm]", terms=64 + 16 * n, scale=1.0)]


@law("monarch.dft_mpmath_certificate", family="monarch", kind="certificate", max_examples=8,
     source="mpmath at 40 digits; Dao et al. 2022 (DFT as Monarch)")
def dft_certificate(ref: Any, kl: tuple[int, int] = st.sampled_from(((2, 2), (2, 3), (4, 4), (3, 4))),
                    seed: int = st.integers(0, 2**32 - 1)) -> Agreement:
    """The float64 Monarch DFT (float64 factors, float64 product) agrees with the exact DFT sum in mpmath
    (40 digits) within 4 u (k + l + 4) sum|x|: each output is two length-k, length-l complex dot products of
    unit-modulus twiddles rounded to u."""
    k, l_ = kl
    n = k * l_
    x = np.random.default_rng(seed).standard_normal(n)
    w1, w2, perm = ref.monarch_dft_factors(k, l_)
    y = ref.monarch_matmul(x[perm], w1, w2)
    m1, m2, _ = ref.monarch_dft_factors(k, l_, backend=MP(40, exact_output=True))
    exact = ref.monarch_matmul(x[perm], m1, m2, backend=MP(40))
    bound = 4 * U * (k + l_ + 4) * float(np.abs(x).sum())
    return Agreement(y, exact, "float64 Monarch DFT == mpmath", atol=bound, tolerance="law.certificate")



@law("monarch.vjp", family="monarch", source=SRC + "; fly BlockdiagButterflyMultiply.backward")
def vjp(ref: Any, case: MonarchCase = monarch_cases(), dseed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """The VJP of y = M(w1, w2) x: dx = g M (dense transpose), and <dw1, D1>, <dw2, D2> equal the central
    differences of <g, y> along random D1, D2 (exact with h = 1: y is linear in each factor)."""
    a = case.arrays()
    x, w1, w2 = a["x"], a["w1"], a["w2"]
    rng = np.random.default_rng(dseed)
    g = rng.standard_normal((case.batch, case.n_out))
    d = ref.monarch_matmul_vjp(g, x, w1, w2)
    M = ref.monarch_dense(w1, w2)
    D1, D2 = rng.standard_normal(w1.shape) * _amax(w1), rng.standard_normal(w2.shape) * _amax(w2)

    def f(u1: np.ndarray, u2: np.ndarray) -> float:
        return float(np.sum(g * ref.monarch_matmul(x, u1, u2)))

    big = 4 * _amax(w1) * _amax(w2) * _amax(x) * case.k * case.p * case.batch * case.n_out * _amax(g)
    t = 4 * (case.k + case.p + case.batch + case.n_out)
    return [Agreement(d["x"], g @ M, "dx == g M", terms=t, scale=_amax(g) * _amax(M) * case.n_out),
            Agreement(np.sum(d["w1"] * D1), (f(w1 + D1, w2) - f(w1 - D1, w2)) / 2, "<dw1, D> == difference",
                      terms=t * case.n_in, scale=big),
            Agreement(np.sum(d["w2"] * D2), (f(w1, w2 + D2) - f(w1, w2 - D2)) / 2, "<dw2, D> == difference",
                      terms=t * case.n_in, scale=big)]
