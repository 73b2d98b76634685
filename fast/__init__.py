"""Fast kernels (PyTorch + Triton) checked against the oracles.

Attention and RoPE (layout [B, H, T, D]):

* ``attention(q, k, v, *, causal, scale, window, sinks, return_lse)`` — Triton flash attention, forward and
  backward (op ``softmax_attention``);
* ``rope(x, positions, *, base, layout, rotary_dim, offset)`` and ``rope_qk(q, k, positions, ...)`` — Triton
  RoPE (op ``rope``);
* ``vq_attention.vq_attention(q, k, v, codebook, *, causal, scale, block_size)`` — Transformer-VQ in linear time
  (op ``vq_attention``; reached through its module, which shares the function's name).

Linear attention (flash-linear-attention layout [B, T, H, D]):

* ``chunk_linear_attention(q, k, v, *, g, scale, initial_state, output_final_state, chunk_size)`` and
  ``lightning_attention(q, k, v, *, slope, ...)`` — Triton chunked (Lightning-2) forward and backward
  (op ``linear_attention``).

State-space models:

* ``selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)`` — Triton selective
  scan in mamba's ``selective_scan_fn`` convention (op ``selective_scan``);
* ``chunk_scan(x, dt, A, B, C, chunk_size, *, D, z, dt_bias, initial_states, dt_softplus, return_final_states)`` —
  Triton SSD in mamba's ``mamba_chunk_scan_combined`` layout; ``ssd_scan(X, A, B, C, chunk_size,
  initial_states)`` the same kernels in op ``ssd_scan``'s convention;
* ``s4d_kernel(log_dt, A, B, C, L)`` — Triton S4D Vandermonde kernel (op ``s4d_kernel``) and
  ``fft_conv(u, kernel, *, D)`` — batched FFT long convolution (op ``ssm_convolution``).

``naive`` / ``naive_*`` are the plain-torch baselines of the tolerance policy.  Without a CUDA device the Triton
kernels run under ``TRITON_INTERPRET=1`` (selected automatically by ``_triton_env``, which must be imported
before triton).  Triton is optional: without it the kernels raise ``ImportError`` when called.
"""

# _triton_env first: sets TRITON_INTERPRET.  vq_attention is the module (its function has the same name).
from . import _triton_env, naive, vq_attention
from .flash_attention import attention
from .ssm_conv import fft_conv, s4d_kernel
from .triton_linear_attention import chunk_linear_attention, lightning_attention
from .triton_rope import rope, rope_qk
from .triton_selective_scan import selective_scan
from .triton_ssd import chunk_scan, ssd_scan

__all__ = ["_triton_env", "attention", "chunk_linear_attention", "chunk_scan", "fft_conv", "lightning_attention",
           "naive", "rope", "rope_qk", "s4d_kernel", "selective_scan", "ssd_scan", "vq_attention"]
