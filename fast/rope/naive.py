"""Naive torch baselines of RoPE: what a plain-torch user writes, computed in the input dtype (the usual one with
float32 angles, as Hugging Face transformers does, and the careful one with float64 angles).

The tolerance policy judges a candidate kernel by ``err(candidate) <= rho * err(naive) + floor``; these
functions define ``naive`` for op ``rope``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from veriformer.reference.positions import validate_scaling, yarn_ramp
from veriformer.reference.rope import rope_pairs

__all__ = ["inv_freq", "rope", "rope_careful"]


def inv_freq(r: int, base: float, scaling: Any, positions: torch.Tensor | None, dtype: torch.dtype,
             device: Any = None) -> torch.Tensor:
    """Inverse frequencies ``theta'_i`` [r/2] in ``dtype`` as a torch user writes them (HF transformers'
    ``1 / base ** (arange(0, r, 2) / r)``, then the scheme): linear ``/ k``; ntk base ``b k^(r/(r-2))``; ntk_base
    ``b k``; ntk_fixed ``* k^(-2(i+1)/r)``; mixed ``* exp(-a (i+1)^g)``, ``a = ln k / (r/2)^g`` (ntk_patch.py);
    dynamic (HF) base ``b (k s / L - (k - 1))^(r/(r-2))``, ``s = max(seq_len, L)``, seq_len = max position + 1;
    yarn: ``theta/k`` and ``theta`` blended by the ramp of :func:`veriformer.reference.positions.yarn_ramp`.
    Formulas: :mod:`veriformer.reference.positions`."""
    sc = validate_scaling(scaling, "rope", "scaling")
    t = None if sc is None else sc["type"]
    k = 1.0 if sc is None else float(sc["factor"])
    b = float(base)
    if t == "ntk":
        b = b * k ** (r / (r - 2)) if r > 2 else b * k
    elif t == "ntk_base":
        b = b * k
    elif t == "dynamic":
        L = int(sc["original_max_position"])
        if "seq_len" in sc:
            s = int(sc["seq_len"])
        else:
            s = int(positions.max()) + 1 if positions is not None and positions.numel() else L
        s = max(s, L)
        b = b * (k * s / L - (k - 1)) ** (r / (r - 2)) if r > 2 else b
    i = torch.arange(0, r, 2, dtype=dtype, device=device)
    inv = 1.0 / (b ** (i / r))
    if t == "linear":
        inv = inv / k
    elif t == "ntk_fixed":
        inv = inv * k ** (-(i + 2) / r)
    elif t == "mixed":
        g = float(sc["gamma"])
        inv = inv * torch.exp(-math.log(k) / (r // 2) ** g * (i / 2 + 1) ** g)
    elif t == "yarn":
        ramp = torch.from_numpy(yarn_ramp(r, b, sc)).to(device=device, dtype=dtype)
        inv = inv / k * ramp + inv * (1 - ramp)
    return inv


def _rope_in(x: torch.Tensor, positions: torch.Tensor, base: float, layout: str, rotary_dim: int | None,
             angle_dtype: torch.dtype, scaling: Any = None) -> torch.Tensor:
    """``x cos + rotate(x) sin`` in x's dtype with the angles ``n * theta'_i`` (:func:`inv_freq`) and their cos/sin
    formed in ``angle_dtype`` and cast once to x's dtype."""
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    inv_freq_ = inv_freq(r, base, scaling, positions, angle_dtype, x.device)
    angles = positions.to(device=x.device, dtype=angle_dtype)[:, None] * inv_freq_[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    ia, ib = (torch.from_numpy(i).to(x.device) for i in rope_pairs(r, layout))
    xa, xb = x[..., ia], x[..., ib]
    y = x.clone()
    y[..., ia] = xa * cos - xb * sin
    y[..., ib] = xa * sin + xb * cos
    return y


def rope(x: torch.Tensor, positions: torch.Tensor, *, base: float = 10000.0, layout: str = "half",
         rotary_dim: int | None = None, scaling: Any = None) -> torch.Tensor:
    """RoPE in the HF style: angles ``n * base^(-2i/r)`` and cos/sin in float32 (float64 for float64
    input), cast to x's dtype, then ``x cos + rotate(x) sin`` in x's dtype.  x [..., T, D], positions [T].
    ``scaling``: a frequency-scaling description (:func:`inv_freq`).
    Source: HF transformers LlamaRotaryEmbedding / GPT-J rotary; Su et al. 2021 (RoFormer), eq. 34.
    """
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    return _rope_in(x, positions, base, layout, rotary_dim, work, scaling)


def rope_careful(x: torch.Tensor, positions: torch.Tensor, *, base: float = 10000.0, layout: str = "half",
                 rotary_dim: int | None = None, scaling: Any = None) -> torch.Tensor:
    """RoPE as a careful plain-torch user writes it: angles ``n * base^(-2i/r)`` and their cos/sin in float64
    (so the angle at position 1e6 is exact to ~1e-10 rad), cast once to x's dtype, then ``x cos + rotate(x) sin``
    in x's dtype.  x [..., T, D], positions [T].  The baseline :func:`rope` forms the angles in float32 (as HF
    transformers does), which loses most bits at large positions; ``check()`` judges against the better of
    the two (tolerance row op.rope).  ``scaling`` as :func:`rope`.  Source: Su et al. 2021 (RoFormer), eq. 34."""
    return _rope_in(x, positions, base, layout, rotary_dim, torch.float64, scaling)
