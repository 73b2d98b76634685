"""Planted bugs in softmax / attention: oracle mutants (each must make a law fail) and kernel mutants
(torch callables that ``check(op="softmax_attention")`` must reject)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.attention import naive
from veriformer.properties.attention.strategies import AttentionCase
from veriformer.properties.wrong_answers import DTYPES, LONG, wrong_answer_mutants
from veriformer.registry import mutant

# -- oracle mutants (replace one oracle while a law runs) -------------------------------------------


@mutant("softmax.no_max_subtraction", family="softmax", replaces="softmax",
        caught_by=["softmax.shift_invariance", "softmax.simplex"])
def softmax_no_max(x: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """softmax as exp(x) / sum exp(x): overflows for logits above ~709."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.asarray(x, dtype=np.float64))
        return e / e.sum(axis=axis, keepdims=True)


@mutant("softmax.normalised_by_max", family="softmax", replaces="softmax", caught_by=["softmax.simplex",
                                                                                       "softmax.logsumexp_bounds"])
def softmax_by_max(x: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """exp(x - max) not divided by its sum (normalised by the max entry instead)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isfinite(x), np.exp(x - np.where(np.isfinite(m), m, 0.0)), 0.0)


@mutant("softmax.logsumexp_no_max", family="softmax", replaces="logsumexp",
        caught_by=["softmax.logsumexp_bounds"])
def logsumexp_no_max(x: Any, axis: int = -1, **kw: Any) -> np.ndarray:
    """log(sum(exp(x))) without the max shift: inf for large logits, -inf for very negative ones."""
    with np.errstate(over="ignore", divide="ignore"):
        return np.log(np.sum(np.exp(np.asarray(x, dtype=np.float64)), axis=axis))


def _with_visibility(vis: np.ndarray, mask: Any) -> np.ndarray:
    """Combine a [T, S] visibility with an optional bool/additive mask into one mask argument."""
    if mask is None:
        return vis[None, None]
    m = np.asarray(mask)
    return vis & m if m.dtype == bool else np.where(vis, m, -np.inf)


@mutant("attention.online_forgets_rescale", family="attention", replaces="online_softmax_attention",
        caught_by=["attention.online_equals_direct"])
def online_no_rescale(q: Any, k: Any, v: Any, *, block_size: int, return_lse: bool = False,
                      **kw: Any) -> Any:
    """Online softmax that rescales the running sum l but not the running output acc when the max
    grows (acc' = acc + exp(s_B - m') V_B)."""
    s = ref.attention_logits(q, k, **kw)
    v = np.repeat(np.asarray(v, np.float64), np.shape(q)[1] // np.shape(k)[1], axis=1)
    m = np.full((*s.shape[:-1], 1), -np.inf)
    l, acc = np.zeros_like(m), np.zeros((*s.shape[:-1], v.shape[-1]))
    for start in range(0, s.shape[-1], block_size):
        sb = s[..., start:start + block_size]
        m_new = np.maximum(m, sb.max(-1, keepdims=True))
        ref_m = np.where(np.isfinite(m_new), m_new, 0.0)
        p = np.exp(sb - ref_m)
        l = np.exp(m - ref_m) * l + p.sum(-1, keepdims=True)
        acc = acc + p @ v[:, :, start:start + block_size]
        m = m_new
    with np.errstate(invalid="ignore", divide="ignore"):
        o = np.where(l > 0, acc / np.where(l > 0, l, 1.0), 0.0)
        lse = np.where(l > 0, m + np.log(np.where(l > 0, l, 1.0)), -np.inf)[..., 0]
    return (o, lse) if return_lse else o


@mutant("attention.rnn_drops_oldest_key", family="attention", replaces="attention_as_rnn",
        caught_by=["attention.rnn_equals_direct"])
def rnn_drops_oldest(q: Any, k: Any, v: Any, *, causal: bool = False, window: int | None = None,
                     sinks: int = 0, mask: Any = None, **kw: Any) -> np.ndarray:
    """The newest-first scan stops one step early (range(S - 1, 0, -1)): key 0 is never added."""
    vis = ref.visibility_mask(np.shape(q)[2], np.shape(k)[2], causal=causal, window=window, sinks=sinks)
    vis[:, 0] = False
    return ref.attention_as_rnn(q, k, v, mask=_with_visibility(vis, mask), **kw)


@mutant("attention.causal_sees_next_key", family="attention", replaces="softmax_attention",
        caught_by=["attention.causal_prefix", "attention.window_sinks_as_mask"])
def causal_off_by_one(q: Any, k: Any, v: Any, *, causal: bool = False, **kw: Any) -> Any:
    """Causal mask j <= i + 1 instead of j <= i (the diagonal offset is off by one)."""
    if not causal:
        return ref.softmax_attention(q, k, v, **kw)
    T, S = np.shape(q)[2], np.shape(k)[2]
    vis = np.arange(S)[None, :] <= np.arange(T)[:, None] + (S - T) + 1
    return ref.softmax_attention(q, k, v, mask=_with_visibility(vis, kw.pop("mask", None)), **kw)


@mutant("attention.gqa_tiles_heads", family="attention", replaces="softmax_attention",
        caught_by=["attention.gqa_equals_repeated_mha"])
def gqa_tile(q: Any, k: Any, v: Any, **kw: Any) -> Any:
    """Query head h reads kv head h % Hkv (torch.repeat / np.tile) instead of h // (H / Hkv)."""
    g = np.shape(q)[1] // np.shape(k)[1]
    return ref.softmax_attention(q, np.tile(k, (1, g, 1, 1)), np.tile(v, (1, g, 1, 1)), **kw)


