"""Tests of the linear-time Transformer-VQ kernel (fast/vq/linear_time.py): conformance through check() with
gradients for several block sizes, equality with dense attention over k_hat (float64 oracle) at longer T
than the strategy draws, causal and not, shared and per-head codebooks, ties and near-ties of the
quantiser, unused codes with huge logits, the straight-through rule, bad inputs, and a GPU-size test."""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import pytest
import torch
from _helpers import compile_in_subprocess, load_benchmark

import veriformer
from veriformer import reference as ref
from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.properties.vq.strategies import VQCase
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="needs triton")

if HAVE_TRITON:
    from veriformer.fast.vq.linear_time import vq_attention, vq_quantize



def _case(T: int, *, C: int = 9, D: int = 8, Dv: int = 5, H: int = 2, shared: bool = False, causal: bool = True,
          noise: float = 0.2, seed: int = 0, ties: bool = False) -> VQCase:
    return VQCase(B=2, H=H, T=T, D=D, Dv=Dv, C=C, shared_codebook=shared, noise=noise, causal=causal, seed=seed,
                  ties=ties)


def _tensors(case: VQCase, dtype: torch.dtype, grad: bool = False) -> dict[str, torch.Tensor]:
    out = {n: torch.tensor(a).to(dtype) for n, a in case.arrays().items()}
    for n in ("q", "k", "v"):
        out[n].requires_grad_(grad)
    return out


def _rel(x: torch.Tensor, g: np.ndarray) -> float:
    return float(np.abs(x.detach().double().numpy() - g).max() / max(np.abs(g).max(), 1e-300))


# ------------------------------------------------------------------------------------------ conformance

def _check_cases(W: int) -> list[VQCase]:
    """Causal cases spanning several blocks of W (the last one short), shared and per-head codebooks, one
    code for every key, non-causal (T = 1: :func:`test_single_token`)."""
    return [VQCase(B=2, H=2, T=3 * W + 2, D=8, Dv=3, C=7, shared_codebook=False, noise=0.2, causal=True, seed=W),
            VQCase(B=1, H=2, T=2 * W + 1, D=4, Dv=8, C=5, shared_codebook=True, noise=0.05, causal=True, amp=2.0,
                   scale=1.0, seed=W + 1),
            VQCase(B=1, H=1, T=min(19, 4 * W), D=2, Dv=1, C=3, one_code=True, causal=True, seed=W + 2),
            VQCase(B=2, H=1, T=13, D=16, Dv=5, C=12, shared_codebook=True, noise=0.2, causal=False, seed=W + 3)]


@pytest.mark.parametrize(("block_size", "dtype"), [(1, "float32"), (3, "bfloat16")])
def test_check_with_grad_for_block_sizes(block_size: int, dtype: str) -> None:
    """check() with gradients on explicit cases that span several blocks: W = 1 (every earlier key in the
    cache) and 3 (T not a multiple of W); the registered W = 4 runs the drawn check (float16 too) in the
    catalogue."""
    r = veriformer.check(functools.partial(vq_attention, block_size=block_size), op="vq_attention",
                         dtypes=(dtype,), grad=True, cases=_check_cases(block_size))
    assert r.passed, r.summary()
    assert len(r.cases) == 4


