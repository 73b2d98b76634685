"""The Triton flash attention kernels against the float64 oracles (RoPE's: tests/rope/).

Without CUDA these run in Triton's CPU interpreter (selected by ``veriformer.fast._triton.env``), at small
shapes; ``block_sizes=(16, 16)`` forces several query and key blocks so that the block-skipping logic
(causal band, sliding window, sink blocks, empty rows) is exercised.  GPU-size tests are marked ``gpu``.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON, interpreting  # isort: skip

from _helpers import as_numpy, compile_in_subprocess, kernel_device, load_benchmark, seeded_randn

import veriformer
from veriformer import reference as ref
from veriformer.fast.attention import naive
from veriformer.fast.attention.flash import attention
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")

DEV = kernel_device()
ALL = frozenset({"causal", "gqa", "window", "sinks"})


_rand = functools.partial(seeded_randn, device=DEV)
_np = as_numpy


# ---------------------------------------------------------------------------------------------- check()

def test_attention_check_multi_block_all_features_with_grad() -> None:
    """check() with 16x16 tiles (several query/key blocks at the strategy's sizes), every feature."""
    fn = functools.partial(attention, block_sizes=(16, 16))
    r = veriformer.check(fn, op="softmax_attention", dtypes=("float16", "bfloat16", "float32"), device=DEV,
                         features=ALL, grad=True, max_examples=3, seed=1, name="triton_flash[16x16]")
    assert r.passed, r.summary()


# ------------------------------------------------------------------------------------- attention, direct

CASES = [
    # B, H, Hkv, T, S, D, Dv, causal, window, sinks
    (1, 2, 2, 37, 53, 32, 32, False, None, 0),  # odd T, S, no mask
    (2, 2, 1, 1, 50, 64, 64, True, None, 0),  # decode: T=1, S>T
    (1, 4, 2, 20, 45, 64, 64, True, 7, 2),  # S>T, window and sinks, GQA
    (1, 2, 1, 40, 25, 64, 64, True, None, 0),  # S<T causal: the first 15 rows see no key
    (1, 2, 2, 40, 25, 16, 16, False, 3, 2),  # window with S<T: empty rows, sinks
    (1, 2, 2, 33, 33, 64, 64, False, 1, 0),  # window 1: the diagonal only
    (1, 2, 2, 33, 70, 64, 64, True, 5, 40),  # sinks reaching past the window
    (1, 4, 1, 19, 19, 80, 48, True, None, 0),  # MQA, D and Dv not powers of two
    (1, 2, 2, 17, 23, 5, 3, False, None, 0),  # tiny head dims (zero-padded in the kernel)
    (1, 1, 1, 9, 12, 256, 256, True, None, 0),  # D = 256
]


def _oracle(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, do: torch.Tensor, causal: bool,
            window: int | None, sinks: int) -> tuple[np.ndarray, ...]:
    kw: dict[str, Any] = {"scale": q.shape[-1] ** -0.5, "causal": causal, "window": window, "sinks": sinks}
    o, lse = ref.online_softmax_attention(_np(q), _np(k), _np(v), block_size=k.shape[2], return_lse=True, **kw)
    dq, dk, dv = ref.softmax_attention_vjp(_np(q), _np(k), _np(v), _np(do), **kw)
    return o, lse, dq, dk, dv


def test_small_launch_coarsening_keeps_every_result() -> None:
    """The GPU's small-launch path (one head-dim bucket >= 64 for D and DV, pointer loads, causal runs as a window
    longer than every history; fewer compilations in check() campaigns) applied under the interpreter: output, lse
    and gradients of every direct case match the float64 oracle as the default path does."""
    from veriformer.fast.attention.flash import coarse_small_launches

    for B, H, Hkv, T, S, D, Dv, causal, window, sinks in CASES:
        q, k = _rand(B, H, T, D, seed=1, grad=True), _rand(B, Hkv, S, D, seed=2, grad=True)
        v, do = _rand(B, Hkv, S, Dv, seed=3, grad=True), _rand(B, H, T, Dv, seed=4)
        with coarse_small_launches():
            o, lse = attention(q, k, v, causal=causal, window=window, sinks=sinks, return_lse=True)
            dq, dk, dv = torch.autograd.grad(o, (q, k, v), do)
        go, glse, gdq, gdk, gdv = _oracle(q, k, v, do, causal, window, sinks)
        for name, got, gold in (("o", o, go), ("dq", dq, gdq), ("dk", dk, gdk), ("dv", dv, gdv)):
            np.testing.assert_allclose(_np(got), gold, atol=2e-5 * max(1.0, np.abs(gold).max()), rtol=0,
                                       err_msg=f"{name} {(T, S, D, Dv, causal, window, sinks)}")
        vis = ref.visibility_mask(T, S, causal=causal, window=window, sinks=sinks)
        rows = vis.any(axis=1)
        np.testing.assert_allclose(_np(lse)[..., rows], glse[..., rows], atol=1e-5, err_msg="lse")


@pytest.mark.parametrize("case", CASES, ids=lambda c: "B{}H{}kv{}T{}S{}D{}Dv{}c{}w{}s{}".format(*c))
def test_attention_float32_matches_oracle(case: tuple[Any, ...]) -> None:
    B, H, Hkv, T, S, D, Dv, causal, window, sinks = case
    q, k = _rand(B, H, T, D, seed=1, grad=True), _rand(B, Hkv, S, D, seed=2, grad=True)
    v, do = _rand(B, Hkv, S, Dv, seed=3, grad=True), _rand(B, H, T, Dv, seed=4)
    o, lse = attention(q, k, v, causal=causal, window=window, sinks=sinks, return_lse=True, block_sizes=(16, 16))
    dq, dk, dv = torch.autograd.grad(o, (q, k, v), do)
    go, glse, gdq, gdk, gdv = _oracle(q, k, v, do, causal, window, sinks)
    vis = ref.visibility_mask(T, S, causal=causal, window=window, sinks=sinks)
    empty = ~vis.any(axis=1)
    for name, got, gold in (("o", o, go), ("dq", dq, gdq), ("dk", dk, gdk), ("dv", dv, gdv)):
        a = _np(got)
        assert np.isfinite(a).all(), f"{name}: non-finite values"
        np.testing.assert_allclose(a, gold, atol=2e-5 * max(1.0, np.abs(gold).max()), rtol=0, err_msg=name)
    lse_np = _np(lse)
    assert np.all(np.isneginf(lse_np[:, :, empty])) and np.isfinite(lse_np[:, :, ~empty]).all()
    np.testing.assert_allclose(lse_np[:, :, ~empty], glse[:, :, ~empty], atol=1e-5, rtol=0)
    if empty.any():  # rows with no visible key: o = 0 and dq = 0 exactly
        assert np.all(_np(o)[:, :, empty] == 0) and np.all(_np(dq)[:, :, empty] == 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_attention_low_precision_empty_rows_and_gqa(dtype: torch.dtype) -> None:
    """Half precision with empty rows (S < T, window and sinks) and GQA: finite, zero where empty, and closer
    to the oracle than the naive baseline in the same dtype (float32 accumulation)."""
    B, H, Hkv, T, S, D = 1, 4, 2, 40, 30, 64
    q, k, v = _rand(B, H, T, D, dtype=dtype, seed=5, grad=True), _rand(B, Hkv, S, D, dtype=dtype, seed=6,
                                                                      grad=True), \
        _rand(B, Hkv, S, D, dtype=dtype, seed=7, grad=True)
    do = _rand(B, H, T, D, dtype=dtype, seed=8)
    kw: dict[str, Any] = {"causal": True, "window": 6, "sinks": 2}
    o = attention(q, k, v, **kw, block_sizes=(16, 16))
    grads = torch.autograd.grad(o, (q, k, v), do)
    go, _, *ggrads = _oracle(q, k, v, do, **kw)
    ob = naive.softmax_attention(q, k, v, scale=D**-0.5, **kw)
    assert o.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert np.isfinite(_np(o)).all() and all(np.isfinite(_np(g)).all() for g in grads)
    assert np.all(_np(o)[:, :, :T - S] == 0)
    err, err_naive = np.abs(_np(o) - go).max(), np.abs(_np(ob) - go).max()
    assert err <= err_naive + 1e-3, (err, err_naive)
    for g, gg in zip(grads, ggrads, strict=True):
        assert np.abs(_np(g) - gg).max() <= 0.05 * max(1.0, np.abs(gg).max())


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3], CASES[6], CASES[7]],
                         ids=["nomask", "window_sinks_gqa", "empty_rows", "sinks_past_window", "mqa_odd_dims"])
