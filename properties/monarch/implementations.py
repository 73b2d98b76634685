"""Implementations of op ``monarch_matmul`` that the report and the catalogue check: the naive torch bmm baseline,
the float64 oracle rounded once, and our Triton ``triton_monarch`` (registered only when Triton is importable; in
the CPU interpreter without CUDA)."""

from __future__ import annotations

import torch

from veriformer import reference as ref
from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.monarch import naive
from veriformer.implementations import Implementation, register_implementation

__all__ = ["oracle_monarch"]


def oracle_monarch(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The float64 Monarch oracle wrapped as a torch kernel (no gradient)."""
    y = ref.monarch_matmul(x, w1, w2)
    return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)


register_implementation(Implementation("torch_bmm", "monarch_matmul", naive.monarch_matmul, grad=True,
                                       note="two bmm and the permutations in the input dtype (fly's forward)"))
register_implementation(Implementation("oracle_in_torch", "monarch_matmul", oracle_monarch,
                                       note="float64 oracle rounded once"))

if HAVE_TRITON:
    from veriformer.fast.monarch.kernel import monarch_matmul as _triton_monarch

    register_implementation(Implementation(
        name="triton_monarch", op="monarch_matmul", fn=_triton_monarch, grad=True, triton=True,
        note="Triton: both block products and the shuffles fused per token tile, float32 accumulation, the middle "
             "vector kept in float32; backward = two fused kernels (dx, and dw1/dw2 reductions over tokens)"))
