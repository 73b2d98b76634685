"""Planted bugs in the alternatives to softmax: oracle mutants (the laws must fail) and kernel mutants
(``check(op="sparsemax" | "entmax15")`` must fail)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.softmax_alternatives import naive
from veriformer.properties.softmax_alternatives.strategies import ProbMapCase
from veriformer.properties.wrong_answers import LONG, wrong_answer_mutants
from veriformer.registry import mutant

FAMILY = "softmax_alternatives"
L = "softmax_alternatives."

# -- oracle mutants ---------------------------------------------------------------------------------


def _last(z: Any, axis: int) -> np.ndarray:
    return np.moveaxis(np.asarray(z, dtype=np.float64), axis, -1)


@mutant(L + "sparsemax_support_off_by_one", family=FAMILY, replaces="sparsemax",
        caught_by=[L + "sparsemax_is_simplex_projection"])
def sparsemax_support_off_by_one(z: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """tau computed over one more sorted score than the support (k* + 1, capped at n): the threshold drops."""
    y = _last(z, axis)
    y = y - y.max(-1, keepdims=True)
    ys = -np.sort(-y, axis=-1)
    n = ys.shape[-1]
    k = np.arange(1, n + 1)
    kstar = np.max(np.where(1 + k * ys > np.cumsum(ys, -1), k, 0), -1, keepdims=True)
    kk = np.minimum(kstar + 1, n)
    tau = (np.take_along_axis(np.cumsum(ys, -1), kk - 1, -1) - 1) / kk
    return np.moveaxis(np.maximum(y - tau, 0.0), -1, axis)


@mutant(L + "sparsemax_without_max_subtraction", family=FAMILY, replaces="sparsemax",
        caught_by=[L + "huge_scores"])
def sparsemax_unshifted(z: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """The post's NumPy sparsemax: threshold from ``cumsum(z) - 1`` on the raw scores (no max subtracted), so at
    [1e300, 0] the 1 is lost to cancellation and the result is [0, 0]."""
    y = _last(z, axis)
    ys = -np.sort(-y, axis=-1)
    k = np.arange(1, ys.shape[-1] + 1)
    cs = np.cumsum(ys, -1)
    with np.errstate(over="ignore", invalid="ignore"):
        kstar = np.maximum(np.max(np.where(1 + k * ys > cs, k, 0), -1, keepdims=True), 1)
        tau = (np.take_along_axis(cs, kstar - 1, -1) - 1) / kstar
        return np.moveaxis(np.maximum(y - tau, 0.0), -1, axis)


@mutant(L + "sparsemax_in_float32", family=FAMILY, replaces="sparsemax",
        caught_by=[L + "mpmath_certificate"])
def sparsemax_float32(z: Any, axis: int = -1, *, backend: Any = ref.F64) -> np.ndarray:
    """A float64 oracle that secretly computes sparsemax in float32 (the certificate sees 1e-8 errors)."""
    if not backend.is_float64:
        return ref.sparsemax(z, axis=axis, backend=backend)
    t = torch.from_numpy(_last(z, axis)).float()
    return np.moveaxis(naive.sparsemax(t).double().numpy(), -1, axis)


@mutant(L + "entmax15_in_float32", family=FAMILY, replaces="entmax15", caught_by=[L + "mpmath_certificate"])
def entmax15_float32(z: Any, axis: int = -1, *, backend: Any = ref.F64) -> np.ndarray:
    """A float64 oracle that secretly computes 1.5-entmax in float32."""
    if not backend.is_float64:
        return ref.entmax15(z, axis=axis, backend=backend)
    t = torch.from_numpy(_last(z, axis)).float()
    return np.moveaxis(naive.entmax15(t).double().numpy(), -1, axis)


@mutant(L + "sparsemax_vjp_wrong_sign", family=FAMILY, replaces="sparsemax_vjp",
        caught_by=[L + "sparsemax_jacobian"])
def sparsemax_vjp_wrong_sign(z: Any, grad_p: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """Jacobian diag(s) + s s^T / |S| (the sign of the rank-one term flipped)."""
    p = _last(ref.sparsemax(z, axis=axis), axis)
    g = _last(grad_p, axis)
    s = (p > 0).astype(float)
    return np.moveaxis(s * g + s * np.sum(s * g, -1, keepdims=True) / s.sum(-1, keepdims=True), -1, axis)


@mutant(L + "sparsemax_loss_grad_plus_onehot", family=FAMILY, replaces="sparsemax_loss_grad",
        caught_by=[L + "sparsemax_loss_gradient"])
def sparsemax_loss_grad_sign(z: Any, target: Any, axis: int = -1) -> np.ndarray:
    """Loss gradient sparsemax(z) + e_t (the target's sign flipped)."""
    return 2 * ref.sparsemax(z, axis=axis) - ref.sparsemax_loss_grad(z, target, axis=axis)


@mutant(L + "sparsemax_loss_without_half", family=FAMILY, replaces="sparsemax_loss",
        caught_by=[L + "sparsemax_loss_gradient"])
def sparsemax_loss_without_half(z: Any, target: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """The constant 1/2 of the loss dropped: the gradient is unchanged, the Fenchel-Young form and L >= 0 are not."""
    return ref.sparsemax_loss(z, target, axis=axis, **kw) - 0.5


@mutant(L + "entmax15_without_half", family=FAMILY, replaces="entmax15",
        caught_by=[L + "entmax15_closed_form_equals_bisection"])
def entmax15_without_half(z: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """relu(z - tau)^2 with the threshold of the scores themselves (the 1/2 of (alpha - 1) z missing): on the
    simplex, but a different map (sharper)."""
    return ref.entmax15(2 * np.asarray(z, dtype=np.float64), axis=axis, **kw)


@mutant(L + "entmax15_vjp_sparsemax_weights", family=FAMILY, replaces="entmax15_vjp",
        caught_by=[L + "entmax15_jacobian"])
def entmax15_vjp_wrong_weights(z: Any, grad_p: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """Jacobian built with s = p instead of s = sqrt(p) (the alpha = 2 weights p^(2 - alpha) at alpha = 1)."""
    p = _last(ref.entmax15(z, axis=axis), axis)
    g = _last(grad_p, axis)
    return np.moveaxis(p * g - p * np.sum(p * g, -1, keepdims=True) / p.sum(-1, keepdims=True), -1, axis)


@mutant(L + "entmax_bisect_unscaled_scores", family=FAMILY, replaces="entmax_bisect",
        caught_by=[L + "entmax_alpha_limits"])
def entmax_bisect_unscaled(z: Any, alpha: float, axis: int = -1, n_iter: int = 100) -> np.ndarray:
    """relu(z - tau)^(1/(alpha - 1)) without the (alpha - 1) factor on z: alpha -> 1 tends to argmax, not softmax."""
    if alpha == 1:
        return ref.softmax(z, axis=axis)
    return ref.entmax_bisect(np.asarray(z, dtype=np.float64) / (alpha - 1), alpha, axis=axis, n_iter=n_iter)


@mutant(L + "taylor_softmax_is_softmax", family=FAMILY, replaces="taylor_softmax",
        caught_by=[L + "taylor_softmax_not_monotone"])
def taylor_is_softmax(z: Any, order: int = 2, axis: int = -1) -> np.ndarray:
    """exp in place of the Taylor polynomial: monotone, so the counterexample disappears."""
    return ref.softmax(z, axis=axis)


@mutant(L + "taylor_softmax_missing_factorial", family=FAMILY, replaces="taylor_softmax",
        caught_by=[L + "taylor_softmax_not_monotone"])
def taylor_missing_factorial(z: Any, order: int = 2, axis: int = -1) -> np.ndarray:
    """f(x) = sum x^m without the 1/m! (1 + x + x^2 at order 2): still positive, but not a Taylor expansion of
    exp (the error against softmax is O(s^2), and [-3, -1] gives [7/10, 3/10])."""
    a = _last(z, axis)
    f = sum(a**m for m in range(order + 1))
    return np.moveaxis(f / f.sum(-1, keepdims=True), -1, axis)


@mutant(L + "topk_drops_ties", family=FAMILY, replaces="topk_softmax", caught_by=[L + "topk_renormalises"])
def topk_drops_ties(z: Any, k: int, axis: int = -1, ties: str = "all") -> np.ndarray:
    """ties='all' keeps only the scores strictly above the (k+1)-th largest: ties at the k-th value dropped."""
    if ties != "all":
        return ref.topk_softmax(z, k, axis=axis, ties=ties)
    a = _last(z, axis)
    n = a.shape[-1]
    if k >= n:
        return ref.softmax(z, axis=axis)
    nxt = -np.sort(-a, axis=-1)[..., k:k + 1]
    return np.moveaxis(ref.softmax(np.where(a > nxt, a, -np.inf)), -1, axis)


@mutant(L + "topk_not_renormalised", family=FAMILY, replaces="topk_softmax", caught_by=[L + "topk_renormalises"])
def topk_not_renormalised(z: Any, k: int, axis: int = -1, ties: str = "all") -> np.ndarray:
    """softmax over all n scores, then zeroed outside the top-k (mass < 1)."""
    p = ref.softmax(z, axis=axis)
    return np.where(ref.topk_softmax(z, k, axis=axis, ties=ties) > 0, p, 0.0)


@mutant(L + "gumbel_noise_negated", family=FAMILY, replaces="gumbel_max_sample",
        caught_by=[L + "gumbel_max_is_softmax"])
def gumbel_negated(z: Any, n_samples: int, seed: int = 0, axis: int = -1) -> np.ndarray:
    """argmax(z - G): the reflected Gumbel (a max of minima) is not the Gumbel-max distribution."""
    a = _last(z, axis)
    u = np.random.default_rng(seed).random((n_samples, *a.shape))
    with np.errstate(divide="ignore"):
        return np.argmax(a[None] + np.log(-np.log(u)), axis=-1)


@mutant(L + "gumbel_uniform_noise", family=FAMILY, replaces="gumbel_max_sample",
        caught_by=[L + "gumbel_max_is_softmax"])
def gumbel_uniform(z: Any, n_samples: int, seed: int = 0, axis: int = -1) -> np.ndarray:
    """argmax(z + U) with uniform noise on [0, 1)."""
    a = _last(z, axis)
    return np.argmax(a[None] + np.random.default_rng(seed).random((n_samples, *a.shape)), axis=-1)


@mutant(L + "sg_on_logits", family=FAMILY, replaces="sg_surrogate_grad", caught_by=[L + "stop_gradient_loss"])
def sg_on_logits(z: Any, target: Any, axis: int = -1, form: str = "residual") -> np.ndarray:
    """The stop-gradient placed on z instead of on p - e_t (the machine translation's form): gradient J^T z."""
    return ref.sg_surrogate_grad(z, target, axis=axis, form="logits")


# -- kernel mutants (torch callables under check(op=...)) --------------------------------------------


@mutant(L + "kernel_sparsemax_support_minus_one", family=FAMILY, op="sparsemax", caught_by=["op:sparsemax"])
def kernel_support_minus_one(z: torch.Tensor) -> torch.Tensor:
    """tau from one sorted score fewer than the support (k* - 1, at least 1): mass above 1."""
    y = z - z.max(dim=-1, keepdim=True).values
    ys = torch.sort(y, dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = ys.cumsum(-1)
    kstar = torch.where(1 + k * ys > cs, k, torch.zeros_like(k)).amax(-1, keepdim=True)
    kk = torch.clamp(kstar - 1, min=1)
    tau = (cs.gather(-1, kk.long() - 1) - 1) / kk
    return torch.clamp(y - tau, min=0)


@mutant(L + "kernel_sparsemax_without_max", family=FAMILY, op="sparsemax", caught_by=["op:sparsemax"])
def kernel_without_max(z: torch.Tensor) -> torch.Tensor:
    """Threshold from the raw scores' prefix sums (no max subtracted): at |z| ~ 1e4 the float32 sums lose ~1e-3."""
    ys = torch.sort(z, dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = ys.cumsum(-1)
    kstar = torch.where(1 + k * ys > cs, k, torch.zeros_like(k)).amax(-1, keepdim=True).clamp(min=1)
    tau = (cs.gather(-1, kstar.long() - 1) - 1) / kstar
    return torch.clamp(z - tau, min=0)


class _WrongSignVJP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        p = naive.sparsemax(z.detach())
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (p,) = ctx.saved_tensors
        s = (p > 0).to(g.dtype)
        return s * g + s * (s * g).sum(-1, keepdim=True) / s.sum(-1, keepdim=True)


@mutant(L + "kernel_sparsemax_vjp_wrong_sign", family=FAMILY, op="sparsemax", caught_by=["op:sparsemax"], grad=True)
def kernel_vjp_wrong_sign(z: torch.Tensor) -> torch.Tensor:
    """Correct forward; backward with the rank-one term's sign flipped (diag(s) + s s^T / |S|)."""
    return _WrongSignVJP.apply(z)


@mutant(L + "kernel_entmax15_without_half", family=FAMILY, op="entmax15", caught_by=["op:entmax15"])
def kernel_entmax15_without_half(z: torch.Tensor) -> torch.Tensor:
    """relu(z - tau)^2: the 1/2 of (alpha - 1) z missing."""
    return naive.entmax15(2 * z)


@mutant(L + "kernel_entmax15_is_sparsemax", family=FAMILY, op="entmax15", caught_by=["op:entmax15"])
def kernel_entmax15_is_sparsemax(z: torch.Tensor) -> torch.Tensor:
    """sparsemax returned for 1.5-entmax (alpha = 2 for 1.5)."""
    return naive.sparsemax(z)


class _SqrtFreeVJP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        p = naive.entmax15(z.detach())
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (p,) = ctx.saved_tensors
        return p * g - p * (p * g).sum(-1, keepdim=True) / p.sum(-1, keepdim=True)


@mutant(L + "kernel_entmax15_vjp_without_sqrt", family=FAMILY, op="entmax15", caught_by=["op:entmax15"], grad=True)
def kernel_entmax15_vjp_without_sqrt(z: torch.Tensor) -> torch.Tensor:
    """Correct forward; backward with weights p instead of sqrt(p)."""
    return _SqrtFreeVJP.apply(z)


@mutant(L + "kernel_sparsemax_grad_through_max", family=FAMILY, op="sparsemax", caught_by=["op:sparsemax"],
        grad=True, dtypes=("bfloat16",))
def kernel_grad_through_max(z: torch.Tensor) -> torch.Tensor:
    """The max subtracted with its gradient: exact in exact arithmetic (the gradient of the max is -sum_i dL/dy_i
    = 0), but in bfloat16 the rounding residue of that sum (0.57 at n = 1024 uniform scores) lands on the arg-max
    entry."""
    y = z - z.max(dim=-1, keepdim=True).values
    return naive.sparsemax(y)


# -- wrong answers at vocabulary-size lengths (veriformer.properties.wrong_answers) ------------------------------
# amp 1e-3: about a third of the 1K-16K scores are in the support, spread over the whole axis, so a truncated
# output differs from the true one in every case

for _op in ("sparsemax", "entmax15"):
    wrong_answer_mutants(_op, family=FAMILY, seq_axis=-1,
                         cases=[ProbMapCase(lead=1, rows=2, n=n, amp=1e-3, seed=n) for n in LONG])