def test_fused_and_split_backward_agree_with_the_oracle(case: tuple[Any, ...]) -> None:
    """The one-launch backward (default: dK/dV and dQ programs in one grid) and the two-kernel backward
    (``config_override(bwd={"FUSED": 0})``, the path of TMA loads and autotuning) give the oracle's VJP, and the same
    bits, since each program runs the same block code; dK/dV and dQ take different tiles."""
    from veriformer.fast.attention.flash import config_override

    B, H, HKV, T, S, D, DV, causal, window, sinks = case
    q, k, v = (seeded_randn(B, h, n, d, seed=i, grad=True)
               for i, (h, n, d) in enumerate(((H, T, D), (HKV, S, D), (HKV, S, DV))))
    do = seeded_randn(B, H, T, DV, seed=9)
    grads = {}
    for fused in (1, 0):
        with config_override(bwd={"BLOCK_M": 16, "BLOCK_N": 32, "FUSED": fused}, dq={"BLOCK_M": 32, "BLOCK_N": 16}):
            o = attention(q, k, v, causal=causal, window=window, sinks=sinks)
            grads[fused] = torch.autograd.grad(o, (q, k, v), do)
    G = H // HKV
    kr, vr = (t.detach().repeat_interleave(G, 1) for t in (k, v))
    _, _, *want = _oracle(q.detach(), kr, vr, do, causal, window, sinks)
    want[1], want[2] = (w.reshape(B, HKV, G, S, -1).sum(2) for w in want[1:])
    for got_fused, got_split, w in zip(grads[1], grads[0], want, strict=True):
        assert torch.equal(got_fused, got_split)
        np.testing.assert_allclose(got_fused.double().numpy(), w, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("case", [(1, 4, 2, 150, 300, 64, 64, True, None, 0), (1, 2, 2, 200, 200, 64, 64, True, 90, 3),
                                  (1, 2, 1, 130, 190, 48, 64, False, None, 0)],
                         ids=["causal_gqa_s_gt_t", "window_sinks", "nomask_mqa"])
def test_backward_at_the_gpu_tiles(case: tuple[Any, ...]) -> None:
    """The GPU's default backward tiles for 16-bit inputs (dK/dV: 128 keys in steps of 32 queries; dQ: 128 queries in
    steps of 64 keys; one launch), run under the interpreter on sizes that leave partial, edge and fully visible
    blocks, give the oracle's VJP."""
    from veriformer.fast.attention.flash import _bwd_config, _dq_config, config_override

    bwd = {k: v for k, v in _bwd_config(4096, 4096, 128, torch.bfloat16, gpu=True).items() if k.startswith("BLOCK")}
    dq = {k: v for k, v in _dq_config(4096, 4096, 128, torch.bfloat16, gpu=True).items() if k.startswith("BLOCK")}
    assert (bwd["BLOCK_N"], dq["BLOCK_M"]) == (128, 128)
    B, H, HKV, T, S, D, DV, causal, window, sinks = case
    q, k, v = (seeded_randn(B, h, n, d, seed=i, grad=True)
               for i, (h, n, d) in enumerate(((H, T, D), (HKV, S, D), (HKV, S, DV))))
    do = seeded_randn(B, H, T, DV, seed=5)
    with config_override(bwd=bwd, dq=dq):
        got = torch.autograd.grad(attention(q, k, v, causal=causal, window=window, sinks=sinks), (q, k, v), do)
    G = H // HKV
    kr, vr = (t.detach().repeat_interleave(G, 1) for t in (k, v))
    _, _, *want = _oracle(q.detach(), kr, vr, do, causal, window, sinks)
    want[1], want[2] = (w.reshape(B, HKV, G, S, -1).sum(2) for w in want[1:])
    for g_, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g_.double().numpy(), w, atol=5e-5, rtol=1e-4)


