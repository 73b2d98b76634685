"""The suite's power: wrong answers at LLM lengths fail in every dtype, and correct variants written differently
pass (issue: suite power).  The full matrix (every op with a sequence axis x zero / scaled / truncated x 1K-16K x
fp16/bf16/fp32) runs as mutants in the catalogue (veriformer/test_catalogue.py), where a wrong-answer mutant
counts as killed only when every one of its cases fails."""

from __future__ import annotations

import numpy as np
import torch

import veriformer
from veriformer.fast.attention import naive
from veriformer.properties import wrong_answers as wam
from veriformer.properties.attention.strategies import AttentionCase


def test_wrong_answer_mutants_cover_every_sequence_op_class_dtype_and_length() -> None:
    names = set(veriformer.MUTANTS)
    assert set(wam.OPS) >= {"softmax_attention", "rope", "linear_attention", "vq_attention", "ssm_convolution",
                            "selective_scan", "ssd_scan", "mamba_chunk_scan"}
    assert {f"{op}.{c}" for op in wam.OPS for c in ("zero_output", "scaled_output", "truncated_output")} <= names
    # and the realistic kernel bugs of the issue
    assert {"softmax_attention.split_kv_keeps_half_the_cache", "softmax_attention.pv_accumulated_in_input_dtype",
            "linear_attention.drops_carried_state_at_half", "linear_attention.state_in_input_dtype"} <= names
    for op in wam.OPS:
        m = veriformer.MUTANTS[f"{op}.zero_output"]
        assert set(m.check_kwargs["dtypes"]) == {"float16", "bfloat16", "float32"}
        assert len(m.check_kwargs["cases"]) >= 2


def test_a_mutant_with_explicit_cases_survives_if_one_case_passes() -> None:
    """Killed means every case failed: a candidate wrong only at long lengths is not killed by the short ones."""
    short = AttentionCase(B=1, H=1, Hkv=1, T=2, S=8, D=8, Dv=8, causal=True, seed=0)
    long = AttentionCase(B=1, H=1, Hkv=1, T=2, S=2048, D=8, Dv=8, causal=True, seed=0)

    def wrong_when_long(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: object) -> torch.Tensor:
        o = naive.softmax_attention(q, k, v, **kw)  # type: ignore[arg-type]
        return o * 0 if k.shape[2] > 1000 else o

    veriformer.registry.mutant("test.wrong_when_long", family="test", op="softmax_attention",
                               caught_by=["op:softmax_attention"], features={"causal"}, dtypes=("bfloat16",),
                               cases=[short, long])(wrong_when_long)
    try:
        r = veriformer.run_mutant("test.wrong_when_long")
        assert not r.killed and "survived 1 of 2" in r.details["op:softmax_attention"]
    finally:
        veriformer.MUTANTS.pop("test.wrong_when_long", None)


def _exp2_online_fp32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float,
                      block: int = 7) -> torch.Tensor:
    """A correct variant written differently: exp2 with log2(e) folded into the scale, online softmax over
    blocks of 7 keys, float32 throughout, end-aligned causal mask."""
    qf, kf, vf = q.float(), k.float(), v.float()
    T, S = q.shape[2], k.shape[2]
    s2 = (qf @ kf.transpose(-1, -2)) * (scale * 1.4426950408889634)
    if causal:
        i = torch.arange(T)[:, None] + (S - T)
        s2 = s2.masked_fill(torch.arange(S)[None, :] > i, float("-inf"))
    m = torch.full((*s2.shape[:-1], 1), float("-inf"))
    lsum = torch.zeros_like(m)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]))
    for j in range(0, S, block):
        blk = s2[..., j:j + block]
        m_new = torch.maximum(m, blk.amax(-1, keepdim=True))
        safe = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
        alpha = torch.exp2(torch.where(torch.isfinite(m), m - safe, torch.full_like(m, float("-inf"))))
        p = torch.exp2(blk - safe)
        lsum = lsum * alpha + p.sum(-1, keepdim=True)
        acc = acc * alpha + p @ vf[..., j:j + block, :]
        m = m_new
    return torch.where(lsum > 0, acc / torch.where(lsum > 0, lsum, torch.ones_like(lsum)), 0.0).to(q.dtype)


def _upcast64(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float) -> torch.Tensor:
    """A correct variant: the naive formula in float64, rounded once."""
    return naive.softmax_attention(q.double(), k.double(), v.double(), causal=causal, scale=scale).to(q.dtype)


def test_correct_variants_pass_at_long_lengths_in_every_dtype() -> None:
    cases = [AttentionCase(B=1, H=1, Hkv=1, T=3, S=n, D=16, Dv=16, causal=True, amp=a, seed=n)
             for n in (1024, 4096) for a in (1.0, 8.0)]
    for fn in (_exp2_online_fp32, _upcast64):
        r = veriformer.check(fn, op="softmax_attention", dtypes=("float16", "bfloat16", "float32"),
                             features={"causal"}, cases=cases)
        assert r.passed, r.summary()
        assert max(c.margin for c in r.cases) < 0.5


def test_a_100_percent_error_reads_as_100_percent() -> None:
    case = AttentionCase(B=1, H=1, Hkv=1, T=4, S=4096, D=16, Dv=16, causal=True, seed=3)

    def zero(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: object) -> torch.Tensor:
        return torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)

    r = veriformer.check(zero, op="softmax_attention", dtypes=("bfloat16",), features={"causal"}, cases=[case])
    v = r.cases[0].verdicts[0]
    assert not r.passed and v.candidate.rel_rms == 1.0 and v.bits_lost >= 7
    assert np.isfinite(v.margin) and v.failing > 0 and v.worst is not None
