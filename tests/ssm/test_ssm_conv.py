"""The S4D Vandermonde kernel (Triton) and the FFT long convolution (:mod:`veriformer.fast.ssm.conv`) against
the float64 oracles and float64 torch autograd.

Without CUDA the Triton kernels run in the CPU interpreter (selected by ``veriformer.fast._triton.env``) at small
shapes; the phase-accuracy test runs the interpreter at L = 2^16 with H = 1, N2 = 4 (~2 s).  GPU-size tests are
marked ``gpu``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON, interpreting  # isort: skip

from _helpers import as_numpy, compile_in_subprocess, load_benchmark

import veriformer
from veriformer import reference as ref
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.fast.ssm.conv import fft_conv, s4d_kernel
from veriformer.ops import get_op
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")

DEV = "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"
S4D_GRAD = bool(get_op("s4d_kernel").differentiable)  # the op's gold VJP exists


def _params(H: int, N2: int, seed: int, *, im: float = 10.0, dev: str = DEV,
            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    """log_dt [H] in ``dtype`` and complex64 A (Re in [-2, -0.05], |Im| <= im), B, C [H, N2] (complex128 when
    ``dtype`` is float64)."""
    rng = np.random.default_rng(seed)
    cd = torch.complex128 if dtype == torch.float64 else torch.complex64
    A = -rng.uniform(0.05, 2.0, (H, N2)) + 1j * rng.uniform(-im, im, (H, N2))
    B = rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))
    C = rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))
    log_dt = rng.uniform(math.log(1e-3), math.log(1e-1), H)
    return (torch.from_numpy(log_dt).to(dev, dtype), *(torch.from_numpy(x).to(dev, cd) for x in (A, B, C)))


def _gold_s4d(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> np.ndarray:
    """The float64 oracle on exactly the given (rounded) values."""
    c = [x.detach().cpu().to(torch.complex128).numpy() for x in (A, B, C)]
    return ref.s4d_kernel(log_dt.detach().cpu().double().numpy(), *c, L)


_np = as_numpy


# ---------------------------------------------------------------------------------------------- check()

def test_s4d_kernel_check_all_dtypes() -> None:
    """check() in every dtype (the catalogue runs fp16/bf16/fp32 with the ci profile; here other draws and
    float64, gradients included when the op has its gold VJP)."""
    r = veriformer.check(s4d_kernel, op="s4d_kernel", dtypes=("float16", "bfloat16", "float32", "float64"),
                         device=DEV, grad=S4D_GRAD, max_examples=3, seed=11, name="fast_s4d_kernel")
    assert r.passed, r.summary()


def test_fft_conv_check_all_dtypes_with_grad() -> None:
    r = veriformer.check(fft_conv, op="ssm_convolution", dtypes=("float16", "bfloat16", "float32", "float64"),
                         device=DEV, grad=True, max_examples=4, seed=11, name="fast_fft_conv")
    assert r.passed, r.summary()


# ------------------------------------------------------------------------------------- s4d_kernel accuracy

def test_s4d_phase_accuracy_long_L_beats_complex64() -> None:
    """L = 2^16, slow decays and fast rotations (|dt Im A| up to 15 rad/step): the complex64 formula's angle
    error u l |dt A| reaches ~0.06 rad; ours reduces the angle in float64 and stays at float32 rounding level."""
    L = 2**16
    A = torch.tensor([[-1e-3 + 1j, -2e-3 + 10j, -1e-3 + 100j, -5e-4 + 300j]], dtype=torch.complex64)
    B = torch.ones_like(A)
    C = torch.tensor([[1 + 0.5j, -0.3 + 1j, 0.7 - 0.2j, 0.4 + 0.4j]], dtype=torch.complex64)
    log_dt = torch.tensor([math.log(0.05)], dtype=torch.float32)
    args = [x.to(DEV) for x in (log_dt, A, B, C)]
    gold = _gold_s4d(*args, L)
    ours = np.abs(_np(s4d_kernel(*args, L)) - gold)
    naive = np.abs(_np(naive_ssm.s4d_kernel(*args, L)) - gold)
    scale = np.abs(gold).max()
    assert ours.max() < 8e-7 * scale, (ours.max(), scale)  # ~10 float32 ulps of the kernel's size
    assert naive.max() > 100 * ours.max(), (naive.max(), ours.max())
    tail = slice(L - 4096, L)  # the naive error grows with l; ours does not
    assert naive[0, tail].max() > 1000 * ours[0, tail].max()


@pytest.mark.parametrize(("H", "N2", "L"), [(2, 100, 300), (1, 1, 1), (3, 7, 4100)])
def test_s4d_forward_multi_block_against_oracle(H: int, N2: int, L: int) -> None:
    """Several N blocks (N2 = 100 > BLOCK_N), several L tiles, N2 = 1 / L = 1, and a ragged last tile: float32
    within the forward's error bound (4 ulp of sum |W| times the angle conditioning 1 + l |dt A|)."""
    p = _params(H, N2, seed=H + N2 + L)
    gold = _gold_s4d(*p, L)
    err = np.abs(_np(s4d_kernel(*p, L)) - gold)
    dt = np.exp(_np(p[0]))[:, None]
    A, B, C = (x.cpu().to(torch.complex128).numpy() for x in p[1:])
    mass = 2 * np.sum(np.abs(C * B * (np.exp(dt * A) - 1) / A), axis=-1)
    bound = 4 * 2**-24 * mass[:, None] * (1 + np.arange(L) * np.abs(dt * A).max())
    assert (err <= bound).all(), float((err / bound).max())


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 2**-10), (torch.bfloat16, 2**-7)])
def test_s4d_half_outputs_are_rounded_once(dtype: torch.dtype, tol: float) -> None:
    p = _params(2, 16, seed=5, dtype=dtype)
    K = s4d_kernel(*p, 200)
    assert K.dtype == dtype
    gold = _gold_s4d(*p, 200)
    assert np.abs(_np(K) - gold).max() <= tol * np.abs(gold).max()


