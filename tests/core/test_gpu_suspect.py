"""GPU checks where the compiler is suspect (issue 13): realistic sizes of the kernels whose backward passes Triton
might miscompile on Hopper.

flash-linear-attention refuses its gated ``chunk_bwd_kernel_dqkwg`` on Hopper with Triton >= 3.4, < 3.7.1 (fla
issue #640): ``dk += dot(trans(ds.to(bf16)), q)``, a transposed wgmma accumulator fed back to a dot, comes out
wrong.  Our chunked linear-attention backward had that structure (``_bwd_dqk``: dk = M^T Q); it now reads M^T back
from a scratch tile there (:func:`veriformer.fast.linear_attention.chunked.transpose_workaround`), and these tests
check on the GPU (a) the default path, (b) the unguarded path, whose failure inside the affected range is the
finding, not a test failure, and (c) SSD and selective-scan backward, which do not transpose accumulators but run
long fused loops, at T = 4K-16K.

Judging follows the suite's policy (:func:`veriformer.compare.judge_against_baseline`, the op's tolerance row):
through ``veriformer.check(..., cases=[...])`` at T = 4096 (float64 NumPy oracle, naive baseline in the input dtype,
random cotangents), and directly at T = 16384 against the same formula run in float64 on the GPU (the torch chunked
forms: exact arithmetic up to float64 rounding), with the naive baseline in the input dtype as the yardstick.

Cost on one H200 (expected, not measured): ~25 kernel compilations (2 dtypes at most, one size each), the float64
oracles on the host CPU (~5-10 s per 4K case), the quadratic naive baselines on the GPU; about a minute in all.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _impl(op: str, name: str) -> Any:
    from veriformer.implementations import IMPLEMENTATIONS

    impl = next((i for i in IMPLEMENTATIONS if i.op == op and i.name == name), None)
    if impl is None:
        pytest.skip(f"implementation {op}:{name} is not registered here (Triton or the package missing)")
    return impl


def _judge(output: str, cand: torch.Tensor, base: torch.Tensor, gold: torch.Tensor, dtype: str, row: str) -> Any:
    """The suite's verdict for one output: |e_i| <= rho max|b - g| + floor_ulps ulp(g_i), plus the normwise guard."""
    from veriformer.compare import judge_against_baseline
    from veriformer.ops import get_op
    from veriformer.tolerances import tolerance

    get_op(row.split(".")[1])  # the op's module registers its tolerance rows
    tol = tolerance(row)
    def np64(t: torch.Tensor) -> np.ndarray:
        return t.detach().double().cpu().numpy()

    return judge_against_baseline(output, np64(cand), np64(base), np64(gold), dtype, rho=tol.rho,
                                  floor_ulps=tol.floor_ulps)


def _affected() -> bool:
    """Hopper and Triton in [3.4.0, 3.7.1): where fla #640 says the transposed-accumulator dot is miscompiled."""
    from veriformer.fast.linear_attention.chunked import _triton_version

    return torch.cuda.get_device_capability()[0] == 9 and (3, 4, 0) <= _triton_version() < (3, 7, 1)


# ------------------------------------------------------------------------------------- gated linear attention

@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_gated_linear_attention_4k_check(dtype: str) -> None:
    """check() with gradients (dq, dk, dv, dg, d initial_state) of our chunked kernels at B=1 T=4096 H=2 K=V=128,
    gates in [-0.05, 0], initial and final state (default transpose path: the workaround where it applies)."""
    import veriformer
    from veriformer.properties.linear_attention.strategies import LinearAttentionCase

    impl = _impl("linear_attention", "triton_chunk")
    case = LinearAttentionCase(B=1, T=4096, H=2, K=128, V=128, gate=0.05, initial_state=True,
                               output_final_state=True, seed=3)
    r = veriformer.check(impl.fn, op="linear_attention", dtypes=(dtype,), device="cuda",
                         features={"gate", "initial_state"}, grad=True, cases=[case], name=impl.name)
    assert r.passed, r.summary()


