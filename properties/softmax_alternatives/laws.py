"""Laws of the alternatives to softmax: sparsemax (Martins & Astudillo 2016), entmax (Peters, Niculae & Martins
2019), Taylor softmax (de Brebisson & Vincent 2016), top-k softmax, Gumbel-max sampling and the stop-gradient
loss (Su kexue.fm/archives/10145)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound, Rate, ZScore
from veriformer.properties.softmax_alternatives.strategies import ProbMapCase, prob_map_cases
from veriformer.reference import MP
from veriformer.registry import law

FAMILY = "softmax_alternatives"
U = 2.0**-53
SPARSEMAX = "Martins & Astudillo 2016, arXiv:1602.02068"
ENTMAX = "Peters, Niculae & Martins 2019, arXiv:1905.05702"
SU = "Su kexue.fm/archives/10145"

small_cases = prob_map_cases(max_n=8, max_rows=2)
# On the support the shifted scores y = z - max z and the threshold lie in [-1, 0] (sparsemax; 1.5-entmax: the
# half-scores y / 2), whatever the spread of the other scores: rounding budgets scale with this, not with |z|.
SUPPORT = 2.0


def _rows(case: ProbMapCase) -> np.ndarray:
    """The case's scores as [rows, n] (the maps act on the last axis of any leading shape)."""
    z = case.arrays()["z"]
    return z.reshape(-1, z.shape[-1])


def _spread(z: np.ndarray) -> float:
    """max |z - max z|: the scale of the shifted scores the maps work on."""
    return float(np.max(np.max(z, axis=-1, keepdims=True) - z))


