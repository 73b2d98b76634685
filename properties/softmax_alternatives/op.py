"""Ops ``sparsemax`` and ``entmax15``: ``fn(z) -> p`` along the last axis, z [..., n] float, p of z's shape and
dtype.  Semantics: :func:`veriformer.reference.sparsemax`, :func:`veriformer.reference.entmax15`; gold VJPs
:func:`~veriformer.reference.sparsemax_vjp`, :func:`~veriformer.reference.entmax15_vjp`; naive baselines
:mod:`veriformer.fast.softmax_alternatives.naive` (max subtracted, threshold by sorting, in the input dtype).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.softmax_alternatives import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.softmax_alternatives import regions
from veriformer.properties.softmax_alternatives import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["ENTMAX15", "SPARSEMAX"]

_OUT_REASON = (
    "rho = 2 over the better of two baselines: the naive torch map in the input dtype (max subtracted, threshold "
    "from sorted prefix sums) and the careful one (the same in float32, rounded once); in bfloat16 at n = 1K-16K "
    "and scores ~1e-3 the naive prefix sums lose the threshold and admitted a 3 % scaled output (and, for "
    "1.5-entmax at 16K, an all-zero one), the careful one does not.  Floor: 2 ulp of the dtype at the element "
    "itself only (a kernel keeps y - tau in its float32 accumulator and rounds once; an ulp of the dtype at the "
    "subtraction's size, 1.2e-4 at p ~ 1e-3 in bfloat16, was what let the scaled output through) plus, with "
    "condition 1, 2 ulp of the accumulator (float32 for half inputs) at the size of what the element subtracts: "
    "{what}.  The scale leaves out |max z| itself (a kernel that forgets to "
    "subtract the max loses u |z| ~ 1e-3 at |z| = 1e4 in float32 and fails there), and entries off the support "
    "get only the threshold's scale, so a leak of mass outside the support fails.")
register_tolerance(Tolerance("op.sparsemax", rho=2.0, floor_ulps=2.0, reason=_OUT_REASON.format(
    what="|y_i| + |tau| + (sum_S |y_j| + 1) / |S| with y = z - max z (tau is a mean of |S| shifted scores)")))
register_tolerance(Tolerance("op.sparsemax.grad", rho=2.0, floor_ulps=4.0, reason=(
    "The VJP is g_i - mean_S g on the support, 0 off it: 4 ulp at each element plus 4 ulp at |g_i| + "
    "mean_S |g|; the support must agree with gold's (a boundary tie z_i = tau counts as outside, as in the "
    "entmax package; the naive baseline reaches the same support from the same rounded inputs).  The baseline "
    "subtracts the max without gradient (its exact gradient is 0): through autograd the rounding residue of "
    "-sum_i dL/dy_i lands on the arg-max entry, 0.57 in bfloat16 at n = 1024, which made the baseline 0.65 off and "
    "rho x that a free pass; mutant kernel_sparsemax_grad_through_max now fails instead.")))
register_tolerance(Tolerance("op.entmax15", rho=2.0, floor_ulps=2.0, reason=_OUT_REASON.format(
    what="2 r_i (|y_i| / 2 + |tau| + 1) with r_i = sqrt(p_i) = y_i / 2 - tau (p = r^2 doubles r's relative error; "
         "tau comes from a mean and a square root of a variance of |S| half-scores), 2^-10 (|tau| + 1) off the "
         "support")))
register_tolerance(Tolerance("op.entmax15.grad", rho=2.0, floor_ulps=4.0, reason=(
    "The VJP is s g - s (s.g) / sum s with s = sqrt(p): 4 ulp at each element plus 4 ulp at (s_i + |y_i|/2 + "
    "|tau| + 1)(|g_i| + sum_j s_j |g_j| / sum s), the size of each summand with s carrying the absolute error "
    "of r = y/2 - tau.")))


def _tau(y: np.ndarray, p: np.ndarray, half: bool) -> np.ndarray:
    """The threshold recovered from gold: y_i - p_i (sparsemax) or y_i/2 - sqrt(p_i) (entmax15) on the support."""
    r = np.sqrt(p) if half else p
    yy = y / 2 if half else y
    return np.max(np.where(p > 0, yy - r, -np.inf), axis=-1, keepdims=True)


def _conditioning(half: bool) -> Any:
    def cond(case: strat.ProbMapCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray] | None,
             opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
        z = a["z"]
        y = z - z.max(-1, keepdims=True)
        p = ref.entmax15(z) if half else ref.sparsemax(z)
        on = p > 0
        tau = np.abs(_tau(y, p, half))
        k = on.sum(-1, keepdims=True)
        if half:
            r = np.sqrt(p)
            c = np.where(on, np.abs(y) / 2, 0.0) + tau + 1
            mass = np.where(on, 2 * r * c, 2.0**-10 * (tau + 1))
        else:
            mass = np.where(on, np.abs(y), 0.0) + tau + (np.sum(np.where(on, np.abs(y), 0.0), -1, keepdims=True)
                                                          + 1) / k
        # root-sum-square slot: the output itself, so the dtype-level floor is ulps at the answer only (a kernel
        # keeps y - tau in its float32 accumulator and rounds once); the subtraction's size enters in float32 ulps
        out: dict[str, tuple[Any, ...]] = {"out": (1.0, mass, p)}
        if cots is not None:
            g = np.abs(cots["out"])
            if half:
                s = np.sqrt(p)
                gm = (s + np.where(on, np.abs(y) / 2, 0.0) + tau + 1) * (
                    g + np.sum(s * g, -1, keepdims=True) / np.sum(s, -1, keepdims=True))
            else:
                gm = np.where(on, g + np.sum(np.where(on, g, 0.0), -1, keepdims=True) / k, 0.0)
            out["dz"] = (1.0, gm, gm)  # a gradient is a cancellation of summands of size gm: figures at that scale
        return out

    return cond


def _sweep(size: int, seed: int) -> strat.ProbMapCase:
    """One row of n = size unit-scale scores: the support grows like n^(1/3)-ish, the sums with it."""
    return strat.ProbMapCase(lead=1, rows=2, n=size, amp=1.0, seed=seed)


def _spec(name: str, oracle: Any, vjp: Any, baseline: Any, careful: Any, source: str, half: bool) -> OpSpec:
    return register_op(OpSpec(
        name=name,
        convention=f"fn(z) -> p; z [..., n] float, {name} along the last axis, p of z's shape and dtype",
        source=source,
        features=frozenset(),
        options={},
        strategy=lambda features, dtype, opts: strat.prob_map_cases(),
        call=lambda fn, t, case, opts: fn(t["z"]),
        gold=lambda case, a, opts: oracle(a["z"]),
        gold_vjp=lambda case, a, g, opts: {"z": vjp(a["z"], g["out"])},
        baseline=lambda opts: baseline,
        careful_baseline=lambda opts: careful,
        differentiable=("z",),
        size=lambda case: case.n,
        tolerance=f"op.{name}",
        conditioning=_conditioning(half),
        sweep=_sweep,
        sweep_sizes=(16, 256, 4096),
        regions=regions.PROB_MAP_REGIONS,
        corners=regions.prob_map_corners,
    ))


SPARSEMAX = _spec("sparsemax", ref.sparsemax, ref.sparsemax_vjp, naive.sparsemax, naive.sparsemax_careful,
                  "Martins & Astudillo 2016 (arXiv:1602.02068)", half=False)
ENTMAX15 = _spec("entmax15", ref.entmax15, ref.entmax15_vjp, naive.entmax15, naive.entmax15_careful,
                 "Peters, Niculae & Martins 2019 (arXiv:1905.05702)", half=True)
