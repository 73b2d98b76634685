"""Entropic optimal transport (Sinkhorn-Knopp) and the SeT layer's transport-plan pooling (float64 / mpmath).

Problem (Cuturi 2013, arXiv:1306.0895; Peyré & Cuturi 2019, "Computational Optimal Transport",
arXiv:1803.00567, §4.1-4.4): marginals ``a`` [.., n] and ``b`` [.., m] with positive entries, a cost ``C``
[.., n, m] and ``eps > 0``;

    OT_eps(a, b, C) = min_{P >= 0, P 1 = a, P^T 1 = b} <P, C> - eps H(P),   H(P) = -sum_ij P_ij (log P_ij - 1)

(Peyré & Cuturi 2019, eq. 4.1 and Def. 4.1: the entropy with the "- 1", which makes the dual objective below exact
without a constant).  The minimiser is ``P = diag(u) K diag(v)`` with ``K = exp(-C / eps)`` (their Prop. 4.3).

Iterations (their §4.2, Algorithm in eq. 4.15; log domain §4.4, eq. 4.43-4.44), started from ``v = 1`` (``g = 0``)
and counted as full sweeps, each ending with the column update, so ``P^T 1 = b`` holds after every sweep:

    scaling:  u <- a / (K v),                              v <- b / (K^T u),                   P = u K v
    log:      f <- eps log a - eps LSE_j((g_j - C_ij)/eps),  g <- eps log b - eps LSE_i((f_i - C_ij)/eps),
              P = exp((f_i + g_j - C_ij) / eps)            (f = eps log u, g = eps log v)

Dual (their Prop. 4.4): ``D(f, g) = <f, a> + <g, b> - eps sum_ij exp((f_i + g_j - C_ij)/eps)``; at the fixed point
``<P, C> - eps H(P) = <f, a> + <g, b> - eps sum P``.

The scaling form underflows once ``C/eps`` exceeds ~745 (float64 ``exp``) on a whole row of ``K``: it then returns
NaN, as the algorithm does; the log form is the one to use there (Peyré & Cuturi 2019, §4.4; Schmitzer 2019,
arXiv:1610.06519).

The SeT layer (SeTformer, Shamsolmoali et al. 2024, arXiv:2401.15818) replaces attention weights by a transport
plan between the tokens and a learned reference set; its exact formulas are not public, so :func:`set_layer`
follows OTK (Mialon et al. 2021, arXiv:2006.12065; code ``claying/OTK``, ``otk/layers.py``), which SeT mirrors
part for part: kernel features by Nyström, cost ``-Psi Y^T``, uniform marginals, plan ``T``, output
``s_p T^T Psi``.  The points the SeTformer paper does not confirm are listed in :func:`set_layer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "entropic_ot_dual",
    "entropic_ot_primal",
    "set_kernel",
    "set_layer",
    "set_nystrom_features",
    "set_position_filter",
    "sinkhorn_log",
    "sinkhorn_scaling",
    "sinkhorn_vjp",
]


def _inputs(C: Any, a: Any, b: Any, eps: Any, n_iters: Any, func: str,
            tol: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Ca = as_float64(C, func, "C")
    require(Ca.ndim >= 2, func, "C", "a tensor [..., n, m] of rank >= 2", f"shape {Ca.shape}")
    require(Ca.shape[-1] >= 1 and Ca.shape[-2] >= 1, func, "C", "non-empty in n and m", f"shape {Ca.shape}")
    require_finite(Ca, func, "C")
    aa, ba = as_float64(a, func, "a"), as_float64(b, func, "b")
    require(aa.shape == Ca.shape[:-1], func, "a", f"of shape [..., n] = {Ca.shape[:-1]}", f"shape {aa.shape}")
    require(ba.shape == Ca.shape[:-2] + Ca.shape[-1:], func, "b", f"of shape [..., m] = "
            f"{Ca.shape[:-2] + Ca.shape[-1:]}", f"shape {ba.shape}")
    for name, x in (("a", aa), ("b", ba)):
        require_finite(x, func, name)
        require(bool(np.all(x > 0)), func, name, "strictly positive (a marginal)", f"min {x.min()}")
    require(isinstance(eps, int | float) and not isinstance(eps, bool) and np.isfinite(eps) and eps > 0,
            func, "eps", "a positive finite number", repr(eps))
    require(isinstance(n_iters, int | np.integer) and not isinstance(n_iters, bool) and n_iters >= 1,
            func, "n_iters", "an int >= 1 (sweeps, each ending with the column update)", repr(n_iters))
    require(tol is None or (isinstance(tol, int | float) and tol > 0), func, "tol", "None or a positive number",
            repr(tol))
    return Ca, aa, ba


def _lse(xp: Backend, x: Any, axis: int) -> Any:
    """``log sum exp`` along ``axis`` (kept), with the max subtracted (exact shift)."""
    m = xp.max(x, axis=axis, keepdims=True)
    return m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))


def _row_error(xp: Backend, P: Any, a: Any) -> float:
    err = np.abs(np.asarray(xp.to_float64(xp.sum(P, axis=-1) - a)))
    return float(err.max()) if err.size else 0.0


@oracle
def sinkhorn_log(C: Any, a: Any, b: Any, *, eps: float, n_iters: int, tol: float | None = None,
                 return_potentials: bool = False, backend: Backend = F64) -> Any:
    """Log-domain Sinkhorn: the plan ``P = exp((f_i + g_j - C_ij)/eps)`` after ``n_iters`` sweeps.

    Each sweep: ``f_i = eps log a_i - eps LSE_j((g_j - C_ij)/eps)``, then ``g_j = eps log b_j - eps
    LSE_i((f_i - C_ij)/eps)``, from ``g = 0``; it stops early once ``max_i |(P 1)_i - a_i| <= tol`` (``tol=None``:
    exactly ``n_iters`` sweeps).  C [..., n, m], a [..., n], b [..., m] (any batch shape; a and b need not have
    equal sums).  Returns P [..., n, m], or ``(P, f, g, sweeps)`` with ``return_potentials=True``.
    Source: Peyré & Cuturi 2019 (arXiv:1803.00567), §4.4, eq. 4.43-4.44; Cuturi 2013 (arXiv:1306.0895).
    """
    Ca, aa, ba = _inputs(C, a, b, eps, n_iters, "sinkhorn_log", tol)
    xp = backend
    Cx, ax, bx = xp.asarray(Ca), xp.asarray(aa), xp.asarray(ba)
    e = xp.scalar(eps)
    la, lb = e * xp.log(ax), e * xp.log(bx)
    g = xp.zeros(ba.shape)
    f = xp.zeros(aa.shape)
    sweeps = 0
    for sweeps in range(1, int(n_iters) + 1):  # noqa: B007 (the count is returned)
        f = la - e * _lse(xp, (g[..., None, :] - Cx) / e, axis=-1)[..., 0]
        g = lb - e * _lse(xp, (f[..., :, None] - Cx) / e, axis=-2)[..., 0, :]
        if tol is not None:
            P = xp.exp((f[..., :, None] + g[..., None, :] - Cx) / e)
            if _row_error(xp, P, ax) <= tol:
                break
    P = xp.exp((f[..., :, None] + g[..., None, :] - Cx) / e)
    if return_potentials:
        return xp.to_float64(P), xp.to_float64(f), xp.to_float64(g), sweeps
    return xp.to_float64(P)


@oracle
def sinkhorn_scaling(C: Any, a: Any, b: Any, *, eps: float, n_iters: int, tol: float | None = None,
                     return_scalings: bool = False, backend: Backend = F64) -> Any:
    """Sinkhorn-Knopp in the scaling domain: ``P = diag(u) K diag(v)``, ``K = exp(-C/eps)``, after ``n_iters``
    sweeps ``u = a / (K v)``, ``v = b / (K^T u)`` from ``v = 1`` (early stop at ``tol`` as :func:`sinkhorn_log`).

    Layouts as :func:`sinkhorn_log`.  Where a whole row or column of K underflows (``C/eps`` beyond ~745 in float64)
    the algorithm divides 0 by 0 and the result is NaN: use the log form there (under ``backend=MP(dps)`` nothing
    underflows).  Returns P, or ``(P, u, v, sweeps)`` with ``return_scalings=True``.
    Source: Cuturi 2013 (arXiv:1306.0895), Algorithm 1; Peyré & Cuturi 2019, §4.2, eq. 4.15.
    """
    Ca, aa, ba = _inputs(C, a, b, eps, n_iters, "sinkhorn_scaling", tol)
    xp = backend
    Cx, ax, bx = xp.asarray(Ca), xp.asarray(aa), xp.asarray(ba)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        K = xp.exp(-Cx / xp.scalar(eps))
        v = xp.full(ba.shape, 1.0)
        u = xp.full(aa.shape, 1.0)
        sweeps = 0
        for sweeps in range(1, int(n_iters) + 1):  # noqa: B007
            u = ax / xp.matmul(K, v[..., :, None])[..., 0]
            v = bx / xp.matmul(np.swapaxes(K, -1, -2), u[..., :, None])[..., 0]
            if tol is not None:
                P = u[..., :, None] * K * v[..., None, :]
                if _row_error(xp, P, ax) <= tol:
                    break
        P = u[..., :, None] * K * v[..., None, :]
    if return_scalings:
        return xp.to_float64(P), xp.to_float64(u), xp.to_float64(v), sweeps
    return xp.to_float64(P)


def entropic_ot_primal(P: Any, C: Any, *, eps: float) -> np.ndarray:
    """``<P, C> - eps H(P)`` with ``H(P) = -sum_ij P_ij (log P_ij - 1)`` (0 log 0 = 0), per batch element.
    P, C [..., n, m] -> [...].  Source: Peyré & Cuturi 2019, eq. 4.1 (the entropy with "- 1")."""
    Pa, Ca = as_float64(P, "entropic_ot_primal", "P"), as_float64(C, "entropic_ot_primal", "C")
    require(Pa.shape == Ca.shape and Pa.ndim >= 2, "entropic_ot_primal", "P", f"of C's shape {Ca.shape}",
            f"shape {Pa.shape}")
    require(bool(np.all(Pa >= 0)), "entropic_ot_primal", "P", "non-negative", f"min {Pa.min()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(Pa > 0, Pa * (np.log(np.where(Pa > 0, Pa, 1.0)) - 1.0), 0.0)
    return np.sum(Pa * Ca, axis=(-2, -1)) + eps * np.sum(plogp, axis=(-2, -1))


def entropic_ot_dual(f: Any, g: Any, C: Any, a: Any, b: Any, *, eps: float) -> np.ndarray:
    """``D(f, g) = <f, a> + <g, b> - eps sum_ij exp((f_i + g_j - C_ij)/eps)``, per batch element.
    f [..., n], g [..., m], C [..., n, m], a [..., n], b [..., m] -> [...].  Weak duality: D <= OT_eps for any f, g.
    Source: Peyré & Cuturi 2019, Prop. 4.4, eq. 4.30."""
    fa, ga = as_float64(f, "entropic_ot_dual", "f"), as_float64(g, "entropic_ot_dual", "g")
    Ca, aa, ba = (as_float64(x, "entropic_ot_dual", n) for x, n in ((C, "C"), (a, "a"), (b, "b")))
    require(fa.shape == Ca.shape[:-1], "entropic_ot_dual", "f", f"of shape {Ca.shape[:-1]}", f"shape {fa.shape}")
    require(ga.shape == Ca.shape[:-2] + Ca.shape[-1:], "entropic_ot_dual", "g",
            f"of shape {Ca.shape[:-2] + Ca.shape[-1:]}", f"shape {ga.shape}")
    P = np.exp((fa[..., :, None] + ga[..., None, :] - Ca) / eps)
    return np.sum(fa * aa, -1) + np.sum(ga * ba, -1) - eps * np.sum(P, axis=(-2, -1))


def sinkhorn_vjp(C: Any, a: Any, b: Any, grad_P: Any, *, eps: float, n_iters: int) -> np.ndarray:
    """The VJP ``dL/dC`` of :func:`sinkhorn_log` with exactly ``n_iters`` sweeps (unrolled, a and b constant).

    Forward: ``f^l = eps log a - eps LSE_j((g^{l-1}_j - C_ij)/eps)``, ``g^l = eps log b - eps LSE_i((f^l_i -
    C_ij)/eps)``, ``P = exp((f + g - C)/eps)``.  Derivatives: ``df_i = -sum_j A_ij (dg_j - dC_ij)`` with A the
    row-softmax of ``(g_j - C_ij)/eps``; ``dg_j = -sum_i B_ij (df_i - dC_ij)`` with B the column-softmax of
    ``(f_i - C_ij)/eps``; ``dP = P (df_i + dg_j - dC_ij)/eps``; reverse mode runs them backwards.
    C [..., n, m], grad_P [..., n, m] -> [..., n, m].  Source: the chain rule on Peyré & Cuturi 2019, eq. 4.43-4.44
    (differentiating the unrolled iterations, their §9.1.3)."""
    Ca, aa, ba = _inputs(C, a, b, eps, n_iters, "sinkhorn_vjp")
    G = as_float64(grad_P, "sinkhorn_vjp", "grad_P")
    require(G.shape == Ca.shape, "sinkhorn_vjp", "grad_P", f"of C's shape {Ca.shape}", f"shape {G.shape}")
    la, lb = eps * np.log(aa), eps * np.log(ba)
    g = np.zeros(ba.shape)
    gs, fs = [g], []
    for _ in range(int(n_iters)):
        f = la - eps * _lse(F64, (g[..., None, :] - Ca) / eps, -1)[..., 0]
        g = lb - eps * _lse(F64, (f[..., :, None] - Ca) / eps, -2)[..., 0, :]
        fs.append(f)
        gs.append(g)
    P = np.exp((fs[-1][..., :, None] + gs[-1][..., None, :] - Ca) / eps)
    W = G * P / eps  # dL/d(exponent * eps) pieces
    dC = -W
    bf = np.sum(W, -1)  # adjoint of f^L
    bg = np.sum(W, -2)  # adjoint of g^L
    for lvl in range(int(n_iters) - 1, -1, -1):
        f, g_prev = fs[lvl], gs[lvl]
        # g^{l+1} = lb - eps LSE_i((f_i - C_ij)/eps): dg_j = -sum_i B_ij (df_i - dC_ij)
        Bm = np.exp((f[..., :, None] - Ca) / eps - _lse(F64, (f[..., :, None] - Ca) / eps, -2))
        bf = bf - np.sum(Bm * bg[..., None, :], -1)
        dC = dC + Bm * bg[..., None, :]
        # f^{l+1} = la - eps LSE_j((g_j - C_ij)/eps): df_i = -sum_j A_ij (dg_j - dC_ij)
        Am = np.exp((g_prev[..., None, :] - Ca) / eps - _lse(F64, (g_prev[..., None, :] - Ca) / eps, -1))
        bg = -np.sum(Am * bf[..., :, None], -2)
        dC = dC + Am * bf[..., :, None]
        bf = np.zeros_like(bf)
    return dC


# -- the SeT layer (OTK's formulas; see the module docstring) -------------------------------------------------


def set_kernel(X: Any, Xp: Any, *, alpha: float) -> np.ndarray:
    """OTK/CKN's positive-definite kernel ``kappa(x, x') = |x| |x'| exp(alpha (<x^, x'^> - 1))``, ``x^ = x/|x|``
    (0 for a zero vector).  X [n, d], Xp [k, d] -> [n, k]; on unit vectors a Gaussian kernel with values in
    (0, 1].  Source: Mialon et al. 2021 (OTK), §3.3; claying/OTK ``ckn/layers.py`` (``exp`` kernel); the form is
    UNCONFIRMED for SeTformer (Shamsolmoali et al. 2024 say only "a positive-definite kernel")."""
    A, B = as_float64(X, "set_kernel", "X", ndim=2), as_float64(Xp, "set_kernel", "Xp", ndim=2)
    require(A.shape[1] == B.shape[1], "set_kernel", "Xp", f"of width d = {A.shape[1]}", f"shape {B.shape}")
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    Ah = A / np.where(na > 0, na, 1.0)[:, None]
    Bh = B / np.where(nb > 0, nb, 1.0)[:, None]
    return na[:, None] * nb[None, :] * np.exp(alpha * (Ah @ Bh.T - 1.0))


def set_nystrom_features(X: Any, Z: Any, *, alpha: float, jitter: float = 0.0) -> np.ndarray:
    """Nyström features ``psi(x) = kappa(Z, Z)^{-1/2} kappa(Z, x)``; X [n, d], anchors Z [k, d] -> Psi [n, k].

    ``kappa(Z, Z)^{-1/2}`` by a symmetric eigendecomposition (eigenvalues clipped at ``jitter``; keep anchors apart
    or pass a jitter).  ``<psi(x), psi(x')>`` is the projection of kappa onto span{kappa(z_i, .)}: it reproduces kappa
    on the anchors and ``kappa(x, x) - |psi(x)|^2 >= 0``.  Source: Williams & Seeger 2001 (Nyström); Mialon et al.
    2021, §3.3; claying/OTK ``ckn/layers.py`` (``_compute_lintrans``)."""
    Xa, Za = as_float64(X, "set_nystrom_features", "X", ndim=2), as_float64(Z, "set_nystrom_features", "Z", ndim=2)
    require(Xa.shape[1] == Za.shape[1], "set_nystrom_features", "Z", f"of width d = {Xa.shape[1]}",
            f"shape {Za.shape}")
    Kzz = set_kernel(Za, Za, alpha=alpha)
    w, V = np.linalg.eigh(Kzz)
    w = np.maximum(w, max(jitter, 1e-300))
    inv_sqrt = (V / np.sqrt(w)[None, :]) @ V.T
    return set_kernel(Xa, Za, alpha=alpha) @ inv_sqrt


def set_position_filter(n: int, p: int, *, sigma: float) -> np.ndarray:
    """OTK's 1-D position filter ``F_ij = exp(-((i/n - j/p)/sigma)^2)``, i < n, j < p -> [n, p] in (0, 1], equal to
    1 where i/n = j/p (0-based positions, as OTK's 1-D filter; its 2-D filter counts from 1).  Source: claying/OTK
    ``otk/layers.py`` (``OTKernel.get_position_filter``, "gaussian"); the "exponential penalty on positional
    distance" of SeTformer (Shamsolmoali et al. 2024, abstract) in OTK's form: UNCONFIRMED."""
    require(isinstance(n, int) and n >= 1, "set_position_filter", "n", "an int >= 1", repr(n))
    require(isinstance(p, int) and p >= 1, "set_position_filter", "p", "an int >= 1", repr(p))
    require(sigma > 0, "set_position_filter", "sigma", "positive", repr(sigma))
    d = np.arange(n)[:, None] / n - np.arange(p)[None, :] / p
    return np.exp(-((d / sigma) ** 2))


def set_layer(X: Any, Z: Any, Y: Any, *, alpha: float, eps: float, n_iters: int, s_p: float | None = None,
              pos_sigma: float | None = None, return_weights: bool = False) -> Any:
    """One SeT head on one set (OTK's formulas): tokens X [n, d], unit anchors Z [k, d], reference Y [p, k].

    ``Psi = set_nystrom_features(X, Z)`` [n, k]; ``S = Psi Y^T`` [n, p] (times the position filter F when
    ``pos_sigma`` is given); the plan ``T = sinkhorn_log(-S, 1/n, 1/p)`` (``n_iters`` sweeps, ending with the
    column update); weights ``W = s_p T^T`` [p, n] (times F^T with the filter); output ``A = W Psi`` [p, k].
    Default ``s_p = p`` (claying/OTK code: W's rows then sum to 1, each output a convex combination of the psi(x_i));
    the OTK paper writes sqrt(p).  Returns A, or ``(A, W)`` with ``return_weights=True``.

    UNCONFIRMED for SeTformer (Shamsolmoali et al. 2024, arXiv:2401.15818; its method section was not available):
    the kernel form, the cost sign and scale, s_p, the position filter, eps, the iteration count, and how the p
    outputs map back to n tokens.  Source: Mialon et al. 2021 (arXiv:2006.12065) eq. 4-6; claying/OTK
    ``otk/layers.py``, ``otk/sinkhorn.py``."""
    Psi = set_nystrom_features(X, Z, alpha=alpha)
    Ya = as_float64(Y, "set_layer", "Y", ndim=2)
    require(Ya.shape[1] == Psi.shape[1], "set_layer", "Y", f"of shape [p, k] with k = {Psi.shape[1]}",
            f"shape {Ya.shape}")
    n, p = Psi.shape[0], Ya.shape[0]
    S = Psi @ Ya.T
    F = set_position_filter(n, p, sigma=pos_sigma) if pos_sigma is not None else None
    if F is not None:
        S = S * F
    T = sinkhorn_log(-S, np.full(n, 1.0 / n), np.full(p, 1.0 / p), eps=eps, n_iters=n_iters)
    W = (float(p) if s_p is None else float(s_p)) * T.T
    if F is not None:
        W = W * F.T
    A = W @ Psi
    return (A, W) if return_weights else A