def _projection_bruteforce(z: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of z onto the simplex by enumerating every support S (n <= 8): on S,
    p = z - (sum_S z - 1)/|S|, 0 elsewhere; among the feasible (p >= 0) candidates the closest to z.  No sorting,
    no threshold rule: only the KKT form of the projection (computed on z - max z; the projection commutes with
    shifts along the all-ones vector)."""
    y = z - np.max(z, axis=-1, keepdims=True)
    n = y.shape[-1]
    best = np.full(y.shape, np.nan)
    dist = np.full(y.shape[:-1], np.inf)
    for r in range(1, n + 1):
        for sub in itertools.combinations(range(n), r):
            on = np.zeros(n, dtype=bool)
            on[list(sub)] = True
            tau = (np.sum(np.where(on, y, 0.0), axis=-1, keepdims=True) - 1) / r
            p = np.where(on, y - tau, 0.0)
            ok = np.all(p >= -1e-12 * (1 + np.abs(tau)), axis=-1)
            d = np.sum((p - y) ** 2, axis=-1)
            better = ok & (d < dist - 1e-12 * (1 + d))
            best[better], dist[better] = np.maximum(p[better], 0.0), d[better]
    return best


@law("softmax_alternatives.sparsemax_is_simplex_projection", family=FAMILY, source=f"{SPARSEMAX}, eq. 2 and Prop. 1")
def sparsemax_is_projection(ref: Any, case: ProbMapCase = small_cases) -> list[Any]:
    """sparsemax(z) is the Euclidean projection of z onto the simplex: it equals a brute-force projection that tries
    every support (n <= 8, no sorting), lies on the simplex, is shift-invariant and order-preserving
    (z_i > z_j => p_i >= p_j); n = 1 gives [1] and all-equal scores the uniform vector."""
    z = _rows(case)
    n = z.shape[-1]
    p = ref.sparsemax(z)
    terms = 4 * n * SUPPORT
    out = [Agreement(p, _projection_bruteforce(z), "sparsemax == brute-force projection", terms=terms, scale=1.0),
           Bound(-p, 0.0, "p >= 0"),
           Agreement(p.sum(-1), np.ones(z.shape[0]), "sum p == 1", terms=terms, scale=1.0),
           Agreement(ref.sparsemax(z + 7.25), p, "sparsemax(z + c) == sparsemax(z)",
                     terms=terms + 16 * (7.25 + np.abs(z).max()), scale=1.0)]
    i, j = np.argsort(z, axis=-1)[:, -1], np.argsort(z, axis=-1)[:, 0]
    rows = np.arange(z.shape[0])
    out.append(Bound(p[rows, j], p[rows, i], "p at the smallest score <= p at the largest"))
    if case.ties == "all_equal":
        out.append(Agreement(p, np.full(z.shape, 1.0 / n), "all-equal scores -> uniform", terms=terms, scale=1.0))
    return out


@law("softmax_alternatives.huge_scores", family=FAMILY, kind="defined",
     source=f"{SU} (the post's NumPy code returns [0, 0] on [1e300, 0]); {SPARSEMAX}")
def huge_scores(ref: Any, big: float = st.sampled_from((1e4, 1e8, 1e300)),
                n: int = st.integers(1, 6)) -> list[Any]:
    """At huge score gaps sparsemax and 1.5-entmax are exactly one-hot at the maximum ([1e300, 0] -> [1, 0]), and a
    common shift of 1e300 leaves the argmax's one-hot intact; unshifted ``cumsum(z) - 1`` loses the 1 entirely
    there and returns zeros."""
    z = np.zeros(n)
    z[0] = big
    onehot = np.zeros(n)
    onehot[0] = 1.0
    return [Agreement(ref.sparsemax(z), onehot, "sparsemax([big, 0, ...]) == e_0", atol=0.0),
            Agreement(ref.entmax15(z), onehot, "entmax15([big, 0, ...]) == e_0", atol=0.0),
            Agreement(ref.sparsemax(z + big), onehot, "sparsemax([2 big, big, ...]) == e_0", atol=0.0),
            Agreement(ref.entmax15(z - big), onehot, "entmax15([0, -big, ...]) == e_0", atol=0.0)]


@law("softmax_alternatives.mpmath_certificate", family=FAMILY, kind="certificate", max_examples=10,
     source=f"mpmath at 50 digits; {SPARSEMAX}; {ENTMAX}")
def mpmath_certificate(ref: Any, case: ProbMapCase = prob_map_cases(max_n=6, max_rows=1)) -> list[Agreement]:
    """The float64 sparsemax and 1.5-entmax agree with the same code in mpmath (50 digits) within
    16 (n + 2) u: the shifted support scores and tau lie in [-1, 0] whatever the spread of the others (scores below
    -2 are floored), tau sums at most n of them, and 1.5-entmax's sqrt and square add a few u."""
    case = dataclasses.replace(case, lead=1)
    z = _rows(case)
    n = z.shape[-1]
    bound = 8 * (n + 2) * U * SUPPORT
    return [Agreement(ref.sparsemax(z), ref.sparsemax(z, backend=MP(50)), "float64 sparsemax == mpmath",
                      atol=bound, tolerance="law.certificate"),
            Agreement(ref.entmax15(z), ref.entmax15(z, backend=MP(50)), "float64 entmax15 == mpmath",
                      atol=bound, tolerance="law.certificate")]


def _directional(f: Any, z: np.ndarray, d: np.ndarray, h: float) -> np.ndarray:
    return (f(z + h * d) - f(z - h * d)) / (2 * h)


@law("softmax_alternatives.sparsemax_jacobian", family=FAMILY, source=f"{SPARSEMAX}, eq. 12-14")
def sparsemax_jacobian(ref: Any, case: ProbMapCase = small_cases, seed: int = st.integers(0, 2**16)) -> list[Any]:
    """The VJP of sparsemax equals the closed form ``J = diag(s) - s s^T / |S|`` (s = support indicator) applied to
    g, and matches central differences ``<g, (sp(z + h d) - sp(z - h d)) / 2h>  = <J^T g, d>`` on the rows whose
    scores are at least 4h away from the threshold (sparsemax is piecewise linear, so there the difference is
    exact up to rounding; at a boundary tie it is not differentiable)."""
    z = _rows(case)
    rng = np.random.default_rng(seed)
    g, d = rng.standard_normal(z.shape), rng.standard_normal(z.shape)
    p = ref.sparsemax(z)
    s = (p > 0).astype(float)
    closed = s * g - s * np.sum(s * g, -1, keepdims=True) / np.sum(s, -1, keepdims=True)
    vjp = ref.sparsemax_vjp(z, g)
    out: list[Any] = [Agreement(vjp, closed, "sparsemax_vjp == (diag(s) - s s^T/|S|) g", terms=4 * z.shape[-1],
                                scale=float(np.abs(g).max()))]
    h = 1e-4 * (1 + _spread(z))
    y = z - z.max(-1, keepdims=True)
    tau = np.max(np.where(p > 0, y - p, -np.inf), axis=-1, keepdims=True)
    far = np.min(np.abs(y - tau), axis=-1) > 4 * h * np.abs(d).max(-1)
    if far.any():
        fd = np.sum(g * _directional(ref.sparsemax, z, d, h), -1)[far]
        lin = np.sum(vjp * d, -1)[far]
        atol = 64 * U * (1 + np.abs(z).max()) / h * np.abs(g).sum(-1).max() + 64 * U * np.abs(g).sum() * np.abs(d).max()
        out.append(Agreement(fd, lin, "<g, central difference> == <J^T g, d>", atol=atol))
    return out


@law("softmax_alternatives.sparsemax_loss_gradient", family=FAMILY, source=f"{SPARSEMAX}, eq. 18-21")
def sparsemax_loss_gradient(ref: Any, case: ProbMapCase = small_cases, t: int = st.integers(0, 63),
                            seed: int = st.integers(0, 2**16)) -> list[Any]:
    """The sparsemax loss has gradient ``sparsemax(z) - e_t`` (the loss is C^1 and piecewise quadratic: central
    differences along a random direction agree to O(h)), equals its Fenchel-Young form
    ``<p, z> - ||p||^2 / 2 - z_t + 1/2``, is >= 0, and is 0 when sparsemax(z) is one-hot at t."""
    z = _rows(case)
    n = z.shape[-1]
    tt = np.full(z.shape[0], t % n)
    d = np.random.default_rng(seed).standard_normal(z.shape)
    loss = ref.sparsemax_loss(z, tt)
    grad = ref.sparsemax_loss_grad(z, tt)
    p = ref.sparsemax(z)
    zt = z[np.arange(z.shape[0]), tt]
    y = z - z.max(-1, keepdims=True)
    fy = np.sum(p * y, -1) - 0.5 * np.sum(p * p, -1) - (zt - z.max(-1)) + 0.5
    spread = 1 + _spread(z)
    h = 1e-6 * spread
    fd = (ref.sparsemax_loss(z + h * d, tt) - ref.sparsemax_loss(z - h * d, tt)) / (2 * h)
    lin = np.sum(grad * d, -1)
    onehot = np.zeros(z.shape)
    onehot[np.arange(z.shape[0]), tt] = 1.0
    zh = 100.0 * (1 + spread) * onehot  # a gap > 1 on the target: sparsemax one-hot at t, loss exactly 0
    atol = 8 * h * np.abs(d).max() ** 2 * n + 64 * U * (spread + np.abs(z).max()) * spread / h
    return [Agreement(fd, lin, "d/dh loss(z + h d) == <sparsemax(z) - e_t, d>", atol=atol),
            Agreement(grad, p - onehot, "gradient == sparsemax(z) - e_t", atol=0.0),
            Agreement(loss, fy, "loss == Fenchel-Young form", terms=8 * n * spread, scale=spread),
            Bound(-loss, 0.0, "loss >= 0", slack=8 * n * U * spread * spread),
            Agreement(ref.sparsemax_loss(zh, tt), np.zeros(z.shape[0]), "loss == 0 at a one-hot on t", atol=0.0)]


@law("softmax_alternatives.entmax15_closed_form_equals_bisection", family=FAMILY,
     source=f"{ENTMAX}, Algorithms 1 and 2")
def entmax15_equals_bisection(ref: Any, case: ProbMapCase = prob_map_cases(max_n=32)) -> list[Any]:
    """The exact sort-based 1.5-entmax equals alpha-entmax by bisection at alpha = 1.5, lies on the simplex, is
    shift-invariant, and gives [1] at n = 1 and the uniform vector on all-equal scores."""
    z = _rows(case)
    n = z.shape[-1]
    p = ref.entmax15(z)
    terms = 8 * n * SUPPORT
    out = [Agreement(p, ref.entmax_bisect(z, 1.5), "entmax15 == entmax_bisect(alpha=1.5)", terms=terms, scale=1.0),
           Bound(-p, 0.0, "p >= 0"),
           Agreement(p.sum(-1), np.ones(z.shape[0]), "sum p == 1", terms=terms, scale=1.0),
           Agreement(ref.entmax15(z - 3.5), p, "entmax15(z + c) == entmax15(z)",
                     terms=terms + 16 * (3.5 + np.abs(z).max()), scale=1.0)]
    if case.ties == "all_equal" or n == 1:
        out.append(Agreement(p, np.full(z.shape, 1.0 / n), "all-equal scores -> uniform", terms=terms, scale=1.0))
    return out


@law("softmax_alternatives.entmax15_jacobian", family=FAMILY, source=f"{ENTMAX}, Proposition 2")
def entmax15_jacobian(ref: Any, case: ProbMapCase = small_cases, seed: int = st.integers(0, 2**16)) -> Agreement:
    """The VJP of 1.5-entmax, ``s g - s (s.g) / sum s`` with ``s = sqrt(p)``, matches central differences
    ``<g, (f(z + h d) - f(z - h d)) / 2h> = <J^T g, d>``: 1.5-entmax is C^1 with a bounded second derivative
    (|d^2 p / dz^2| <= 1/2 per unit direction), so the difference is within O(h) of the derivative even at a
    support change."""
    z = _rows(case)
    n = z.shape[-1]
    rng = np.random.default_rng(seed)
    g, d = rng.standard_normal(z.shape), rng.standard_normal(z.shape)
    h = 1e-5 * (1 + _spread(z))
    fd = np.sum(g * _directional(ref.entmax15, z, d, h), -1)
    lin = np.sum(ref.entmax15_vjp(z, g) * d, -1)
    atol = 4 * n * h * np.abs(d).max() ** 2 * np.abs(g).sum(-1).max() + \
        64 * U * (1 + np.abs(z).max()) * (1 + _spread(z)) / h * np.abs(g).sum(-1).max()
    return Agreement(fd, lin, "<g, central difference> == <J^T g, d>", atol=atol)


@st.composite
def _dense_scores(draw: Any) -> np.ndarray:
    """Distinct moderate scores (amp <= 1): softmax is dense, so entmax's distance to it is positive."""
    n = draw(st.integers(2, 12))
    amp = draw(st.sampled_from((0.1, 0.5, 1.0)))
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal((2, n)) * amp + draw(
        st.sampled_from((0.0, -20.0, 1e4)))


@law("softmax_alternatives.entmax_alpha_limits", family=FAMILY, kind="asymptotic",
     source=f"{ENTMAX}, section 2 (alpha -> 1 is softmax, alpha = 2 is sparsemax)")
def entmax_alpha_limits(ref: Any, z: np.ndarray = _dense_scores()) -> list[Any]:
    """alpha-entmax (bisection) at alpha = 2 equals sparsemax, and tends to softmax as alpha -> 1 at rate
    O(alpha - 1): max|entmax_{1+e}(z) - softmax(z)| for e = 2^-5 .. 2^-8 has a fitted log-log slope >= 0.75."""
    eps = np.array([2.0**-5, 2.0**-6, 2.0**-7, 2.0**-8])
    errs = [float(np.abs(ref.entmax_bisect(z, 1 + e) - ref.softmax(z)).max()) for e in eps]
    terms = 8 * z.shape[-1] * (1 + _spread(z))
    return [Agreement(ref.entmax_bisect(z, 2.0), ref.sparsemax(z), "entmax_bisect(alpha=2) == sparsemax",
                      terms=terms, scale=1.0),
            Rate(eps, errs, order=1.0, what="max|entmax_{1+e} - softmax| = O(e)")]


@st.composite
def _distinct_scores(draw: Any) -> np.ndarray:
    n = draw(st.integers(2, 8))
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal((2, n)) * 2


@law("softmax_alternatives.taylor_softmax_not_monotone", family=FAMILY, kind="defined",
     source="de Brebisson & Vincent 2016, arXiv:1511.05042; Su kexue.fm/archives/10145 (f_2(-3) > f_2(-1))")
def taylor_not_monotone(ref: Any, z: np.ndarray = _distinct_scores(),
                        order: int = st.sampled_from((2, 4))) -> list[Any]:
    """A counterexample law: 2nd-order Taylor softmax is NOT monotone, taylor_softmax([-3, -1]) = [5/6, 1/6]
    puts more mass on the smaller score (f_2(-3) = 2.5 > f_2(-1) = 0.5), and NOT shift-invariant ([0, 1] and
    [10, 11] differ by > 0.1).  What does hold: it is positive and sums to 1 for every even order, and it
    approximates softmax to O(s^(k+1)) at small scale s (fitted slope >= order + 0.75 for scores s z,
    s = 0.02 2^-j (order 2) or 0.04 2^-j (order 4), j = 0..3)."""
    p = ref.taylor_softmax(np.array([-3.0, -1.0]))
    shifted = ref.taylor_softmax(np.array([[0.0, 1.0], [10.0, 11.0]]))
    # small enough for the leading term to dominate (at s = 0.1 some z still fit slopes 0.2 short), large enough
    # to stay clear of rounding (order 4 at s = 0.0025 is at the float64 noise floor)
    s = (0.02 if order == 2 else 0.04) * 2.0 ** -np.arange(4)
    errs = [float(np.abs(ref.taylor_softmax(si * z, order=order) - ref.softmax(si * z)).max()) for si in s]
    q = ref.taylor_softmax(z, order=order)
    return [Agreement(p, np.array([5 / 6, 1 / 6]), "taylor_softmax([-3, -1]) == [5/6, 1/6]", terms=4, scale=1.0),
            Bound(p[1], p[0], "counterexample: z_0 < z_1 but p_0 > p_1"),
            Bound(0.1, np.abs(shifted[0] - shifted[1]).max(), "counterexample: not shift-invariant"),
            Bound(-q, 0.0, "p > 0"),
            Agreement(q.sum(-1), np.ones(z.shape[0]), "sum p == 1", terms=4 * z.shape[-1]),
            Rate(s, errs, order=order + 1.0, what=f"taylor_softmax(s z) - softmax(s z) = O(s^{order + 1})")]


@law("softmax_alternatives.topk_renormalises", family=FAMILY, source=f"{SU} (sparse softmax)")
def topk_renormalises(ref: Any, case: ProbMapCase = prob_map_cases(max_n=16),
                      k: int = st.one_of(st.integers(1, 3), st.integers(1, 20)),
                      ties: str = st.sampled_from(("all", "first"))) -> list[Any]:
    """top-k softmax is softmax renormalised over the k largest scores: zero outside Omega_k, equal to
    ``exp(z_i) / sum_{Omega_k} exp(z_j)`` on it (sums to 1); Omega_k holds every score >= the k-th largest with
    ``ties="all"`` (so |Omega_k| >= k) and exactly k (ties to the lower index) with ``ties="first"``; k >= n gives
    softmax.  Pinned: topk_softmax([1, 1, 0, -1], 1) is [1/2, 1/2, 0, 0] with ties="all", [1, 0, 0, 0] with
    ties="first"."""
    z = _rows(case)
    n = z.shape[-1]
    p = ref.topk_softmax(z, k, ties=ties)
    tie = np.array([1.0, 1.0, 0.0, -1.0])
    kk = min(k, n)
    kth = -np.sort(-z, axis=-1)[:, kk - 1:kk]
    if ties == "all":
        keep = z >= kth
    else:
        keep = np.zeros(z.shape, dtype=bool)
        for r in range(z.shape[0]):
            keep[r, sorted(range(n), key=lambda i, r=r: (-z[r, i], i))[:kk]] = True
    m = np.max(z, -1, keepdims=True)
    e = np.where(keep, np.exp(z - m), 0.0)
    out = [Agreement(p, e / e.sum(-1, keepdims=True), "p == exp(z) / sum over Omega_k", terms=4 * n, scale=1.0),
           Agreement(np.where(keep, 0.0, p), np.zeros(z.shape), "p == 0 outside Omega_k", atol=0.0),
           Agreement(p.sum(-1), np.ones(z.shape[0]), "sum p == 1", terms=4 * n, scale=1.0),
           Agreement(ref.topk_softmax(z, n, ties=ties), ref.softmax(z), "k = n gives softmax", terms=4 * n,
                     scale=1.0),
           Agreement(ref.topk_softmax(tie, 1, ties="all"), np.array([0.5, 0.5, 0, 0]),
                     "topk_softmax([1, 1, 0, -1], 1, ties='all') == [1/2, 1/2, 0, 0]", atol=0.0),
           Agreement(ref.topk_softmax(tie, 1, ties="first"), np.array([1.0, 0, 0, 0]),
                     "topk_softmax([1, 1, 0, -1], 1, ties='first') == [1, 0, 0, 0]", atol=0.0)]
    if ties == "first":
        out.append(Agreement(keep.sum(-1), np.full(z.shape[0], kk), "|Omega_k| == k (ties='first')", atol=0.0))
    return out


@law("softmax_alternatives.gumbel_max_is_softmax", family=FAMILY, kind="statistical",
     source="Gumbel 1954; Maddison, Tarlow & Minka 2014, arXiv:1411.0030")
def gumbel_max_is_softmax(ref: Any, case: ProbMapCase = prob_map_cases(max_n=12, max_rows=1),
                          seed: int = st.integers(0, 2**16)) -> ZScore:
    """Gumbel-max samples argmax(z + G) are distributed as softmax(z): with N = 20000 draws (fixed seed), every
    category's frequency is within 5 standard errors sqrt((p(1 - p) + 1/N) / N) of softmax(z) (the 1/N term is
    a continuity floor for categories with p < 1/N, where one hit is not an error); two-sided normal confidence
    1 - 5.7e-7 per category."""
    case = dataclasses.replace(case, lead=1, amp=min(case.amp, 8.0))
    z = _rows(case)[0]
    N = 20000
    idx = ref.gumbel_max_sample(z, N, seed=seed)
    freq = np.bincount(idx, minlength=z.shape[-1]) / N
    p = ref.softmax(z)
    return ZScore(freq, p, np.sqrt((p * (1 - p) + 1.0 / N) / N), "Gumbel-max frequency == softmax(z)", z_max=5.0)


@law("softmax_alternatives.stop_gradient_loss", family=FAMILY, source=f"{SU} (the stop-gradient loss)")
def stop_gradient_loss(ref: Any, case: ProbMapCase = prob_map_cases(max_n=16),
                       t: int = st.integers(0, 63)) -> list[Any]:
    """``L = sg(softmax(z) - e_t) . z`` has gradient exactly ``softmax(z) - e_t``, the cross-entropy gradient (torch
    float64 autograd of L and of ``cross_entropy``), while the other placement ``(softmax(z) - e_t) . sg(z)`` has
    the gradient ``J^T z = p (z - p . z)``; both match ``sg_surrogate_grad``."""
    z = _rows(case)
    n = z.shape[-1]
    tt = np.full(z.shape[0], t % n)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    onehot = torch.nn.functional.one_hot(torch.tensor(tt), n).double()
    p = torch.softmax(zt, -1)
    (g_res,) = torch.autograd.grad(((p.detach() - onehot) * zt).sum(), zt)
    (g_log,) = torch.autograd.grad(((p - onehot) * zt.detach()).sum(), zt)
    (g_ce,) = torch.autograd.grad(torch.nn.functional.cross_entropy(zt, torch.tensor(tt), reduction="sum"), zt)
    scale = 1 + float(np.abs(z).max())
    return [Agreement(g_res.numpy(), g_ce.numpy(), "grad sg(p - e_t).z == cross-entropy gradient", terms=4 * n,
                      scale=1.0),
            Agreement(ref.sg_surrogate_grad(z, tt), g_res.numpy(), "sg_surrogate_grad == autograd (residual form)",
                      terms=4 * n, scale=1.0),
            Agreement(ref.sg_surrogate_grad(z, tt, form="logits"), g_log.numpy(),
                      "sg_surrogate_grad(form='logits') == autograd", terms=8 * n * scale, scale=scale)]
