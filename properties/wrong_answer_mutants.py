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


# -- the realistic kernel bugs of the issue, at LLM lengths ------------------------------------------------------

_ATT_LONG = _cases("softmax_attention")
_LA_LONG = _cases("linear_attention")


@mutant("softmax_attention.split_kv_keeps_half_the_cache", family=FAMILY, op="softmax_attention",
        caught_by=["op:softmax_attention"], features={"causal"}, dtypes=DTYPES, cases=_ATT_LONG)
def split_kv_half_cache(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                        scale: float) -> torch.Tensor:
    """A split-KV decode that merges only the second split: the first half of the KV cache is dropped."""
    from veriformer.fast import naive

    S = k.shape[2]
    return naive.softmax_attention(q, k[:, :, S // 2:], v[:, :, S // 2:], causal=causal, scale=scale)


@mutant("softmax_attention.pv_accumulated_in_input_dtype", family=FAMILY, op="softmax_attention",
        caught_by=["op:softmax_attention"], features={"causal"}, dtypes=("float16", "bfloat16"), cases=_ATT_LONG)
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


@mutant("linear_attention.drops_carried_state_at_half", family=FAMILY, op="linear_attention",
        caught_by=["op:linear_attention"], features={"gate"}, dtypes=DTYPES, cases=_LA_LONG)
def la_drops_state(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                   scale: float, initial_state: torch.Tensor | None = None,
                   output_final_state: bool = False) -> Any:
    """A chunked kernel that loses its carried state at T/2: the second half restarts from zero."""
    from veriformer.fast import naive_linear_attention as nla

    h = q.shape[1] // 2
    kw = {"scale": scale, "output_final_state": output_final_state}
    o1, _ = nla.linear_attention(q[:, :h], k[:, :h], v[:, :h], g=None if g is None else g[:, :h], **kw,
                                 initial_state=initial_state)
    o2, S = nla.linear_attention(q[:, h:], k[:, h:], v[:, h:], g=None if g is None else g[:, h:], **kw)
    return torch.cat([o1, o2], dim=1), S


@mutant("linear_attention.state_in_input_dtype", family=FAMILY, op="linear_attention",
        caught_by=["op:linear_attention"], features={"gate"}, dtypes=("bfloat16",),
        cases=[las.LinearAttentionCase(B=1, T=n, H=1, K=8, V=8, output_final_state=True, seed=n) for n in QUADRATIC])
def la_state_low_precision(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                           scale: float, initial_state: torch.Tensor | None = None,
                           output_final_state: bool = False) -> Any:
    """The token recurrence with its state S (decayed, plus k v^T) stored in the input dtype (bf16) at every step;
    outputs read in float32.  Without decay the state sums every token, and its per-step roundings accumulate
    (with a mild decay they are forgotten and the result is as accurate as the naive bf16 form)."""
    qh, kh, vh = (x.transpose(1, 2).float() for x in (q, k, v))
    S = torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype=q.dtype)
    if initial_state is not None:
        S = initial_state.to(q.dtype)
    outs = []
    for t in range(q.shape[1]):
        Sf = S.float() * (1.0 if g is None else g[:, t].float().exp()[..., None, None])
        S = (Sf + kh[:, :, t, :, None] * vh[:, :, t, None, :]).to(q.dtype)  # the bug: the state rounded each step
        outs.append((qh[:, :, t, :, None] * S.float()).sum(-2) * scale)
    o = torch.stack(outs, dim=2).transpose(1, 2).to(q.dtype)
    return o, (S if output_final_state else None)
