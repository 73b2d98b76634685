"""Planted bugs in Transformer-VQ attention: oracle mutants and kernel mutants for op ``vq_attention``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.vq import naive
from veriformer.properties.vq.strategies import VQCase
from veriformer.properties.wrong_answers import QUADRATIC, wrong_answer_mutants
from veriformer.registry import mutant

FAMILY = "vq"


@mutant("vq.assign_by_max_inner_product", family=FAMILY, replaces="vq_quantize",
        caught_by=["vq.assignment_is_nearest_first_on_ties"])
def assign_inner_product(k: Any, codebook: Any) -> tuple[np.ndarray, np.ndarray]:
    """Codes assigned by the largest inner product k . c_s instead of the smallest distance (equal only
    when every code has the same norm)."""
    k, cb = np.asarray(k, np.float64), np.asarray(codebook, np.float64)
    z = np.argmax(np.einsum("bhtd,hcd->bhtc", k, np.broadcast_to(cb, (k.shape[1], *cb.shape[1:]))), axis=-1)
    cbh = np.broadcast_to(cb, (k.shape[1], *cb.shape[1:]))
    return z, cbh[np.arange(k.shape[1])[None, :, None], z]


@mutant("vq.last_index_on_ties", family=FAMILY, replaces="vq_quantize",
        caught_by=["vq.assignment_is_nearest_first_on_ties"])
def last_on_ties(k: Any, codebook: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ties resolved to the last minimal index (argmin over the reversed codebook)."""
    cb = np.asarray(codebook, np.float64)
    z, _ = ref.vq_quantize(k, cb[:, ::-1])
    z = cb.shape[1] - 1 - z
    cbh = np.broadcast_to(cb, (np.shape(k)[1], *cb.shape[1:]))
    return z, cbh[np.arange(np.shape(k)[1])[None, :, None], z]


@mutant("vq.cache_includes_current_block", family=FAMILY, replaces="vq_attention_blocks",
        caught_by=["vq.block_form_equals_dense_causal"])
