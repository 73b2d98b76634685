"""Implementations that ``veriformer report`` checks: ours, the naive baselines and third parties'.

Each entry names an op, a callable in that op's convention, the features it supports, and whether its
gradients are checked.  Third-party kernels are added here behind an import guard.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import reference as ref
from .fast import naive
from .torchio import to_numpy

__all__ = ["IMPLEMENTATIONS", "Implementation", "oracle_attention", "oracle_rope", "register_implementation",
           "torch_sdpa", "torch_sdpa_math"]


@dataclass(frozen=True)
class Implementation:
    name: str
    op: str
    fn: Callable[..., Any]
    features: frozenset[str] = frozenset()
    grad: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def oracle_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
                     window: int | None = None, sinks: int = 0, mask: torch.Tensor | None = None,
                     return_lse: bool = False) -> Any:
    """The float64 oracle wrapped as a torch kernel (result rounded once to q's dtype; lse in float32 for half
    inputs, as flash-attention returns it)."""
    m = None if mask is None else (mask.cpu().numpy() if mask.dtype == torch.bool else to_numpy(mask))
    o, lse = ref.softmax_attention(q, k, v, scale=scale, causal=causal, window=window, sinks=sinks, mask=m,
                                   return_lse=True)
    o_t = torch.from_numpy(o).to(device=q.device, dtype=q.dtype)
    if not return_lse:
        return o_t
    wide = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    return o_t, torch.from_numpy(lse).to(device=q.device, dtype=wide)


def oracle_rope(x: torch.Tensor, positions: torch.Tensor, *, base: float, layout: str = "half",
                rotary_dim: int | None = None) -> torch.Tensor:
    """The float64 RoPE oracle wrapped as a torch kernel."""
    y = ref.rope(x, positions.cpu().numpy(), base=base, layout=layout, rotary_dim=rotary_dim)
    return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)


def torch_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.scaled_dot_product_attention`` adapted to the end-aligned causal convention
    (``causal_lower_right`` when S != T) with native GQA (``enable_gqa``) and boolean/additive masks."""
    T, S = q.shape[2], k.shape[2]
    attn_mask: Any = mask
    if causal:
        vis = torch.from_numpy(ref.visibility_mask(T, S, causal=True)).to(q.device)
        if mask is None:
            attn_mask = vis
        elif mask.dtype == torch.bool:
            attn_mask = vis & mask
        else:
            attn_mask = mask.masked_fill(~vis, float("-inf"))
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, scale=scale, enable_gqa=k.shape[1] != q.shape[1])


def torch_sdpa_math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`torch_sdpa` restricted to SDPA's MATH backend (the reference composite of matmul, softmax, matmul),
    so the report checks both of torch's CPU backends (the default picks its fused CPU flash kernel)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return torch_sdpa(q, k, v, causal=causal, scale=scale, mask=mask)


_ALL = frozenset({"causal", "gqa", "window", "sinks", "mask", "lse"})

IMPLEMENTATIONS: list[Implementation] = [
    Implementation("naive_torch", "softmax_attention", naive.softmax_attention, _ALL, grad=True,
                   note="the baseline itself (ratio 1 by construction)"),
    Implementation("oracle_in_torch", "softmax_attention", oracle_attention, _ALL,
                   note="float64 oracle rounded once: the best any kernel can do"),
    Implementation("torch_sdpa", "softmax_attention", torch_sdpa, frozenset({"causal", "gqa", "mask"}),
                   grad=True, note="torch.nn.functional.scaled_dot_product_attention, lower-right causal"),
    Implementation("torch_sdpa[math]", "softmax_attention", torch_sdpa_math, frozenset({"causal", "gqa", "mask"}),
                   grad=True, note="the same through SDPBackend.MATH"),
]
for _layout in ("half", "interleaved"):
    IMPLEMENTATIONS += [
        Implementation(f"careful_torch[{_layout}]", "rope", functools.partial(naive.rope_careful, layout=_layout),
                       grad=True, options={"layout": _layout},
                       note="float64 angles cast once (the HF-style float32-angle baseline is mutant "
                            "rope.kernel_float32_angles: it fails at large positions)"),
        Implementation(f"oracle_in_torch[{_layout}]", "rope", functools.partial(oracle_rope, layout=_layout),
                       options={"layout": _layout}, note="float64 oracle rounded once"),
    ]
IMPLEMENTATIONS.append(Implementation(
    "careful_torch[half, rotary_dim=32]", "rope", functools.partial(naive.rope_careful, layout="half", rotary_dim=32),
    grad=True, options={"layout": "half", "rotary_dim": 32}, note="partial rotary"))



def register_implementation(impl: Implementation) -> Implementation:
    """Add an implementation to the report and the catalogue tests (families call this from
    ``veriformer/impl_<family>.py``)."""
    if any(i.name == impl.name and i.op == impl.op for i in IMPLEMENTATIONS):
        raise ValueError(f"implementation {impl.name!r} of op {impl.op!r} registered twice")
    IMPLEMENTATIONS.append(impl)
    return impl


import os  # noqa: E402

from .discovery import import_family_modules  # noqa: E402

import_family_modules(__package__, [os.path.dirname(__file__)], lambda n: n.startswith("impl_"))