def _la_16k(dtype: torch.dtype, force: bool | None) -> dict[str, Any]:
    """Our bf16/fp16 chunked kernels at T=16384 against the torch chunked form in float64 on cuda, the naive
    quadratic form in the input dtype as the baseline; verdicts of o, final state and every gradient."""
    from veriformer.fast.linear_attention import naive
    from veriformer.fast.linear_attention.chunked import chunk_linear_attention, transpose_workaround

    B, T, H, D = 1, 16384, 2, 128
    gen = torch.Generator(device="cuda").manual_seed(0)
    ins = [torch.randn(B, T, H, D, device="cuda", generator=gen).to(dtype) for _ in range(3)]
    g = -0.05 * torch.rand(B, T, H, device="cuda", generator=gen)
    s0 = torch.randn(B, H, D, D, device="cuda", generator=gen)
    do = torch.randn(B, T, H, D, device="cuda", generator=gen).to(dtype)
    dS = torch.randn(B, H, D, D, device="cuda", generator=gen)

    def run(fn: Any, cast: torch.dtype | None, **kw: Any) -> list[torch.Tensor]:
        xs = [(t if cast is None else t.to(cast)).detach().requires_grad_() for t in (*ins, g, s0)]
        o, S = fn(xs[0], xs[1], xs[2], g=xs[3], initial_state=xs[4], output_final_state=True, **kw)
        grads = torch.autograd.grad([o, S], xs, [do.to(o.dtype), dS.to(S.dtype)])
        return [o, S, *grads]

    try:
        if force is not None:
            transpose_workaround(force=force)
        ours = run(chunk_linear_attention, None)
    finally:
        transpose_workaround(reset=True)
    gold = run(naive.linear_attention_chunked, torch.float64, chunk_size=64)
    base = run(naive.linear_attention, None)
    name = "bfloat16" if dtype == torch.bfloat16 else "float16"
    out = {}
    for i, label in enumerate(("o", "final_state", "dq", "dk", "dv", "dg", "dinitial_state")):
        row = "op.linear_attention" if i < 2 else "op.linear_attention.grad"
        out[label] = _judge(label, ours[i], base[i], gold[i], name, row)
    return out


def test_gated_linear_attention_16k_bf16_default_path() -> None:
    """T=16384 bf16, forward and backward, default path, every output within the suite's tolerance."""
    verdicts = _la_16k(torch.bfloat16, None)
    bad = {k: (v.ratio, v.reason) for k, v in verdicts.items() if not v.passed}
    assert not bad, bad


def test_gated_linear_attention_16k_bf16_unguarded_transpose() -> None:
    """The same with ``tl.trans`` of the accumulator (fla #640's structure) forced on.  Outside Hopper + Triton
    [3.4, 3.7.1) it must pass; inside, a failure is the finding (dk / dg wrong) and is reported as a skip with the
    figures, a pass means our kernel escapes the miscompile (then the workaround costs only a scratch round
    trip)."""
    verdicts = _la_16k(torch.bfloat16, False)
    bad = {k: (round(float(v.ratio), 2), v.reason) for k, v in verdicts.items() if not v.passed}
    if _affected():
        msg = f"unguarded transpose on Hopper + Triton 3.4-3.7.0: {'FAILS ' + repr(bad) if bad else 'passes'}"
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    assert not bad, bad


# ----------------------------------------------------------------------------------------------------- SSD

def test_ssd_4k_check_bf16() -> None:
    """check() with gradients of our SSD chunk scan (op ssd_scan) at b=1 h=2 p=n=64, 64 chunks of 64 (T=4096),
    with an initial state, bf16."""
    import veriformer
    from veriformer.properties.ssm.strategies import SSDCase

    impl = _impl("ssd_scan", "triton_ssd")
    case = SSDCase(b=1, h=2, p=64, n=64, chunks=64, chunk_size=64, initial=True, seed=2)
    r = veriformer.check(impl.fn, op="ssd_scan", dtypes=("bfloat16",), device="cuda", features={"initial_states"},
                         grad=True, cases=[case], name=impl.name)
    assert r.passed, r.summary()