def cache_current_block(q: Any, k: Any, v: Any, codebook: Any, *, block_size: int, scale: float | None = None,
                        **kw: Any) -> np.ndarray:
    """The compressed cache is updated before block t reads it (U_t instead of U_{t-1}): the current block
    is counted twice, once densely and once through the cache (and its future keys leak in)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    T = q.shape[2]
    outs = []
    for t0 in range(0, T, block_size):
        stop = min(t0 + block_size, T)
        # the block's own keys enter the cache: equivalent to attending to [0, stop) plus the block densely
        kk = np.concatenate([k[:, :, :stop], k[:, :, t0:stop]], axis=2)
        vv = np.concatenate([v[:, :, :stop], v[:, :, t0:stop]], axis=2)
        _, k_hat = ref.vq_quantize(kk, codebook)
        n_c, n = stop, stop - t0
        vis = np.zeros((n, n_c + n), bool)
        vis[:, :n_c] = True
        vis[:, n_c:] = np.tril(np.ones((n, n), bool))
        sc = q.shape[-1] ** -0.5 if scale is None else scale
        outs.append(ref.softmax_attention(q[:, :, t0:stop], k_hat, vv, scale=sc, mask=vis[None, None]))
    return np.concatenate(outs, axis=2)


@mutant("vq.missing_count_normaliser", family=FAMILY, replaces="vq_attention_linear",
        caught_by=["vq.linear_form_equals_dense"])
def missing_counts(q: Any, k: Any, v: Any, codebook: Any, *, causal: bool = False, scale: float | None = None,
                   **kw: Any) -> np.ndarray:
    """Linear form whose denominator sums exp(q C^T) over the codes in use without the counts Delta^T 1
    (each code counted once however many keys it holds)."""
    if causal:
        return ref.vq_attention_linear(q, k, v, codebook, causal=True, scale=scale, **kw)
    q, v = np.asarray(q, np.float64), np.asarray(v, np.float64)
    z, _ = ref.vq_quantize(k, codebook)
    cb = np.broadcast_to(np.asarray(codebook, np.float64), (q.shape[1], *np.shape(codebook)[1:]))
    C = cb.shape[1]
    delta = (z[..., None] == np.arange(C)).astype(np.float64)
    sc = q.shape[-1] ** -0.5 if scale is None else scale
    L = np.einsum("bhtd,hcd->bhtc", q, cb) * sc
    used = delta.sum(2)[:, :, None, :] > 0
    m = np.where(used, L, -np.inf).max(-1, keepdims=True)
    w = np.where(used, np.exp(L - m), 0.0)
    return (w @ (np.swapaxes(delta, -1, -2) @ v)) / w.sum(-1, keepdims=True)


@mutant("vq.max_over_all_codes", family=FAMILY, replaces="vq_attention_linear",
        caught_by=["vq.unused_codes_contribute_zero"])
def max_all_codes(q: Any, k: Any, v: Any, codebook: Any, *, causal: bool = False, scale: float | None = None,
                  **kw: Any) -> np.ndarray:
    """Shared maximum taken over every code, used or not, and unused codes weighted exp(l - m) * 0: an
    unused code with a large logit underflows every used weight (0/0 = NaN)."""
    q, v = np.asarray(q, np.float64), np.asarray(v, np.float64)
    z, _ = ref.vq_quantize(k, codebook)
    cb = np.broadcast_to(np.asarray(codebook, np.float64), (q.shape[1], *np.shape(codebook)[1:]))
    delta = (z[..., None] == np.arange(cb.shape[1])).astype(np.float64)
    sc = q.shape[-1] ** -0.5 if scale is None else scale
    L = np.einsum("bhtd,hcd->bhtc", q, cb) * sc
    w = np.exp(L - L.max(-1, keepdims=True))
    if causal:
        U, u = np.cumsum(delta[..., None] * v[..., None, :], axis=2), np.cumsum(delta, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("bhtc,bhtcv->bhtv", w, U) / np.sum(w * u, -1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ (np.swapaxes(delta, -1, -2) @ v)) / (w @ delta.sum(2)[..., None])


@mutant("vq.dense_skips_quantisation", family=FAMILY, replaces="vq_attention",
        caught_by=["vq.single_code_is_running_mean", "vq.linear_form_equals_dense"])
def dense_raw_keys(q: Any, k: Any, v: Any, codebook: Any, *, causal: bool = False, scale: float | None = None,
                   **kw: Any) -> np.ndarray:
    """Dense form that attends to the raw keys k instead of the quantised k_hat."""
    sc = np.shape(q)[-1] ** -0.5 if scale is None else scale
    return ref.softmax_attention(q, k, v, causal=causal, scale=sc, **kw)


# -- kernel mutants --------------------------------------------------------------------------------


@mutant("vq.kernel_inner_product_assignment", family=FAMILY, op="vq_attention", caught_by=["op:vq_attention"])
def kernel_inner_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *,
                         causal: bool, scale: float) -> torch.Tensor:
    """Kernel assigning codes by argmax k . c (a 'cosine' codebook lookup on an unnormalised codebook)."""
    cb = codebook.to(k.dtype).expand(k.shape[1], *codebook.shape[1:])
    z = torch.einsum("bhtd,hcd->bhtc", k, cb).argmax(-1)
    k_hat = torch.gather(cb.expand(k.shape[0], *cb.shape), 2, z[..., None].expand(*z.shape, k.shape[-1]))
    s = (q @ k_hat.transpose(-1, -2)) * scale
    if causal:
        T = q.shape[2]
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(s, -1) @ v


@mutant("vq.kernel_raw_keys", family=FAMILY, op="vq_attention", caught_by=["op:vq_attention"])
def kernel_raw_keys(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *, causal: bool,
                    scale: float) -> torch.Tensor:
    """Kernel that forgets to quantise (attends to k)."""
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


@mutant("vq.kernel_ste_blocks_key_gradient", family=FAMILY, op="vq_attention", caught_by=["op:vq_attention"],
        grad=True)
def kernel_no_ste(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *, causal: bool,
                  scale: float) -> torch.Tensor:
    """Quantisation without the straight-through term: k_hat = C[z] detached, so dk = 0 (keys never learn)."""
    _, k_hat = naive.vq_quantize(k, codebook)
    k_hat = k_hat.detach() + 0.0 * k
    s = (q @ k_hat.transpose(-1, -2)) * scale
    if causal:
        T = q.shape[2]
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(s, -1) @ v


@mutant("vq.compacted_codes_misindexed", family=FAMILY, replaces="vq_attention_linear",
        caught_by=["vq.codebook_permutation_invariance"])
def compacted_codes(q: Any, k: Any, v: Any, codebook: Any, *, causal: bool = False, scale: float | None = None,
                    **kw: Any) -> np.ndarray:
    """Linear form that compacts the codes in use (np.unique, sorted) for the per-code sums and counts but
    reads the logits of the first u codebook rows: code ids and codebook rows disagree unless every code
    is used in codebook order."""
    if causal:
        return ref.vq_attention_linear(q, k, v, codebook, causal=True, scale=scale, **kw)
    q, v = np.asarray(q, np.float64), np.asarray(v, np.float64)
    z, _ = ref.vq_quantize(k, codebook)
    cb = np.broadcast_to(np.asarray(codebook, np.float64), (q.shape[1], *np.shape(codebook)[1:]))
    sc = q.shape[-1] ** -0.5 if scale is None else scale
    out = np.empty((*q.shape[:3], v.shape[-1]))
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            used, idx = np.unique(z[b, h], return_inverse=True)
            onehot = (idx[:, None] == np.arange(len(used))).astype(np.float64)
            L = q[b, h] @ cb[h, :len(used)].T * sc
            w = np.exp(L - L.max(-1, keepdims=True))
            out[b, h] = (w @ (onehot.T @ v[b, h])) / (w @ onehot.sum(0))[:, None]
    return out


@mutant("vq.running_mean_not_rescaled", family=FAMILY, replaces="vq_attention_blocks",
        caught_by=["vq.mean_logcount_cache_equals_sums"])
def mean_not_rescaled(q: Any, k: Any, v: Any, codebook: Any, *, block_size: int, scale: float | None = None,
                      cache: str = "sums", **kw: Any) -> np.ndarray:
    """Stable cache whose running mean forgets the L_old/L_new factor (Ubar <- Ubar + sum v / L_new): older
    blocks keep their full weight, so every code's mean drifts once it is hit by a second block."""
    if cache != "means":
        return ref.vq_attention_blocks(q, k, v, codebook, block_size=block_size, scale=scale, cache=cache, **kw)
    q, v = np.asarray(q, np.float64), np.asarray(v, np.float64)
    z, k_hat = ref.vq_quantize(k, codebook)
    H, T = q.shape[1], q.shape[2]
    cb = np.broadcast_to(np.asarray(codebook, np.float64), (H, *np.shape(codebook)[1:]))
    delta = (z[..., None] == np.arange(cb.shape[1])).astype(np.float64)
    sc = q.shape[-1] ** -0.5 if scale is None else scale
    Lc = np.einsum("bhtd,hcd->bhtc", q, cb) * sc
    Ub = np.zeros((*q.shape[:2], cb.shape[1], v.shape[-1]))
    u = np.zeros((*q.shape[:2], 1, cb.shape[1]))
    outs = []
    for t0 in range(0, T, block_size):
        blk = slice(t0, min(t0 + block_size, T))
        n = blk.stop - t0
        s_in = np.where(np.tril(np.ones((n, n), bool)), q[:, :, blk] @ np.swapaxes(k_hat[:, :, blk], -1, -2) * sc,
                        -np.inf)
        lc = np.where(u > 0, Lc[:, :, blk] + np.log(np.where(u > 0, u, 1.0)), -np.inf)
        m = np.maximum(s_in.max(-1, keepdims=True), lc.max(-1, keepdims=True))
        w_in, w_c = np.exp(s_in - m), np.exp(lc - m)
        outs.append((w_in @ v[:, :, blk] + w_c @ Ub) / (w_in.sum(-1, keepdims=True) + w_c.sum(-1, keepdims=True)))
        u_new = u + delta[:, :, blk].sum(2)[:, :, None, :]
        inv = np.swapaxes(np.where(u_new > 0, 1.0 / np.where(u_new > 0, u_new, 1.0), 0.0), -1, -2)
        Ub = Ub + (np.swapaxes(delta[:, :, blk], -1, -2) @ v[:, :, blk]) * inv
        u = u_new
    return np.concatenate(outs, axis=2)


# -- wrong answers at LLM lengths (veriformer.properties.wrong_answers) --------------------------------------

wrong_answer_mutants("vq_attention", family=FAMILY, seq_axis=-2,
                     cases=[VQCase(B=1, H=1, T=n, D=8, Dv=8, C=16, causal=True, seed=n) for n in QUADRATIC])
