"""Planted bugs of MLA: oracle mutants (a law must fail) and kernel mutants (check(op="mla_decode") must fail)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.mla import naive
from veriformer.properties.mla.strategies import MlaDecodeCase
from veriformer.properties.wrong_answers import QUADRATIC, wrong_answer_mutants
from veriformer.reference import mla as impl
from veriformer.registry import mutant

# -- oracle mutants ---------------------------------------------------------------------------------


@mutant("mla.kv_rope_key_per_head", family="mla", replaces="kv_cache_elements", caught_by=["mla.kv_cache_elements"])
def kv_rope_key_per_head(scheme: str, **kw: Any) -> float:
    """MLA counted with one RoPE key per head (d_c + h d_r), as if the decoupled key were not shared."""
    if scheme == "mla":
        return float(kw["d_c"] + (kw.get("heads") or 1) * kw["d_r"])
    return impl.kv_cache_elements(scheme, **kw)


@mutant("mla.train_scale_uses_cache_width", family="mla", replaces="mla_train",
        caught_by=["mla.train_equals_absorbed", "mla.absorbed_bf16_precision"])
def train_scale_cache_width(c: Any, q_nope: Any, q_rope: Any, k_rope: Any, w_uk: Any, w_uv: Any, *,
                            scale: float | None = None, **kw: Any) -> np.ndarray:
    """Softmax scale 1/sqrt(d_c + d_r) (the absorbed cache width) instead of 1/sqrt(d_nope + d_r)."""
    d = np.shape(c)[-1] + np.shape(q_rope)[-1]
    return impl.mla_train(c, q_nope, q_rope, k_rope, w_uk, w_uv, scale=d**-0.5, **kw)


@mutant("mla.absorbed_rope_on_latent", family="mla", replaces="mla_absorbed",
        caught_by=["mla.train_equals_absorbed"])
def absorbed_rope_on_latent(c: Any, q_nope: Any, q_rope: Any, k_rope: Any, w_uk: Any, w_uv: Any, *,
                            base: float = 10000.0, layout: str = "half", offset: int = 0, **kw: Any) -> np.ndarray:
    """The absorbed form caches R_i c (RoPE applied to the latent keys) while the training form does not."""
    c = np.asarray(c, np.float64)
    if c.shape[-1] % 2 == 0:
        c = ref.rope(c, np.arange(c.shape[1]) + offset, base=base, layout=layout)
    return impl.mla_absorbed(c, q_nope, q_rope, k_rope, w_uk, w_uv, base=base, layout=layout, offset=offset, **kw)


@mutant("mla.rejected_designs_fall_back", family="mla", replaces="mla_train",
        caught_by=["mla.rope_on_latent_breaks_absorption"])
def rejected_designs_fall_back(c: Any, q_nope: Any, q_rope: Any, k_rope: Any, w_uk: Any, w_uv: Any, *,
                               nope_rope: str = "none", **kw: Any) -> np.ndarray:
    """nope_rope="head" / "latent" silently compute the decoupled design (the RoPE of the rejected designs is
    dropped): the negative law's differences vanish."""
    return impl.mla_train(c, q_nope, q_rope, k_rope, w_uk, w_uv, **kw)


@mutant("mla.decode_values_from_tail", family="mla", replaces="mla_decode", caught_by=["mla.train_equals_absorbed"])
def decode_values_from_tail(q: Any, kv_cache: Any, *, head_dim_v: int, **kw: Any) -> Any:
    """Values taken as the last head_dim_v channels of the cache (the RoPE key end) instead of the first."""
    kv = np.asarray(kv_cache, np.float64)
    D = kv.shape[-1]
    perm = np.concatenate([np.arange(D - head_dim_v, D), np.arange(D - head_dim_v)])
    qp = np.asarray(q, np.float64)[..., perm]
    return impl.mla_decode(qp, kv[..., perm], head_dim_v=head_dim_v, **kw)


@mutant("mla.decode_causal_start_aligned", family="mla", replaces="mla_decode",
        caught_by=["mla.train_equals_absorbed"])
def decode_start_aligned(q: Any, kv_cache: Any, *, head_dim_v: int, scale: float, causal: bool = True,
                         return_lse: bool = False, **kw: Any) -> Any:
    """Causal mask aligned at the start (query t sees keys j <= t) instead of the end (j <= t + S - T)."""
    qa, ka = np.asarray(q, np.float64), np.asarray(kv_cache, np.float64)
    T, S = qa.shape[1], ka.shape[1]
    k = np.swapaxes(ka, 1, 2)
    vis = (np.arange(S)[None, :] <= np.arange(T)[:, None]) if causal else np.ones((T, S), bool)
    o, lse = ref.softmax_attention(np.swapaxes(qa, 1, 2), k, k[..., :head_dim_v], scale=scale,
                                   mask=vis[None, None], return_lse=True)
    o = np.swapaxes(o, 1, 2)
    return (o, lse) if return_lse else o