def test_attention_block_sizes_agree_and_noncontiguous_inputs() -> None:
    B, H, T, S, D = 2, 2, 45, 61, 64
    qt = _rand(B, T, H, D, seed=9)  # [B, T, H, D] memory layout, viewed as [B, H, T, D]
    q, k, v = qt.transpose(1, 2), _rand(B, H, S, D, seed=10), _rand(B, H, S, D, seed=11)
    outs = [attention(q, k, v, causal=True, window=20, sinks=3, block_sizes=bs)
            for bs in ((16, 16), (32, 16), (16, 64), (64, 64))]
    assert not q.is_contiguous()
    for o in outs[1:]:
        np.testing.assert_allclose(_np(o), _np(outs[0]), atol=2e-6, rtol=0)
    gold = ref.softmax_attention(_np(q), _np(k), _np(v), causal=True, window=20, sinks=3)
    np.testing.assert_allclose(_np(outs[0]), gold, atol=2e-5, rtol=0)


def test_attention_scale_and_default_scale() -> None:
    q, k, v = _rand(1, 2, 8, 32, seed=12), _rand(1, 2, 8, 32, seed=13), _rand(1, 2, 8, 32, seed=14)
    for scale in (None, 0.3, 1.0):
        gold = ref.softmax_attention(_np(q), _np(k), _np(v), scale=scale)
        np.testing.assert_allclose(_np(attention(q, k, v, scale=scale)), gold, atol=2e-5, rtol=0)


