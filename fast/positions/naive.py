"""Naive torch baselines of ReRoPE and Leaky ReRoPE, written as ``bojone/rerope`` does (HF-style float32 angle
tables, arithmetic in the input dtype, softmax upcast to float32).

Layout: q [B, H, T, D], k and v [B, Hkv, S, D] (GQA when Hkv divides H: kv heads repeated, as ``repeat_kv`` in the
repository); queries end-aligned at positions S-T..S-1, keys at 0..S-1; causal.
``leak = math.inf`` is ReRoPE, a finite k >= 1 Leaky ReRoPE, k < 1 inverse Leaky ReRoPE.  Oracles:
:func:`veriformer.reference.rerope_scores` (direct per-pair) and :func:`veriformer.reference.rerope_scores_two_pass`.
"""

from __future__ import annotations

import math

import torch

from veriformer.fast.rope import naive as rope_naive
from veriformer.reference._validate import require

__all__ = ["rerope_attention", "rerope_decode_scores", "rerope_scores"]


def _check(func: str, q: torch.Tensor, k: torch.Tensor, window: float, leak: float) -> None:
    require(q.dim() == 4 and k.dim() == 4 and q.shape[0] == k.shape[0] and q.shape[1] % k.shape[1] == 0
            and q.shape[-1] == k.shape[-1], func, "k", f"[B, Hkv dividing H, S, D] matching q {tuple(q.shape)}",
            f"shape {tuple(k.shape)}")
    require(window >= 0, func, "window", "a number >= 0", repr(window))
    require(leak > 0, func, "leak", "a number > 0 (math.inf: ReRoPE)", repr(leak))


def _repeat(q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """kv heads repeated to q's head count (the repository's ``repeat_kv``)."""
    return t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) if t.shape[1] != q.shape[1] else t


def rerope_scores(q: torch.Tensor, k: torch.Tensor, window: float, *, leak: float = math.inf,
                  base: float = 10000.0, layout: str = "half") -> torch.Tensor:
    """Two-pass (Leaky) ReRoPE scores [B, H, T, S] (unscaled, ``-inf`` above the causal diagonal): pass 1
    ``(R_i q_i)^T (R_j k_j)``; pass 2 ReRoPE ``(R_w q_i)^T k_j``, Leaky ``(R_{(i-w)/k+w} q_i)^T (R_{j/k} k_j)``;
    merged where ``|i - j| < w``.  Source: ``bojone/rerope`` rerope_patch.py / leaky_rerope_patch.py."""
    _check("rerope_scores", q, k, window, leak)
    k = _repeat(q, k)
    T, S = q.shape[-2], k.shape[-2]
    iq = torch.arange(S - T, S, device=q.device)
    jk = torch.arange(S, device=q.device)
    kw = {"base": base, "layout": layout}
    a1 = rope_naive.rope(q, iq, **kw) @ rope_naive.rope(k, jk, **kw).transpose(-1, -2)
    if math.isfinite(leak):
        a2 = rope_naive.rope(q, (iq.double() - window) / leak + window, **kw) @ \
            rope_naive.rope(k, jk.double() / leak, **kw).transpose(-1, -2)
    else:
        a2 = rope_naive.rope(q, torch.full((T,), float(window), dtype=torch.float64, device=q.device), **kw) @ \
            k.transpose(-1, -2)
    d = iq[:, None] - jk[None, :]
    a = torch.where(d.abs() < window, a1, a2)
    return a.masked_fill(d < 0, float("-inf"))


def rerope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: float, *, leak: float = math.inf,
                     base: float = 10000.0, layout: str = "half", scale: float | None = None) -> torch.Tensor:
    """Causal (Leaky) ReRoPE attention ``softmax(scale * a) V`` [B, H, T, Dv] with the two-pass scores; the
    softmax in float32 as the repository does.  Source: ``bojone/rerope``."""
    a = rerope_scores(q, k, window, leak=leak, base=base, layout=layout)
    a = a * (1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
    p = torch.softmax(a.float(), dim=-1).to(v.dtype)
    return p @ _repeat(q, v)


def rerope_decode_scores(q: torch.Tensor, k_cache: torch.Tensor, window: float, *, leak: float = math.inf,
                         base: float = 10000.0, layout: str = "half") -> torch.Tensor:
    """Decode step [B, H, 1, S]: the query (position S-1) unrotated, every cached key re-rotated by ``-P``
    (ReRoPE ``min(r, w)``; Leaky ``w + (r - w)/k`` beyond the window).  Source: ``bojone/rerope``."""
    _check("rerope_decode_scores", q, k_cache, window, leak)
    k_cache = _repeat(q, k_cache)
    S = k_cache.shape[-2]
    r = (S - 1 - torch.arange(S, device=q.device)).double()
    far = torch.full_like(r, float(window)) if not math.isfinite(leak) else window + (r - window) / leak
    P = torch.where(r < window, r, far)
    return q @ rope_naive.rope(k_cache, -P, base=base, layout=layout).transpose(-1, -2)
