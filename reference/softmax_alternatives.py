"""Alternatives to softmax as probability maps (float64 / mpmath oracles).

Every map takes scores ``z`` of any rank and works along ``axis`` (default the last), returning a point of the
simplex ``{p >= 0, sum p = 1}`` along that axis:

* ``sparsemax(z) = argmin_{p in simplex} ||p - z||^2 = relu(z - tau)``: sort ``z`` descending, the support size is
  ``k* = max{k : 1 + k z_(k) > sum_{i<=k} z_(i)}`` and ``tau = (sum_{i<=k*} z_(i) - 1) / k*``
  (Martins & Astudillo 2016, arXiv:1602.02068, Alg. 1).  Jacobian ``diag(s) - s s^T / |S|`` (s = support
  indicator, eq. 12); loss ``1/2 - z_t + 1/2 sum_{i in S} (z_i^2 - tau^2)`` with gradient ``sparsemax(z) - e_t``
  (eq. 19-21).
* ``entmax15(z) = relu(z/2 - tau)^2`` (alpha = 1.5 entmax, Peters, Niculae & Martins 2019, arXiv:1905.05702,
  Alg. 2: exact threshold from the prefix means and variances of the sorted ``z/2``); Jacobian
  ``diag(s) - s s^T / sum s`` with ``s = sqrt(p)`` (their Prop. 2, ``s = p^(2 - alpha)``).
* ``entmax_bisect(z, alpha) = relu((alpha - 1) z - tau)^(1/(alpha - 1))`` with tau found by bisection (their
  Alg. 1); alpha -> 1 gives softmax, alpha = 2 sparsemax.
* ``taylor_softmax`` (de Brebisson & Vincent 2016, arXiv:1511.05042): ``f_k(z_i) / sum_j f_k(z_j)`` with the
  even-order Taylor polynomial ``f_k(x) = sum_{m<=k} x^m / m!`` (> 0 for even k).
* ``topk_softmax``: softmax renormalised over the k largest scores (ties at the k-th value: all kept, or the
  first by index), 0 elsewhere (Su kexue.fm/archives/10145, "sparse softmax").
* ``gumbel_max_sample``: ``argmax(z + G)`` with i.i.d. standard Gumbel ``G = -log(-log U)``: a sample of
  ``softmax(z)`` (Gumbel 1954; Maddison et al. 2014, arXiv:1411.0030).
* ``sg_surrogate_grad``: the gradient of the stop-gradient loss ``L = sg(softmax(z) - e_t) . z``, which is exactly
  the cross-entropy gradient ``softmax(z) - e_t`` (Su kexue.fm/archives/10145).

Scores must be finite (NaN and +-inf are rejected: none of these maps has a masked-entry convention here).  Every
sorting map subtracts the maximum first, which is exact for the support (Sterbenz) and avoids the cancellation of
``cumsum(z) - 1`` at |z| ~ 1e300 that makes the unshifted formula return all zeros (see docs: spec section 10).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.softmax import softmax

__all__ = [
    "entmax15",
    "entmax15_vjp",
    "entmax_bisect",
    "gumbel_max_sample",
    "sg_surrogate_grad",
    "sparsemax",
    "sparsemax_loss",
    "sparsemax_loss_grad",
    "sparsemax_vjp",
    "taylor_softmax",
    "topk_softmax",
]


def _scores(z: Any, func: str, axis: int, arg: str = "z") -> np.ndarray:
    """z as float64 (or an mpmath object array) with ``axis`` moved last; finite, rank >= 1."""
    a = as_float64(z, func, arg)
    require(a.ndim >= 1, func, arg, "at least 1-dimensional", f"shape {a.shape}")
    require(isinstance(axis, int | np.integer) and -a.ndim <= axis < a.ndim, func, "axis",
            f"an int in [-{a.ndim}, {a.ndim})", axis)
    if a.dtype != object:
        require(bool(np.all(np.isfinite(a))), func, arg, "finite (no NaN or +-inf)", "a non-finite value")
    require(a.shape[axis] >= 1, func, arg, "non-empty along axis", f"shape {a.shape}")
    return np.moveaxis(a, axis, -1)


def _sorted_desc(y: np.ndarray) -> np.ndarray:
    """Sort along the last axis, largest first (object arrays of mpf sort by value too)."""
    return -np.sort(-y, axis=-1)


def _largest_true(cond: np.ndarray) -> np.ndarray:
    """The largest k (1-based) along the last axis where ``cond[..., k - 1]`` holds, keepdims (>= 1)."""
    k = np.arange(1, cond.shape[-1] + 1)
    return np.maximum(np.max(np.where(np.asarray(cond, dtype=bool), k, 0), axis=-1, keepdims=True), 1)


def _shifted(xp: Backend, a: np.ndarray) -> np.ndarray:
    x = xp.asarray(a)
    return x - np.max(x, axis=-1, keepdims=True)  # <= 0, the max exactly 0


def _floored(xp: Backend, ys: np.ndarray) -> np.ndarray:
    """Shifted scores floored at -2: the threshold of both maps lies in [-1, 0] (the top score alone gives mass
    >= 1 at tau = -1), so a score below -2 is outside the support whatever its value, and flooring it changes no
    support test while keeping the prefix sums of squares finite (scores ~ -1e300 would overflow them)."""
    return xp.where(ys > -2.0, ys, -2.0)


def _sparsemax_tau(xp: Backend, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tau, k*) of sparsemax for max-shifted scores y along the last axis (keepdims)."""
    ys = _floored(xp, _sorted_desc(y))
    n = ys.shape[-1]
    k = np.arange(1, n + 1)
    kstar = _largest_true(1 + k * ys > np.cumsum(ys, axis=-1))
    top = xp.where(k <= kstar, ys, 0.0)
    return (xp.sum(top, axis=-1, keepdims=True) - 1) / kstar, kstar


