"""Fast kernels (PyTorch + Triton) checked against the oracles.

* ``attention(q, k, v, *, causal, scale, window, sinks, return_lse)`` — Triton flash attention, forward and
  backward, layout [B, H, T, D] (op ``softmax_attention``);
* ``rope(x, positions, *, base, layout, rotary_dim, offset)`` and ``rope_qk(q, k, positions, ...)`` — Triton
  RoPE (op ``rope``);
* ``naive`` / ``naive_*`` — the plain-torch baselines of the tolerance policy.

Without a CUDA device the Triton kernels run under ``TRITON_INTERPRET=1`` (selected automatically by
``_triton_env``, which must be imported before triton).  Triton is optional: without it the kernels raise
``ImportError`` when called.
"""

from . import _triton_env, naive  # _triton_env first: sets TRITON_INTERPRET
from .flash_attention import attention
from .triton_rope import rope, rope_qk

__all__ = ["_triton_env", "attention", "naive", "rope", "rope_qk"]
