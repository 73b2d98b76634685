"""The Triton chunked linear attention (``fast/linear_attention/chunked.py``) against the float64 oracles.

Without CUDA the kernels run in Triton's CPU interpreter, at small shapes.  The catalogue already runs
``check()`` on the registered ``triton_chunk`` (chunk 16, the op strategy); here: other chunk sizes on
explicit cases (T = 1, chunks not dividing T, several chunks), K/V tiles smaller than the head dims (the
GPU's tiling), Lightning's per-head decay against the ``decay=`` oracle, segment carrying through the
states, bad inputs, and GPU-size runs (marked ``gpu``).
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON  # isort: skip

from _helpers import as_numpy, compile_in_subprocess, kernel_device, load_benchmark, seeded_randn

import veriformer
from veriformer import reference as ref
from veriformer.fast.linear_attention.naive import linear_attention_chunked as torch_chunked
from veriformer.properties.linear_attention.strategies import LinearAttentionCase
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")

if HAVE_TRITON:
    from veriformer.fast.linear_attention.chunked import chunk_linear_attention, lightning_attention

DEV = kernel_device()


_rand = functools.partial(seeded_randn, device=DEV)
_np = as_numpy


# ---------------------------------------------------------------------------------------------- check()

@pytest.mark.parametrize(("chunk", "cases"), [
    (16, [LinearAttentionCase(B=1, T=1, H=2, K=3, V=5, gate=1.0, initial_state=True, output_final_state=True,
                              seed=11),
          LinearAttentionCase(B=1, T=35, H=1, K=8, V=4, gate=0.05, initial_state=True, output_final_state=True,
                              seed=12)]),
    (32, [LinearAttentionCase(B=1, T=40, H=2, K=4, V=8, gate=5.0, output_final_state=True, seed=13),
          LinearAttentionCase(B=1, T=33, H=1, K=16, V=2, initial_state=True, output_final_state=False,
                              amp=3.0, seed=14)]),
])
def test_check_with_grad_other_chunk_sizes(chunk: int, cases: list[LinearAttentionCase]) -> None:
    """check() with gradients (dq, dk, dv, dg, d initial_state) in all three dtypes on explicit cases: T = 1,
    T not a multiple of the chunk (35 = 2 x 16 + 3, 40 = 32 + 8, 33 = 32 + 1), strong gates (5 per token),
    no gate, final state off."""
    fn = functools.partial(chunk_linear_attention, chunk_size=chunk)
    r = veriformer.check(fn, op="linear_attention", dtypes=("float16", "bfloat16", "float32"), device=DEV,
                         features={"gate", "initial_state"}, grad=True, cases=cases, name=f"triton_chunk[C={chunk}]")
    assert r.passed, r.summary()


def test_check_with_grad_gpu_tiling() -> None:
    """check() in all three dtypes with 16 x 16 head tiles (K = 20, V = 18: two K and two V blocks): the GPU's
    path, dq/dk split over K blocks (partial dg summed over them) and dv in its own kernel, with the same
    rounding of operands in float16/bfloat16 as on the tensor cores."""
    cases = [LinearAttentionCase(B=1, T=20, H=1, K=20, V=18, gate=1.0, initial_state=True, output_final_state=True,
                                 seed=15)]
    fn = functools.partial(chunk_linear_attention, chunk_size=16, head_blocks=(16, 16))
    r = veriformer.check(fn, op="linear_attention", dtypes=("float16", "bfloat16", "float32"), device=DEV,
                         features={"gate", "initial_state"}, grad=True, cases=cases, name="triton_chunk[16x16 tiles]")
    assert r.passed, r.summary()


@pytest.mark.parametrize("gate", [1.0, 0.0])
def test_transpose_scratch_path_equals_default(gate: float) -> None:
    """The Hopper / Triton 3.4-3.7.0 workaround (``transpose_workaround``: dk = M^T Q with M^T read back from a
    scratch tile instead of ``tl.trans`` of the dot accumulator, fla #640) gives the default path's gradients on
    the GPU's tiling (two K blocks, dv in its own kernel), in bfloat16 and float32, gated and ungated; and
    check() passes with it."""
    from veriformer.fast.linear_attention.chunked import transpose_workaround

    B, T, H, K, V = 1, 37, 2, 20, 18
    for dtype in (torch.bfloat16, torch.float32):
        q, k, v = (_rand(B, T, H, d, seed=i, grad=True).to(dtype) for i, d in enumerate((K, K, V)))
        g = (-gate * torch.rand(B, T, H, generator=torch.Generator().manual_seed(4))).to(DEV).requires_grad_(True)
        do = _rand(B, T, H, V, seed=6).to(dtype)
        runs = []
        try:
            for force in (False, True):
                transpose_workaround(force=force)
                o, _ = chunk_linear_attention(q, k, v, g=g, chunk_size=16, head_blocks=(16, 16))
                runs.append([t.float() for t in torch.autograd.grad(o, (q, k, v, g), do)])
        finally:
            transpose_workaround(reset=True)
        for name, a, b in zip(("dq", "dk", "dv", "dg"), *runs, strict=True):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-6, err_msg=f"{name} {dtype}")
    cases = [LinearAttentionCase(B=1, T=20, H=1, K=20, V=18, gate=1.0, initial_state=True, output_final_state=True,
                                 seed=15)]
    try:
        transpose_workaround(force=True)
        r = veriformer.check(functools.partial(chunk_linear_attention, chunk_size=16, head_blocks=(16, 16)),
                             op="linear_attention", dtypes=("bfloat16",), device=DEV,
                             features={"gate", "initial_state"}, grad=True, cases=cases,
                             name="triton_chunk[transpose scratch]")
    finally:
        transpose_workaround(reset=True)
    assert r.passed, r.summary()
    assert transpose_workaround(torch.device("cpu")) is False


def test_transpose_workaround_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The automatic rule: on for 16-bit inputs on a compute-capability-9 GPU with Triton in [3.4.0, 3.7.1), off
    outside that range and for float32 (IEEE FMA products: no wgmma accumulator to mis-lower)."""
    from veriformer.fast.linear_attention import chunked

    monkeypatch.delenv("VERIFORMER_LA_TRANSPOSE_SCRATCH", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    cuda = torch.device("cuda")
    try:
        chunked.transpose_workaround(reset=True)
        for version, dtype, want in (((3, 6, 0), torch.bfloat16, True), ((3, 6, 0), torch.float16, True),
                                     ((3, 6, 0), torch.float32, False), ((3, 7, 1), torch.bfloat16, False),
                                     ((3, 3, 0), torch.bfloat16, False)):
            monkeypatch.setattr(chunked, "_triton_version", lambda v=version: v)
            assert chunked.transpose_workaround(cuda, dtype=dtype) is want, (version, dtype)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
        assert chunked.transpose_workaround(cuda, dtype=torch.bfloat16) is False
    finally:
        chunked.transpose_workaround(reset=True)


def test_head_tiles_smaller_than_head_dims_match_oracle() -> None:
    """K = 40, V = 36 with 16 x 16 head tiles (3 x 3 state programs, 3 V blocks in the o / dq-dk-dv loops,
    masked padding in each): output, final state and every gradient against the float64 oracle (float32)."""
    B, T, H, K, V = 1, 21, 1, 40, 36
    q, k = _rand(B, T, H, K, seed=1, grad=True), _rand(B, T, H, K, seed=2, grad=True)
    v = _rand(B, T, H, V, seed=3, grad=True)
    g = (-torch.rand(B, T, H, generator=torch.Generator().manual_seed(4))).to(DEV).requires_grad_(True)
    s0 = _rand(B, H, K, V, seed=5, grad=True)
    o, S = chunk_linear_attention(q, k, v, g=g, initial_state=s0, output_final_state=True, chunk_size=16,
                                  head_blocks=(16, 16))
    do, dS = _rand(B, T, H, V, seed=6), _rand(B, H, K, V, seed=7)
    grads = torch.autograd.grad([o, S], [q, k, v, g, s0], [do, dS])
    a = {n: _np(t) for n, t in zip(("q", "k", "v", "g", "s0"), (q, k, v, g, s0), strict=True)}
    o_ref, S_ref = ref.linear_attention(a["q"], a["k"], a["v"], g=a["g"], initial_state=a["s0"],
                                        output_final_state=True)
    np.testing.assert_allclose(_np(o), o_ref, atol=2e-5)
    np.testing.assert_allclose(_np(S), S_ref, atol=2e-5)
    d = ref.linear_attention_vjp(a["q"], a["k"], a["v"], _np(do), g=a["g"], initial_state=a["s0"],
                                 grad_final_state=_np(dS))
    for name, gr in zip(("dq", "dk", "dv", "dg", "dinitial_state"), grads, strict=True):
        np.testing.assert_allclose(_np(gr), d[name], atol=1e-4 * max(1.0, np.abs(d[name]).max()), err_msg=name)


# ------------------------------------------------------------------------------------------- Lightning

def test_lightning_attention_matches_decay_oracle_with_grad() -> None:
    """Per-head decay lambda_h = exp(-slope_h): slope 0 (plain causal linear attention), ALiBi-like slopes,
    and slope 50 (lambda ~ 2e-22: only the current token survives; a literal Lambda^{-1} would overflow),
    T = 37 over chunks of 16 (the last one of 5), with an initial state; output, final state, dq/dk/dv and
    d initial_state against the ``decay=`` oracle and its VJP (float32)."""
    B, T, H, K, V = 1, 37, 4, 8, 8
    slope = torch.tensor([0.0, 0.5, 2.0**-4, 50.0], device=DEV)
    q, k, v = (_rand(B, T, H, K, seed=s, grad=True) for s in (1, 2, 3))
    s0 = _rand(B, H, K, V, seed=4, grad=True)
    o, S = lightning_attention(q, k, v, slope=slope, initial_state=s0, output_final_state=True, chunk_size=16)
    assert S is not None and S.dtype == torch.float32
    lam = np.exp(-_np(slope))
    a = [_np(t) for t in (q, k, v, s0)]
    o_ref, S_ref = ref.linear_attention(a[0], a[1], a[2], decay=lam, initial_state=a[3], output_final_state=True)
    np.testing.assert_allclose(_np(o), o_ref, atol=3e-5)
    np.testing.assert_allclose(_np(S), S_ref, atol=3e-5)
    do, dS = _rand(B, T, H, V, seed=5), _rand(B, H, K, V, seed=6)
    grads = torch.autograd.grad([o, S], [q, k, v, s0], [do, dS])
    d = ref.linear_attention_vjp(a[0], a[1], a[2], _np(do), decay=lam, initial_state=a[3],
                                 grad_final_state=_np(dS))
    for name, gr in zip(("dq", "dk", "dv", "dinitial_state"), grads, strict=True):
        np.testing.assert_allclose(_np(gr), d[name], atol=1e-4 * max(1.0, np.abs(d[name]).max()), err_msg=name)


def test_lightning_equals_chunk_with_constant_gate_bf16() -> None:
    """slope in-kernel gives what g = -slope per token gives through the g path (bfloat16, bitwise for o:
    the same float32 gate values and the same arithmetic)."""
    B, T, H, K = 1, 20, 2, 16
    q, k, v = (_rand(B, T, H, K, dtype=torch.bfloat16, seed=s) for s in (1, 2, 3))
    slope = torch.tensor([0.25, 0.03125], device=DEV)
    o1, _ = lightning_attention(q, k, v, slope=slope, chunk_size=16)
    o2, _ = chunk_linear_attention(q, k, v, g=(-slope).expand(B, T, H).contiguous(), chunk_size=16)
    assert torch.equal(o1, o2)


# ------------------------------------------------------------------------------------------- segments

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_segment_carrying_equals_one_run(dtype: torch.dtype) -> None:
    """The float32 final state of segment 1 as the initial state of segment 2 equals one run over both
    (T = 19 + 14 with chunks of 16: the segment boundary falls inside a chunk of the single run).  float32:
    to 1e-5; bfloat16: the carried state is float32, but the chunk boundaries differ, so different decayed
    keys/queries and states are rounded to bfloat16 as dot operands: a few bfloat16 ulps of max|o|, max|S|
    (u = 2^-8 = 3.9e-3)."""
    B, T1, T2, H, K, V = 2, 19, 14, 2, 8, 4
    q, k = _rand(B, T1 + T2, H, K, dtype=dtype, seed=1), _rand(B, T1 + T2, H, K, dtype=dtype, seed=2)
    v = _rand(B, T1 + T2, H, V, dtype=dtype, seed=3)
    g = (-torch.rand(B, T1 + T2, H, generator=torch.Generator().manual_seed(4))).to(DEV, dtype)
    o, S = chunk_linear_attention(q, k, v, g=g, output_final_state=True, chunk_size=16)
    o1, S1 = chunk_linear_attention(q[:, :T1], k[:, :T1], v[:, :T1], g=g[:, :T1], output_final_state=True,
                                    chunk_size=16)
    assert S1 is not None and S1.dtype == torch.float32
    o2, S2 = chunk_linear_attention(q[:, T1:], k[:, T1:], v[:, T1:], g=g[:, T1:], initial_state=S1,
                                    output_final_state=True, chunk_size=16)
    rel = 1e-6 if dtype == torch.float32 else 1e-2
    np.testing.assert_allclose(_np(torch.cat([o1, o2], 1)), _np(o), atol=rel * float(o.abs().max()))
    np.testing.assert_allclose(_np(S2), _np(S), atol=rel * float(S.abs().max()))


# ------------------------------------------------------------------------------------------- bad inputs

def _ok() -> dict[str, torch.Tensor]:
    return {"q": _rand(1, 5, 2, 4), "k": _rand(1, 5, 2, 4), "v": _rand(1, 5, 2, 3)}


@pytest.mark.parametrize(("change", "arg"), [
    ({"g": -torch.rand(1, 5, 2) + 0.5}, "g"),
    ({"g": torch.full((1, 5, 2), float("nan"))}, "g"),
    ({"g": torch.full((1, 5, 2), float("-inf"))}, "g"),
    ({"g": -torch.rand(1, 5)}, "g"),
    ({"g": -torch.rand(1, 5, 2, dtype=torch.float64)}, "g"),
    ({"k": torch.zeros(1, 4, 2, 4)}, "k"),
    ({"v": torch.zeros(1, 5, 2, 3, dtype=torch.float16)}, "v"),
    ({"v": torch.zeros(1, 5, 2, 300)}, "v"),
    ({"q": torch.zeros(1, 0, 2, 4), "k": torch.zeros(1, 0, 2, 4), "v": torch.zeros(1, 0, 2, 3)}, "q"),
    ({"q": torch.zeros(1, 5, 2, 4, dtype=torch.float64)}, "q"),
    ({"q": torch.zeros(5, 2, 4)}, "q"),
    ({"initial_state": torch.zeros(1, 2, 3, 4)}, "initial_state"),
    ({"initial_state": torch.full((1, 2, 4, 3), float("inf"))}, "initial_state"),
    ({"chunk_size": 24}, "chunk_size"),
    ({"scale": float("nan")}, "scale"),
    ({"output_final_state": 1}, "output_final_state"),
    ({"head_blocks": (16, 12)}, "head_blocks"),
])
def test_bad_inputs_name_the_argument(change: dict, arg: str) -> None:
    kw = {**_ok(), **{n: (t.to(DEV) if isinstance(t, torch.Tensor) else t) for n, t in change.items()}}
    q, k, v = kw.pop("q"), kw.pop("k"), kw.pop("v")
    with pytest.raises(InputError, match=f"chunk_linear_attention: argument '{arg}'"):
        chunk_linear_attention(q, k, v, **kw)


@pytest.mark.parametrize("slope", [torch.tensor([0.5, -0.1]), torch.tensor([0.5]), torch.tensor([0.1, math.inf]),
                                   torch.tensor([1, 2])])
def test_lightning_bad_slope(slope: torch.Tensor) -> None:
    a = _ok()
    with pytest.raises(InputError, match="lightning_attention: argument 'slope'"):
        lightning_attention(a["q"], a["k"], a["v"], slope=slope.to(DEV))


# ------------------------------------------------------------------------- compiled mode (no GPU needed)

_COMPILE_SCRIPT = r"""
from veriformer.fast.linear_attention import chunked as la
from veriformer.fast._triton.ptx import compile_ptx

def build(fn, dt, consts, **opts):
    types = {n: "*" + dt for n in ("Q", "K_", "V_", "DO", "DQ", "DK", "DV", "O", "HS", "DHS", "SCR")}
    types.update({n: "*fp32" for n in ("G_", "SLOPE", "H0", "HT", "DHT", "DH0", "DGP", "EXTRA", "DG")}, scale="fp32")
    return compile_ptx(fn, types, consts, **opts)

common = dict(GATE=1, BT=64, EMULATE=False)
ptx = [build(la._fwd_h, "bf16", dict(common, USE_H0=True, STORE_HT=True, BK=64, BV=64, DOT_PREC="tf32"),
             num_warps=8, num_stages=2),
       build(la._fwd_o, "bf16", dict(common, BK=128, BV=64, DOT_PREC="tf32"), num_warps=8, num_stages=2),
       build(la._bwd_dh, "bf16", dict(common, STORE_DH0=True, BK=64, BV=64, DOT_PREC="tf32"), num_warps=8,
             num_stages=2),
       build(la._bwd_dqk, "bf16", dict(common, STORE_DG=True, FUSE_DV=False, BK=64, BV=64, DOT_PREC="tf32"),
             num_warps=8, num_stages=2),
       build(la._bwd_dqk, "bf16", dict(common, STORE_DG=True, FUSE_DV=False, BK=64, BV=64, DOT_PREC="tf32",
                                       TRANS_SCRATCH=True), num_warps=8, num_stages=2),
       build(la._bwd_dv, "bf16", dict(common, BK=128, BV=64, DOT_PREC="tf32"), num_warps=8, num_stages=2)]
build(la._bwd_dg, "bf16", dict(BT=64, EMULATE=False), num_warps=4)
fp32 = build(la._fwd_o, "fp32", dict(common, GATE=2, BK=128, BV=64, DOT_PREC="ieee"), num_warps=8, num_stages=2)
print("bf16_mma=%d fp32_tf32=%d" % (all("mma" in p for p in ptx), "tf32" in fp32))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (compilation): runs under VERIFORMER_PROFILE=deep")
def test_kernels_compile_for_sm90_without_a_gpu() -> None:
    """The GPU code path (EMULATE=False: native dtypes, tensor-core dots) of every kernel compiles to PTX for
    an H100 (sm_90) in a subprocess with the interpreter off; bf16 dots use MMA, float32 no TF32."""
    out = compile_in_subprocess(_COMPILE_SCRIPT)
    assert out.split()[-2:] == ["bf16_mma=1", "fp32_tf32=0"], out


# ------------------------------------------------------------------------------------------- benchmark

def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark("linear_attention").run(["--smoke", "--modes", "fwd"])
    out = capsys.readouterr().out
    assert "ours" in out and rows and rows[0]["ratio"] == 1.0
    timed = [r for r in rows if "ms" in r]
    assert {r["impl"] for r in rows if r.get("note") == "not installed"} | {r["impl"] for r in timed} >= {
        "triton chunk (ours)", "triton lightning (ours)", "torch chunked (ours, C=64)", "fla chunk_simple_gla"}
    assert all(math.isfinite(r["ms"]) and r["diff"] < 1e-4 for r in timed if not r["impl"].startswith("sdpa"))


# ------------------------------------------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gpu_size_against_float32_torch_chunked(dtype: torch.dtype) -> None:
    """B=2, H=4, T=1000 (not a multiple of 64), K=V=128, gates and an initial state on CUDA: output, final
    state and gradients against the plain-torch chunked form run in float32 (autograd)."""
    B, T, H, D = 2, 1000, 4, 128
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=gen).to(dtype).requires_grad_() for _ in range(3))
    g = (-0.1 * torch.rand(B, T, H, device="cuda", generator=gen)).requires_grad_()
    s0 = torch.randn(B, H, D, D, device="cuda", generator=gen).requires_grad_()
    do = torch.randn(B, T, H, D, device="cuda", generator=gen).to(dtype)
    o, S = chunk_linear_attention(q, k, v, g=g, initial_state=s0, output_final_state=True)
    grads = torch.autograd.grad(o, (q, k, v, g, s0), do)
    ins32 = [t.detach().float().requires_grad_() for t in (q, k, v, g, s0)]
    o32, S32 = torch_chunked(ins32[0], ins32[1], ins32[2], g=ins32[3], initial_state=ins32[4],
                             output_final_state=True, chunk_size=64)
    g32 = torch.autograd.grad(o32, ins32, do.float())
    rel = 2e-2 if dtype == torch.bfloat16 else 4e-3
    assert (o.float() - o32).abs().max() <= rel * o32.abs().max()
    assert (S - S32).abs().max() <= rel * S32.abs().max()
    for name, gr, gg in zip(("dq", "dk", "dv", "dg", "ds0"), grads, g32, strict=True):
        assert (gr.float() - gg).abs().max() <= 4 * rel * gg.abs().max(), name