@mutant("attention.ignores_last_key", family="attention", replaces="softmax_attention",
        caught_by=["attention.key_permutation_equivariance"])
def ignores_last_key(q: Any, k: Any, v: Any, **kw: Any) -> Any:
    """The key loop runs to S - 1 (the last key is never read)."""
    S = np.shape(k)[2]
    if S < 2:
        return ref.softmax_attention(q, k, v, **kw)
    m = kw.pop("mask", None)
    if m is not None:
        m = np.asarray(m)[..., : S - 1]
    return ref.softmax_attention(q, np.asarray(k)[:, :, : S - 1], np.asarray(v)[:, :, : S - 1], mask=m, **kw)


@mutant("attention.merge_without_weights", family="attention", replaces="merge_attention_states",
        caught_by=["attention.split_kv_merge"])
def merge_unweighted(o1: Any, lse1: Any, o2: Any, lse2: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split-KV merge that averages the partial outputs instead of weighting them by exp(lse_i - lse)."""
    return (np.asarray(o1) + np.asarray(o2)) / 2, np.logaddexp(lse1, lse2)


@mutant("attention.window_one_too_wide", family="attention", replaces="softmax_attention",
        caught_by=["attention.window_sinks_as_mask"])
def window_too_wide(q: Any, k: Any, v: Any, *, window: int | None = None, **kw: Any) -> Any:
    """Sliding window w lets a query see w + 1 keys (p - j <= w instead of p - j < w)."""
    return ref.softmax_attention(q, k, v, window=None if window is None else window + 1, **kw)


@mutant("attention.masked_rows_average_values", family="attention", replaces="softmax_attention",
        caught_by=["attention.fully_masked_rows"])
def masked_rows_uniform(q: Any, k: Any, v: Any, *, mask: Any = None, return_lse: bool = False,
                        **kw: Any) -> Any:
    """Masking with a large finite negative (-1e30) instead of -inf: an empty row averages all values."""
    if mask is not None:
        m = np.asarray(mask)
        mask = np.where(m, 0.0, -1e30) if m.dtype == bool else np.where(np.isfinite(m), m, -1e30)
    return ref.softmax_attention(q, k, v, mask=mask, return_lse=return_lse, **kw)


@mutant("attention.float32_rounding", family="attention", replaces="softmax_attention",
        caught_by=["attention.mpmath_certificate"])
def float32_rounding(q: Any, k: Any, v: Any, *, return_lse: bool = False, backend: Any = ref.F64,
                     **kw: Any) -> Any:
    """An oracle that rounds to float32 on the way (here: its result): what the certificate exists for."""
    out = ref.softmax_attention(q, k, v, return_lse=return_lse, backend=backend, **kw)
    if not backend.is_float64:
        return out
    def r(a: Any) -> np.ndarray:
        return np.asarray(a, np.float32).astype(np.float64)

    return (r(out[0]), r(out[1])) if return_lse else r(out)


@mutant("attention.vjp_dk_unscaled", family="attention", replaces="softmax_attention_vjp",
        caught_by=["attention.vjp_directional_derivative"])
def vjp_dk_unscaled(q: Any, k: Any, v: Any, grad_o: Any, **kw: Any) -> tuple[np.ndarray, ...]:
    """Backward that forgets the softmax scale in dK (dK = dS^T Q instead of scale dS^T Q)."""
    dq, dk, dv = ref.softmax_attention_vjp(q, k, v, grad_o, **kw)
    scale = kw.get("scale") or np.shape(q)[-1] ** -0.5
    return dq, dk / scale, dv


# -- kernel mutants (torch callables under check(op="softmax_attention")) ---------------------------


def _mask_kw(mask: Any) -> dict[str, Any]:
    return {} if mask is None else {"mask": mask}


@mutant("attention.kernel_causal_off_by_one", family="attention", op="softmax_attention",
        features={"causal"}, caught_by=["op:softmax_attention"])
def kernel_causal_off_by_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                             scale: float) -> torch.Tensor:
    """Causal kernel whose diagonal is shifted: query i also sees key i + 1."""
    if not causal:
        return naive.softmax_attention(q, k, v, scale=scale)
    T, S = q.shape[2], k.shape[2]
    vis = torch.arange(S)[None, :] <= torch.arange(T)[:, None] + (S - T) + 1
    return naive.softmax_attention(q, k, v, scale=scale, mask=vis[None, None])


@mutant("attention.kernel_scale_1_over_d", family="attention", op="softmax_attention",
        caught_by=["op:softmax_attention"])
def kernel_scale_1_over_d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                          scale: float) -> torch.Tensor:
    """Ignores the scale argument and uses 1/D instead of 1/sqrt(D)."""
    return naive.softmax_attention(q, k, v, causal=causal, scale=1.0 / q.shape[-1])


@mutant("attention.kernel_no_max_subtraction", family="attention", op="softmax_attention",
        caught_by=["op:softmax_attention"])
def kernel_no_max(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                  scale: float) -> torch.Tensor:
    """exp(s) / sum exp(s) in the input dtype: overflows to inf/NaN for large logits."""
    s = (q @ k.transpose(-1, -2)) * scale
    e = s.exp()
    return (e / e.sum(-1, keepdim=True)).to(v.dtype) @ v


@mutant("attention.kernel_gqa_tiles_heads", family="attention", op="softmax_attention",
        features={"gqa"}, caught_by=["op:softmax_attention"])
def kernel_gqa_tile(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                    scale: float) -> torch.Tensor:
    """GQA with k.repeat (tiling: head h reads h % Hkv) instead of repeat_interleave."""
    g = q.shape[1] // k.shape[1]
    return naive.softmax_attention(q, k.repeat(1, g, 1, 1), v.repeat(1, g, 1, 1), causal=causal, scale=scale)


@mutant("attention.kernel_leaves_masked_rows_unwritten", family="attention", op="softmax_attention",
        features={"mask"}, caught_by=["op:softmax_attention"])
def kernel_unwritten_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
                          mask: torch.Tensor | None = None) -> torch.Tensor:
    """Allocates the output with torch.empty and skips rows with no visible key (they stay garbage)."""
    o = naive.softmax_attention(q, k, v, causal=causal, scale=scale, **_mask_kw(mask))
    out = torch.empty(o.shape, dtype=o.dtype, device=o.device)
    if mask is None:
        return o
    live = (mask if mask.dtype == torch.bool else mask != float("-inf")).any(-1)
    live = live.expand(o.shape[:3])
    out[live] = o[live]
    return out


@mutant("attention.sdpa_is_causal_top_left", family="attention", op="softmax_attention",
        features={"causal"}, caught_by=["op:softmax_attention"])
def sdpa_top_left(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                  scale: float) -> torch.Tensor:
    """torch SDPA with is_causal=True, whose mask is aligned top-left (query i sees keys j <= i) —
    not the end-aligned (decode) convention when S > T.  A real convention mismatch, not a torch bug."""
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


# -- wrong answers at LLM lengths (veriformer.properties.wrong_answers) and realistic kernel bugs there --------

_LONG = [AttentionCase(B=1, H=2, Hkv=1, T=4, S=n, D=16, Dv=16, causal=True, seed=n) for n in LONG]
wrong_answer_mutants("softmax_attention", family="attention", seq_axis=-2, cases=_LONG)


@mutant("softmax_attention.split_kv_keeps_half_the_cache", family="attention", op="softmax_attention",
        caught_by=["op:softmax_attention"], features={"causal"}, dtypes=DTYPES, cases=_LONG)
def split_kv_half_cache(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                        scale: float) -> torch.Tensor:
    """A split-KV decode that merges only the second split: the first half of the KV cache is dropped."""
    S = k.shape[2]
    return naive.softmax_attention(q, k[:, :, S // 2:], v[:, :, S // 2:], causal=causal, scale=scale)


@mutant("softmax_attention.pv_accumulated_in_input_dtype", family="attention", op="softmax_attention",
        caught_by=["op:softmax_attention"], features={"causal"}, dtypes=("float16", "bfloat16"), cases=_LONG)
def pv_low_precision_accumulator(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                                 scale: float) -> torch.Tensor:
    """P @ V accumulated key by key in the input dtype (a half-precision accumulator), softmax exact."""
    S = k.shape[2]
    s = (q.double() @ k.double().transpose(-1, -2)) * scale
    if causal:
        i = torch.arange(q.shape[2])[:, None] + (S - q.shape[2])
        s = s.masked_fill(torch.arange(S)[None, :] > i, float("-inf"))
    p = torch.softmax(s, dim=-1).to(q.dtype)
    acc = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    vv = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    for j in range(S):
        acc = acc + p[..., j:j + 1] * vv[:, :, j:j + 1]
    return acc
