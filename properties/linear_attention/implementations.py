"""Implementations of op ``linear_attention`` checked by the report and the catalogue tests:
the naive baselines, alternative plain-torch forms (fp32 recurrence, chunked) and the float64 oracles
wrapped in torch."""

from __future__ import annotations

import functools

import torch

from veriformer import reference as ref
from veriformer.fast.linear_attention import naive
from veriformer.implementations import Implementation, register_implementation

__all__ = ["oracle_linear_attention"]


def oracle_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                            scale: float, initial_state: torch.Tensor | None = None,
                            output_final_state: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The float64 quadratic-form oracle wrapped as a torch kernel (results rounded once to q's dtype)."""
    o, S = ref.linear_attention(q, k, v, g=g, scale=scale, initial_state=initial_state,
                                output_final_state=output_final_state)
    to = functools.partial(torch.as_tensor, device=q.device, dtype=q.dtype)
    return to(o), (None if S is None else to(S))


_LA = frozenset({"gate", "initial_state"})

register_implementation(Implementation(
    "naive_torch", "linear_attention", naive.linear_attention, _LA, grad=True,
    note="quadratic form in the input dtype, gates in float32 (the baseline itself)"))
register_implementation(Implementation(
    "oracle_in_torch", "linear_attention", oracle_linear_attention, _LA,
    note="float64 oracle rounded once: the best any kernel can do"))
register_implementation(Implementation(
    "recurrent_fp32", "linear_attention", naive.linear_attention_recurrent_fp32, _LA, grad=False,
    note="token recurrence upcast to float32 (fla naive_recurrent_simple_gla style)"))
register_implementation(Implementation(
    "chunked_torch[C=16]", "linear_attention", functools.partial(naive.linear_attention_chunked, chunk_size=16),
    _LA, grad=True, note="Lightning-2 / chunk_simple_gla form in plain torch, float32 state"))
