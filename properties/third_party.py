"""What the third-party adapters of every family share (each family registers its own rows in
``properties/<family>/third_party.py``): package detection without importing the package, exact output fitting,
CUDA round trips, exact zero padding and the interpreter's driver stand-in for autotuned Triton kernels.

Every row is registered only where its package is installed (``importlib.util.find_spec``) and only where it
can run: Triton kernels with a CUDA device, or in Triton's CPU interpreter where that was shown to work.  The
packages themselves are imported lazily, at the first call of a row (``import fla.ops`` imports all of fla's
~60 op families and ``mamba_ssm`` imports ``transformers``: 6 s and 5 s on the development machine).  A row whose
package is installed but does not import fails its check with the ImportError as the reason.  No adapter changes
the arithmetic of the kernel it wraps except where its family's module documents it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import torch

from veriformer.fast._triton.env import interpreting
from veriformer.ops import get_op

__all__ = ["CUDA", "fit_output", "found", "install_interpreter_driver", "on_cuda", "pad_last"]

CUDA = torch.cuda.is_available()


def found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- generic adapters ------------------------------------------------------------------------------------------


def fit_output(t: torch.Tensor | None, like: torch.Tensor, op: str, output: str) -> torch.Tensor | None:
    """``t`` as the op accepts output ``output``: unchanged when its dtype is ``like``'s, or float32 for half
    ``like`` when the op lists the output in ``OpSpec.wide_outputs`` (fla and mamba keep states in float32);
    otherwise rounded once to ``like.dtype`` (what the op's convention then demands)."""
    if t is None or t.dtype == like.dtype:
        return t
    if (output in get_op(op).wide_outputs and t.dtype == torch.float32
            and like.dtype in (torch.float16, torch.bfloat16)):
        return t
    return t.to(like.dtype)


def on_cuda(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a CUDA-only kernel for ``check(..., device="cpu")`` (the catalogue): CPU tensor arguments are
    moved to the current CUDA device and tensor results moved back (``Tensor.to`` is differentiable, so
    gradients flow to the CPU inputs).  Tensors already on CUDA, or any tensors on a machine without CUDA,
    pass through; the arithmetic is the kernel's."""

    def move(x: Any, device: torch.device | str) -> Any:
        if isinstance(x, torch.Tensor):
            return x.to(device)
        if isinstance(x, tuple | list):
            return type(x)(move(y, device) for y in x)
        return x

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if first is None or first.is_cuda or not torch.cuda.is_available():
            return fn(*args, **kwargs)
        home = first.device
        res = fn(*(move(a, "cuda") for a in args), **{k: move(v, "cuda") for k, v in kwargs.items()})
        return move(res, home)

    return wrapper


def pad_last(x: torch.Tensor | None, dim: int, to: int) -> torch.Tensor | None:
    """Zero-pad dimension ``dim`` of ``x`` to size ``to`` (exact: the extra entries multiply zeros)."""
    if x is None or x.shape[dim] == to:
        return x
    pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + [0, to - x.shape[dim]]
    return torch.nn.functional.pad(x, pad)


class _InterpreterDriver:
    """Stand-in for ``triton.runtime.driver.active`` on a machine with no GPU driver, for the interpreter.

    Only ``get_benchmarker`` is provided: it returns a benchmarker that does not run the kernel and reports
    equal timings, so ``triton.autotune`` keeps the first config (the interpreter's timings mean nothing
    anyway).  Every other attribute raises RuntimeError like the missing driver did, so code that probes the
    driver (fla's device detection) sees what it saw before."""

    def get_benchmarker(self) -> Callable[..., list[float]]:
        return lambda kernel_call, quantiles=None, **kw: [0.0, 0.0, 0.0]

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no active Triton driver (veriformer interpreter stand-in has no {name!r})")


def install_interpreter_driver() -> None:
    """Install :class:`_InterpreterDriver` when Triton interprets and has no driver (no-op otherwise)."""
    from triton.runtime import driver

    if not interpreting() or isinstance(getattr(driver, "_active", None), _InterpreterDriver):
        return
    try:
        driver.active  # noqa: B018 - probes for a real driver
    except RuntimeError:
        driver.set_active(_InterpreterDriver())  # type: ignore[arg-type]
