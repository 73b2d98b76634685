"""Naive torch baseline of op ``mamba_chunk_scan`` (what a careful plain-torch user writes).

:func:`mamba_chunk_scan` — mamba's ``mamba_chunk_scan_combined`` semantics: the dt math (bias, softplus,
``a = dt A``, ``x dt``) in float32 (float64 for float64 inputs), then mamba's ``ssd_minimal_discrete`` on
``(x dt, a)`` rounded to the input dtype (:func:`veriformer.fast.ssm.naive.ssd_minimal`, as op ``ssd_scan``'s
baseline; the sequence zero-padded to a multiple of the chunk size: zero inputs with zero log-decay change
neither the outputs kept nor the final state), then ``(Y + D x) silu(z)`` in float32, rounded once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from veriformer.fast.ssm.naive import ssd_minimal
from veriformer.reference._validate import require

__all__ = ["mamba_chunk_scan"]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _tensor(func: str, name: str, t: object, shape: tuple[int, ...], desc: str) -> None:
    require(isinstance(t, torch.Tensor), func, name, f"a torch.Tensor of shape {desc}", type(t).__name__)
    assert isinstance(t, torch.Tensor)
    require(tuple(t.shape) == shape, func, name, f"of shape {desc} = {shape}", f"shape {tuple(t.shape)}")
    require(t.dtype in _FLOATS, func, name, "a floating tensor (float16, bfloat16, float32, float64)",
            f"dtype {t.dtype}")


def mamba_chunk_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                     chunk_size: int, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                     dt_bias: torch.Tensor | None = None, initial_states: torch.Tensor | None = None,
                     dt_softplus: bool = False,
                     return_final_states: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``dt' = softplus(dt + dt_bias)`` (or ``dt + dt_bias``; each optional), ``a_t = dt'_t A_h``,
    ``H_t = e^{a_t} H_{t-1} + (dt'_t x_t) B_t^T`` (H_{-1} = initial_states or 0), ``y_t = (H_t C_t + D x_t)
    silu(z_t)``.

    x [b, l, h, p], dt [b, l, h], A [h], B/C [b, l, g, n] (g divides h; head i reads group i // (h // g)),
    D [h] or [h, p], z [b, l, h, p], dt_bias [h], initial_states [b, h, p, n] -> y [b, l, h, p] in x's dtype,
    and with ``return_final_states`` the final state H_{l-1} [b, h, p, n] in x's dtype.  Precision: module
    docstring.  Differentiable (torch autograd).  Source: mamba ``ssd_combined.py::mamba_chunk_scan_combined``
    (semantics), ``modules/ssd_minimal.py`` (the SSD); Dao & Gu 2024.
    """
    func = "naive mamba_chunk_scan"
    require(isinstance(x, torch.Tensor) and x.dim() == 4, func, "x", "a rank-4 tensor [b, l, h, p]",
            f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}")
    b, l, h, p = x.shape
    _tensor(func, "x", x, (b, l, h, p), "[b, l, h, p]")
    require(isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size >= 1, func,
            "chunk_size", "an int >= 1", repr(chunk_size))
    _tensor(func, "dt", dt, (b, l, h), "[b, l, h]")
    _tensor(func, "A", A, (h,), "[h]")
    require(isinstance(B, torch.Tensor) and B.dim() == 4 and B.shape[2] >= 1 and h % B.shape[2] == 0, func, "B",
            f"a rank-4 tensor [b, l, g, n] with g dividing h = {h}",
            f"{type(B).__name__} of shape {tuple(getattr(B, 'shape', ()))}")
    g, n = B.shape[2], B.shape[3]
    _tensor(func, "B", B, (b, l, g, n), "[b, l, g, n]")
    _tensor(func, "C", C, (b, l, g, n), "B's shape [b, l, g, n]")
    if D is not None:
        require(isinstance(D, torch.Tensor) and tuple(D.shape) in ((h,), (h, p)), func, "D",
                f"None or a tensor of shape [h] = ({h},) or [h, p] = ({h}, {p})",
                f"shape {tuple(getattr(D, 'shape', ()))}")
        _tensor(func, "D", D, tuple(D.shape), "[h] or [h, p]")
    if z is not None:
        _tensor(func, "z", z, (b, l, h, p), "x's shape [b, l, h, p]")
    if dt_bias is not None:
        _tensor(func, "dt_bias", dt_bias, (h,), "[h]")
    if initial_states is not None:
        _tensor(func, "initial_states", initial_states, (b, h, p, n), "[b, h, p, n]")
    require(isinstance(dt_softplus, bool), func, "dt_softplus", "a bool", repr(dt_softplus))
    require(isinstance(return_final_states, bool), func, "return_final_states", "a bool", repr(return_final_states))

    w = torch.float64 if x.dtype == torch.float64 else torch.float32
    d = dt.to(w)
    if dt_bias is not None:
        d = d + dt_bias.to(w)
    if dt_softplus:
        d = F.softplus(d)
    X = (x.to(w) * d[..., None]).to(x.dtype)
    a = (d * A.to(w)).to(x.dtype)
    Bh = B.repeat_interleave(h // g, dim=2).to(x.dtype)
    Ch = C.repeat_interleave(h // g, dim=2).to(x.dtype)
    pad = -l % chunk_size
    if pad:
        X, Bh, Ch = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (X, Bh, Ch))
        a = F.pad(a, (0, 0, 0, pad))
    h0 = None if initial_states is None else initial_states.to(x.dtype)
    Y, final = ssd_minimal(X, a, Bh, Ch, chunk_size, h0)
    y = Y[:, :l].to(w)
    if D is not None:
        y = y + x.to(w) * (D.to(w)[:, None] if D.dim() == 1 else D.to(w))
    if z is not None:
        y = y * F.silu(z.to(w))
    y = y.to(x.dtype)
    return (y, final) if return_final_states else y
