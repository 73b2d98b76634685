"""Op specifications: the calling convention a callable under test follows, how its inputs are drawn,
its float64 gold answer (and VJP), and its naive torch baseline.  Each family registers its ops
(``properties/<family>/op*.py``); ``OPS`` holds them all once :func:`veriformer.load_catalogue` ran.

An op with several outputs (e.g. ``(o, final_state)``) names them in ``outputs``; its ``gold`` returns a
dict of those names (absent names are outputs the case does not ask for, which the candidate must return
as ``None``) and its ``gold_vjp`` receives one cotangent per present output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

__all__ = ["OPS", "Alternatives", "OpSpec", "get_op", "max_or_zero", "register_op"]

# what an op's ``alternatives`` returns: [(description, {output name: the gold answer under that convention})]
Alternatives = list[tuple[str, dict[str, np.ndarray]]]


@dataclass(frozen=True)
class OpSpec:
    name: str
    convention: str
    source: str
    features: frozenset[str]
    options: dict[str, Any]
    strategy: Callable[[frozenset[str], str, dict[str, Any]], st.SearchStrategy[Any]]
    call: Callable[[Callable[..., Any], dict[str, torch.Tensor], Any, dict[str, Any]], Any]
    # gold(case, arrays, options) -> array (single output "out") or {output name: array}
    gold: Callable[[Any, dict[str, np.ndarray], dict[str, Any]], Any]
    # gold_vjp(case, arrays, {output name: cotangent}, options) -> {input name: gradient}
    gold_vjp: Callable[[Any, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]], dict[str, np.ndarray]]
    baseline: Callable[[dict[str, Any]], Callable[..., Any]]  # options -> naive torch callable
    # inputs whose gradients check(grad=True) compares; an optional input (e.g. a gate) counts only in the
    # cases that contain it
    differentiable: tuple[str, ...]
    size: Callable[[Any], int]
    tolerance: str
    validate_options: Callable[[dict[str, Any]], None] = field(default=lambda o: None)
    # conditioned floor: (condition, summand scale) per output name ("out", "dq", ...); see
    # compare.judge_against_baseline.  Default: no conditioned term (well-conditioned ops).
    # (case, arrays, cotangents or None, options) -> {output: (condition, summand size[, root-sum-square])}
    conditioning: Callable[..., dict[str, tuple[Any, ...]]] = field(default=lambda case, a, cots, opts=None: {})
    outputs: tuple[str, ...] = ("out",)
    # length sweep for the report's error-vs-length plot: sweep(size, seed) -> case, over sweep_sizes
    sweep: Callable[[int, int], Any] | None = None
    sweep_sizes: tuple[int, ...] = ()
    # outputs that may come back in float32 when the inputs are float16/bfloat16 (recurrent states that
    # kernels keep in their float32 accumulator: fla's final_state, mamba's last_state); judged as returned
    wide_outputs: frozenset[str] = frozenset()
    # feature -> the keyword argument a callable must accept for it (features absent here are data layouts or
    # flags passed to every callable); check() reports the features whose keyword fn does not accept
    feature_keywords: dict[str, str] = field(default_factory=dict)
    # the edge regions of the op's input space: regions(case) -> names of the regions the case lies in
    regions: Callable[[Any], frozenset[str]] | None = None
    # explicit corner cases run before the drawn ones (features, dtype, options) -> cases
    corners: Callable[[frozenset[str], str, dict[str, Any]], list[Any]] | None = None
    # a careful same-dtype baseline where the usual one is far from correct (e.g. RoPE angles in float32): each
    # output is judged against the better of the two baselines (options -> callable), see the tolerance rows
    careful_baseline: Callable[[dict[str, Any]], Callable[..., Any]] | None = None
    # outputs that are not differentiated (e.g. the log-sum-exp): check(grad=True) gives them a zero cotangent
    nondiff_outputs: frozenset[str] = frozenset()
    # known alternative conventions / bug signatures: (case, arrays, options) -> [(description, {output: gold})]
    alternatives: Callable[[Any, dict[str, np.ndarray], dict[str, Any]], list[tuple[str, dict[str, Any]]]] | None = None


OPS: dict[str, OpSpec] = {}


def register_op(spec: OpSpec) -> OpSpec:
    """Add an op to the registry (one name, one spec)."""
    if spec.name in OPS and OPS[spec.name] is not spec:
        raise ValueError(f"op {spec.name!r} registered twice")
    OPS[spec.name] = spec
    return spec


def get_op(name: str) -> OpSpec:
    """The op spec named ``name`` (ValueError lists the known ops); loads the catalogue on first use."""
    if name not in OPS:
        from veriformer import load_catalogue

        load_catalogue()
    if name not in OPS:
        raise ValueError(f"argument 'op' must be one of {sorted(OPS)}; got {name!r}")
    return OPS[name]


def max_or_zero(x: Any) -> float:
    """``max(x)`` as a float, 0.0 for an empty array: the size of a conditioning bound when an input is empty."""
    arr = np.asarray(x)
    return float(arr.max()) if arr.size else 0.0
