"""The ``entmax`` package (deep-spin/entmax: ``entmax.sparsemax``, ``entmax.entmax15``) as rows of ops
``sparsemax`` and ``entmax15``, registered only when the package is installed (``pip install entmax``); absent,
the rows are simply not there and ``tests/softmax_alternatives`` skips its entmax test with the reason.

Both functions take ``(X, dim=-1, k=None)`` and return the map along ``dim`` in X's dtype, with a custom backward
(``J^T g = s g - s (s.g)/sum s``, s the support indicator or sqrt(p)); the adapter passes ``dim=-1`` and changes
nothing else.  The package is imported lazily, at the first call.
Source: Peters, Niculae & Martins 2019 (arXiv:1905.05702); github.com/deep-spin/entmax ``entmax/activations.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from veriformer.implementations import Implementation, register_implementation
from veriformer.properties.third_party import found

__all__ = ["HAVE_ENTMAX", "along_last_axis", "entmax_kernel"]

HAVE_ENTMAX = found("entmax")


def along_last_axis(kernel: Callable[..., Any], z: torch.Tensor) -> torch.Tensor:
    """Op ``sparsemax`` / ``entmax15`` (``fn(z) -> p`` along the last axis) through the entmax signature
    ``kernel(X, dim=-1)``: the identity mapping."""
    return kernel(z, dim=-1)


def entmax_kernel(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``entmax.<name>`` adapted to the op convention, imported at the first call."""

    def fn(z: torch.Tensor) -> torch.Tensor:
        return along_last_axis(getattr(importlib.import_module("entmax"), name), z)

    fn.__name__ = fn.__qualname__ = f"entmax_{name}"
    return fn


if HAVE_ENTMAX:
    for _op in ("sparsemax", "entmax15"):
        register_implementation(Implementation(
            f"entmax.{_op}", _op, entmax_kernel(_op), grad=True,
            note="deep-spin/entmax (custom backward; threshold by sorting, max subtracted)"))
