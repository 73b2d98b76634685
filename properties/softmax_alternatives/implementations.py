"""Implementations of ops ``sparsemax`` and ``entmax15`` that the report and the catalogue check: the naive torch map
computed in float32 and rounded once (with gradients), and the float64 oracle rounded once."""

from __future__ import annotations

from collections.abc import Callable

import torch

from veriformer import reference as ref
from veriformer.fast.softmax_alternatives import naive
from veriformer.implementations import Implementation, register_implementation

__all__ = ["in_float32", "oracle_in_torch"]


def in_float32(kernel: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``kernel`` run on z upcast to float32 (float64 stays float64), the result cast back to z's dtype."""

    def fn(z: torch.Tensor) -> torch.Tensor:
        work = torch.float64 if z.dtype == torch.float64 else torch.float32
        return kernel(z.to(work)).to(z.dtype)

    fn.__name__ = fn.__qualname__ = f"{kernel.__name__}_in_float32"
    return fn


def oracle_in_torch(oracle: Callable[..., object]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The float64 oracle wrapped as a torch kernel (no gradient)."""

    def fn(z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(oracle(z.detach().cpu())).to(device=z.device, dtype=z.dtype)  # type: ignore[arg-type]

    fn.__name__ = fn.__qualname__ = f"oracle_{getattr(oracle, '__name__', 'map')}"
    return fn


for _op, _kernel, _oracle in (("sparsemax", naive.sparsemax, ref.sparsemax), ("entmax15", naive.entmax15,
                                                                              ref.entmax15)):
    register_implementation(Implementation(f"torch_float32[{_op}]", _op, in_float32(_kernel), grad=True,
                                           note="naive map computed in float32, rounded once"))
    register_implementation(Implementation(f"oracle_in_torch[{_op}]", _op, oracle_in_torch(_oracle),
                                           note="float64 oracle rounded once"))
