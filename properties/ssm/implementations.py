"""State-space implementations checked by the report and the catalogue: the naive torch baselines (checked with
gradients: torch autograd against the gold VJPs of :mod:`veriformer.reference.ssm.vjp`) and the float64 oracles
wrapped as torch kernels (rounded once to the input dtype: the best any kernel can do; forward only)."""

from __future__ import annotations

from typing import Any

import torch

from veriformer import reference as ref
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.implementations import Implementation, register_implementation
from veriformer.torchio import to_numpy

__all__ = ["oracle_s4d_kernel", "oracle_selective_scan", "oracle_ssd_scan", "oracle_ssm_convolution"]


def _np(t: torch.Tensor | None) -> Any:
    if t is None:
        return None
    if t.is_complex():
        return t.detach().to("cpu", torch.complex128).numpy()
    return to_numpy(t)


def _back(a: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(a).to(device=like.device, dtype=like.dtype)


def oracle_ssm_convolution(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """float64 direct causal convolution, rounded once to u's dtype."""
    return _back(ref.causal_convolution(_np(u), _np(kernel)), u)


def oracle_s4d_kernel(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """float64 S4D Vandermonde kernel (ZOH), rounded once to log_dt's dtype."""
    return _back(ref.s4d_kernel(_np(log_dt), _np(A), _np(B), _np(C), L), log_dt)


def oracle_selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                          D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                          delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                          return_last_state: bool = False) -> Any:
    """float64 selective scan (mamba selective_scan_ref semantics), rounded once to u's dtype."""
    res = ref.selective_scan(_np(u), _np(delta), _np(A), _np(B), _np(C), _np(D), _np(z), _np(delta_bias),
                             delta_softplus, return_last_state)
    if return_last_state:
        return _back(res[0], u), _back(res[1], u)
    return _back(res, u)


def oracle_ssd_scan(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                    initial_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 SSD (chunked form with the stable segsum), rounded once to X's dtype."""
    Y, H = ref.ssd_chunked(_np(X), _np(A), _np(B), _np(C), chunk_size, _np(initial_states))
    return _back(Y, X), _back(H, X)


_SCAN_ALL = frozenset({"D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC", "grouped_BC",
                       "complex_A"})

for _impl in (
    Implementation("naive_torch", "ssm_convolution", naive_ssm.ssm_convolution, grad=True,
                   note="rfft padded to 2L (float32 FFT for half inputs)"),
    Implementation("oracle_in_torch", "ssm_convolution", oracle_ssm_convolution,
                   note="float64 direct sum rounded once"),
    Implementation("naive_torch", "s4d_kernel", naive_ssm.s4d_kernel, grad=True,
                   note="complex64 Vandermonde (S4D code)"),
    Implementation("oracle_in_torch", "s4d_kernel", oracle_s4d_kernel, note="float64 oracle rounded once"),
    Implementation("naive_torch", "selective_scan", naive_ssm.selective_scan_ref, _SCAN_ALL, grad=True,
                   note="mamba selective_scan_ref (float32 internally)"),
    Implementation("oracle_in_torch", "selective_scan", oracle_selective_scan, _SCAN_ALL,
                   note="float64 oracle rounded once"),
    Implementation("naive_torch", "ssd_scan", naive_ssm.ssd_minimal, frozenset({"initial_states"}), grad=True,
                   note="mamba ssd_minimal_discrete in the input dtype"),
    Implementation("oracle_in_torch", "ssd_scan", oracle_ssd_scan, frozenset({"initial_states"}),
                   note="float64 chunked oracle rounded once"),
):
    register_implementation(_impl)
