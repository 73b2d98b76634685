"""Our Triton chunked linear attention in the report and the catalogue: ``triton_chunk`` (op
``linear_attention``, features gate and initial_state, gradients).

Registered only when Triton is importable (an optional dependency).  The chunk size is 16, so that the
op strategy's sequences (T <= 24) span two chunks, a short last one included, and the inter-chunk state
passing (forward and backward) is exercised, not only the intra-chunk quadratic part.  Without CUDA the
kernels run in Triton's CPU interpreter (selected by :mod:`veriformer.fast._triton.env`) with the GPU's
arithmetic (operands rounded to the input dtype's grid, float32 accumulation and state).
"""

from __future__ import annotations

import functools

from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.implementations import Implementation, register_implementation

__all__: list[str] = []

if HAVE_TRITON:
    from veriformer.fast.linear_attention.chunked import chunk_linear_attention as _chunk_linear_attention

    register_implementation(Implementation(
        name="triton_chunk", op="linear_attention", triton=True,
        fn=functools.partial(_chunk_linear_attention, chunk_size=16),
        features=frozenset({"gate", "initial_state"}), grad=True,
        note="Triton Lightning-2 / chunk_simple_gla, chunk 16: per-chunk states in float32 (sequential kernel), "
             "intra-chunk masked quadratic + inter-chunk parallel kernel; backward: reverse state sweep, "
             "per-chunk dq/dk/dv, dg by the reverse-cumsum identity; CPU interpreter without CUDA"))
