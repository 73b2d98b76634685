"""Wrong answers of every op with a sequence axis, at LLM lengths, in every dtype: the classes a tolerance must
never admit, whatever the floors (issue: "an all-zero, scaled or truncated output fails in every dtype at every
length, bf16 at 16K included").

For each op, three planted bugs wrap the op's own naive baseline (so every other part of the answer is as
good as the usual plain-torch code):

* ``<op>.zero_output``: every output tensor is zero (a kernel that never stores);
* ``<op>.scaled_output``: outputs times 0.97 (a wrong normalisation or a stale scale: 3 %, a few bf16 ulps);
* ``<op>.truncated_output``: the second half of the sequence axis of the main output is zero (a launch grid
  that covers half of the tokens).

Each is checked on explicit cases at sequence lengths 1K, 4K and 16K (quadratic float64 oracles: linear and VQ
attention at 1K and 4K) in float16, bfloat16 and float32; ``tests/test_wrong_answers.py`` asserts that *every*
case fails, not just one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from veriformer.properties import linear_attention_strategies as las
from veriformer.properties import mamba_chunk_scan_strategies as mst
from veriformer.properties import ssm_strategies as sst
from veriformer.properties import strategies as strat
from veriformer.registry import mutant

FAMILY = "suite"
DTYPES = ("float16", "bfloat16", "float32")
LONG = (1024, 4096, 16384)
QUADRATIC = (1024, 4096)  # ops whose float64 oracle is O(T^2) in memory


def _cases(op: str) -> list[Any]:
    """Explicit long cases of ``op``: small batch, heads and widths, realistic lengths."""
    if op == "softmax_attention":
        return [strat.AttentionCase(B=1, H=2, Hkv=1, T=4, S=n, D=16, Dv=16, causal=True, seed=n) for n in LONG]
    if op == "rope":
        return [strat.RopeCase(B=1, H=1, T=n, D=16, positions="arange", seed=n) for n in LONG]
    if op == "linear_attention":
        return [las.LinearAttentionCase(B=1, T=n, H=1, K=8, V=8, gate=0.05, output_final_state=True, seed=n)
                for n in QUADRATIC]
    if op == "vq_attention":
        return [las.VQCase(B=1, H=1, T=n, D=8, Dv=8, C=16, causal=True, seed=n) for n in QUADRATIC]
    if op == "ssm_convolution":
        return [sst.ConvCase(B=1, C=1, L=n, kernel="decay", amp=1.0, seed=n) for n in LONG]
    if op == "selective_scan":
        return [sst.ScanCase(b=1, d=2, n=4, L=n, seed=n) for n in LONG]
    if op == "ssd_scan":
        return [sst.SSDCase(b=1, h=1, p=4, n=4, chunks=n // 64, chunk_size=64, seed=n) for n in LONG]
    if op == "mamba_chunk_scan":
        return [mst.MambaChunkCase(b=1, l=n, h=1, g=1, p=4, n=4, chunk_size=64, seed=n) for n in LONG]
    raise KeyError(op)


# sequence axis of the main output (first output) of each op
_SEQ_AXIS = {"softmax_attention": -2, "rope": -2, "linear_attention": 1, "vq_attention": -2,
             "ssm_convolution": -1, "selective_scan": -1, "ssd_scan": 1, "mamba_chunk_scan": 1}
OPS = tuple(_SEQ_AXIS)


def _zero(t: torch.Tensor, first: bool, axis: int) -> torch.Tensor:
    return torch.zeros_like(t)


def _scaled(t: torch.Tensor, first: bool, axis: int) -> torch.Tensor:
    return (t.float() * 0.97).to(t.dtype)


def _truncated(t: torch.Tensor, first: bool, axis: int) -> torch.Tensor:
    if not first:
        return t
    out = t.clone()
    n = t.shape[axis]
    out.narrow(axis, n - n // 2, n // 2).zero_()
    return out


def _wrap(op: str, transform: Callable[[torch.Tensor, bool, int], torch.Tensor]) -> Callable[..., Any]:
    """The op's naive baseline with ``transform`` applied to its outputs (the baseline is looked up at the first
    call, so importing this module needs no op registry)."""
    axis = _SEQ_AXIS[op]

    def fn(*args: Any, **kwargs: Any) -> Any:
        from veriformer.ops import get_op

        spec = get_op(op)
        res = spec.baseline(dict(spec.options))(*args, **kwargs)
        if isinstance(res, tuple):
            return tuple(None if r is None else transform(r.detach(), i == 0, axis) for i, r in enumerate(res))
        return transform(res.detach(), True, axis)

    return fn


_CLASSES = {"zero_output": (_zero, "every output is zero"),
            "scaled_output": (_scaled, "outputs times 0.97"),
            "truncated_output": (_truncated, "the second half of the sequence axis of the output is zero")}

for _op in OPS:
    for _cls, (_tf, _what) in _CLASSES.items():
        _fn = _wrap(_op, _tf)
        _fn.__doc__ = f"{_op}: {_what} (naive baseline otherwise), at lengths up to 16K in every dtype."
        mutant(f"{_op}.{_cls}", family=FAMILY, op=_op, caught_by=[f"op:{_op}"], dtypes=DTYPES,
               cases=_cases(_op))(_fn)