@pytest.mark.parametrize(("kwargs", "arg"), [
    ({"q": (1, 2, 4, 300)}, "q"),
    ({"k": (1, 3, 4, 32)}, "k"),
    ({"v": (1, 2, 5, 32)}, "v"),
    ({"window": 0}, "window"),
    ({"sinks": -1}, "sinks"),
    ({"causal": 1}, "causal"),
    ({"dtype": torch.float64}, "q"),
    ({"block_sizes": (8, 16)}, "block_sizes"),
])
def test_attention_bad_inputs(kwargs: dict[str, Any], arg: str) -> None:
    shapes = {"q": (1, 2, 4, 32), "k": (1, 2, 4, 32), "v": (1, 2, 4, 32)}
    shapes.update({n: kwargs.pop(n) for n in ("q", "k", "v") if n in kwargs})
    dtype = kwargs.pop("dtype", torch.float32)
    t = {n: _rand(*s, dtype=dtype) for n, s in shapes.items()}
    with pytest.raises(InputError, match=f"argument '{arg}'"):
        attention(t["q"], t["k"], t["v"], **kwargs)


# ------------------------------------------------------------------------- compiled mode (no GPU needed)

_COMPILE_SCRIPT = r"""
from veriformer.fast.attention import flash as fa
from veriformer.fast.rope import fused as tr
from veriformer.fast._triton.ptx import compile_ptx

def build(fn, ptrs, consts, scalars, **opts):
    return compile_ptx(fn, {**scalars, **ptrs}, consts, **opts)

def io(dt):
    d = {n: "*" + dt for n in ("Q", "K", "V", "O", "DO", "DK", "DV_", "DQ", "QO", "KO")}
    d.update(LSE="*fp32", DELTA="*fp32", POS="*i64", TURNS="*fp64")
    return d

sc = {"qk_scale": "fp32", "sm_scale": "fp32", "offset": "i64"}
flags = dict(CAUSAL=True, WINDOW=True, BLOCK_M=64, BLOCK_N=32, BLOCK_D=128, BLOCK_DV=64, EMULATE=False)
bf16 = [build(k, io("bf16"), dict(flags, DOT_PREC="tf32"), sc, num_warps=4, num_stages=2)
        for k in (fa._attn_fwd, fa._attn_bwd_dkdv, fa._attn_bwd_dq)]
build(fa._attn_bwd_delta, io("bf16"), dict(BLOCK_M=64, BLOCK_DV=64), sc, num_warps=4)
rope = build(tr._rope_kernel, io("bf16"), dict(INTERLEAVED=True, INVERSE=True, HAS_POS=True, COPY_TAIL=True,
                                               BLOCK_T=16, BLOCK_P=32, BLOCK_TAIL=16, EMULATE=False), sc, num_warps=4)
fp32 = build(fa._attn_fwd, io("fp32"), dict(flags, DOT_PREC="ieee"), sc, num_warps=4, num_stages=2)
print("bf16_mma=%d rope_approx=%d rope_rn_bf16=%d fp32_tf32=%d" % (
    all("mma" in p for p in bf16), "cos.approx" in rope or "sin.approx" in rope, "cvt.rn.bf16" in rope,
    "tf32" in fp32))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (~20 s of compilation): runs under VERIFORMER_PROFILE=deep")
def test_kernels_compile_for_sm90_without_a_gpu() -> None:
    """The GPU code path (EMULATE=False: native dtypes, tensor-core dots, libdevice) compiles to PTX for an
    H100 (sm_90) in a subprocess with the interpreter off, so compiled-mode-only errors show up on a
    CPU-only machine.  bf16 dots must use MMA instructions, RoPE the accurate libdevice cos/sin (no
    ``cos.approx``) and round-to-nearest-even stores, float32 IEEE products (no TF32)."""
    stdout = compile_in_subprocess(_COMPILE_SCRIPT)
    assert stdout.split()[-4:] == ["bf16_mma=1", "rope_approx=0", "rope_rn_bf16=1", "fp32_tf32=0"], stdout


# ------------------------------------------------------------------------------------------- benchmarks

@pytest.mark.parametrize("name", ["attention", "rope"])
def test_benchmark_smoke(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark(name).run(["--smoke", "--modes", "fwd"])
    out = capsys.readouterr().out
    assert "ours" in out and rows and rows[0]["ratio"] == 1.0
    assert all(math.isfinite(r["ms"]) and r["diff"] < 0.05 for r in rows)


def test_tuning_sweep_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/tune_attention.py: every configuration of the smoke sweeps (forward, dK/dV, dQ) runs through
    config_override, each default is marked, and the outputs agree with the default configuration's to bf16
    rounding."""
    rows = load_benchmark("tune_attention").run(["--smoke"])
    assert "speedup vs default" in capsys.readouterr().out
    timed = [r for r in rows if "diff" in r]
    assert len(timed) == 8 and all(r["diff"] < 2e-2 and math.isfinite(r["ms"]) for r in timed)
    assert sorted(r["kernel"] for r in rows if r.get("default") == "*") == ["dkdv", "dq", "fwd"]


