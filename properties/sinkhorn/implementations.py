"""Implementations of op ``sinkhorn`` that the report and the catalogue check: our batched log-domain torch kernel
(``veriformer.fast.sinkhorn.log_domain``) and the float64 oracle rounded once."""

from __future__ import annotations

import torch

from veriformer import reference as ref
from veriformer.fast.sinkhorn.log_domain import sinkhorn_log
from veriformer.implementations import Implementation, register_implementation

__all__ = ["oracle_sinkhorn"]


def oracle_sinkhorn(C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, eps: float,
                    n_iters: int) -> torch.Tensor:
    """The float64 log-domain oracle wrapped as a torch kernel (rounded once to C's dtype)."""
    P = ref.sinkhorn_log(C, a, b, eps=eps, n_iters=n_iters)
    return torch.from_numpy(P).to(device=C.device, dtype=C.dtype)


register_implementation(Implementation(
    "torch_log_domain", "sinkhorn", sinkhorn_log, grad=True,
    note="batched log-domain Sinkhorn in torch: float32 arithmetic for half inputs, potentials in units of eps, "
         "torch.logsumexp; the plan rounded once; gradients by autograd through the sweeps"))
register_implementation(Implementation("oracle_in_torch", "sinkhorn", oracle_sinkhorn,
                                       note="float64 oracle rounded once"))
