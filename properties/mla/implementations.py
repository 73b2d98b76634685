"""Implementations of op ``mla_decode`` that the report and the catalogue check: the naive torch baseline, the float64
oracle rounded once and our Triton split-KV kernel ``triton_mla_decode`` (registered only when Triton is importable;
in the CPU interpreter without CUDA), plus the same kernel forced to several splits (the merge path)."""

from __future__ import annotations

import functools
from typing import Any

import torch

from veriformer import reference as ref
from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.mla import naive
from veriformer.implementations import Implementation, register_implementation

__all__ = ["oracle_mla_decode"]


def oracle_mla_decode(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float,
                      causal: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 oracle wrapped as a torch kernel (o rounded once to q's dtype, lse in float32 for half inputs)."""
    o, lse = ref.mla_decode(q, kv_cache, head_dim_v=head_dim_v, scale=scale, causal=causal, return_lse=True)
    wide = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    return (torch.from_numpy(o).to(device=q.device, dtype=q.dtype),
            torch.from_numpy(lse).to(device=q.device, dtype=wide))


_impls: list[Any] = [
    Implementation("naive_torch", "mla_decode", functools.partial(naive.mla_decode, return_lse=True), grad=True,
                   note="the baseline itself (ratio 1 by construction)"),
    Implementation("oracle_in_torch", "mla_decode", oracle_mla_decode, note="float64 oracle rounded once"),
]
if HAVE_TRITON:
    from veriformer.fast.mla.decode import mla_decode as _triton_mla_decode

    _impls += [
        Implementation("triton_mla_decode", "mla_decode", _triton_mla_decode, triton=True,
                       note="Triton split-KV decode over the shared latent (latent tile read once as key and value), "
                            "log-sum-exp merge; forward only; CPU interpreter without CUDA"),
        Implementation("triton_mla_decode[3 splits, 16x16]", "mla_decode",
                       functools.partial(_triton_mla_decode, num_splits=3, block_sizes=(16, 16)), triton=True,
                       note="the same kernel forced to 3 KV splits and 16x16 tiles: the merge and empty splits"),
    ]
for _impl in _impls:
    register_implementation(_impl)