@mutant("mla.merge_without_max", family="mla", replaces="merge_attention_states",
        caught_by=["mla.decode_split_kv_merge"])
def merge_without_max(o1: Any, lse1: Any, o2: Any, lse2: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split-KV merge with raw exp(lse_i) weights (no max subtracted): overflows once lse > 709."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        w1, w2 = np.exp(np.asarray(lse1))[..., None], np.exp(np.asarray(lse2))[..., None]
        den = w1 + w2
        o = (w1 * np.asarray(o1) + w2 * np.asarray(o2)) / den
        return o, np.log(den[..., 0])


# -- kernel mutants (torch callables under check(op="mla_decode")) ------------------------------------------


@mutant("mla_decode.kernel_scale_from_width", family="mla", op="mla_decode", caught_by=["op:mla_decode"])
def kernel_scale_from_width(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float,
                            causal: bool = True) -> Any:
    """Ignores the given scale and uses 1/sqrt(D) = 1/sqrt(d_c + d_r) (FlashMLA's default when none is passed)."""
    return naive.mla_decode(q, kv_cache, head_dim_v=head_dim_v, scale=q.shape[-1] ** -0.5, causal=causal,
                            return_lse=True)


@mutant("mla_decode.kernel_merge_without_max", family="mla", op="mla_decode", caught_by=["op:mla_decode"])
def kernel_merge_without_max(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float,
                             causal: bool = True) -> Any:
    """Two KV splits merged with exp(lse_i) / sum exp(lse_j) in the input dtype, no max subtracted: overflows (inf /
    inf) at the large logits of half precision, and an empty split's NaN leaks into the output."""
    S, T = kv_cache.shape[1], q.shape[1]
    half = max(1, S // 2)
    parts = []
    for lo, hi in ((0, half), (half, S)):
        if hi <= lo:
            continue
        vis = torch.from_numpy(np.arange(lo, hi)[None, :] <= (np.arange(T) + S - T)[:, None])
        k = kv_cache[:, lo:hi, 0]
        s = torch.einsum("bthd,bsd->bhts", q, k) * scale
        s = s.masked_fill(~vis, float("-inf"))
        lse = torch.logsumexp(s, dim=-1)
        p = torch.exp(s - lse[..., None])
        parts.append((torch.einsum("bhts,bsv->bthv", p.to(q.dtype), k[..., :head_dim_v]), lse))
    w = [torch.exp(lse.to(q.dtype)).transpose(1, 2)[..., None] for _, lse in parts]
    den = sum(w)
    o = sum(wi * oi for wi, (oi, _) in zip(w, parts, strict=True)) / den
    return o.to(q.dtype), torch.log(den[..., 0].transpose(1, 2).float())


@mutant("mla_decode.kernel_values_from_tail", family="mla", op="mla_decode", caught_by=["op:mla_decode"])
def kernel_values_from_tail(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float,
                            causal: bool = True) -> Any:
    """Values read from the last head_dim_v channels of the cache."""
    _, lse = naive.mla_decode(q, kv_cache, head_dim_v=head_dim_v, scale=scale, causal=causal, return_lse=True)
    D = kv_cache.shape[-1]
    s = torch.einsum("bthd,bsd->bhts", q, kv_cache[:, :, 0]) * scale
    T, S = q.shape[1], kv_cache.shape[1]
    vis = torch.from_numpy(np.arange(S)[None, :] <= (np.arange(T) + S - T)[:, None])
    p = torch.softmax(s.masked_fill(~vis, float("-inf")), -1).nan_to_num(0.0)
    return torch.einsum("bhts,bsv->bthv", p.to(q.dtype), kv_cache[:, :, 0, D - head_dim_v:]), lse


@mutant("mla_decode.kernel_causal_start_aligned", family="mla", op="mla_decode", caught_by=["op:mla_decode"])
def kernel_start_aligned(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float,
                         causal: bool = True) -> Any:
    """Causal mask aligned at the start (query t sees keys j <= t): decoding with a cache sees one key."""
    T, S = q.shape[1], kv_cache.shape[1]
    vis = torch.from_numpy(np.arange(S)[None, :] <= np.arange(T)[:, None])
    k = kv_cache[:, :, 0]
    s = (torch.einsum("bthd,bsd->bhts", q, k) * scale).masked_fill(~vis, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return torch.einsum("bhts,bsv->bthv", p.to(q.dtype), k[..., :head_dim_v]), torch.logsumexp(s, -1)


# -- wrong answers at LLM lengths (veriformer.properties.wrong_answers) --------------------------------------
# T = S = n: the main output's sequence axis is T (axis 1 of o [B, T, H, dv]); the float64 oracle is quadratic

wrong_answer_mutants("mla_decode", family="mla", seq_axis=1,
                     cases=[MlaDecodeCase(B=1, T=n, H=1, S=n, d_c=16, d_r=8, d_nope=16, seed=n) for n in QUADRATIC])