def test_config_override_applies_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The overridden tiles reach each kernel's launch (recorded by wrapping ``launch``), the results stay those
    of the default tiles, and bad keys or values name the argument."""
    from veriformer.fast.attention import flash as fa
    from veriformer.fast.attention.flash import config_override

    seen: list[tuple[str, int, int]] = []

    def recording(kernel: Any, grid: Any, *args: Any, **kwargs: Any) -> None:
        if "BLOCK_N" in kwargs:
            seen.append((kernel.fn.__name__, kwargs["BLOCK_M"], kwargs["BLOCK_N"]))
        if "BLOCK_N1" in kwargs:
            seen.append((kernel.fn.__name__, *(kwargs[f"BLOCK_{x}"] for x in ("M1", "N1", "M2", "N2"))))
        real_launch(kernel, grid, *args, **kwargs)

    real_launch = fa.launch
    monkeypatch.setattr(fa, "launch", recording)
    q, k, v = (torch.randn(1, 1, 40, 16, dtype=torch.float32, requires_grad=True) for _ in range(3))
    with config_override(fwd={"BLOCK_M": 16, "BLOCK_N": 32}, bwd={"BLOCK_M": 32}):
        o = attention(q, k, v, causal=True)
    assert seen == [("_attn_fwd", 16, 32)]
    np.testing.assert_allclose(o.detach().numpy(), attention(q, k, v, causal=True).detach().numpy(), atol=1e-6)
    do = torch.randn_like(q)
    ref_grads = torch.autograd.grad(attention(q, k, v, causal=True), (q, k, v), do)
    for fused, want in ((0, [("_attn_bwd_dkdv", 16, 32), ("_attn_bwd_dq", 32, 16)]),
                        (1, [("_attn_bwd_fused", 16, 32, 32, 16)])):
        seen.clear()
        with config_override(bwd={"BLOCK_M": 16, "BLOCK_N": 32, "FUSED": fused}, dq={"BLOCK_M": 32, "BLOCK_N": 16}):
            grads = torch.autograd.grad(attention(q, k, v, causal=True), (q, k, v), do)
        assert seen[1:] == want, seen
        for a, b in zip(grads, ref_grads, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    with pytest.raises(InputError, match="'bwd'"), config_override(bwd={"FUSED": 2}):
        pass
    with pytest.raises(InputError, match="'dq'"), config_override(dq={"TMA": 2}):
        pass
    with pytest.raises(InputError, match="'fwd'"), config_override(fwd={"BLOCK_M": 24}):
        pass
    with pytest.raises(InputError, match="'bwd'"), config_override(bwd={"block_m": 32}):
        pass
    with pytest.raises(InputError, match="'kernel'"), config_override(kernel="flash", bwd={"BLOCK_M": 32}):
        pass


def test_config_override_is_per_kernel_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """An override of flash attention's backward does not reach the flash dK/dV kernel that VQ attention's
    backward launches (it used to: one global table); ``kernel="vq_attention"`` reaches it."""
    from veriformer.fast.attention import flash as fa
    from veriformer.fast.attention.flash import config_override
    from veriformer.fast.vq import linear_time as vqa

    seen: list[tuple[str, int, int]] = []

    def recorder(real: Any) -> Any:
        def recording(kernel: Any, grid: Any, *args: Any, **kwargs: Any) -> None:
            if "BLOCK_N" in kwargs and kernel.fn.__name__ == "_attn_bwd_dkdv":
                seen.append((kernel.fn.__name__, kwargs["BLOCK_M"], kwargs["BLOCK_N"]))
            real(kernel, grid, *args, **kwargs)
        return recording

    monkeypatch.setattr(fa, "launch", recorder(fa.launch))
    monkeypatch.setattr(vqa, "launch", recorder(vqa.launch))
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 40, 16, generator=g, requires_grad=True) for _ in range(3))
    codebook = torch.randn(1, 4, 16, generator=g)

    def dkdv_tiles(**override: Any) -> list[tuple[str, int, int]]:
        seen.clear()
        with config_override(**override):
            o = vqa.vq_attention(q, k, v, codebook, causal=True)
            torch.autograd.grad(o, (q, k, v), torch.ones_like(o))
        return list(seen)

    default = dkdv_tiles()
    assert default and dkdv_tiles(bwd={"BLOCK_M": 16, "BLOCK_N": 64}) == default
    assert dkdv_tiles(kernel="vq_attention", bwd={"BLOCK_M": 16, "BLOCK_N": 64}) == [("_attn_bwd_dkdv", 16, 64)]


_STATIC_SCRIPT = r"""
import json, sys
sys.path.insert(0, "benchmarks")
import sm90_static
rows = sm90_static.run([])
print("ROWS" + json.dumps([{k: r[k] for k in ("family", "kernel", "spill", "mma", "copies", "blocks", "loads_narrow")}
                           for r in rows]))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (~30 s of compilation): runs under VERIFORMER_PROFILE=deep")
