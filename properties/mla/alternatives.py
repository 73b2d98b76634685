"""Known alternative conventions and planted-bug signatures of op ``mla_decode``, for the "likely cause" line of a
failed check (see ``properties/attention/alternatives.py`` for the mechanism)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.ops import Alternatives

__all__ = ["mla_alternatives"]


def mla_alternatives(case: Any, a: dict[str, np.ndarray], opts: dict[str, Any]) -> Alternatives:
    """Scale 1/sqrt(d_c + d_r) (FlashMLA's default: the cache width) instead of the one passed; values read from the
    last d_c channels of the cache; a causal mask aligned top-left instead of end-aligned."""
    q, kv, dv, sc = a["q"], a["kv"], case.d_c, case.scale
    out: Alternatives = []
    D = q.shape[-1]
    if abs(D**-0.5 - sc) > 1e-12 * sc:
        o, lse = ref.mla_decode(q, kv, head_dim_v=dv, scale=D**-0.5, return_lse=True)
        out.append((f"scale 1/sqrt(d_c + d_r) = {D**-0.5:.4g} (the cache width, FlashMLA's default) instead of the "
                    f"scale passed ({sc:.4g})", {"out": o, "lse": lse}))
    if case.d_r > 0:
        perm = np.concatenate([np.arange(D - dv, D), np.arange(D - dv)])
        o, lse = ref.mla_decode(q[..., perm], kv[..., perm], head_dim_v=dv, scale=sc, return_lse=True)
        out.append(("values read from the last head_dim_v channels of the cache instead of the first",
                    {"out": o, "lse": lse}))
    if case.T > 1 and case.T < case.S:
        k = np.swapaxes(kv, 1, 2)
        vis = np.tril(np.ones((case.T, case.S), dtype=bool))[None, None]
        o, lse = ref.softmax_attention(np.swapaxes(q, 1, 2), k, k[..., :dv], scale=sc, mask=vis, return_lse=True)
        out.append(("a causal mask aligned top-left (query t sees keys 0..t) instead of end-aligned",
                    {"out": np.swapaxes(o, 1, 2), "lse": lse}))
    return out
