"""Planted bugs of StreamingLLM decoding and of the sink softmax: each law of properties/streaming/laws.py must
kill at least one."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.reference import streaming as impl
from veriformer.registry import mutant


def _decode(q: Any, k: Any, v: Any, *, sinks: int, recent: int, positions: str = "cache", base: float = 10000.0,
            layout: str = "half", scale: float | None = None, return_trace: bool = False, **bug: Any) -> Any:
    qa, ka, va = impl._inputs("streaming_decode", q, k, v)
    o, trace = impl._rolling(qa, ka, va, sinks=sinks, recent=recent, positions=positions, base=base, layout=layout,
                             scale=scale, **bug)
    return (o, trace) if return_trace else o


@mutant("streaming.sinks_evicted", family="streaming", replaces="streaming_decode",
        caught_by=["streaming.recompute_on_retained", "streaming.retained_ids",
                   "streaming.original_positions_equal_window_sinks"])
def sinks_evicted(q: Any, k: Any, v: Any, **kw: Any) -> Any:
    """A plain FIFO window of sinks + recent tokens: the sinks are evicted like any other token."""
    return _decode(q, k, v, keep_sinks=False, **kw)


@mutant("streaming.positions_not_reassigned", family="streaming", replaces="streaming_decode",
        caught_by=["streaming.recompute_on_retained", "streaming.reassigned_positions_differ"])
def positions_not_reassigned(q: Any, k: Any, v: Any, *, positions: str = "cache", **kw: Any) -> Any:
    """positions="cache" silently keeps the original stream positions (no re-assignment inside the cache)."""
    return _decode(q, k, v, positions="original", **kw)


@mutant("streaming.query_position_off_by_one", family="streaming", replaces="streaming_decode",
        caught_by=["streaming.recompute_on_retained", "streaming.no_eviction_is_full_causal"])
def query_off_by_one(q: Any, k: Any, v: Any, **kw: Any) -> Any:
    """The query is rotated to position |cache| (the slot the next token would take) instead of |cache| - 1."""
    return _decode(q, k, v, query_offset=1, **kw)


@mutant("streaming.keys_cached_after_rope", family="streaming", replaces="streaming_decode",
        caught_by=["streaming.recompute_on_retained"])
def keys_cached_after_rope(q: Any, k: Any, v: Any, **kw: Any) -> Any:
    """Keys rotated once at insertion (by their slot then) and cached rotated: after an eviction they are never
    re-rotated to their new slots."""
    return _decode(q, k, v, rotate_at_insert=True, **kw)


@mutant("streaming.closed_form_keeps_one_more", family="streaming", replaces="streaming_retained_ids",
        caught_by=["streaming.retained_ids"])
def closed_form_off_by_one(t: int, sinks: int, recent: int) -> np.ndarray:
    """The closed-form retained ids keep recent + 1 tokens (the StreamingLLM slice [len - r : len] taken after
    appending instead of before)."""
    return impl.streaming_retained_ids(t, sinks, recent + 1)


@mutant("streaming.sink_dropped", family="streaming", replaces="sink_softmax_attention",
        caught_by=["streaming.sink_softmax_is_extra_zero_value_key"])
def sink_ignored(q: Any, k: Any, v: Any, *, sink: Any, **kw: Any) -> Any:
    """The sink logit is dropped (plain softmax attention, weights sum to 1)."""
    kw.pop("return_lse", None)
    return ref.softmax_attention(q, k, v, **kw)


@mutant("streaming.sink_logit_ignored", family="streaming", replaces="softmax_with_sink",
        caught_by=["streaming.sink_softmax_is_extra_zero_value_key"])
def sink_fixed_at_zero(x: Any, sink: Any = 0.0, axis: int = -1) -> np.ndarray:
    """The learnable sink logit is ignored: Miller's softmax_1 (z = 0) whatever z is."""
    return impl.softmax_with_sink(x, 0.0, axis=axis)


@mutant("streaming.recompute_skips_sinks", family="streaming", replaces="streaming_decode_from_inputs",
        caught_by=["streaming.recompute_kv_equals_cache"])
def recompute_skips_sinks(x: Any, w_q: Any, w_k: Any, w_v: Any, *, sinks: int, recent: int, **kw: Any) -> Any:
    """The O(1)-memory decoder recomputes only the recent window (its input store dropped the sink tokens)."""
    return impl.streaming_decode_from_inputs(x, w_q, w_k, w_v, sinks=0, recent=sinks + recent, **kw)
