"""Naive torch baselines of MLA decode: what a plain-torch user writes, in the input dtype.

The tolerance policy judges a candidate kernel by ``err(candidate) <= rho * err(naive) + floor``; these functions
define ``naive`` for op ``mla_decode`` (and the benchmark's SDPA comparison on the materialised per-head K/V).
"""

from __future__ import annotations

import torch

from veriformer.reference.attention import visibility_mask

__all__ = ["materialise_kv", "mla_decode"]


def mla_decode(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float, causal: bool = True,
               return_lse: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """MLA decode over the shared latent in the input dtype (FlashMLA convention).

    q [B, T, H, D], kv_cache [B, S, 1, D] -> o [B, T, H, head_dim_v] (values = the first ``head_dim_v`` channels of
    the cache) and, with ``return_lse``, ``torch.logsumexp`` of the logits [B, H, T] (-inf for a query with no
    visible key, whose output is 0).  ``o = softmax(scale q k^T) v`` with ``torch.softmax``; causal end-aligned
    (key j visible to query t iff ``j <= t + S - T``).  Source: deepseek-ai/FlashMLA tests (the torch reference
    ``scaled_dot_product_attention`` with ``tril(diagonal=s_k - s_q)``); DeepSeek-V2 section 2.1.2.
    """
    T, S = q.shape[1], kv_cache.shape[1]
    k = kv_cache[:, :, 0]  # [B, S, D]
    s = torch.einsum("bthd,bsd->bhts", q, k) * scale
    vis = torch.from_numpy(visibility_mask(T, S, causal=causal)).to(q.device)
    s = s.masked_fill(~vis, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.where(vis.any(dim=-1, keepdim=True), p, torch.zeros((), dtype=p.dtype, device=p.device))
    o = torch.einsum("bhts,bsv->bthv", p.to(q.dtype), k[..., :head_dim_v])
    return (o, torch.logsumexp(s, dim=-1)) if return_lse else o


def materialise_kv(c: torch.Tensor, k_rope: torch.Tensor, w_uk: torch.Tensor,
                   w_uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The training form's per-head K/V from the latent: ``k_h = [c W_uk_h, k_rope]`` [B, H, S, d_nope + d_r] (the
    rotated RoPE key shared by all heads) and ``v_h = c W_uv_h`` [B, H, S, d_v], for SDPA.  c [B, S, d_c], k_rope
    [B, S, d_r] (already rotated), w_uk [H, d_c, d_nope], w_uv [H, d_c, d_v].  Source: DeepSeek-V2 eq. (10)-(17)."""
    k_nope = torch.einsum("bsc,hcn->bhsn", c, w_uk)
    kr = k_rope[:, None].expand(-1, w_uk.shape[0], -1, -1)
    return torch.cat([k_nope, kr], dim=-1), torch.einsum("bsc,hcv->bhsv", c, w_uv)
