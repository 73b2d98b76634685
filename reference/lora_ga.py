"""LoRA-GA (Wang, Yu, Li 2024, "LoRA-GA: Low-Rank Adaptation with Gradient Approximation", arXiv:2407.05000;
Su kexue.fm/archives/10226; repo Outsider565/LoRA-GA ``peft/src/peft/tuners/lora/layer.py::lora_ga_init``):
float64 oracles.

Convention (the repo's, PyTorch layout): W [out, in], y = x W^T; ``W_eff = W_res + s B A`` with B [out, r],
A [r, in], s = alpha / r (alpha / sqrt(r) under rsLoRA).  Su writes W = W0 + A B with the letters swapped.

Initialisation from the full-batch gradient G = dL/dW [out, in] with SVD G = U Sigma V^T (full SVD here; the
repo uses the randomised ``torch.svd_lowrank(q=min(4r, min(G.shape)), niter=4)``):

* direction ``"ArB2r"`` (repo default): A0 = V^T[:r], B0 = U[:, r:2r]; ``"A2rBr"`` (Su's assignment):
  B0 = U[:, :r], A0 = V^T[r:2r]; ``"ArBr"``: B0 = U[:, 0:2r:2], A0 = V^T[1:2r:2];
* scale ``"stable"`` (default; gamma = 16): A0, B0 times out^(1/4) / sqrt(gamma); ``"gd"``: divided by s;
  ``"unit"``: unchanged;
* offset W_res = W0 - s B0 A0, so the initial output is unchanged.

Then B0 B0^T G + G A0^T A0 = c G_2r (c = out^(1/2)/gamma, 1/s^2, 1) with G_2r the rank-2r truncated SVD.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite

__all__ = [
    "LORA_GA_DIRECTIONS",
    "LORA_GA_SCALES",
    "lora_forward",
    "lora_ga_init",
    "lora_ga_projector",
    "lora_grads",
    "lora_merge",
    "lora_scaling",
    "lora_sgd_step",
    "lora_unmerge",
    "truncated_svd",
]

LORA_GA_DIRECTIONS = ("ArB2r", "A2rBr", "ArBr")
LORA_GA_SCALES = ("stable", "gd", "unit")


def lora_scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    """s = alpha / r, or alpha / sqrt(r) with rsLoRA.  Source: peft ``LoraLayer.update_layer``."""
    require(isinstance(r, (int, np.integer)) and r >= 1, "lora_scaling", "r", "a positive int", r)
    require(math.isfinite(alpha) and alpha != 0, "lora_scaling", "alpha", "a finite non-zero float", alpha)
    return float(alpha) / (math.sqrt(r) if use_rslora else r)


def _mat(x: Any, func: str, arg: str) -> np.ndarray:
    a = as_float64(x, func, arg, ndim=2)
    require_finite(a, func, arg)
    return a


def _abs(func: str, w: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    out, inn = w.shape
    r = a.shape[0]
    require(a.shape == (r, inn), func, "A", f"of shape [r, in] = [r, {inn}]", f"shape {a.shape}")
    require(b.shape == (out, r), func, "B", f"of shape [out, r] = [{out}, {r}]", f"shape {b.shape}")


def truncated_svd(g: Any, k: int) -> np.ndarray:
    """G_k = sum_{i<k} sigma_i u_i v_i^T (full SVD), the Eckart-Young best rank-k approximation;
    ``||G - G_k||_F^2 = sum_{i>=k} sigma_i^2``.  Source: Eckart and Young 1936."""
    G = _mat(g, "truncated_svd", "g")
    require(isinstance(k, (int, np.integer)) and k >= 0, "truncated_svd", "k", "a non-negative int", k)
    U, S, Vt = np.linalg.svd(G, full_matrices=False)
    k = min(k, S.size)
    return (U[:, :k] * S[:k]) @ Vt[:k]


def lora_ga_init(w0: Any, grad: Any, r: int, *, alpha: float = 8.0, direction: str = "ArB2r",
                 scale: str = "stable", stable_gamma: float = 16.0,
                 use_rslora: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """LoRA-GA initialisation: returns (A0 [r, in], B0 [out, r], W_res [out, in], s) from W0 [out, in] and the
    gradient G [out, in], as the repo's ``lora_ga_init`` with the full SVD (G = U diag(S) V^T, V^T rows the right
    singular vectors) and ``W_res = W0 - s B0 A0``.  Needs 2r <= min(out, in).  Defaults are the repo's
    (direction "ArB2r", scale "stable", stable_gamma 16; alpha 8 is peft's LoraConfig default).
    Source: Outsider565/LoRA-GA ``peft/src/peft/tuners/lora/layer.py``; Wang et al. 2024, section 3.2-3.3."""
    W0 = _mat(w0, "lora_ga_init", "w0")
    G = _mat(grad, "lora_ga_init", "grad")
    require(G.shape == W0.shape, "lora_ga_init", "grad", f"of the shape of w0 {W0.shape}", f"shape {G.shape}")
    out, inn = W0.shape
    require(isinstance(r, (int, np.integer)) and 1 <= r and 2 * r <= min(out, inn), "lora_ga_init", "r",
            f"an int with 1 <= 2r <= min(out, in) = {min(out, inn)}", r)
    require(direction in LORA_GA_DIRECTIONS, "lora_ga_init", "direction", f"one of {LORA_GA_DIRECTIONS}", direction)
    require(scale in LORA_GA_SCALES, "lora_ga_init", "scale", f"one of {LORA_GA_SCALES}", scale)
    require(stable_gamma > 0, "lora_ga_init", "stable_gamma", "positive", stable_gamma)
    s = lora_scaling(alpha, r, use_rslora)
    U, _S, Vt = np.linalg.svd(G, full_matrices=False)
    if direction == "ArB2r":
        B, A = U[:, r:2 * r], Vt[:r]
    elif direction == "A2rBr":
        B, A = U[:, :r], Vt[r:2 * r]
    else:
        B, A = U[:, 0:2 * r:2], Vt[1:2 * r:2]
    if scale == "gd":
        A, B = A / s, B / s
    elif scale == "stable":
        f = out**0.25 / math.sqrt(stable_gamma)
        A, B = A * f, B * f
    W_res = W0 - s * (B @ A)
    return np.ascontiguousarray(A), np.ascontiguousarray(B), W_res, s


def lora_ga_projector(g: Any, a: Any, b: Any) -> np.ndarray:
    """B B^T G + G A^T A [out, in]: the first-order change of W_eff after one SGD step is -eta s^2 times this
    (Su's objective ``||A A^T G + G B^T B - G||`` in his lettering).  Source: Su kexue.fm/archives/10226."""
    G = _mat(g, "lora_ga_projector", "g")
    A = _mat(a, "lora_ga_projector", "a")
    B = _mat(b, "lora_ga_projector", "b")
    _abs("lora_ga_projector", G, A, B)
    return B @ (B.T @ G) + (G @ A.T) @ A


def lora_forward(x: Any, w_res: Any, a: Any, b: Any, scaling: float) -> np.ndarray:
    """y = x W_res^T + s (x A^T) B^T for x [..., in]; y [..., out] (the unmerged LoRA layer).
    Source: Hu et al. 2021 (LoRA), eq. (3); peft ``Linear.forward``."""
    W = _mat(w_res, "lora_forward", "w_res")
    A = _mat(a, "lora_forward", "a")
    B = _mat(b, "lora_forward", "b")
    _abs("lora_forward", W, A, B)
    xa = as_float64(x, "lora_forward", "x")
    require(xa.ndim >= 1 and xa.shape[-1] == W.shape[1], "lora_forward", "x", f"of shape [..., {W.shape[1]}]",
            f"shape {xa.shape}")
    return xa @ W.T + scaling * ((xa @ A.T) @ B.T)


def lora_merge(w_res: Any, a: Any, b: Any, scaling: float) -> np.ndarray:
    """W_merged = W_res + s B A [out, in].  Source: peft ``Linear.merge`` / ``get_delta_weight``."""
    W = _mat(w_res, "lora_merge", "w_res")
    A = _mat(a, "lora_merge", "a")
    B = _mat(b, "lora_merge", "b")
    _abs("lora_merge", W, A, B)
    return W + scaling * (B @ A)


def lora_unmerge(w_merged: Any, a: Any, b: Any, scaling: float) -> np.ndarray:
    """W_res = W_merged - s B A [out, in].  Source: peft ``Linear.unmerge``."""
    W = _mat(w_merged, "lora_unmerge", "w_merged")
    A = _mat(a, "lora_unmerge", "a")
    B = _mat(b, "lora_unmerge", "b")
    _abs("lora_unmerge", W, A, B)
    return W - scaling * (B @ A)


def lora_grads(g: Any, a: Any, b: Any, scaling: float) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dA, dL/dB) = (s B^T G, s G A^T) where G = dL/dW_eff [out, in] (chain rule through W_eff = W_res + s B A).
    Source: Su kexue.fm/archives/10226; Wang et al. 2024, section 3.2."""
    G = _mat(g, "lora_grads", "g")
    A = _mat(a, "lora_grads", "a")
    B = _mat(b, "lora_grads", "b")
    _abs("lora_grads", G, A, B)
    return scaling * (B.T @ G), scaling * (G @ A.T)


def lora_sgd_step(w_res: Any, a: Any, b: Any, g: Any, lr: float,
                  scaling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One simultaneous SGD step on (A, B) with G = dL/dW_eff at the current point:
    A1 = A - lr s B^T G, B1 = B - lr s G A^T; returns (A1, B1, W_eff1 = W_res + s B1 A1).
    Source: Su kexue.fm/archives/10226 (the one-step expansion)."""
    dA, dB = lora_grads(g, a, b, scaling)
    A1 = np.asarray(a, np.float64) - lr * dA
    B1 = np.asarray(b, np.float64) - lr * dB
    return A1, B1, lora_merge(w_res, A1, B1, scaling)
