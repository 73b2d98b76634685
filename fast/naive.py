"""Naive torch baselines: what a careful plain-torch user writes, computed in the input dtype.

The tolerance policy judges a candidate kernel by ``err(candidate) <= rho * err(naive) + floor``; these
functions define ``naive``.  They follow the op calling conventions of ``veriformer.check``.
"""

from __future__ import annotations

import torch

from veriformer.reference.attention import visibility_mask
from veriformer.reference.rope import rope_pairs

__all__ = ["rope", "rope_careful", "softmax_attention"]


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                      scale: float | None = None, window: int | None = None, sinks: int = 0,
                      mask: torch.Tensor | None = None,
                      return_lse: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention in the input dtype: q [B, H, T, D], k/v [B, Hkv, S, D] -> o [B, H, T, Dv].

    ``softmax(scale * q k^T + mask) v`` with ``torch.softmax`` (which subtracts the row max); kv heads
    repeated with ``repeat_interleave`` (GQA); rows with no visible key give 0.  ``return_lse=True`` also
    returns ``torch.logsumexp`` of the masked logits [B, H, T] in the input dtype (-inf for empty rows).
    Visibility (causal end-aligned, window, sinks) as :func:`veriformer.reference.visibility_mask`.
    Source: Vaswani et al. 2017; the plain PyTorch formula.
    """
    H, T, D = q.shape[1], q.shape[2], q.shape[3]
    S, group = k.shape[2], q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scale = D**-0.5 if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    visible = torch.from_numpy(visibility_mask(T, S, causal=causal, window=window, sinks=sinks))
    visible = visible.to(q.device).expand(q.shape[0], H, T, S)
    if mask is not None:
        if mask.dtype == torch.bool:
            visible = visible & mask
        else:
            s = s + mask.to(s.dtype)
            visible = visible & (mask != float("-inf"))
    s = s.masked_fill(~visible, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.where(visible.any(dim=-1, keepdim=True), p, torch.zeros((), dtype=p.dtype, device=p.device))
    o = p.to(v.dtype) @ v
    return (o, torch.logsumexp(s, dim=-1)) if return_lse else o


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
