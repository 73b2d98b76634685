"""Implementations of op ``mamba_chunk_scan`` (mamba's ``mamba_chunk_scan_combined`` convention) in the report
and the catalogue:

* ``triton_chunk_scan`` — our Triton SSD :func:`veriformer.fast.ssm.ssd.chunk_scan` (forward + backward),
  registered when Triton is importable; CPU interpreter without CUDA;
* ``naive_torch`` — the baseline :func:`veriformer.fast.ssm.naive_chunk_scan.mamba_chunk_scan` (torch
  autograd gradients);
* ``oracle_in_torch`` — the float64 oracle :func:`veriformer.properties.ssm.op_chunk_scan.mamba_chunk_scan64` rounded
  once to x's dtype (the best any kernel can do; forward only).

mamba's own kernel is the row ``mamba.mamba_chunk_scan_combined[native]`` of :mod:`veriformer.properties.third_party`.
Source: mamba ``mamba_ssm/ops/triton/ssd_combined.py``; Dao & Gu 2024.
"""

from __future__ import annotations

from typing import Any

import torch

from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.ssm import naive_chunk_scan as naive_mamba_chunk_scan
from veriformer.implementations import Implementation, register_implementation
from veriformer.properties.ssm.op_chunk_scan import mamba_chunk_scan64
from veriformer.properties.ssm.strategies_chunk_scan import MAMBA_CHUNK_FEATURES
from veriformer.torchio import to_numpy

__all__ = ["oracle_mamba_chunk_scan"]


def oracle_mamba_chunk_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                            chunk_size: int, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                            dt_bias: torch.Tensor | None = None, initial_states: torch.Tensor | None = None,
                            dt_softplus: bool = False, return_final_states: bool = False) -> Any:
    """float64 ``mamba_chunk_scan_combined`` (``y = (SSD(x dt', dt' A, B, C, h0) + D x) silu(z)``, layouts of op
    ``mamba_chunk_scan``), y and the final state rounded once to x's dtype.  ``chunk_size`` does not change
    the exact result.  Source: :func:`veriformer.properties.ssm.op_chunk_scan.mamba_chunk_scan64`."""

    def np_(t: torch.Tensor | None) -> Any:
        return None if t is None else to_numpy(t)

    y, H = mamba_chunk_scan64(np_(x), np_(dt), np_(A), np_(B), np_(C), np_(D), np_(z), np_(dt_bias),
                              np_(initial_states), dt_softplus)
    yt = torch.from_numpy(y).to(device=x.device, dtype=x.dtype)
    if return_final_states:
        return yt, torch.from_numpy(H).to(device=x.device, dtype=x.dtype)
    return yt


register_implementation(Implementation(
    "naive_torch", "mamba_chunk_scan", naive_mamba_chunk_scan.mamba_chunk_scan, MAMBA_CHUNK_FEATURES, grad=True,
    note="dt math in float32, mamba ssd_minimal_discrete on (x dt, dt A) in the input dtype (sequence zero-padded "
         "to a multiple of the chunk), (Y + D x) silu(z) in float32"))
register_implementation(Implementation(
    "oracle_in_torch", "mamba_chunk_scan", oracle_mamba_chunk_scan, MAMBA_CHUNK_FEATURES,
    note="float64 oracle (reference.ssd_recurrence on the processed inputs) rounded once"))

if HAVE_TRITON:
    from veriformer.fast.ssm.ssd import chunk_scan as _chunk_scan

    register_implementation(Implementation(
        "triton_chunk_scan", "mamba_chunk_scan", _chunk_scan, MAMBA_CHUNK_FEATURES, grad=True, triton=True,
        note="our Triton SSD in mamba's native convention, forward + backward (dt' in float32, in-chunk cumsum of "
             "dt' A in float64 so every decay exponent is rounded once; float32 states and state passing); final "
             "state float32; CPU interpreter without CUDA"))
