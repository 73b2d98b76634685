"""The Triton Monarch product (``fast/monarch/kernel.py``) against the float64 oracle and the naive bmm baseline.

Without CUDA the kernels run in Triton's CPU interpreter, at small shapes.  The catalogue already runs ``check()``
with gradients on the registered ``triton_monarch`` (the op strategy); here: explicit shapes (one block, rectangular
blocks, n_out != n_in, more tokens than one tile), every dtype against ``check()``, the DFT factors run through
the real-arithmetic kernel (real and imaginary parts), bad inputs, the benchmark's smoke run and GPU-size runs
(marked ``gpu``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON, interpreting  # isort: skip

from _helpers import load_benchmark

import veriformer
from veriformer import reference as ref
from veriformer.fast.monarch import naive
from veriformer.properties.monarch.strategies import MonarchMatmulCase
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")

if HAVE_TRITON:
    from veriformer.fast.monarch.kernel import monarch_matmul

DEV = "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"


def _t(a: np.ndarray, dtype: torch.dtype = torch.float32, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a).to(DEV, dtype).requires_grad_(grad)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (4, 3, 2, 6, 5), (2, 6, 3, 3, 4), (5, 5, 5, 5, 5),
                                   (8, 2, 3, 4, 7)])
def test_shapes_forward_and_gradients(shape: tuple[int, int, int, int, int]) -> None:
    """(k, q, p, l, s): y, dx, dw1, dw2 within float32 rounding of the oracle, 70 tokens (two token tiles)."""
    k, q, p, l_, s = shape
    r = k * q // l_
    rng = np.random.default_rng(sum(shape))
    x, w1, w2 = rng.standard_normal((2, 35, k * p)), rng.standard_normal((k, q, p)), rng.standard_normal((l_, s, r))
    g = rng.standard_normal((2, 35, l_ * s))
    xt, w1t, w2t = _t(x, grad=True), _t(w1, grad=True), _t(w2, grad=True)
    y = monarch_matmul(xt, w1t, w2t)
    y.backward(_t(g))
    gold = ref.monarch_matmul(xt, w1t, w2t)
    d = ref.monarch_matmul_vjp(g, xt.detach(), w1t.detach(), w2t.detach())
    mass = ref.monarch_matmul(np.abs(x), np.abs(w1), np.abs(w2))
    assert np.all(np.abs(y.detach().cpu().double().numpy() - gold) <= 4 * 2**-24 * (mass + 1e-30) * (q + r))
    for name, t in (("x", xt), ("w1", w1t), ("w2", w2t)):
        err = np.abs(t.grad.cpu().double().numpy() - d[name]).max()
        assert err <= 1e-5 * (np.abs(d[name]).max() + 1), (name, err)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_check_in_half_precision(dtype: str) -> None:
    case = MonarchMatmulCase(B=2, T=5, k=4, q=4, p=4, l=4, s=4, seed=7)
    res = veriformer.check(monarch_matmul, op="monarch_matmul", dtypes=(dtype,), grad=True, cases=[case])
    assert res.passed, res


def test_dft_through_the_real_kernel() -> None:
    """The DFT as a Monarch product: complex factors split into real and imaginary parts and run as four real
    Monarch products (the kernel is real); fft(x) within float32 rounding."""
    k = l_ = 4
    w1, w2, perm = ref.monarch_dft_factors(k, l_)
    x = np.random.default_rng(3).standard_normal((3, 16))
    xp = _t(x[:, perm])
    a1, b1, a2, b2 = (_t(np.ascontiguousarray(v)) for v in (w1.real, w1.imag, w2.real, w2.imag))
    # (A2 + i B2) applied after (A1 + i B1), both real-linear: expand the four products through the middle shuffle
    re = monarch_matmul(xp, a1, a2) - monarch_matmul(xp, b1, b2)
    im = monarch_matmul(xp, a1, b2) + monarch_matmul(xp, b1, a2)
    y = (re.double() + 1j * im.double()).cpu().numpy()
    np.testing.assert_allclose(y, np.fft.fft(x), atol=1e-5 * np.abs(x).sum())


def test_matches_naive_bmm_in_float32() -> None:
    rng = np.random.default_rng(1)
    x = _t(rng.standard_normal((40, 64)))
    w1, w2 = _t(rng.standard_normal((8, 8, 8))), _t(rng.standard_normal((8, 8, 8)))
    torch.testing.assert_close(monarch_matmul(x, w1, w2), naive.monarch_matmul(x, w1, w2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("kwargs", "arg"), [
    ({"x": torch.zeros(2, 10)}, "x"),
    ({"w1": torch.zeros(4, 4)}, "w1"),
    ({"w2": torch.zeros(4, 4, 3)}, "w2"),
    ({"x": torch.zeros(2, 16, dtype=torch.float64)}, "x"),
    ({"w1": torch.zeros(4, 4, 4, dtype=torch.float16)}, "w1"),
])
def test_bad_inputs_name_the_argument(kwargs: dict[str, torch.Tensor], arg: str) -> None:
    base = {"x": torch.zeros(2, 16), "w1": torch.zeros(4, 4, 4), "w2": torch.zeros(4, 4, 4)}
    base.update(kwargs)
    with pytest.raises(InputError) as e:
        monarch_matmul(base["x"].to(DEV), base["w1"].to(DEV), base["w2"].to(DEV))
    assert f"'{arg}'" in str(e.value)


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark("monarch").run(["--smoke", "--modes", "fwd"])
    out = capsys.readouterr().out
    assert "ours" in out and rows and rows[0]["ratio"] == 1.0
    timed = [r for r in rows if "ms" in r]
    assert {r["impl"] for r in timed} == {"triton monarch (ours)", "torch bmm monarch", "dense x @ M^T (torch)"}
    assert all(math.isfinite(r["ms"]) for r in timed)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("m", [16, 32, 64, 128])
def test_gpu_size_against_float64(dtype: torch.dtype, m: int) -> None:
    """n = m^2 up to 16384, 4096 tokens on CUDA: output and gradients against the float64 torch bmm Monarch."""
    gen = torch.Generator(device="cuda").manual_seed(m)
    n = m * m
    x = torch.randn(4096, n, device="cuda", generator=gen).to(dtype).requires_grad_()
    w1 = (torch.randn(m, m, m, device="cuda", generator=gen) / m**0.5).to(dtype).requires_grad_()
    w2 = (torch.randn(m, m, m, device="cuda", generator=gen) / m**0.5).to(dtype).requires_grad_()
    g = torch.randn(4096, n, device="cuda", generator=gen).to(dtype)
    y = monarch_matmul(x, w1, w2)
    grads = torch.autograd.grad(y, (x, w1, w2), g)
    ins = [t.detach().double().requires_grad_() for t in (x, w1, w2)]
    y64 = naive.monarch_matmul(*ins)
    g64 = torch.autograd.grad(y64, ins, g.double())
    rel = 2e-2 if dtype == torch.bfloat16 else 1e-5
    assert (y.double() - y64).abs().max() <= rel * y64.abs().max()
    for name, a, b in zip(("dx", "dw1", "dw2"), grads, g64, strict=True):
        assert (a.double() - b).abs().max() <= 2 * rel * b.abs().max(), name
