"""Moving cases between NumPy float64 and torch, and the execution guards of a check:
NaN-poisoned allocations (unwritten output elements show up as NaN) and TF32 off."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["nan_poisoned_allocations", "no_tf32", "round_to", "to_numpy", "to_torch", "torch_dtype"]

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
           "float64": torch.float64}


def torch_dtype(name: str) -> torch.dtype:
    """torch dtype for a name in ('float16', 'bfloat16', 'float32', 'float64')."""
    try:
        return _DTYPES[str(name).replace("torch.", "")]
    except KeyError:
        raise ValueError(f"argument 'dtype' must be one of {sorted(_DTYPES)}; got {name!r}") from None


def to_torch(a: np.ndarray, dtype: str, device: str) -> torch.Tensor:
    """float arrays -> tensor of ``dtype`` (round to nearest); bool/int arrays keep their type."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if a.dtype.kind == "f":
        t = t.to(torch_dtype(dtype))
    return t.to(device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Exact float64 copy of a tensor (any float dtype, any device)."""
    return t.detach().to("cpu", torch.float64).numpy()


def round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` rounded to ``dtype`` and back to float64 (the exact values the candidate receives)."""
    if a.dtype.kind != "f":
        return a
    return to_numpy(torch.from_numpy(np.ascontiguousarray(a)).to(torch_dtype(dtype)))


@contextlib.contextmanager
def nan_poisoned_allocations() -> Iterator[None]:
    """Within the block, float tensors from ``torch.empty``, ``empty_like``, ``empty_strided`` and
    ``Tensor.new_empty`` are filled with NaN, so a kernel that leaves output elements unwritten fails."""
    originals = (torch.empty, torch.empty_like, torch.empty_strided, torch.Tensor.new_empty)

    def poisoned(f: Any) -> Any:
        def alloc(*args: Any, **kwargs: Any) -> torch.Tensor:
            t = f(*args, **kwargs)
            if t.is_floating_point() or t.is_complex():
                with torch.no_grad():
                    t.fill_(float("nan"))
            return t

        return alloc

    torch.empty, torch.empty_like, torch.empty_strided = (poisoned(f) for f in originals[:3])
    torch.Tensor.new_empty = poisoned(originals[3])
    try:
        yield
    finally:
        torch.empty, torch.empty_like, torch.empty_strided = originals[:3]
        torch.Tensor.new_empty = originals[3]


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """TF32 off for matmul and cuDNN (and float32 matmul precision 'highest') inside the block."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])
