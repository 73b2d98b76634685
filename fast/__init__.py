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
* ``rerope_attention(q, k, v, ...)`` — Triton (Leaky) ReRoPE attention, forward and backward (op
  ``rerope_attention``; positions family); MLA decode, Monarch and the others are reached through their family
  packages (``fast.mla.decode``, ``fast.monarch.kernel``, ``fast.sinkhorn.log_domain``).
* ``s4d_kernel(log_dt, A, B, C, L)`` — Triton S4D Vandermonde kernel (op ``s4d_kernel``) and
  ``fft_conv(u, kernel, *, D)`` — batched FFT long convolution (op ``ssm_convolution``).

Each family is one package (``attention``, ``rope``, ``linear_attention``, ``vq``, ``ssm``) holding its kernel
modules and ``naive``, its plain-torch baselines of the tolerance policy; ``fast.naive`` gathers every family's
baselines in one namespace.  ``_triton`` holds what the kernels share.  Without a CUDA device the Triton
kernels run under ``TRITON_INTERPRET=1`` (selected automatically by ``_triton_env``, which must be imported
before triton).  Triton is optional: without it the kernels raise ``ImportError`` when called.
"""

import importlib as _importlib
import pkgutil as _pkgutil
import sys as _sys
import types as _types

from veriformer.fast._triton import env as _triton_env  # noqa: F401  (first: sets TRITON_INTERPRET before triton loads)
from veriformer.reference._legacy import install_aliases as _install_aliases
from veriformer.reference._legacy import keep_functions as _keep_functions

# every family package and its modules first, the public functions last: `fast.attention` and `fast.rope` are
# the kernels, not the packages of the same name
_FAMILIES = [m.name for m in _pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_")]
for _family in _FAMILIES:
    _pkg = _importlib.import_module(f"{__name__}.{_family}")
    for _m in _pkgutil.iter_modules(_pkg.__path__):
        _importlib.import_module(f"{_pkg.__name__}.{_m.name}")

# `fast.naive`: every family's torch baselines in one namespace (each family's own is `fast.<family>.naive`)
naive = _types.ModuleType(f"{__name__}.naive", "The plain-torch baselines of every family (fast/<family>/naive*.py).")
for _name, _mod in sorted(_sys.modules.items()):
    if _name.startswith(f"{__name__}.") and _name.rsplit(".", 1)[-1].startswith("naive") and _mod is not None:
        for _n in getattr(_mod, "__all__", ()):
            setattr(naive, _n, getattr(_mod, _n))
_sys.modules[naive.__name__] = naive

from veriformer.fast.attention.flash import attention  # noqa: E402
from veriformer.fast.linear_attention.chunked import chunk_linear_attention, lightning_attention  # noqa: E402
from veriformer.fast.positions.rerope import rerope_attention  # noqa: E402
from veriformer.fast.rope.fused import rope, rope_qk  # noqa: E402
from veriformer.fast.ssm.conv import fft_conv, s4d_kernel  # noqa: E402
from veriformer.fast.ssm.scan import selective_scan  # noqa: E402
from veriformer.fast.ssm.ssd import chunk_scan, ssd_scan  # noqa: E402
from veriformer.fast.vq import linear_time as vq_attention  # noqa: E402  (the module: fast.vq_attention.vq_attention)

# `fast.attention` and `fast.rope` stay the kernels when a submodule of the package of the same name loads later
_keep_functions(__name__)

_install_aliases({f"{__name__}.{old}": f"{__name__}.{new}" for old, new in {
    "_triton_env": "_triton.env", "_ptx": "_triton.ptx", "_triton_trig": "_triton.trig",
    "flash_attention": "attention.flash", "triton_rope": "rope.fused",
    "triton_linear_attention": "linear_attention.chunked", "naive_linear_attention": "linear_attention.naive",
    "ssm_conv": "ssm.conv", "triton_selective_scan": "ssm.scan", "triton_ssd": "ssm.ssd",
    "naive_ssm": "ssm.naive", "naive_mamba_chunk_scan": "ssm.naive_chunk_scan"}.items()})

__all__ = ["attention", "chunk_linear_attention", "chunk_scan", "fft_conv", "lightning_attention",
           "naive", "rerope_attention", "rope", "rope_qk", "s4d_kernel", "selective_scan", "ssd_scan", "vq_attention"]
