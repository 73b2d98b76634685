"""Our Triton kernels in the report and the catalogue: ``triton_flash`` and ``triton_flash[tma]`` (the same
kernels with their looped tiles loaded through TMA descriptors; op ``softmax_attention``) and
``triton_rope[...]`` (op ``rope``, one entry per layout plus partial rotary).

Registered only when Triton is importable (it is an optional dependency).  Without CUDA the kernels run
in Triton's CPU interpreter (selected by :mod:`veriformer.fast._triton_env`), slowly but with the GPU's
arithmetic (operands rounded to the input dtype's grid, float32 accumulation); with CUDA they run on the
device of the tensors ``check`` passes.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from .fast._triton_env import HAVE_TRITON
from .implementations import Implementation, register_implementation

__all__: list[str] = []

if HAVE_TRITON:
    from .fast.flash_attention import attention as _attention
    from .fast.flash_attention import config_override as _config_override
    from .fast.triton_rope import rope as _rope

    def _attention_tma(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> Any:
        """:func:`veriformer.fast.attention` with its looped tiles streamed through TMA descriptors."""
        with _config_override(fwd={"TMA": 1}, bwd={"TMA": 1}):
            return _attention(q, k, v, **kwargs)

    register_implementation(Implementation(
        name="triton_flash", op="softmax_attention", fn=_attention,
        features=frozenset({"causal", "gqa", "window", "sinks", "lse"}), grad=True,
        note="Triton FlashAttention-2 forward + backward (fp32 accumulation, block skipping for causal/window/"
             "sinks, in-kernel GQA, masked head-dim padding for any D <= 256); CPU interpreter without CUDA"))
    register_implementation(Implementation(
        name="triton_flash[tma]", op="softmax_attention", fn=_attention_tma,
        features=frozenset({"causal", "gqa", "window", "sinks"}), grad=True,
        note="the same kernels with the looped tiles (K/V forward and dQ, Q/dO in dK/dV) loaded through Hopper "
             "TMA descriptors (config_override TMA=1; pointer loads where a layout does not allow TMA); not the "
             "default until timed on a GPU"))
    for _layout, _rd in (("half", None), ("interleaved", None), ("half", 32)):
        _label = _layout if _rd is None else f"{_layout}, rotary_dim={_rd}"
        register_implementation(Implementation(
            name=f"triton_rope[{_label}]", op="rope",
            fn=functools.partial(_rope, layout=_layout, rotary_dim=_rd), grad=True,
            options={"layout": _layout, "rotary_dim": _rd},
            note="Triton RoPE: float64 angle in turns reduced before float32 cos/sin; backward = inverse "
                 "rotation; CPU interpreter without CUDA"))
