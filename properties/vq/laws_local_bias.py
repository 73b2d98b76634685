"""Laws of Transformer-VQ with a local bias (Lingle 2023 section 3.3; Su post 9844):
the block form with a two-block lag equals dense biased attention, and the straight-through VJP with and
without GRAD_THRU_CACHE equals the derivative of the forward in which the stop-gradient'ed pairs are frozen."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.vq.laws import vq_terms
from veriformer.properties.vq.strategies import VQCase, vq_cases
from veriformer.registry import law

FAMILY = "vq"
SRC = "Lingle 2023 section 3.3 and attn.py (GRAD_THRU_CACHE); Su kexue.fm/archives/9844"


def _bias(case: VQCase, W: int, per_head: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((case.H, W + 1) if per_head else (W + 1,)) * 2.0


@law("vq.local_bias_block_form_equals_dense", family=FAMILY, source=SRC + " ('With a local bias')")
def local_bias_blocks(ref: Any, case: VQCase = vq_cases(max_T=24), block: int = st.integers(1, 9),
                      support: int = st.integers(0, 9), per_head: bool = st.booleans(),
                      seed: int = st.integers(0, 2**31)) -> Agreement:
    """num_t = exp(Q_t K_hat_t^T + B_tt + M) V_t + exp(Q_t K_hat_{t-1}^T + B_{t,t-1}) V_{t-1} + exp(Q_t C^T) U_{t-2}
    (and den with V -> 1) equals dense causal softmax(Q K_hat^T + Bias) V for a Toeplitz bias of support
    W <= l, for every block length l, dividing T or not."""
    W = min(support, block)
    a = case.arrays()
    b = _bias(case, W, per_head, seed)
    args = (a["q"], a["k"], a["v"], a["codebook"])
    return Agreement(ref.vq_local_bias_blocks(*args, bias=b, block_size=block, scale=case.scale),
                     ref.vq_local_bias_attention(*args, bias=b, scale=case.scale),
                     f"block form with local bias (l={block}, W={W}) == dense", terms=vq_terms(case, a) + 8,
                     scale=float(np.abs(a["v"]).max()))


def frozen_pairs_forward(q: np.ndarray, kh_live: np.ndarray, v_live: np.ndarray, kh_frozen: np.ndarray,
                         v_frozen: np.ndarray, add: np.ndarray, live_k: np.ndarray, live_v: np.ndarray,
                         sc: float) -> np.ndarray:
    """Dense softmax attention in which the logit of pair (t, s) uses the live key where ``live_k`` and the
    frozen one elsewhere, and the value likewise with ``live_v``: the forward of the block form with sg placed
    on the state carried between blocks.  Works on complex inputs (complex-step differentiation)."""
    s = sc * np.where(live_k, q @ np.swapaxes(kh_live, -1, -2), q @ np.swapaxes(kh_frozen, -1, -2))
    vis = np.isfinite(add)
    s = np.where(vis, s + np.where(vis, add, 0.0), 0.0)
    m = np.max(np.where(vis, s.real, -np.inf), axis=-1, keepdims=True)
    e = np.where(vis, np.exp(np.where(vis, s - m, 0.0)), 0.0)
    P = e / e.sum(axis=-1, keepdims=True)
    return (P * live_v) @ v_live + (P * ~live_v) @ v_frozen


@law("vq.local_bias_vjp_stop_gradients", family=FAMILY, kind="certificate",
     source=SRC + " ('Gradients'); complex-step derivative (exact to rounding)")
def local_bias_vjp(ref: Any, case: VQCase = vq_cases(max_T=16), block: int = st.integers(1, 6),
                   support: int = st.integers(0, 6), sg: str = st.sampled_from(("state", "cache", "none")),
                   seed: int = st.integers(0, 2**31)) -> Agreement:
    """<(dq, dk, dv), dx> from the straight-through VJP equals d/dh <dO, o(x + h dx)> where the stop-gradient'ed
    (query, key) pairs keep their unperturbed keys/values: GRAD_THRU_CACHE = 0 freezes everything outside the
    query's own block; Su's reading freezes the cache (blocks <= t - 2); = 1 freezes only the keys seen through
    the codebook cache.  Complex-step derivative
    (h = 1e-30, no cancellation)."""
    W = min(support, block)
    a = case.arrays()
    b = _bias(case, W, False, seed)
    rng = np.random.default_rng(seed + 1)
    go = rng.standard_normal(a["v"].shape)
    dx = {n: rng.standard_normal(a[n].shape) for n in ("q", "k", "v")}
    args = (a["q"], a["k"], a["v"], a["codebook"])
    dq, dk, dv = ref.vq_local_bias_vjp(*args, go, bias=b, block_size=block, stop_gradient=sg, scale=case.scale)
    lhs = float(np.sum(dq * dx["q"]) + np.sum(dk * dx["k"]) + np.sum(dv * dx["v"]))
    _, k_hat = ref.vq_quantize(a["k"], a["codebook"])
    T = case.T
    add = ref.vq_toeplitz_bias(b, T, case.H)[None]
    live_k, live_v = ref.live_pairs(T, block, sg)
    h = 1e-30
    o = frozen_pairs_forward(a["q"] + 1j * h * dx["q"], k_hat + 1j * h * dx["k"], a["v"] + 1j * h * dx["v"],
                             k_hat, a["v"], add, live_k, live_v, case.scale_value)
    rhs = float(np.sum(go * o).imag / h)
    scale = float(np.abs(dq * dx["q"]).sum() + np.abs(dk * dx["k"]).sum() + np.abs(dv * dx["v"]).sum())
    return Agreement(lhs, rhs, f"<vjp, dx> == complex-step derivative (stop_gradient={sg!r})",
                     terms=vq_terms(case, a) + 16, scale=max(scale, 1e-300))
