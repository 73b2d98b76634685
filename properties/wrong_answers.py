"""Wrong answers of every op with a sequence axis, at LLM lengths, in every dtype: the classes a tolerance must
never admit, whatever the floors (issue: "an all-zero, scaled or truncated output fails in every dtype at every
length, bf16 at 16K included").

For each op whose family calls :func:`wrong_answer_mutants`, three planted bugs wrap the op's own naive baseline
(so every other part of the answer is as
good as the usual plain-torch code):

* ``<op>.zero_output``: every output tensor is zero (a kernel that never stores);
* ``<op>.scaled_output``: outputs times 0.97 (a wrong normalisation or a stale scale: 3 %, a few bf16 ulps);
* ``<op>.truncated_output``: the second half of the sequence axis of the main output is zero (a launch grid
  that covers half of the tokens).

Each is checked on the explicit cases its family passes, at sequence lengths ``LONG`` = 1K, 4K and 16K (``QUADRATIC``
= 1K and 4K where the float64 oracle is quadratic in memory), in float16, bfloat16 and float32; such a mutant is
killed only when *every* case fails (``tests/core/test_wrong_answers.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from veriformer.registry import mutant

__all__ = ["DTYPES", "LONG", "OPS", "QUADRATIC", "wrong_answer_mutants"]

DTYPES = ("float16", "bfloat16", "float32")
LONG = (1024, 4096, 16384)
QUADRATIC = (1024, 4096)  # for ops whose float64 oracle is O(T^2) in memory
# op -> sequence axis of its main output, for every op that registered its wrong answers
OPS: dict[str, int] = {}


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


def _wrap(op: str, axis: int, transform: Callable[[torch.Tensor, bool, int], torch.Tensor]) -> Callable[..., Any]:
    """The op's naive baseline with ``transform`` applied to its outputs (the baseline is looked up at the first
    call, so registering needs no op spec)."""

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


def wrong_answer_mutants(op: str, *, family: str, seq_axis: int, cases: Sequence[Any]) -> None:
    """Register ``<op>.zero_output``, ``<op>.scaled_output`` and ``<op>.truncated_output`` (the op's naive baseline
    with its outputs zeroed, scaled by 0.97, or zeroed on the second half of axis ``seq_axis`` of the main output),
    each checked on ``cases`` in every dtype of ``DTYPES`` and killed only when every case fails."""
    OPS[op] = seq_axis
    for cls, (tf, what) in _CLASSES.items():
        fn = _wrap(op, seq_axis, tf)
        fn.__doc__ = f"{op}: {what} (naive baseline otherwise), on {len(cases)} long cases in every dtype."
        mutant(f"{op}.{cls}", family=family, op=op, caught_by=[f"op:{op}"], dtypes=DTYPES, cases=list(cases))(fn)