def _s4d_grads64(p: tuple[torch.Tensor, ...], L: int, G: torch.Tensor) -> list[torch.Tensor]:
    """Gradients by torch autograd of the complex128 formula (the float64 path of s4d_kernel)."""
    leaves = [p[0].detach().double().requires_grad_(True),
              *(x.detach().to(torch.complex128).requires_grad_(True) for x in p[1:])]
    K = s4d_kernel(*leaves, L)
    assert K.dtype == torch.float64
    return list(torch.autograd.grad(K, leaves, G.double()))


def _naive_grads64(p: tuple[torch.Tensor, ...], L: int, G: torch.Tensor) -> list[torch.Tensor]:
    """The same by autograd of the naive baseline in complex128 (an independent code path)."""
    leaves = [p[0].detach().double().requires_grad_(True),
              *(x.detach().to(torch.complex128).requires_grad_(True) for x in p[1:])]
    return list(torch.autograd.grad(naive_ssm.s4d_kernel(*leaves, L), leaves, G.double()))


@pytest.mark.parametrize(("H", "N2", "L"), [(1, 70, 4100), (3, 5, 64)])
def test_s4d_gradients_against_float64_autograd(H: int, N2: int, L: int) -> None:
    """The Triton backward (transposed Vandermonde sums + complex128 chain rule) against torch autograd of the
    complex128 formula, for log_dt and the complex A, B, C (torch's dL/dRe + i dL/dIm convention)."""
    p = tuple(x.requires_grad_(True) for x in _params(H, N2, seed=3 * L))
    G = torch.randn(H, L, generator=torch.Generator().manual_seed(L), dtype=torch.float64).to(DEV)
    ours = torch.autograd.grad(s4d_kernel(*p, L), p, G.float())
    gold = _s4d_grads64(p, L, G)
    indep = _naive_grads64(p, L, G)
    for name, x, o, g, i in zip(("log_dt", "A", "B", "C"), p, ours, gold, indep, strict=True):
        assert o.dtype == x.dtype, name
        assert (g - i).abs().max() <= 1e-9 * g.abs().max(), name  # two float64 formulas agree
        err = (o.to(g.dtype) - g).abs().max()
        assert err <= 2e-5 * g.abs().max(), (name, float(err), float(g.abs().max()))