def test_ssd_16k_bf16_against_float64() -> None:
    """T=16384, h=4, p=64, n=128, chunk 256 (the benchmark's shape), bf16: Y, final state and dX, dA, dB, dC,
    d initial state against mamba's ``ssd_minimal_discrete`` form run in float64 on cuda."""
    from veriformer.fast.ssm import naive as naive_ssm
    from veriformer.fast.ssm.ssd import ssd_scan

    b, L, h, p, n, cs = 1, 16384, 4, 64, 128, 256
    gen = torch.Generator(device="cuda").manual_seed(1)
    X = torch.randn(b, L, h, p, device="cuda", generator=gen).bfloat16()
    A = (-0.05 * torch.rand(b, L, h, device="cuda", generator=gen)).bfloat16()
    Bm, Cm = (torch.randn(b, L, h, n, device="cuda", generator=gen).bfloat16() for _ in range(2))
    h0 = torch.randn(b, h, p, n, device="cuda", generator=gen).bfloat16()
    dY = torch.randn(b, L, h, p, device="cuda", generator=gen).bfloat16()
    dH = torch.randn(b, h, p, n, device="cuda", generator=gen)

    def run(fn: Any, cast: torch.dtype | None) -> list[torch.Tensor]:
        xs = [(t if cast is None else t.to(cast)).detach().requires_grad_() for t in (X, A, Bm, Cm, h0)]
        Y, H = fn(xs[0], xs[1], xs[2], xs[3], cs, initial_states=xs[4])
        return [Y, H, *torch.autograd.grad([Y, H], xs, [dY.to(Y.dtype), dH.to(H.dtype)])]

    ours, gold, base = run(ssd_scan, None), run(naive_ssm.ssd_minimal, torch.float64), run(naive_ssm.ssd_minimal, None)
    bad = {}
    for i, label in enumerate(("Y", "final_state", "dX", "dA", "dB", "dC", "dinitial_states")):
        v = _judge(label, ours[i], base[i], gold[i], "bfloat16", "op.ssd_scan" if i < 2 else "op.ssd_scan.grad")
        if not v.passed:
            bad[label] = (v.ratio, v.reason)
    assert not bad, bad


# ------------------------------------------------------------------------------------------- selective scan

def test_selective_scan_4k_check_bf16() -> None:
    """check() with gradients of our selective scan at b=1 d=64 n=16 L=4096 with D, z, delta_bias, softplus
    (mamba's configuration), bf16."""
    import veriformer
    from veriformer.properties.ssm.strategies import ScanCase

    impl = _impl("selective_scan", "triton_selective_scan")
    case = ScanCase(b=1, d=64, n=16, L=4096, use_D=True, use_z=True, use_bias=True, softplus=True, seed=4)
    r = veriformer.check(impl.fn, op="selective_scan", dtypes=("bfloat16",), device="cuda", features=impl.features,
                         grad=True, cases=[case], name=impl.name)
    assert r.passed, r.summary()


# ---------------------------------------------------------------------------------------------- third party

def test_fla_chunk_simple_gla_4k_check() -> None:
    """fla's Triton ``chunk_simple_gla`` through check() at the same T=4096 case, bf16: forward and backward, or
    forward only where fla refuses its backward (Hopper + Triton 3.4-3.7.0, #640), reported as a skip after the
    forward passed."""
    pytest.importorskip("fla")
    import veriformer
    from veriformer.properties.linear_attention.strategies import LinearAttentionCase

    impl = _impl("linear_attention", "fla.chunk_simple_gla")
    case = LinearAttentionCase(B=1, T=4096, H=2, K=128, V=128, gate=0.05, initial_state=True,
                               output_final_state=True, seed=3)
    r = veriformer.check(impl.fn, op="linear_attention", dtypes=("bfloat16",), device="cuda",
                         features={"gate", "initial_state"}, grad=False, cases=[case], name=impl.name)
    assert r.passed, r.summary()
    r = veriformer.check(impl.fn, op="linear_attention", dtypes=("bfloat16",), device="cuda",
                         features={"gate", "initial_state"}, grad=True, cases=[case], name=impl.name)
    if not r.passed and "#640" in r.summary():
        pytest.skip("fla refuses its gated backward here (#640); forward checked")
    assert r.passed, r.summary()


def test_mamba_chunk_scan_combined_4k_check() -> None:
    """mamba's Triton ``mamba_chunk_scan_combined`` (adapter of op ssd_scan, forward) through check() at the SSD
    case above, bf16."""
    pytest.importorskip("mamba_ssm")
    import veriformer
    from veriformer.properties.ssm.strategies import SSDCase

    impl = _impl("ssd_scan", "mamba.mamba_chunk_scan_combined")
    case = SSDCase(b=1, h=2, p=64, n=64, chunks=64, chunk_size=64, initial=True, seed=2)
    r = veriformer.check(impl.fn, op="ssd_scan", dtypes=("bfloat16",), device="cuda", features=impl.features,
                         grad=impl.grad, cases=[case], name=impl.name)
    assert r.passed, r.summary()
