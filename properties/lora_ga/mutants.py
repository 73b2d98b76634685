"""Planted bugs in the LoRA-GA oracles (each must be caught by the laws named)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant


@mutant("lora_ga.offset_without_scaling", family="lora_ga", replaces="lora_ga_init",
        caught_by=["lora_ga.init_output_unchanged"])
def offset_without_scaling(w0: Any, grad: Any, r: int, **kw: Any) -> tuple[Any, ...]:
    """W_res = W0 - B0 A0 (the scaling s forgotten in the offset): the initial output moves when s != 1."""
    A, B, _W, s = ref.lora_ga_init(w0, grad, r, **kw)
    return A, B, np.asarray(w0, np.float64) - B @ A, s


@mutant("lora_ga.b_takes_top_r", family="lora_ga", replaces="lora_ga_init",
        caught_by=["lora_ga.projector_identity"])
def b_takes_top_r(w0: Any, grad: Any, r: int, **kw: Any) -> tuple[Any, ...]:
    """Both factors take the top-r singular vectors (B0 = U[:, :r] with A0 = V^T[:r]): the projector is 2 c G_r,
    not c G_2r."""
    A, B, _W, s = ref.lora_ga_init(w0, grad, r, **kw)
    U, _S, _Vt = np.linalg.svd(np.asarray(grad, np.float64), full_matrices=False)
    f = float(np.linalg.norm(B[:, 0])) if B.size else 1.0
    B2 = U[:, :r] * f
    return A, B2, np.asarray(w0, np.float64) - s * B2 @ A, s


@mutant("lora_ga.stable_scale_uses_in_features", family="lora_ga", replaces="lora_ga_init",
        caught_by=["lora_ga.repo_defaults"])
def stable_in_features(w0: Any, grad: Any, r: int, **kw: Any) -> tuple[Any, ...]:
    """The stable scale uses in_features^(1/4) (grad.shape[1]) where the repo uses out_features (grad.shape[0])."""
    A, B, W, s = ref.lora_ga_init(w0, grad, r, **kw)
    if kw.get("scale", "stable") != "stable":
        return A, B, W, s
    out, inn = np.shape(grad)
    f = (inn / out) ** 0.25
    A, B = A * f, B * f
    return A, B, np.asarray(w0, np.float64) - s * B @ A, s


@mutant("lora_ga.stable_gamma_not_rooted", family="lora_ga", replaces="lora_ga_init",
        caught_by=["lora_ga.repo_defaults"])
def gamma_not_rooted(w0: Any, grad: Any, r: int, **kw: Any) -> tuple[Any, ...]:
    """Stable scale divides by gamma instead of sqrt(gamma)."""
    A, B, W, s = ref.lora_ga_init(w0, grad, r, **kw)
    if kw.get("scale", "stable") != "stable":
        return A, B, W, s
    g = math.sqrt(kw.get("stable_gamma", 16.0))
    A, B = A / g, B / g
    return A, B, np.asarray(w0, np.float64) - s * B @ A, s


@mutant("lora_ga.grads_without_scaling", family="lora_ga", replaces="lora_grads",
        caught_by=["lora_ga.gradient_formulas"])
def grads_without_scaling(g: Any, a: Any, b: Any, scaling: float) -> tuple[np.ndarray, np.ndarray]:
    """dL/dA = B^T G, dL/dB = G A^T (the chain-rule factor s dropped)."""
    return ref.lora_grads(g, a, b, 1.0)


@mutant("lora_ga.grads_transposed_product", family="lora_ga", replaces="lora_grads",
        caught_by=["lora_ga.gradient_formulas"])
def grads_swapped_side(g: Any, a: Any, b: Any, scaling: float) -> tuple[np.ndarray, np.ndarray]:
    """dL/dA projected onto the row space of A (s B^T G A^T A instead of s B^T G)."""
    dA, dB = ref.lora_grads(g, a, b, scaling)
    A = np.asarray(a, np.float64)
    return dA @ A.T @ A, dB


@mutant("lora_ga.sgd_sequential_update", family="lora_ga", replaces="lora_sgd_step",
        caught_by=["lora_ga.one_step_expansion"])
def sgd_sequential(w_res: Any, a: Any, b: Any, g: Any, lr: float, scaling: float) -> tuple[Any, ...]:
    """The B update uses the already-updated A (Gauss-Seidel, not a simultaneous SGD step)."""
    A = np.asarray(a, np.float64)
    B = np.asarray(b, np.float64)
    G = np.asarray(g, np.float64)
    A1 = A - lr * scaling * B.T @ G
    B1 = B - lr * scaling * G @ A1.T
    return A1, B1, ref.lora_merge(w_res, A1, B1, scaling)


@mutant("lora_ga.truncation_drops_last", family="lora_ga", replaces="truncated_svd",
        caught_by=["lora_ga.eckart_young", "lora_ga.projector_identity"])
def truncation_drops_last(g: Any, k: int) -> np.ndarray:
    """G_k built from k - 1 singular triplets (off-by-one)."""
    return ref.truncated_svd(g, max(k - 1, 0))


@mutant("lora_ga.unmerge_adds", family="lora_ga", replaces="lora_unmerge", caught_by=["lora_ga.merge_roundtrip"])
def unmerge_adds(w_merged: Any, a: Any, b: Any, scaling: float) -> np.ndarray:
    """unmerge adds s B A again (sign slip)."""
    return ref.lora_merge(w_merged, a, b, scaling)


@mutant("lora_ga.merge_without_scaling", family="lora_ga", replaces="lora_merge",
        caught_by=["lora_ga.init_output_unchanged", "lora_ga.merge_roundtrip"])
def merge_without_scaling(w_res: Any, a: Any, b: Any, scaling: float) -> np.ndarray:
    """merge adds B A (the scaling s forgotten)."""
    return ref.lora_merge(w_res, a, b, 1.0)
