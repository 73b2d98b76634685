"""Our linear-time Transformer-VQ kernel in the report and the catalogue: ``fast_vq_attention`` (op
``vq_attention``), :func:`veriformer.fast.vq_attention.vq_attention` with a block size of 4 so that the
strategy's sequences (T <= 20) span several blocks and the compressed cache is exercised (causal cases);
gradients are the straight-through VJP (dq through the compressed cache; dk, dv from the flash-attention
dK/dV kernel at k_hat).

Registered only when Triton is importable.  Without CUDA the kernels run in Triton's CPU interpreter.
"""

from __future__ import annotations

import functools

from .fast._triton_env import HAVE_TRITON
from .implementations import Implementation, register_implementation

__all__: list[str] = []

BLOCK_SIZE = 4

if HAVE_TRITON:
    from .fast.vq_attention import vq_attention as _vq_attention

    register_implementation(Implementation(
        name="fast_vq_attention", op="vq_attention",
        fn=functools.partial(_vq_attention, block_size=BLOCK_SIZE), grad=True,
        note=f"Triton: nearest code (expansion form, near-ties refined in float64), per-code value sums and "
             f"counts prefix-summed over blocks of W={BLOCK_SIZE}, causal in-block part + compressed cache "
             f"merged with one max; straight-through backward: dq via the cache (linear), dk/dv by the flash "
             f"dK/dV kernel at k_hat"))
