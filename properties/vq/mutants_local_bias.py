"""Planted bugs in Transformer-VQ with a local bias and its stop-gradient VJPs."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "vq"


@mutant("vq.local_bias_previous_block_unbiased", family=FAMILY, replaces="vq_local_bias_blocks",
        caught_by=["vq.local_bias_block_form_equals_dense"])
def previous_block_unbiased(q: Any, k: Any, v: Any, codebook: Any, *, bias: Any, block_size: int,
                            scale: float | None = None, **kw: Any) -> np.ndarray:
    """The bias is applied inside the block only: keys of block t-1 within the support (i - j <= W) lose it,
    as in a block form whose cache lags one block (exact only when the bias is 0 off the diagonal block)."""
    T, H = np.shape(q)[2], np.shape(q)[1]
    add = ref.vq_toeplitz_bias(bias, T, H)
    blk = np.arange(T) // block_size
    add = np.where(blk[:, None] == blk[None, :], add, np.where(np.isfinite(add), 0.0, add))
    _, k_hat = ref.vq_quantize(k, codebook)
    return ref.softmax_attention(q, k_hat, v, scale=scale, mask=add[None])


@mutant("vq.local_bias_sg_cache_only", family=FAMILY, replaces="vq_local_bias_vjp",
        caught_by=["vq.local_bias_vjp_stop_gradients"])
def sg_cache_only(q: Any, k: Any, v: Any, codebook: Any, grad_o: Any, *, bias: Any, block_size: int,
                  stop_gradient: str, scale: float | None = None) -> tuple[np.ndarray, ...]:
    """Every stop-gradient setting implemented as Su's reading (sg on the compressed cache only): the official
    GRAD_THRU_CACHE = 0 also stops the previous block's k_hat and v, = 1 lets v-gradients through the cache."""
    return ref.vq_local_bias_vjp(q, k, v, codebook, grad_o, bias=bias, block_size=block_size,
                                 stop_gradient="cache", scale=scale)


@mutant("vq.local_bias_dense_gradient", family=FAMILY, replaces="vq_local_bias_vjp",
        caught_by=["vq.local_bias_vjp_stop_gradients"])
def dense_gradient(q: Any, k: Any, v: Any, codebook: Any, grad_o: Any, *, bias: Any, block_size: int,
                   stop_gradient: str, scale: float | None = None) -> tuple[np.ndarray, ...]:
    """The dense VQ attention gradient (every pair live), which training with the block form never computes."""
    return ref.vq_local_bias_vjp(q, k, v, codebook, grad_o, bias=bias, block_size=np.shape(q)[2] + 1,
                                 stop_gradient="none", scale=scale)