def test_sm90_static_report_no_spills_and_tensor_core_pipelines() -> None:
    """benchmarks/sm90_static.py records the launches every wrapper makes on a GPU (forward and backward, benchmark
    shapes) and compiles them for sm_90 as Triton's JIT would: no kernel spills registers (Triton's own ptxas
    log), every block fits on an SM (ReRoPE's float32 tiles once needed 241-274 KiB of shared memory: no block could
    launch), the looped tile-product kernels (flash attention, VQ, SSD chunk kernels, linear-attention state
    kernels, ReRoPE) use wgmma with cp.async-pipelined loads, and no kernel reads its tiles element by element
    (1-2 byte loads: the flash dK/dV, VQ and MLA kernels did once their head dims were left unspecialised) except
    where the layout makes the elements non-contiguous (the selective scan's per-step B/C columns of [B, N, L]
    tensors, the Monarch weight gradient's transposed operand)."""
    import json

    out = compile_in_subprocess(_STATIC_SCRIPT)
    rows = json.loads(out.split("ROWS", 1)[1])
    assert {r["family"] for r in rows} >= {"attention", "rope", "linear_attention", "vq_attention", "selective_scan",
                                           "ssd", "s4d", "mla", "monarch", "rerope"}
    limit: dict[str, int] = {}
    bad = [r for r in rows if not 0 <= r["spill"] <= limit.get(r["kernel"], 0) or not r["blocks"]]
    assert not bad, bad
    looped = {"_attn_fwd", "_attn_bwd_dkdv", "_attn_bwd_dq", "_attn_bwd_fused", "_vq_fwd", "_vq_bwd_dq", "_vq_quantize",
              "_chunk_state_kernel", "_scan_fwd_kernel", "_bwd_dc_kernel", "_bwd_dxdb_kernel", "_fwd_h", "_bwd_dh",
              "_bwd_dqk", "_rerope_fwd", "_rerope_bwd_dkdv", "_rerope_bwd_dq"}
    bad = [r for r in rows if r["kernel"] in looped and (r["mma"] != "wgmma" or r["copies"] == "-")]
    assert not bad, bad
    strided = {"_scan_fwd", "_scan_bwd", "_weight_grad"}
    bad = [r for r in rows if r["kernel"] not in strided and r["loads_narrow"] != 0]
    assert not bad, bad