def test_s4d_gradient_of_a_wrong_formula_is_caught() -> None:
    """Negative control: a gradient with the decay derivative dropped (no dt S' term) fails the comparison
    above, so the test can fail."""
    p = tuple(x.requires_grad_(True) for x in _params(2, 8, seed=1))
    L = 128
    G = torch.randn(2, L, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(DEV)
    gA = _s4d_grads64(p, L, G)[1]
    dt = torch.exp(p[0].detach().double())[:, None]
    A, B, C = (x.detach().to(torch.complex128) for x in p[1:])
    E = torch.expm1(dt * A) / A
    powers = torch.exp(dt[..., None] * A[..., None] * torch.arange(L, device=DEV))
    S = (G[:, None, :].to(torch.complex128) * powers).sum(-1)
    wrong = 2 * torch.conj(C * B * ((dt * torch.exp(dt * A) - E) / A) * S)
    assert (wrong - gA).abs().max() > 1e-2 * gA.abs().max()


# ------------------------------------------------------------------------------------------------ fft_conv

@pytest.mark.parametrize("L", [1, 7, 300])
def test_fft_conv_with_D_against_oracle_and_float64_autograd(L: int) -> None:
    """Forward (with the D skip) against the float64 direct sum; u, kernel and D gradients against torch
    autograd of the direct float64 convolution (conv1d, depthwise)."""
    gen = torch.Generator().manual_seed(L)
    Bn, Cn = 2, 3
    u = torch.randn(Bn, Cn, L, generator=gen).to(DEV).requires_grad_(True)
    K = (torch.randn(Cn, L, generator=gen) * torch.exp(-0.01 * torch.arange(L))).to(DEV).requires_grad_(True)
    D = torch.randn(Cn, generator=gen).to(DEV).requires_grad_(True)
    y = fft_conv(u, K, D=D)
    gold = ref.causal_convolution(_np(u), _np(K)) + _np(D)[:, None] * _np(u)
    mass = ref.causal_convolution(np.abs(_np(u)), np.abs(_np(K))) + np.abs(_np(D)[:, None] * _np(u))
    assert np.abs(_np(y) - gold).max() <= 8 * 2**-24 * math.log2(2 * L) * mass.max()
    g = torch.randn(Bn, Cn, L, generator=gen).to(DEV)
    ours = torch.autograd.grad(y, (u, K, D), g)
    u6, K6, D6 = (x.detach().double().requires_grad_(True) for x in (u, K, D))
    y6 = torch.nn.functional.conv1d(u6, K6.flip(-1)[:, None, :], padding=L - 1, groups=Cn)[..., :L] + D6[:, None] * u6
    assert np.abs(_np(y6) - gold).max() <= 1e-12 * max(1.0, mass.max())
    gold_g = torch.autograd.grad(y6, (u6, K6, D6), g.double())
    for name, o, gg in zip(("u", "kernel", "D"), ours, gold_g, strict=True):
        assert o.dtype == torch.float32
        assert (o.double() - gg).abs().max() <= 2e-6 * math.log2(2 * L) * gg.abs().max() + 1e-30, name


def test_fft_conv_bfloat16_and_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(1, 4, 300, generator=gen, dtype=torch.float64).to(DEV)
    K = torch.randn(4, 300, generator=gen, dtype=torch.float64).to(DEV) / 20
    gold = ref.causal_convolution(_np(u), _np(K))
    y64 = fft_conv(u, K)
    assert y64.dtype == torch.float64 and np.abs(_np(y64) - gold).max() < 1e-13
    yb = fft_conv(u.bfloat16(), K.bfloat16())
    gold_b = ref.causal_convolution(_np(u.bfloat16()), _np(K.bfloat16()))
    assert yb.dtype == torch.bfloat16 and np.abs(_np(yb) - gold_b).max() <= 2**-8 * np.abs(gold_b).max()


def test_fft_conv_is_linear_not_circular() -> None:
    """Negative control: the unpadded (circular) product differs from ours by O(1) on a flat kernel."""
    gen = torch.Generator().manual_seed(1)
    u, K = torch.randn(1, 2, 64, generator=gen).to(DEV), torch.randn(2, 64, generator=gen).to(DEV) / 8
    circ = torch.fft.irfft(torch.fft.rfft(u) * torch.fft.rfft(K), n=64)
    gold = ref.causal_convolution(_np(u), _np(K))
    assert np.abs(_np(fft_conv(u, K)) - gold).max() < 1e-5
    assert np.abs(_np(circ) - gold).max() > 0.1


# ---------------------------------------------------------------------------------------------- input errors

def test_input_errors_name_the_argument() -> None:
    ld, A, B, C = _params(2, 4, seed=0)
    bad = [
        (lambda: s4d_kernel(ld.long(), A, B, C, 8), "log_dt"),
        (lambda: s4d_kernel(ld[None], A, B, C, 8), "log_dt"),
        (lambda: s4d_kernel(ld * float("nan"), A, B, C, 8), "log_dt"),
        (lambda: s4d_kernel(ld, A.real.contiguous(), B, C, 8), "A"),
        (lambda: s4d_kernel(ld, A * 0, B, C, 8), "A"),
        (lambda: s4d_kernel(ld, A, B[:, :3], C, 8), "B"),
        (lambda: s4d_kernel(ld, A, B, C[:1], 8), "C"),
        (lambda: s4d_kernel(ld, A, B, C, 0), "L"),
        (lambda: s4d_kernel(ld, A, B, C, True), "L"),
        (lambda: s4d_kernel(ld, A, B, C, 8.0), "L"),  # type: ignore[arg-type]
    ]
    u, K = torch.randn(2, 3, 16, device=DEV), torch.randn(3, 16, device=DEV)
    bad += [
        (lambda: fft_conv(u[0], K), "u"),
        (lambda: fft_conv(u.long(), K), "u"),
        (lambda: fft_conv(u, K[:, :8]), "kernel"),
        (lambda: fft_conv(u, K[None]), "kernel"),
        (lambda: fft_conv(u, K.double()), "kernel"),
        (lambda: fft_conv(u, K, D=torch.ones(2, device=DEV)), "D"),
        (lambda: fft_conv(u, K, D=torch.ones(3, device=DEV, dtype=torch.float16)), "D"),
        (lambda: fft_conv(u, K.numpy() if DEV == "cpu" else K.cpu()), "kernel"),
    ]
    for call, name in bad:
        with pytest.raises(InputError, match=f"argument '{name}'"):
            call()


# ------------------------------------------------------------------------------- compiled mode, benchmark

_COMPILE_SCRIPT = r"""
from veriformer.fast.ssm import conv as sc
from veriformer.fast._triton.ptx import compile_ptx

def build(fn, consts):
    types = dict(WR="*fp32", WI="*fp32", RATE="*fp32", TURNS="*fp64", K="*bf16", G="*fp32", PART="*fp32")
    return compile_ptx(fn, types, consts, num_warps=4)

cfg = dict(zip(("TILES", "BLOCK_L", "BLOCK_N"), sc._config(4096, 64), strict=True), EMULATE=False)  # GPU sizes
fwd = build(sc._s4d_fwd, cfg)
bwd = build(sc._s4d_bwd, cfg)
print("approx=%d rn_bf16=%d f64=%d tf32=%d" % ("cos.approx" in fwd + bwd or "sin.approx" in fwd + bwd,
                                              "cvt.rn.bf16" in fwd, ".f64" in fwd and ".f64" in bwd,
                                              "tf32" in fwd + bwd))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (~20 s of compilation): runs under VERIFORMER_PROFILE=deep")
def test_s4d_kernels_compile_for_sm90_without_a_gpu() -> None:
    """The GPU path (EMULATE=False, the GPU tile sizes, libdevice cos/sin, float64 angle reduction, IEEE float32
    dots) compiles to PTX for sm_90."""
    stdout = compile_in_subprocess(_COMPILE_SCRIPT)
    assert stdout.split()[-4:] == ["approx=0", "rn_bf16=1", "f64=1", "tf32=0"], stdout


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    text = load_benchmark("ssm_conv").run(["--smoke", "--modes", "fwd"])
    assert "fft_conv (ours)" in text and "s4d_kernel (ours)" in text and "recurrence" in text
    assert "conv1d" in text and text in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------ GPU

@pytest.mark.gpu
def test_gpu_size_s4d_and_fft_conv() -> None:
    """H = 256, N2 = 64, L = 16384 kernel (forward and gradients) and a B = 2, C = 512, L = 8192 bf16 convolution
    on CUDA against float64."""
    H, N2, L = 256, 64, 16384
    p = tuple(x.requires_grad_(True) for x in _params(H, N2, seed=0, im=100.0, dev="cuda"))
    K = s4d_kernel(*p, L)
    gold = _gold_s4d(*(x[:4] for x in p), L)
    assert np.abs(_np(K[:4]) - gold).max() <= 1e-6 * np.abs(gold).max()
    G = torch.randn(H, L, device="cuda", dtype=torch.float64)
    ours = torch.autograd.grad(K, p, G.float())
    for o, g in zip(ours, _s4d_grads64(p, L, G), strict=True):
        assert (o.to(g.dtype) - g).abs().max() <= 1e-4 * g.abs().max()
    u = torch.randn(2, 512, 8192, device="cuda", dtype=torch.bfloat16)
    Kc = (K[:, None].repeat(1, 2, 1).reshape(512, L)[:, :8192].detach() / 8).bfloat16()
    y = fft_conv(u, Kc)
    y64 = torch.fft.irfft(torch.fft.rfft(u.double(), n=16384) * torch.fft.rfft(Kc.double(), n=16384), n=16384)
    y64 = y64[..., :8192]
    assert (y.double() - y64).abs().max() <= 2**-7 * y64.abs().max()
    r = veriformer.check(s4d_kernel, op="s4d_kernel", dtypes=("float16", "bfloat16", "float32"), device="cuda",
                         grad=S4D_GRAD)
    assert r.passed, r.summary()
    r = veriformer.check(fft_conv, op="ssm_convolution", dtypes=("float16", "bfloat16", "float32"), device="cuda",
                         grad=True)
    assert r.passed, r.summary()
