"""Attention peers shared by the benchmark scripts: torch SDPA pinned to one backend, and our Triton flash
attention, both causal, q/k/v [B, H, T, D]."""

from __future__ import annotations

from collections.abc import Callable

import torch

Attn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["Attn", "sdpa_causal", "triton_flash_causal"]


def sdpa_causal(backend_name: str | None) -> Attn:
    """``scaled_dot_product_attention(q, k, v, is_causal=True)`` under ``sdpa_kernel(SDPBackend.<name>)``
    (FLASH_ATTENTION, CUDNN_ATTENTION, EFFICIENT_ATTENTION, MATH); ``None``: torch's own choice (CPU smoke)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = None if backend_name is None else getattr(SDPBackend, backend_name)

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if backend is None:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    return run


def triton_flash_causal(tma: bool = False) -> Attn:
    """``veriformer.fast.attention(q, k, v, causal=True)`` (imported on first use: Triton is optional); ``tma``:
    forward and backward with the TMA loads of ``config_override(fwd={"TMA": 1}, bwd={"TMA": 1})``."""
    from veriformer.fast.attention.flash import attention, config_override

    if not tma:
        return lambda q, k, v: attention(q, k, v, causal=True)  # type: ignore[return-value]

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with config_override(fwd={"TMA": 1}, bwd={"TMA": 1}):
            return attention(q, k, v, causal=True)  # type: ignore[return-value]

    return run