_STATIC_FP32_SCRIPT = r"""
import json, sys
sys.path.insert(0, "benchmarks")
import sm90_static
rows = sm90_static.run(["--dtype", "float32"])
print("ROWS" + json.dumps([{k: r.get(k) for k in ("family", "kernel", "config", "spill", "blocks", "error")}
                           for r in rows]))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (~2 min of compilation): runs under VERIFORMER_PROFILE=deep")
def test_sm90_static_float32_launches_do_not_spill() -> None:
    """The same launches with float32 inputs, whose IEEE products are FMA loops with their operands in registers:
    every kernel compiles for sm_90 without a register spill and fits on an SM (on 2026-12-05 the float32 paths of
    flash attention, linear attention, VQ, SSD, MLA and Monarch spilled 0.04-36 KB per thread at the 16-bit tiles)."""
    import json

    rows = json.loads(compile_in_subprocess(_STATIC_FP32_SCRIPT, timeout=1200).split("ROWS", 1)[1])
    assert len({r["family"] for r in rows}) >= 10
    # the SSD dC kernel at N = 128: no launch configuration is spill-free (16-64 rows, 2-16 warps, 1-4 stages tried;
    # 26 KB before): its opening dY h_in product and the dA prefix-sum block are live together -- a kernel change
    limit = {"_bwd_dc_kernel": 308}
    bad = [r for r in rows if r.get("error") or not 0 <= r["spill"] <= limit.get(r["kernel"], 0) or not r["blocks"]]
    assert not bad, bad


def test_recorded_launches_need_compiled_mode() -> None:
    from veriformer.fast._triton.env import recorded_launches

    if not interpreting():
        pytest.skip("runs where the interpreter is on")
    with pytest.raises(RuntimeError, match="compiled mode"), recorded_launches():
        pass


# ------------------------------------------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.parametrize("tma", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_attention_gpu_size_against_sdpa(dtype: torch.dtype, tma: bool) -> None:
    """B=2, H=8, T=S=1024, D=128 causal on CUDA: output and gradients against SDPA in float32, with the default
    pointer loads and with the TMA loads (config_override TMA=1)."""
    from veriformer.fast.attention.flash import config_override

    q, k, v = (torch.randn(2, 8, 1024, 128, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    do = torch.randn(2, 8, 1024, 128, device="cuda", dtype=dtype)
    cfg = {"TMA": int(tma)}
    with config_override(fwd=cfg, bwd=cfg):
        o = attention(q, k, v, causal=True)
        grads = torch.autograd.grad(o, (q, k, v), do)
    q32, k32, v32 = (t.detach().float().requires_grad_(True) for t in (q, k, v))
    o32 = torch.nn.functional.scaled_dot_product_attention(q32, k32, v32, is_causal=True)
    g32 = torch.autograd.grad(o32, (q32, k32, v32), do.float())
    tol = 2e-2 if dtype == torch.bfloat16 else 4e-3
    assert (o.float() - o32).abs().max() < tol
    for g, gg in zip(grads, g32, strict=True):
        assert (g.float() - gg).abs().max() < 8 * tol


@pytest.mark.gpu
def test_kernels_check_on_cuda_with_gpu_tiles() -> None:
    r = veriformer.check(attention, op="softmax_attention", dtypes=("float16", "bfloat16", "float32"),
                         device="cuda", features=ALL, grad=True)
    assert r.passed, r.summary()
