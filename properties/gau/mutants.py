"""Planted bugs in GAU / FLASH (oracle mutants)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "gau"


@mutant("gau.flash_inclusive_prefix", family=FAMILY, replaces="flash_attention_chunked",
        caught_by=["gau.flash_chunked_equals_direct"])
def inclusive_prefix(q_quad: Any, k_quad: Any, q_lin: Any, k_lin: Any, v: Any, *, chunk: int,
                     causal: bool = False, lin_normaliser: Any = None, **kw: Any) -> np.ndarray:
    """Causal FLASH whose linear state includes the current chunk (inclusive cumsum over chunks): the
    linear part of chunk g sees its own (and, within the chunk, future) keys."""
    out = ref.flash_attention_chunked(q_quad, k_quad, q_lin, k_lin, v, chunk=chunk, causal=causal,
                                      lin_normaliser=lin_normaliser, **kw)
    if not causal:
        return out
    ql, kl, va = (np.asarray(x, np.float64) for x in (q_lin, k_lin, v))
    n = ql.shape[1]
    N = ref.flash_default_normaliser(n, chunk, True) if lin_normaliser is None else np.asarray(lin_normaliser)
    for g, c0 in enumerate(range(0, n, chunk)):
        blk = slice(c0, min(c0 + chunk, n))
        own = np.swapaxes(kl[:, blk], -1, -2) @ va[:, blk]
        out[:, blk] += ql[:, blk] @ own / N[g]
    return out


@mutant("gau.relu2_scale_inside_square_once", family=FAMILY, replaces="relu2_attention",
        caught_by=["gau.relu2_scaling"])
def relu2_sqrt_s(q: Any, k: Any, v: Any, **kw: Any) -> np.ndarray:
    """relu^2 attention divided by sqrt(s) instead of s (the 1/sqrt(s) applied after squaring)."""
    s = np.shape(q)[-1]
    return ref.relu2_attention(q, k, v, **kw) * np.sqrt(s)
