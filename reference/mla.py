"""Multi-head latent attention (MLA, DeepSeek-V2 section 2.1) oracles: KV-cache sizes of MHA/MQA/GQA/MLA, the
training form, the absorbed decode form and the FlashMLA-convention decode op.

Shapes (row vectors):

* latent cache ``c [B, S, d_c]`` (``c_i = x_i W_DKV``) and the shared RoPE key input ``k_rope [B, S, d_r]``
  (``x_i W_KR``, before RoPE);
* per-head query parts ``q_nope [B, H, T, d_nope]`` (``c'_t W_UQ``) and ``q_rope [B, H, T, d_r]``
  (``c'_t W_QR``, before RoPE);
* up-projections ``w_uk [H, d_c, d_nope]`` (keys) and ``w_uv [H, d_c, d_v]`` (values); optional output projection
  ``w_o [H, d_v, d_model]`` (the rows of W_O that head h's output multiplies).

Training form: ``k_h = [c W_uk_h, R_i k_rope]`` (the RoPE part shared by all heads), ``q_h = [q_nope_h,
R_t q_rope_h]``, ``v_h = c W_uv_h``; ``o_h = softmax(scale q_h k_h^T) v_h`` with ``scale = 1/sqrt(d_nope + d_r)``.
Absorbed decode form (MQA over the latent): ``q^_h = [q_nope_h W_uk_h^T, R_t q_rope_h]``, ``k^ = [c, R_i k_rope]``
(one kv head of width d_c + d_r), values ``c``; ``o_h = (softmax(scale q^_h k^^T) c) W_uv_h``, and with W_O:
``sum_h o^_h (W_uv_h W_o_h)``.  Both are equal in exact arithmetic because ``q_nope (c W_uk)^T = (q_nope W_uk^T)
c^T``; the scale stays ``1/sqrt(d_nope + d_r)`` (not ``1/sqrt(d_c + d_r)``).

Positions: keys ``offset + 0..S-1``, queries end-aligned ``offset + S-T..S-1``; causal: key j visible to query t
iff ``j <= t + S - T``.

Sources: DeepSeek-AI 2024, "DeepSeek-V2" (arXiv 2405.04434), section 2.1 and eq. (9)-(19); Su
kexue.fm/archives/10091; deepseek-ai/FlashMLA (``flash_mla_with_kvcache`` layouts).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.attention import softmax_attention
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.rope import rope

__all__ = ["KV_SCHEMES", "MLA_NOPE_ROPE", "kv_cache_elements", "mla_absorbed", "mla_decode", "mla_train"]

KV_SCHEMES = ("mha", "mqa", "gqa", "mla")
MLA_NOPE_ROPE = ("none", "head", "latent")


def _pos_int(func: str, name: str, v: Any) -> int:
    require(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1, func, name, "an int >= 1", repr(v))
    return int(v)


def kv_cache_elements(scheme: str, *, heads: int | None = None, d_k: int | None = None, d_v: int | None = None,
                      groups: float | None = None, d_c: int | None = None, d_r: int | None = None) -> float:
    """KV-cache elements per token and layer: MHA ``heads (d_k + d_v)``, MQA ``d_k + d_v``, GQA
    ``groups (d_k + d_v)``, MLA ``d_c + d_r`` (multiply by layers x bytes per element).

    ``groups`` may be fractional for the "GQA-equivalent" comparison (DeepSeek-V2: 576 elements = 2.25 groups of
    d_k + d_v = 256).  Source: DeepSeek-V2 (arXiv 2405.04434) Table 1; Su kexue.fm/archives/10091.
    """
    func = "kv_cache_elements"
    require(scheme in KV_SCHEMES, func, "scheme", f"one of {KV_SCHEMES}", repr(scheme))
    if scheme == "mla":
        return float(_pos_int(func, "d_c", d_c) + _pos_int(func, "d_r", d_r))
    width = _pos_int(func, "d_k", d_k) + _pos_int(func, "d_v", d_v)
    if scheme == "mha":
        return float(_pos_int(func, "heads", heads) * width)
    if scheme == "mqa":
        return float(width)
    require(isinstance(groups, int | float | np.integer | np.floating) and not isinstance(groups, bool)
            and groups > 0, func, "groups", "a number > 0", repr(groups))
    return float(groups) * width


class _Mla:
    """Validated MLA inputs (float64)."""

    def __init__(self, func: str, c: Any, q_nope: Any, q_rope: Any, k_rope: Any, w_uk: Any, w_uv: Any,
                 w_o: Any) -> None:
        self.c = as_float64(c, func, "c", ndim=3)
        self.q_nope = as_float64(q_nope, func, "q_nope", ndim=4)
        self.q_rope = as_float64(q_rope, func, "q_rope", ndim=4)
        self.k_rope = as_float64(k_rope, func, "k_rope", ndim=3)
        self.w_uk = as_float64(w_uk, func, "w_uk", ndim=3)
        self.w_uv = as_float64(w_uv, func, "w_uv", ndim=3)
        B, S, d_c = self.c.shape
        _, H, T, d_nope = self.q_nope.shape
        require(self.q_nope.shape[0] == B, func, "q_nope", f"of shape [B={B}, H, T, d_nope]", self.q_nope.shape)
        d_r = self.q_rope.shape[3]
        require(self.q_rope.shape[:3] == (B, H, T) and d_r % 2 == 0 and d_r >= 2, func, "q_rope",
                f"of shape [{B}, {H}, {T}, d_r even >= 2]", self.q_rope.shape)
        require(self.k_rope.shape == (B, S, d_r), func, "k_rope", f"of shape [B, S, d_r] = ({B}, {S}, {d_r})",
                self.k_rope.shape)
        require(self.w_uk.shape == (H, d_c, d_nope), func, "w_uk", f"of shape [H, d_c, d_nope] = ({H}, {d_c}, "
                f"{d_nope})", self.w_uk.shape)
        require(self.w_uv.shape[:2] == (H, d_c), func, "w_uv", f"of shape [H={H}, d_c={d_c}, d_v]", self.w_uv.shape)
        self.w_o = None
        if w_o is not None:
            self.w_o = as_float64(w_o, func, "w_o", ndim=3)
            require(self.w_o.shape[:2] == (H, self.w_uv.shape[2]), func, "w_o",
                    f"of shape [H={H}, d_v={self.w_uv.shape[2]}, d_model]", self.w_o.shape)
        for name in ("c", "q_nope", "q_rope", "k_rope", "w_uk", "w_uv"):
            require_finite(getattr(self, name), func, name)
        self.B, self.S, self.d_c, self.H, self.T, self.d_nope, self.d_r = B, S, d_c, H, T, d_nope, d_r

    def positions(self, offset: int) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(self.S) + offset, np.arange(self.T) + (self.S - self.T) + offset

    def scale(self, scale: float | None) -> float:
        return (self.d_nope + self.d_r) ** -0.5 if scale is None else float(scale)


def mla_train(c: Any, q_nope: Any, q_rope: Any, k_rope: Any, w_uk: Any, w_uv: Any, *, w_o: Any = None,
              scale: float | None = None, causal: bool = True, base: float = 10000.0, layout: str = "half",
              offset: int = 0, nope_rope: str = "none") -> np.ndarray:
    """MLA training (prefill) form: per-head keys/values up-projected from the latent, decoupled RoPE.

    ``k_h = [c W_uk_h, R_i k_rope]``, ``q_h = [q_nope_h, R_t q_rope_h]``, ``v_h = c W_uv_h``,
    ``o_h = softmax(scale q_h k_h^T) v_h`` (scale default ``1/sqrt(d_nope + d_r)``) -> o [B, H, T, d_v], or
    ``concat_h(o_h) W_O`` [B, T, d_model] when ``w_o`` [H, d_v, d_model] is given.  Shapes and positions: module
    docstring.  ``nope_rope`` selects a *rejected* design for the negative laws: ``"head"`` also rotates the
    up-projected per-head keys ``R_i (c W_uk_h)`` and ``q_nope`` (plain RoPE on the whole head: not absorbable);
    ``"latent"`` rotates the latent ``R_i c`` before both up-projections (absorbable, but positions enter
    absolutely).  Source: DeepSeek-V2 (arXiv 2405.04434) eq. (10)-(19); Su kexue.fm/archives/10091.
    """
    func = "mla_train"
    m = _Mla(func, c, q_nope, q_rope, k_rope, w_uk, w_uv, w_o)
    require(nope_rope in MLA_NOPE_ROPE, func, "nope_rope", f"one of {MLA_NOPE_ROPE}", repr(nope_rope))
    pk, pq = m.positions(offset)
    lat = m.c
    qn = m.q_nope
    if nope_rope == "latent":
        require(m.d_c % 2 == 0, func, "c", "of even d_c for RoPE on the latent", m.c.shape)
        lat = rope(m.c, pk, base=base, layout=layout)
    k_nope = np.einsum("bsc,hcn->bhsn", lat, m.w_uk)
    v = np.einsum("bsc,hcv->bhsv", lat, m.w_uv)
    if nope_rope == "head":
        require(m.d_nope % 2 == 0, func, "q_nope", "of even d_nope for RoPE on the head", m.q_nope.shape)
        k_nope = rope(k_nope, pk, base=base, layout=layout)
        qn = rope(qn, pq, base=base, layout=layout)
    kr = np.broadcast_to(rope(m.k_rope, pk, base=base, layout=layout)[:, None], (m.B, m.H, m.S, m.d_r))
    k = np.concatenate([k_nope, kr], axis=-1)
    q = np.concatenate([qn, rope(m.q_rope, pq, base=base, layout=layout)], axis=-1)
    o = softmax_attention(q, k, v, scale=m.scale(scale), causal=causal)
    if m.w_o is None:
        return o
    return np.einsum("bhtv,hvm->btm", o, m.w_o)


def mla_absorbed(c: Any, q_nope: Any, q_rope: Any, k_rope: Any, w_uk: Any, w_uv: Any, *, w_o: Any = None,
                 scale: float | None = None, causal: bool = True, base: float = 10000.0, layout: str = "half",
                 offset: int = 0) -> np.ndarray:
    """MLA absorbed decode form: W_uk absorbed into the query, W_uv (and W_O) into the output, attention over the
    shared latent.

    ``q^_h = [q_nope_h W_uk_h^T, R_t q_rope_h]`` [B, T, H, d_c + d_r], cache ``k^ = [c, R_i k_rope]``
    [B, S, 1, d_c + d_r], ``(o^, _) = mla_decode(q^, k^, head_dim_v=d_c, scale)``, then ``o_h = o^_h W_uv_h``
    [B, H, T, d_v], or ``sum_h o^_h (W_uv_h W_o_h)`` [B, T, d_model] with ``w_o``.  The scale is the training form's
    ``1/sqrt(d_nope + d_r)``.  Source: DeepSeek-V2 (arXiv 2405.04434) section 2.1.2 ("absorbed"); Su
    kexue.fm/archives/10091.
    """
    func = "mla_absorbed"
    m = _Mla(func, c, q_nope, q_rope, k_rope, w_uk, w_uv, w_o)
    pk, pq = m.positions(offset)
    q_lat = np.einsum("bhtn,hcn->bthc", m.q_nope, m.w_uk)
    q_r = np.swapaxes(rope(m.q_rope, pq, base=base, layout=layout), 1, 2)
    q_hat = np.concatenate([q_lat, q_r], axis=-1)
    kv = np.concatenate([m.c, rope(m.k_rope, pk, base=base, layout=layout)], axis=-1)[:, :, None]
    o_lat = mla_decode(q_hat, kv, head_dim_v=m.d_c, scale=m.scale(scale), causal=causal)  # [B, T, H, d_c]
    if m.w_o is None:
        return np.einsum("bthc,hcv->bhtv", o_lat, m.w_uv)
    return np.einsum("bthc,hcm->btm", o_lat, np.einsum("hcv,hvm->hcm", m.w_uv, m.w_o))


@oracle
def mla_decode(q: Any, kv_cache: Any, *, head_dim_v: int, scale: float, causal: bool = True,
               return_lse: bool = False, backend: Backend = F64) -> Any:
    """MLA decode attention in the FlashMLA convention (one shared latent kv head).

    q [B, T, H, D] with D = d_c + d_r (the absorbed query), kv_cache [B, S, 1, D] (the latent and the rotated RoPE
    key); values are the first ``head_dim_v`` channels of the cache.  ``o[b, t, h] = sum_j softmax_j(scale
    q[b, t, h] . kv[b, j]) kv[b, j, :head_dim_v]`` over the visible j (causal end-aligned: ``j <= t + S - T``).
    Returns o [B, T, H, head_dim_v] and, with ``return_lse``, lse [B, H, T] (natural log; a query with no visible
    key: o = 0, lse = -inf).  Source: deepseek-ai/FlashMLA ``flash_mla_with_kvcache`` (q [b, s_q, h_q, d], k_cache
    [.., h_kv = 1, d], out [b, s_q, h_q, dv], softmax_lse [b, h_q, s_q]); DeepSeek-V2 section 2.1.2.
    """
    func = "mla_decode"
    qa = as_float64(q, func, "q", ndim=4)
    ka = as_float64(kv_cache, func, "kv_cache", ndim=4)
    B, D = qa.shape[0], qa.shape[3]
    require(ka.shape[0] == B and ka.shape[2] == 1 and ka.shape[3] == D and ka.shape[1] >= 1, func, "kv_cache",
            f"of shape [B={B}, S >= 1, 1, D={D}]", ka.shape)
    require(isinstance(head_dim_v, int | np.integer) and 1 <= head_dim_v <= D, func, "head_dim_v",
            f"an int in [1, D={D}]", repr(head_dim_v))
    require(isinstance(scale, float | int | np.floating) and np.isfinite(scale), func, "scale", "a finite float",
            repr(scale))
    k = np.swapaxes(ka, 1, 2)  # [B, 1, S, D]
    o, lse = softmax_attention(np.swapaxes(qa, 1, 2), k, k[..., :head_dim_v], scale=float(scale), causal=causal,
                               return_lse=True, backend=backend)
    o = np.swapaxes(o, 1, 2)
    return (o, lse) if return_lse else o
