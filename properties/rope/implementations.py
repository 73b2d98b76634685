"""Implementations of op ``rope`` that the report and the catalogue check: the careful torch baseline (float64
angles), the float64 oracle rounded once and our Triton ``triton_rope[...]`` (one entry per layout plus partial
rotary; registered only when Triton is importable, in the CPU interpreter without CUDA)."""

from __future__ import annotations

import functools

import torch

from veriformer import reference as ref
from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.rope import naive
from veriformer.implementations import Implementation, register_implementation

__all__ = ["oracle_rope"]


def oracle_rope(x: torch.Tensor, positions: torch.Tensor, *, base: float, layout: str = "half",
                rotary_dim: int | None = None) -> torch.Tensor:
    """The float64 RoPE oracle wrapped as a torch kernel."""
    y = ref.rope(x, positions.cpu().numpy(), base=base, layout=layout, rotary_dim=rotary_dim)
    return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)


for _layout in ("half", "interleaved"):
    for _impl in [
        Implementation(f"careful_torch[{_layout}]", "rope", functools.partial(naive.rope_careful, layout=_layout),
                       grad=True, options={"layout": _layout},
                       note="float64 angles cast once (the HF-style float32-angle baseline is mutant "
                            "rope.kernel_float32_angles: it fails at large positions)"),
        Implementation(f"oracle_in_torch[{_layout}]", "rope", functools.partial(oracle_rope, layout=_layout),
                       options={"layout": _layout}, note="float64 oracle rounded once"),
    ]:
        register_implementation(_impl)
register_implementation(Implementation(
    "careful_torch[half, rotary_dim=32]", "rope", functools.partial(naive.rope_careful, layout="half", rotary_dim=32),
    grad=True, options={"layout": "half", "rotary_dim": 32}, note="partial rotary"))


if HAVE_TRITON:
    from veriformer.fast.rope.fused import rope as _rope

    for _layout, _rd in (("half", None), ("interleaved", None), ("half", 32)):
        _label = _layout if _rd is None else f"{_layout}, rotary_dim={_rd}"
        register_implementation(Implementation(
            name=f"triton_rope[{_label}]", op="rope", triton=True,
            fn=functools.partial(_rope, layout=_layout, rotary_dim=_rd), grad=True,
            options={"layout": _layout, "rotary_dim": _rd},
            note="Triton RoPE: float64 angle in turns reduced before float32 cos/sin; backward = inverse "
                 "rotation; CPU interpreter without CUDA"))
