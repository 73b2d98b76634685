"""Planted bugs in ``mamba_chunk_scan_combined``-style kernels: torch callables that ``check(op=
"mamba_chunk_scan")`` must reject.  Each is the naive baseline's arithmetic (float32 dt math, mamba's
``ssd_minimal_discrete`` in the input dtype) with one convention broken."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from veriformer.fast.ssm.naive import ssd_minimal
from veriformer.registry import mutant

FAMILY = "ssm"
_ALL = ("D", "z", "dt_bias", "dt_softplus", "initial_states", "return_final_states", "grouped")


def _scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
          D: torch.Tensor | None = None, z: torch.Tensor | None = None, dt_bias: torch.Tensor | None = None,
          initial_states: torch.Tensor | None = None, dt_softplus: bool = False, return_final_states: bool = False,
          *, bug: str = "") -> Any:
    """``(SSD(x dt', dt' A, B, C, h0) + D x) silu(z)`` with the planted ``bug`` (see the mutants)."""
    l, h, g = x.shape[1], x.shape[2], B.shape[2]
    w = torch.float32 if x.dtype != torch.float64 else torch.float64
    d = dt.to(w)
    bias = None if dt_bias is None else dt_bias.to(w)
    if bias is not None and bug != "softplus_before_bias":
        d = d + bias
    if dt_softplus:
        d = F.softplus(d)
    if bias is not None and bug == "softplus_before_bias":
        d = d + bias
    X = (x.to(w) if bug == "dt_not_on_x" else x.to(w) * d[..., None]).to(x.dtype)
    a = (d * A.to(w)).to(x.dtype)
    heads = torch.arange(h, device=x.device)
    group = heads % g if bug == "groups_modulo" else heads // (h // g)
    Bh, Ch = B[:, :, group], C[:, :, group]
    pad = -l % chunk_size
    if pad:
        X, Bh, Ch = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (X, Bh, Ch))
        a = F.pad(a, (0, 0, 0, pad))
    Y, final = ssd_minimal(X, a, Bh, Ch, chunk_size, initial_states)
    y = Y[:, :l].to(w)
    skip = None if D is None else x.to(w) * (D.to(w)[:, None] if D.dim() == 1 else D.to(w))
    if skip is not None and bug != "skip_after_gate":
        y = y + skip
    if z is not None:
        y = y * F.silu(z.to(w))
    if skip is not None and bug == "skip_after_gate":
        y = y + skip
    y = y.to(x.dtype)
    return (y, final) if return_final_states else y


@mutant("ssm.mamba_chunk_scan_dt_not_on_x", family=FAMILY, op="mamba_chunk_scan", caught_by=["op:mamba_chunk_scan"],
        features=_ALL)
def dt_not_on_x(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                chunk_size: int, **kw: Any) -> Any:
    """dt scales only the decay, not the input (h_t = e^{dt A} h_{t-1} + x_t B_t^T: ssd_minimal's convention)."""
    return _scan(x, dt, A, B, C, chunk_size, **kw, bug="dt_not_on_x")


@mutant("ssm.mamba_chunk_scan_softplus_before_bias", family=FAMILY, op="mamba_chunk_scan",
        caught_by=["op:mamba_chunk_scan"], features=_ALL)
def softplus_before_bias(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                         chunk_size: int, **kw: Any) -> Any:
    """dt' = softplus(dt) + dt_bias instead of softplus(dt + dt_bias)."""
    return _scan(x, dt, A, B, C, chunk_size, **kw, bug="softplus_before_bias")


@mutant("ssm.mamba_chunk_scan_skip_after_gate", family=FAMILY, op="mamba_chunk_scan", caught_by=["op:mamba_chunk_scan"],
        features=_ALL)
def skip_after_gate(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    chunk_size: int, **kw: Any) -> Any:
    """y = Y silu(z) + D x (the D skip added after the z gate instead of before)."""
    return _scan(x, dt, A, B, C, chunk_size, **kw, bug="skip_after_gate")


@mutant("ssm.mamba_chunk_scan_groups_modulo", family=FAMILY, op="mamba_chunk_scan", caught_by=["op:mamba_chunk_scan"],
        features=_ALL)
def groups_modulo(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                  chunk_size: int, **kw: Any) -> Any:
    """Head i reads B/C group i % g instead of i // (h / g) (interleaved instead of contiguous groups)."""
    return _scan(x, dt, A, B, C, chunk_size, **kw, bug="groups_modulo")
