"""Naive torch baselines of RoPE: what a plain-torch user writes, computed in the input dtype (the usual one with
float32 angles, as Hugging Face transformers does, and the careful one with float64 angles).

The tolerance policy judges a candidate kernel by ``err(candidate) <= rho * err(naive) + floor``; these
functions define ``naive`` for op ``rope``.
"""

from __future__ import annotations

import torch

from veriformer.reference.rope import rope_pairs

__all__ = ["rope", "rope_careful"]


def _rope_in(x: torch.Tensor, positions: torch.Tensor, base: float, layout: str, rotary_dim: int | None,
             angle_dtype: torch.dtype) -> torch.Tensor:
    """``x cos + rotate(x) sin`` in x's dtype with the angles ``n * base^(-2i/r)`` and their cos/sin formed in
    ``angle_dtype`` and cast once to x's dtype."""
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    inv_freq = 1.0 / (base ** (torch.arange(0, r, 2, dtype=angle_dtype, device=x.device) / r))
    angles = positions.to(device=x.device, dtype=angle_dtype)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    ia, ib = (torch.from_numpy(i).to(x.device) for i in rope_pairs(r, layout))
    xa, xb = x[..., ia], x[..., ib]
    y = x.clone()
    y[..., ia] = xa * cos - xb * sin
    y[..., ib] = xa * sin + xb * cos
    return y


def rope(x: torch.Tensor, positions: torch.Tensor, *, base: float = 10000.0, layout: str = "half",
         rotary_dim: int | None = None) -> torch.Tensor:
    """RoPE in the HF style: angles ``n * base^(-2i/r)`` and cos/sin in float32 (float64 for float64
    input), cast to x's dtype, then ``x cos + rotate(x) sin`` in x's dtype.  x [..., T, D], positions [T].
    Source: HF transformers LlamaRotaryEmbedding / GPT-J rotary; Su et al. 2021 (RoFormer), eq. 34.
    """
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    return _rope_in(x, positions, base, layout, rotary_dim, work)


def rope_careful(x: torch.Tensor, positions: torch.Tensor, *, base: float = 10000.0, layout: str = "half",
                 rotary_dim: int | None = None) -> torch.Tensor:
    """RoPE as a careful plain-torch user writes it: angles ``n * base^(-2i/r)`` and their cos/sin in float64
    (so the angle at position 1e6 is exact to ~1e-10 rad), cast once to x's dtype, then ``x cos + rotate(x) sin``
    in x's dtype.  x [..., T, D], positions [T].  The baseline :func:`rope` forms the angles in float32 (as HF
    transformers does), which loses most bits at large positions; ``check()`` judges against the better of
    the two (tolerance row op.rope).  Source: Su et al. 2021 (RoFormer), eq. 34."""
    return _rope_in(x, positions, base, layout, rotary_dim, torch.float64)