@oracle
def sparsemax(z: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """Sparsemax along ``axis``: the Euclidean projection of z onto the simplex, ``relu(z - tau)``.

    ``tau = (sum_{i<=k*} z_(i) - 1) / k*`` over the sorted scores, ``k* = max{k : 1 + k z_(k) > sum_{i<=k} z_(i)}``
    (computed on ``z - max z``; shift invariance makes that exact).  Any leading shape; returns float64.
    Source: Martins & Astudillo 2016 (arXiv:1602.02068), eq. 2 and Algorithm 1.
    """
    a = _scores(z, "sparsemax", axis)
    xp = backend
    y = _shifted(xp, a)
    tau, _ = _sparsemax_tau(xp, y)
    p = xp.where(y > tau, y - tau, 0.0)
    return np.moveaxis(xp.to_float64(p), -1, axis)


@oracle
def sparsemax_vjp(z: Any, grad_p: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """``J^T g`` of sparsemax (J symmetric): ``s * (g - sum_S g / |S|)`` with s the indicator of the support
    ``S = {p > 0}`` (at a boundary tie, where z_i = tau, the entry counts as outside, as the entmax package does).
    z and grad_p of the same shape.  Source: Martins & Astudillo 2016, eq. 12-14."""
    a = _scores(z, "sparsemax_vjp", axis)
    g = np.moveaxis(as_float64(grad_p, "sparsemax_vjp", "grad_p"), axis, -1)
    require(g.shape == a.shape, "sparsemax_vjp", "grad_p", f"of z's shape {np.moveaxis(a, -1, axis).shape}",
            np.moveaxis(g, -1, axis).shape)
    xp = backend
    y = _shifted(xp, a)
    tau, _ = _sparsemax_tau(xp, y)
    s = np.asarray(y > tau, dtype=bool)
    gg = xp.where(s, xp.asarray(g), 0.0)
    mean = xp.sum(gg, axis=-1, keepdims=True) / np.sum(s, axis=-1, keepdims=True)
    out = xp.where(s, gg - mean, 0.0)
    return np.moveaxis(xp.to_float64(out), -1, axis)


def _targets(target: Any, lead: tuple[int, ...], func: str, n: int) -> np.ndarray:
    t = np.asarray(target)
    require(t.dtype.kind in "iu", func, "target", "an integer array (class indices)", f"dtype {t.dtype}")
    require(t.shape == lead, func, "target", f"of shape {lead} (z's shape without axis)", t.shape)
    require(bool(np.all((t >= 0) & (t < n))), func, "target", f"in [0, {n})", "an index out of range")
    return t.astype(np.int64)


@oracle
def sparsemax_loss(z: Any, target: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """Sparsemax loss ``1/2 - z_t + 1/2 sum_{i in S} (z_i^2 - tau^2)`` per slice (>= 0, and 0 iff sparsemax(z)
    is one-hot at t), computed on ``y = z - max z`` as ``1/2 - y_t + 1/2 sum_S (y_i - tau)(y_i + tau)`` (the
    loss is shift-invariant).  target: integer class indices of z's shape without ``axis``.  Returns float64
    of that shape.  Source: Martins & Astudillo 2016 (arXiv:1602.02068), eq. 18-19."""
    a = _scores(z, "sparsemax_loss", axis)
    t = _targets(target, a.shape[:-1], "sparsemax_loss", a.shape[-1])
    xp = backend
    y = _shifted(xp, a)
    tau, _ = _sparsemax_tau(xp, y)
    quad = xp.where(y > tau, (y - tau) * (y + tau), 0.0)
    yt = np.take_along_axis(y, t[..., None], axis=-1)
    loss = 0.5 - yt + 0.5 * xp.sum(quad, axis=-1, keepdims=True)
    return xp.to_float64(loss[..., 0])


def sparsemax_loss_grad(z: Any, target: Any, axis: int = -1) -> np.ndarray:
    """Gradient of :func:`sparsemax_loss` in z: ``sparsemax(z) - e_t`` (same shape as z).
    Source: Martins & Astudillo 2016, eq. 21."""
    a = _scores(z, "sparsemax_loss_grad", axis)
    t = _targets(target, a.shape[:-1], "sparsemax_loss_grad", a.shape[-1])
    p = np.moveaxis(sparsemax(z, axis=axis), axis, -1)
    onehot = np.zeros_like(p)
    np.put_along_axis(onehot, t[..., None], 1.0, axis=-1)
    return np.moveaxis(p - onehot, -1, axis)


def _entmax15_tau(xp: Backend, y: np.ndarray) -> np.ndarray:
    """Threshold tau of 1.5-entmax for half-scores y = (z - max z) / 2 along the last axis (keepdims).

    Support size: the largest k with ``tau_k <= y_(k)``, ``tau_k = mean_k - sqrt(max(1/k - var_k, 0))`` (prefix
    mean and variance of the sorted y, non-strict test: a boundary tie such as z = [2, 0] is in); tau is then
    recomputed by a two-pass mean/variance over that support (no cumsum cancellation)."""
    ys = _floored(xp, _sorted_desc(y))
    n = ys.shape[-1]
    k = np.arange(1, n + 1)
    mean = np.cumsum(ys, axis=-1) / k
    mean_sq = np.cumsum(ys * ys, axis=-1) / k
    delta = 1.0 / k - (mean_sq - mean * mean)
    tau_k = mean - xp.sqrt(xp.where(delta > 0, delta, 0.0))
    kstar = _largest_true(tau_k <= ys)
    top = k <= kstar
    mu = xp.sum(xp.where(top, ys, 0.0), axis=-1, keepdims=True) / kstar
    dev = xp.where(top, ys - mu, 0.0)
    d = 1.0 / xp.asarray(kstar.astype(np.float64)) - xp.sum(dev * dev, axis=-1, keepdims=True) / kstar
    return mu - xp.sqrt(xp.where(d > 0, d, 0.0))


@oracle
def entmax15(z: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """1.5-entmax along ``axis``: ``relu(z/2 - tau)^2`` with tau such that the result sums to 1 (exact threshold
    by sorting; computed on ``(z - max z)/2``).  Equivalently ``argmax_{p in simplex} p.z + (4/3) sum(p_j -
    p_j^1.5)`` (Tsallis alpha = 1.5).  Any leading shape; returns float64.
    Source: Peters, Niculae & Martins 2019 (arXiv:1905.05702), eq. 8 and Algorithm 2."""
    a = _scores(z, "entmax15", axis)
    xp = backend
    y = _shifted(xp, a) / 2
    tau = _entmax15_tau(xp, y)
    r = xp.where(y > tau, y - tau, 0.0)
    return np.moveaxis(xp.to_float64(r * r), -1, axis)


@oracle
def entmax15_vjp(z: Any, grad_p: Any, axis: int = -1, *, backend: Backend = F64) -> np.ndarray:
    """``J^T g`` of 1.5-entmax (J symmetric): ``s g - s (s . g) / sum s`` with ``s = sqrt(p) = relu(z/2 - tau)``.
    z and grad_p of the same shape.  Source: Peters, Niculae & Martins 2019, Proposition 2 (s = p^(2 - alpha))."""
    a = _scores(z, "entmax15_vjp", axis)
    g = np.moveaxis(as_float64(grad_p, "entmax15_vjp", "grad_p"), axis, -1)
    require(g.shape == a.shape, "entmax15_vjp", "grad_p", f"of z's shape {np.moveaxis(a, -1, axis).shape}",
            np.moveaxis(g, -1, axis).shape)
    xp = backend
    y = _shifted(xp, a) / 2
    tau = _entmax15_tau(xp, y)
    s = xp.where(y > tau, y - tau, 0.0)
    sg = s * xp.asarray(g)
    out = sg - s * xp.sum(sg, axis=-1, keepdims=True) / xp.sum(s, axis=-1, keepdims=True)
    return np.moveaxis(xp.to_float64(out), -1, axis)


def entmax_bisect(z: Any, alpha: float, axis: int = -1, n_iter: int = 100) -> np.ndarray:
    """alpha-entmax along ``axis`` by bisection: ``p = relu((alpha - 1) z - tau)^(1/(alpha - 1))`` normalised, with
    tau bisected in ``[max - 1, max - n^(1 - alpha)]`` of ``(alpha - 1) z`` (where the sum is >= 1 and <= 1).
    alpha = 1 returns softmax (the limit); alpha = 2 is sparsemax, 1.5 is :func:`entmax15`.  After ``n_iter``
    halvings (100: below float64 resolution) p is divided by its sum.  Any leading shape; float64.
    Source: Peters, Niculae & Martins 2019 (arXiv:1905.05702), Algorithm 1."""
    a = _scores(z, "entmax_bisect", axis)
    require(isinstance(alpha, int | float | np.floating) and np.isfinite(alpha) and alpha >= 1, "entmax_bisect",
            "alpha", "a finite number >= 1", alpha)
    require(isinstance(n_iter, int) and n_iter >= 1, "entmax_bisect", "n_iter", "an int >= 1", n_iter)
    if alpha == 1:
        return softmax(z, axis=axis)
    am1 = float(alpha) - 1.0
    x = (a - np.max(a, axis=-1, keepdims=True)) * am1
    n = x.shape[-1]
    lo = np.full((*x.shape[:-1], 1), -1.0)
    hi = np.full((*x.shape[:-1], 1), -(1.0 / n) ** am1)

    def mass(tau: np.ndarray) -> np.ndarray:
        return np.sum(np.maximum(x - tau, 0.0) ** (1.0 / am1), axis=-1, keepdims=True)

    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        up = mass(mid) >= 1.0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    p = np.maximum(x - lo, 0.0) ** (1.0 / am1)
    return np.moveaxis(p / np.sum(p, axis=-1, keepdims=True), -1, axis)


def taylor_softmax(z: Any, order: int = 2, axis: int = -1) -> np.ndarray:
    """Taylor softmax ``f_k(z_i) / sum_j f_k(z_j)``, ``f_k(x) = sum_{m=0}^{k} x^m / m!`` with even ``order`` k
    (f_k > 0 then; f_2 has its minimum 1/2 at x = -1).  Neither monotone (f_2(-3) > f_2(-1)) nor shift-invariant.
    Any leading shape; float64.  Source: de Brebisson & Vincent 2016 (arXiv:1511.05042), eq. 7."""
    a = _scores(z, "taylor_softmax", axis)
    require(isinstance(order, int) and order >= 2 and order % 2 == 0, "taylor_softmax", "order",
            "an even int >= 2 (odd orders take negative values)", order)
    f = np.zeros_like(a)
    term = np.ones_like(a)
    for m in range(order + 1):
        if m:
            term = term * a / m
        f = f + term
    return np.moveaxis(f / np.sum(f, axis=-1, keepdims=True), -1, axis)


def topk_softmax(z: Any, k: int, axis: int = -1, ties: str = "all") -> np.ndarray:
    """Softmax renormalised over the top-k set Omega_k: ``p_i = exp(z_i) / sum_{j in Omega_k} exp(z_j)`` for i in
    Omega_k, 0 elsewhere.  ``ties="all"``: Omega_k = {i : z_i >= z_(k)} (every score tied with the k-th largest is
    kept, so |Omega_k| >= k; the usual ``logits < topk(logits).values[..., -1:]`` filter); ``ties="first"``: the k
    largest, ties broken towards the lower index (|Omega_k| = k).  k >= n gives softmax.  Any leading shape.
    Source: Su kexue.fm/archives/10145 ("sparse softmax"); Martins & Astudillo 2016 compare it."""
    a = _scores(z, "topk_softmax", axis)
    require(isinstance(k, int | np.integer) and k >= 1, "topk_softmax", "k", "an int >= 1", k)
    require(ties in ("all", "first"), "topk_softmax", "ties", "'all' or 'first'", repr(ties))
    n = a.shape[-1]
    order = np.argsort(-a, axis=-1, kind="stable")  # descending, lower index first among ties
    if ties == "all":
        kth = np.take_along_axis(a, order[..., min(k, n) - 1:min(k, n)], axis=-1)
        keep = a >= kth
    else:
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), a.shape), axis=-1)
        keep = rank < k
    p = softmax(np.where(keep, a, -np.inf), axis=-1)
    return np.moveaxis(p, -1, axis)


def gumbel_max_sample(z: Any, n_samples: int, seed: int = 0, axis: int = -1) -> np.ndarray:
    """``n_samples`` draws of ``argmax_i (z_i + G_i)``, ``G = -log(-log U)`` i.i.d. standard Gumbel (U uniform on
    [0, 1) from ``numpy.random.default_rng(seed)``): each is an index distributed as ``softmax(z)`` (the Gumbel-max
    trick).  Returns int64 of shape ``[n_samples, *z.shape without axis]``.
    Source: Gumbel 1954; Maddison, Tarlow & Minka 2014 (arXiv:1411.0030), section 2."""
    a = _scores(z, "gumbel_max_sample", axis)
    require(isinstance(n_samples, int) and n_samples >= 1, "gumbel_max_sample", "n_samples", "an int >= 1",
            n_samples)
    u = np.random.default_rng(seed).random((n_samples, *a.shape))
    with np.errstate(divide="ignore"):
        g = -np.log(-np.log(u))
    return np.argmax(a[None] + g, axis=-1)


def sg_surrogate_grad(z: Any, target: Any, axis: int = -1, form: str = "residual") -> np.ndarray:
    """Gradient in z of a stop-gradient surrogate loss, with p = softmax(z) and e_t the one-hot target.

    ``form="residual"``: ``L = sg(p - e_t) . z``, gradient exactly ``p - e_t`` (the cross-entropy gradient; the
    value of L is meaningless).  ``form="logits"``: ``L = (p - e_t) . sg(z)``, gradient ``J^T z = p (z - p . z)``
    (J = diag(p) - p p^T), which is *not* the cross-entropy gradient.  Same shape as z.
    Source: Su kexue.fm/archives/10145 (the sg form); softmax Jacobian (Bridle 1990)."""
    a = _scores(z, "sg_surrogate_grad", axis)
    t = _targets(target, a.shape[:-1], "sg_surrogate_grad", a.shape[-1])
    require(form in ("residual", "logits"), "sg_surrogate_grad", "form", "'residual' or 'logits'", repr(form))
    p = softmax(a, axis=-1)
    if form == "residual":
        onehot = np.zeros_like(p)
        np.put_along_axis(onehot, t[..., None], 1.0, axis=-1)
        g = p - onehot
    else:
        g = p * (a - np.sum(p * a, axis=-1, keepdims=True))
    return np.moveaxis(g, -1, axis)