@pytest.mark.parametrize(("dtype", "causal", "shared", "W", "T", "C"), [
    (torch.float32, True, False, 16, 64, 80),    # W a power of two: several blocks, 2 code tiles
    (torch.float32, True, True, 72, 160, 40),    # W not a power of two: 2 query tiles per block, one partial
    (torch.float32, False, True, 16, 90, 80),    # non-causal: totals only
    (torch.bfloat16, True, False, 32, 100, 33),
    (torch.float16, False, False, 8, 64, 12),
])
def test_equals_dense_attention_over_k_hat(dtype: torch.dtype, causal: bool, shared: bool, W: int, T: int,
                                           C: int) -> None:
    """At T well beyond the strategy (many blocks, the compressed cache carries most keys): the output
    equals the float64 dense oracle over the quantised keys to rounding (float32: 1e-5 of max|o|; half
    precision: a few ulps of the output, as dense flash attention)."""
    case = _case(T, C=C, D=24, Dv=40, shared=shared, causal=causal, seed=T)
    t = _tensors(case, dtype)
    o = vq_attention(t["q"], t["k"], t["v"], t["codebook"], causal=causal, block_size=W)
    gold = ref.vq_attention(t["q"], t["k"], t["v"], t["codebook"], causal=causal)
    tol = {torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    assert _rel(o, gold) < tol


@pytest.mark.parametrize("W", [1, 5, 64, 1000])
@pytest.mark.parametrize("causal", [True, False])
def test_float64_block_form_is_exact(W: int, causal: bool) -> None:
    """The identity itself: the torch block form in float64 equals the dense oracle to 1e-13 for any W
    (W = 1: all earlier keys compressed; W > T: one dense block)."""
    case = _case(150, C=20, D=6, Dv=3, shared=W == 5, causal=causal, seed=W)
    t = _tensors(case, torch.float64)
    o = vq_attention(t["q"], t["k"], t["v"], t["codebook"], causal=causal, block_size=W)
    gold = ref.vq_attention(t["q"], t["k"], t["v"], t["codebook"], causal=causal)
    np.testing.assert_allclose(o.numpy(), gold, rtol=0, atol=1e-13)


@pytest.mark.parametrize("causal", [True, False])
def test_gradients_straight_through_at_longer_T(causal: bool) -> None:
    """dq, dk (= dk_hat), dv against the float64 straight-through VJP; no gradient reaches the codebook."""
    case = _case(48, C=30, D=16, Dv=8, causal=causal, seed=3)
    t = _tensors(case, torch.float32, grad=True)
    cb = t["codebook"].requires_grad_(True)
    o = vq_attention(t["q"], t["k"], t["v"], cb, causal=causal, block_size=16)
    go = np.random.default_rng(1).standard_normal(o.shape)
    dq, dk, dv, dc = torch.autograd.grad(o, (t["q"], t["k"], t["v"], cb), torch.tensor(go, dtype=torch.float32),
                                         allow_unused=True)
    assert dc is None
    gq, gk, gv = ref.vq_attention_vjp(t["q"], t["k"], t["v"], cb, go, causal=causal)
    for got, want in ((dq, gq), (dk, gk), (dv, gv)):
        assert _rel(got, want) < 2e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_single_token(dtype: torch.dtype) -> None:
    """T = 1: the output is v (one visible key), both modes, gradients flow."""
    t = _tensors(_case(1, seed=5), dtype, grad=True)
    for causal in (True, False):
        o = vq_attention(t["q"], t["k"], t["v"], t["codebook"], causal=causal, block_size=3)
        torch.testing.assert_close(o, t["v"].detach(), rtol=0, atol=0)
        dq, dk, dv = torch.autograd.grad(o.sum(), (t["q"], t["k"], t["v"]))
        assert float(dq.abs().max()) == 0.0 and float(dk.abs().max()) == 0.0
        torch.testing.assert_close(dv, torch.ones_like(dv), rtol=0, atol=0)


def test_strided_inputs_give_the_same_bits() -> None:
    """[B, T, H, D] tensors viewed as [B, H, T, D] (and a transposed codebook): same output and gradients,
    bit for bit, as contiguous copies (the kernels follow strides)."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 9, 2, d, generator=g).transpose(1, 2).requires_grad_(True) for d in (8, 8, 6))
    cb = torch.randn(5, 2, 8, generator=g).transpose(0, 1)
    o1 = vq_attention(q, k, v, cb, causal=True, block_size=4)
    g1 = torch.autograd.grad(o1.square().sum(), (q, k, v))
    qc, kc, vc = (x.detach().contiguous().requires_grad_(True) for x in (q, k, v))
    o2 = vq_attention(qc, kc, vc, cb.contiguous(), causal=True, block_size=4)
    g2 = torch.autograd.grad(o2.square().sum(), (qc, kc, vc))
    assert torch.equal(o1, o2) and all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))


# ------------------------------------------------------------------------------------------ quantiser

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quantiser_ties_and_near_ties_match_oracle(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact ties (keys 0 between c0 and c1 = -c0; duplicated codebook rows) go to the first index, and keys
    at the midpoint of two codes (rounded to the dtype: ||c||^2 - 2k.c cannot decide in float32) are flagged
    and refined in float64: z equals the oracle's argmin everywhere, k_hat is bitwise the codebook row."""
    from veriformer.fast.vq import linear_time as mod

    case = _case(40, C=6, D=8, seed=11, ties=True, noise=0.05)
    t = _tensors(case, dtype)
    cb, k = t["codebook"].clone(), t["k"].clone()
    cb[:, 4] = cb[:, 2]  # duplicate row: code 2 must win
    cb[:, 3] = (cb[:, 2].double() + 0.01 * torch.randn(2, 8, dtype=torch.float64)).to(dtype)
    mid = (cb[:, 2].double() + cb[:, 3].double()) / 2  # nearest to codes 2 and 3 (and 4), nearly a tie
    k[:, :, 5:12] = mid[None, :, None, :].to(dtype)
    z, k_hat = vq_quantize(k, cb)
    z_ref, k_hat_ref = ref.vq_quantize(k, cb)
    np.testing.assert_array_equal(z.numpy(), z_ref)
    assert torch.equal(k_hat.double(), torch.tensor(k_hat_ref))
    assert bool((z == 4).sum() == 0) and bool((z == 0).any())
    # the refinement is what decides: flagged rows are exactly the ties, duplicates and (float32) midpoints
    monkeypatch.setattr(mod, "_quantize_f64", lambda kk, cc: torch.full((kk.shape[0],), -1, dtype=torch.long))
    flagged = mod._quantize_triton(k, cb) == -1
    assert dtype != torch.float32 or bool(flagged[:, :, 5:12].all())
    assert bool(flagged[k.abs().amax(-1) == 0].all())


def test_unused_codes_with_huge_logits_are_excluded() -> None:
    """A code no key uses with q.c ~ 1e4 (exp overflows float32) must not enter the maximum: the outputs
    stay finite and equal the oracle (the shared maximum is over codes in use)."""
    case = _case(24, C=5, D=4, Dv=3, seed=2, noise=0.0)
    t = _tensors(case, torch.float32)
    cb = t["codebook"].clone()
    cb[:, 4] = 1e4 * t["q"][0, :, 0] / t["q"][0, :, 0].norm(dim=-1, keepdim=True)  # far from every key
    k = cb[torch.arange(2)[None, :, None], torch.randint(0, 4, (2, 2, 24))]
    for causal in (True, False):
        o = vq_attention(t["q"], k, t["v"], cb, causal=causal, block_size=8)
        gold = ref.vq_attention(t["q"], k, t["v"], cb, causal=causal)
        assert torch.isfinite(o).all() and _rel(o, gold) < 2e-6


# ------------------------------------------------------------------------------------------ bad inputs

def test_bad_inputs_raise_input_error() -> None:
    t = _tensors(_case(6), torch.float32)
    q, k, v, cb = t["q"], t["k"], t["v"], t["codebook"]
    bad = [
        (dict(q=q[0]), "'q'"),
        (dict(k=k[:, :, :3]), "'k'"),
        (dict(v=v[:, :1]), "'v'"),
        (dict(codebook=cb[:, :, :3]), "'codebook'"),
        (dict(codebook=torch.zeros(3, 4, 8)), "'codebook'"),
        (dict(codebook=cb[:, :0]), "'codebook'"),
        (dict(codebook=cb.double()), "'codebook'"),
        (dict(v=v.half()), "'v'"),
        (dict(q=q.int()), "'q'"),
        (dict(k=k.numpy()), "'k'"),
        (dict(block_size=0), "'block_size'"),
        (dict(block_size=True), "'block_size'"),
        (dict(block_size=2.0), "'block_size'"),
        (dict(scale=float("nan")), "'scale'"),
        (dict(causal=1), "'causal'"),
        (dict(q=torch.zeros(2, 2, 6, 300), k=torch.zeros(2, 2, 6, 300), codebook=torch.zeros(2, 9, 300)), "'q'"),
    ]
    for change, name in bad:
        kw = {"q": q, "k": k, "v": v, "codebook": cb, "causal": True, "block_size": 4, "scale": None, **change}
        with pytest.raises(InputError, match=name):
            vq_attention(kw.pop("q"), kw.pop("k"), kw.pop("v"), kw.pop("codebook"), **kw)
    with pytest.raises(InputError, match="'codebook'"):
        vq_quantize(k, cb[None])


# ------------------------------------------------------------------------------------------ benchmark

def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark("vq_attention").run(["--smoke", "--modes", "fwd", "--peers", "MATH"])
    assert "ours" in capsys.readouterr().out and rows[0]["ratio"] == 1.0
    assert all(math.isfinite(r["ms"]) and r["diff"] < 0.05 for r in rows)


# ------------------------------------------------------------------------------------------ GPU code path

_COMPILE_SCRIPT = r"""
from veriformer.fast.vq import linear_time as vq
from veriformer.fast._triton.ptx import compile_ptx

TYPES = dict(Q="*bf16", K="*bf16", V="*bf16", O="*bf16", CB="*bf16", DO="*bf16", DQ="*bf16", CN2="*fp32",
             CMAX="*fp32", Z="*i32", AMB="*i8", U="*fp32", CNT="*fp32", LSE="*fp32", DELTA="*fp32",
             qk_scale="fp32", sm_scale="fp32", eps_scale="fp32")

def build(fn, consts, **opts):
    return compile_ptx(fn, TYPES, consts, **opts)

tiles = dict(BLOCK_M=128, BLOCK_N=64, BLOCK_C=64, BLOCK_D=128, BLOCK_DV=128, EMULATE=False, DOT_PREC="tf32",
             CACHE_TF32=True)
ptx = [build(vq._vq_quantize, dict(BLOCK_T=64, BLOCK_C=64, BLOCK_D=128, EMULATE=False, DOT_PREC="tf32"),
             num_warps=4, num_stages=2)]
for causal in (True, False):
    ptx.append(build(vq._vq_cache, dict(CAUSAL=causal, BLOCK_C=64, BLOCK_N=64, BLOCK_DV=128, EMULATE=False,
                                        DOT_PREC="tf32"), num_warps=4, num_stages=2))
    ptx += [build(f, dict(tiles, CAUSAL=causal), num_warps=8, num_stages=2) for f in (vq._vq_fwd, vq._vq_bwd_dq)]
print("mma=%d tf32=%d" % (all("mma" in p for p in ptx), all("tf32" in p for p in ptx[2:4])))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (~1 min of compilation): runs under VERIFORMER_PROFILE=deep")
def test_kernels_compile_for_sm90_without_a_gpu() -> None:
    """The GPU code path (EMULATE=False: bf16 tensor-core dots, TF32 cache product) compiles to PTX for an
    H100 (sm_90) in a subprocess with the interpreter off."""
    stdout = compile_in_subprocess(_COMPILE_SCRIPT, timeout=900)
    assert stdout.split()[-2:] == ["mma=1", "tf32=1"], stdout


# ------------------------------------------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.parametrize("causal", [True, False])
def test_gpu_size_against_sdpa_over_k_hat(causal: bool) -> None:
    """bf16, B=2, H=4, T=4096, D=128, C=512, W=256 on CUDA: output and gradients against torch SDPA (math
    backend, float32) over k_hat, within bf16 accuracy; check() with GPU tiles."""
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    B, H, T, D, C = 2, 4, 4096, 128, 512
    cb = torch.randn(H, C, D, device=dev, generator=g).bfloat16()
    z = torch.randint(0, C, (B, H, T), device=dev, generator=g)
    k = (cb[torch.arange(H, device=dev)[None, :, None], z].float()
         + 0.1 * torch.randn(B, H, T, D, device=dev, generator=g)).bfloat16().requires_grad_(True)
    q = torch.randn(B, H, T, D, device=dev, generator=g).bfloat16().requires_grad_(True)
    v = torch.randn(B, H, T, D, device=dev, generator=g).bfloat16().requires_grad_(True)
    o = vq_attention(q, k, v, cb, causal=causal, block_size=256)
    do = torch.randn_like(o)
    grads = torch.autograd.grad(o, (q, k, v), do)
    _, k_hat = vq_quantize(k, cb)
    qq, kk, vv = (x.detach().float().requires_grad_(True) for x in (q, k_hat, v))
    o_ref = torch.nn.functional.scaled_dot_product_attention(qq, kk, vv, is_causal=causal)
    refs = torch.autograd.grad(o_ref, (qq, kk, vv), do.float())
    assert float((o.float() - o_ref).abs().max()) < 2e-2
    for got, want in zip(grads, refs, strict=True):
        assert float((got.float() - want).abs().max()) < 5e-2 * max(1.0, float(want.abs().max()))
    r = veriformer.check(functools.partial(vq_attention, block_size=4), op="vq_attention",
                         dtypes=("float16", "bfloat16", "float32"), device="cuda", grad=True)
    assert r.passed, r.summary()
