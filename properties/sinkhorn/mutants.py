"""Planted bugs in entropic OT and the SeT layer: oracle mutants (laws must fail) and kernel mutants
(check(op="sinkhorn") must fail)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.sinkhorn import naive
from veriformer.fast.sinkhorn.log_domain import sinkhorn_log as fast_log
from veriformer.properties.sinkhorn.strategies import SinkhornCase
from veriformer.properties.wrong_answers import LONG, wrong_answer_mutants
from veriformer.registry import mutant

# -- oracle mutants: sinkhorn_log -----------------------------------------------------------------------------


@mutant("sinkhorn.log_ends_with_row_update", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.marginals"])
def ends_with_row_update(C: Any, a: Any, b: Any, *, return_potentials: bool = False, **kw: Any) -> Any:
    """One more row update after the last sweep: P 1 = a exact, P^T 1 = b lost (the sweep order swapped)."""
    P, f, g, s = ref.sinkhorn_log(C, a, b, return_potentials=True, **kw)
    r = np.asarray(a, np.float64) / P.sum(-1)
    P2 = P * r[..., :, None]
    eps = kw["eps"]
    return (P2, f + eps * np.log(r), g, s) if return_potentials else P2


@mutant("sinkhorn.log_via_scaling", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.log_domain_underflow"])
def log_via_scaling(C: Any, a: Any, b: Any, *, return_potentials: bool = False, **kw: Any) -> Any:
    """The "log" oracle computed in the scaling domain (f = eps log u): NaN once exp(-C/eps) underflows a row."""
    P, u, v, s = ref.sinkhorn_scaling(C, a, b, return_scalings=True, **kw)
    if not return_potentials:
        return P
    with np.errstate(divide="ignore", invalid="ignore"):
        return P, kw["eps"] * np.log(u), kw["eps"] * np.log(v), s


@mutant("sinkhorn.log_cost_normalised", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.invariances", "sinkhorn.eps_to_infinity"])
def cost_normalised(C: Any, a: Any, b: Any, **kw: Any) -> Any:
    """The cost divided by its largest |C_ij| first ("M /= M.max()", as POT's examples do) while eps is kept: the
    plan no longer follows (s C, s eps) and the eps -> infinity term shrinks by max|C|."""
    Ca = np.asarray(C, np.float64)
    mx = np.abs(Ca).max(axis=(-2, -1), keepdims=True)
    return ref.sinkhorn_log(Ca / np.where(mx > 0, mx, 1.0), a, b, **kw)


@mutant("sinkhorn.log_plan_plus_1e-9", family="sinkhorn", replaces="sinkhorn_log", caught_by=["sinkhorn.cross_ratio"])
def plan_plus_tiny(C: Any, a: Any, b: Any, *, return_potentials: bool = False, **kw: Any) -> Any:
    """1e-9 added to the plan "to keep log P finite": P is no longer diag(u) K diag(v)."""
    out = ref.sinkhorn_log(C, a, b, return_potentials=return_potentials, **kw)
    if return_potentials:
        return (out[0] + 1e-9, *out[1:])
    return out + 1e-9


@mutant("sinkhorn.log_float32", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.mpmath_certificate"])
def log_float32(C: Any, a: Any, b: Any, *, backend: Any = ref.F64, return_potentials: bool = False,
                **kw: Any) -> Any:
    """The float64 oracle computed in float32 (the torch kernel's arithmetic) and returned as float64."""
    if not backend.is_float64 or return_potentials or kw.get("tol") is not None:
        return ref.sinkhorn_log(C, a, b, backend=backend, return_potentials=return_potentials, **kw)
    t = [torch.as_tensor(np.asarray(x, np.float64)).float() for x in (C, a, b)]
    C3 = t[0].reshape(-1, *t[0].shape[-2:])
    P = fast_log(C3, t[1].reshape(C3.shape[:2]), t[2].reshape(C3.shape[0], -1), eps=kw["eps"],
                 n_iters=int(kw["n_iters"]))
    return P.double().reshape(t[0].shape).numpy()


@mutant("sinkhorn.log_eps_floor", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.eps_to_zero_assignment"])
def eps_floor(C: Any, a: Any, b: Any, *, eps: float, **kw: Any) -> Any:
    """eps clamped at 0.2 max|C| "for stability": the plan stops sharpening as eps -> 0."""
    return ref.sinkhorn_log(C, a, b, eps=max(eps, 0.2 * float(np.abs(np.asarray(C, np.float64)).max())), **kw)


@mutant("sinkhorn.log_maximises_cost", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.entropic_gap", "sinkhorn.eps_to_zero_assignment"])
def maximises_cost(C: Any, a: Any, b: Any, **kw: Any) -> Any:
    """The Gibbs kernel built as exp(+C/eps) (a similarity taken for a cost): the plan maximises <P, C>."""
    return ref.sinkhorn_log(-np.asarray(C, np.float64), a, b, **kw)


# -- oracle mutants: scaling form, dual and primal ------------------------------------------------------------


@mutant("sinkhorn.scaling_kernel_transposed_update", family="sinkhorn", replaces="sinkhorn_scaling",
        caught_by=["sinkhorn.log_equals_scaling"])
def scaling_stale_v(C: Any, a: Any, b: Any, **kw: Any) -> Any:
    """The scaling form's column update reads a stale u (u from the previous sweep, v = b / K^T u_old): with one
    sweep it divides by K^T 1."""
    Ca = np.asarray(C, np.float64)
    eps, L = kw["eps"], int(kw["n_iters"])
    K = np.exp(-Ca / eps)
    u = np.ones(Ca.shape[:-1])
    v = np.ones(Ca.shape[:-2] + Ca.shape[-1:])
    with np.errstate(all="ignore"):
        for _ in range(L):
            u_new = np.asarray(a, np.float64) / (K @ v[..., None])[..., 0]
            v = np.asarray(b, np.float64) / (np.swapaxes(K, -1, -2) @ u[..., None])[..., 0]
            u = u_new
        return u[..., :, None] * K * v[..., None, :]


@mutant("sinkhorn.dual_without_mass_term", family="sinkhorn", replaces="entropic_ot_dual",
        caught_by=["sinkhorn.duality"])
def dual_without_mass(f: Any, g: Any, C: Any, a: Any, b: Any, *, eps: float) -> np.ndarray:
    """The dual as <f, a> + <g, b>, the - eps sum exp((f + g - C)/eps) term dropped: above OT_eps by eps."""
    return np.sum(np.asarray(f) * a, -1) + np.sum(np.asarray(g) * b, -1)


@mutant("sinkhorn.primal_entropy_without_minus_one", family="sinkhorn", replaces="entropic_ot_primal",
        caught_by=["sinkhorn.duality"])
def primal_shannon(P: Any, C: Any, *, eps: float) -> np.ndarray:
    """The primal with the Shannon entropy -sum P log P (no "- 1") while the dual keeps the "- 1" convention:
    primal and dual then differ by eps sum P = eps."""
    return ref.entropic_ot_primal(P, C, eps=eps) - eps * np.sum(np.asarray(P), axis=(-2, -1))


# -- oracle mutants: the SeT layer ----------------------------------------------------------------------------


@mutant("sinkhorn.set_nystrom_inverse_not_sqrt", family="sinkhorn", replaces="set_nystrom_features",
        caught_by=["sinkhorn.set_kernel_nystrom"])
def nystrom_inverse(X: Any, Z: Any, *, alpha: float, jitter: float = 0.0) -> np.ndarray:
    """Nyström features with kappa(Z, Z)^{-1} instead of kappa(Z, Z)^{-1/2}: kappa is no longer reproduced."""
    Kzz = ref.set_kernel(Z, Z, alpha=alpha)
    return ref.set_kernel(X, Z, alpha=alpha) @ np.linalg.inv(Kzz)


@mutant("sinkhorn.set_kernel_plus_one", family="sinkhorn", replaces="set_kernel",
        caught_by=["sinkhorn.set_kernel_nystrom"])
def kernel_plus_one(X: Any, Xp: Any, *, alpha: float) -> np.ndarray:
    """exp(alpha (<x^, x'^> + 1)): the sign slip makes kappa exceed 1 on unit vectors."""
    return ref.set_kernel(X, Xp, alpha=alpha) * np.exp(2 * alpha)


@mutant("sinkhorn.set_scale_sqrt_p", family="sinkhorn", replaces="set_layer",
        caught_by=["sinkhorn.set_weights_pool", "sinkhorn.set_mean_pooling_limit"])
def scale_sqrt_p(X: Any, Z: Any, Y: Any, **kw: Any) -> Any:
    """W = sqrt(p) T^T (the OTK paper's scale) where the layer's convention is p T^T (OTK's code): rows of W sum to
    1/sqrt(p), outputs are no longer convex combinations."""
    kw.setdefault("s_p", float(np.sqrt(np.shape(Y)[0])))
    return ref.set_layer(X, Z, Y, **kw)


@mutant("sinkhorn.set_filter_always_on", family="sinkhorn", replaces="set_layer",
        caught_by=["sinkhorn.set_permutations"])
def filter_always_on(X: Any, Z: Any, Y: Any, *, pos_sigma: float | None = None, **kw: Any) -> Any:
    """The position filter applied even when none is asked for (sigma 0.2): the output depends on token order."""
    return ref.set_layer(X, Z, Y, pos_sigma=0.2 if pos_sigma is None else pos_sigma, **kw)


@mutant("sinkhorn.set_filter_positions_from_one", family="sinkhorn", replaces="set_position_filter",
        caught_by=["sinkhorn.set_position_filter"])
def filter_from_one(n: int, p: int, *, sigma: float) -> np.ndarray:
    """1-D filter with positions counted from 1 (OTK's 2-D convention) on one axis only: (i+1)/n - j/p."""
    d = (np.arange(n)[:, None] + 1) / n - np.arange(p)[None, :] / p
    return np.exp(-((d / sigma) ** 2))


# -- kernel mutants (torch callables under check(op="sinkhorn")) ----------------------------------------------


@mutant("sinkhorn.kernel_ends_with_row_update", family="sinkhorn", op="sinkhorn", caught_by=["op:sinkhorn"])
def kernel_row_last(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float, n_iters: int) -> torch.Tensor:
    """A final row update after the sweeps (P 1 = a exact; the convention ends with the column update)."""
    P = fast_log(C, a, b, eps=eps, n_iters=n_iters).float()
    return (P * (a.float() / P.sum(-1))[..., :, None]).to(C.dtype)


@mutant("sinkhorn.kernel_one_sweep_short", family="sinkhorn", op="sinkhorn", caught_by=["op:sinkhorn"])
def kernel_short(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float, n_iters: int) -> torch.Tensor:
    """range(1, n_iters): one sweep fewer than asked (a column update still last, so P^T 1 = b holds)."""
    if n_iters == 1:
        return (b[..., None, :].float() * torch.softmax(-C.float() / eps, dim=-2)).to(C.dtype)
    return fast_log(C, a, b, eps=eps, n_iters=n_iters - 1)


@mutant("sinkhorn.kernel_scaling_float32", family="sinkhorn", op="sinkhorn", caught_by=["op:sinkhorn"])
def kernel_scaling32(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float, n_iters: int) -> torch.Tensor:
    """The scaling iterations in float32 (more careful than the naive baseline's dtype): NaN where exp(-C/eps)
    underflows a row (C/eps beyond ~88), where the log domain is exact."""
    return naive.sinkhorn(C.float(), a.float(), b.float(), eps=eps, n_iters=n_iters).to(C.dtype)


@mutant("sinkhorn.kernel_log_in_input_dtype", family="sinkhorn", op="sinkhorn", caught_by=["op:sinkhorn"],
        dtypes=("bfloat16",))
def kernel_log_lowp(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float, n_iters: int) -> torch.Tensor:
    """The log-domain sweeps in the input dtype (bf16 potentials): at C/eps of hundreds the exponent's rounding
    (2^-8 |C|/eps) is a relative error of order 1 in P."""
    M = C / -float(eps)
    la, lb = torch.log(a), torch.log(b)
    y = torch.zeros_like(lb)
    x = torch.zeros_like(la)
    for _ in range(n_iters):
        x = la - torch.logsumexp(M + y[..., None, :], dim=-1)
        y = lb - torch.logsumexp(M + x[..., :, None], dim=-2)
    return torch.exp(M + x[..., :, None] + y[..., None, :])


@mutant("sinkhorn.log_damped_column_update", family="sinkhorn", replaces="sinkhorn_log",
        caught_by=["sinkhorn.hilbert_contraction", "sinkhorn.marginals"])
def damped(C: Any, a: Any, b: Any, *, eps: float, n_iters: int, return_potentials: bool = False,
           **kw: Any) -> Any:
    """The column update damped, g <- (g + g_new)/2 ("for stability"): each sweep contracts by at least 1/2, not
    by tanh(Delta/4 eps)^2, and P^T 1 = b no longer holds after a sweep."""
    Ca, am, bm = (np.asarray(x, np.float64) for x in (C, a, b))
    g = np.zeros(bm.shape)
    f = np.zeros(am.shape)
    L = int(n_iters) if kw.get("tol") is None else min(int(n_iters), 3000)

    def lse(x: np.ndarray, ax: int) -> np.ndarray:
        m = x.max(ax, keepdims=True)
        return np.squeeze(m + np.log(np.exp(x - m).sum(ax, keepdims=True)), ax)

    for _ in range(L):
        f = eps * np.log(am) - eps * lse((g[..., None, :] - Ca) / eps, -1)
        g = 0.5 * g + 0.5 * (eps * np.log(bm) - eps * lse((f[..., :, None] - Ca) / eps, -2))
    P = np.exp((f[..., :, None] + g[..., None, :] - Ca) / eps)
    return (P, f, g, L) if return_potentials else P


# -- wrong answers at long sequences (veriformer.properties.wrong_answers): n = 1K-16K rows, 8 columns, marginals
# of total mass n (plan entries near 1/8; with unit mass they sit near 1/(8n), subnormal in float16 at 16K, where a
# 0.97-scaled plan is within 4 ulps of every answer: measured, it survived in float16 at n = 16384)

wrong_answer_mutants("sinkhorn", family="sinkhorn", seq_axis=-2,
                     cases=[SinkhornCase(B=1, n=n, m=8, eps=0.5, n_iters=20, seed=n, mass=float(n)) for n in LONG])
