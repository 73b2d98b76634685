"""Triton (Leaky) ReRoPE attention (forward and backward) against the float64 oracle and its VJP: interpreter sizes
on CPU, larger ones on the GPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from veriformer import reference as ref
from veriformer.fast.positions import naive as pnaive

rr = pytest.importorskip("veriformer.fast.positions.rerope")
if not rr.HAVE_TRITON:
    pytest.skip("triton absent", allow_module_level=True)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 2e-6, torch.float16: 4e-3, torch.bfloat16: 3e-2}


def _case(T: int, S: int, D: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, 2, n, D, generator=g).to(DEVICE, dtype) for n in (T, S, S))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("leak,window", [(math.inf, 0), (math.inf, 3), (math.inf, 40), (16.0, 2), (1.0, 5),
                                         (2.5, 2)])
def test_rerope_kernel_matches_oracle(dtype: torch.dtype, leak: float, window: int) -> None:
    q, k, v = _case(7, 19, 16, dtype, window)
    o = rr.rerope_attention(q, k, v, window, leak=leak)
    assert o.dtype == dtype and o.shape == (1, 2, 7, 16)
    want = ref.rerope_attention(q.cpu(), k.cpu(), v.cpu(), window, leak=leak)
    err = np.abs(o.double().cpu().numpy() - want).max()
    base = np.abs(pnaive.rerope_attention(q, k, v, window, leak=leak).double().cpu().numpy() - want).max()
    assert err <= max(TOL[dtype], 2 * base), (err, base)


@pytest.mark.parametrize("leak,window", [(math.inf, 0), (math.inf, 4), (16.0, 3), (1.0, 2)])
def test_rerope_kernel_backward(leak: float, window: int) -> None:
    q, k, v = (t.requires_grad_() for t in _case(6, 21, 8, torch.float32, 7 + window))
    o = rr.rerope_attention(q, k, v, window, leak=leak)
    g = torch.randn_like(o)
    got = torch.autograd.grad(o, (q, k, v), g)
    want = ref.rerope_attention_vjp(q.detach().cpu(), k.detach().cpu(), v.detach().cpu(), g.cpu(), window, leak=leak)
    for a, b in zip(got, want, strict=True):
        assert np.abs(a.double().cpu().numpy() - b).max() < 1e-6 * max(1.0, float(np.abs(b).max()))


@pytest.mark.parametrize("H,HKV", [(4, 2), (6, 1)])
def test_rerope_kernel_gqa(H: int, HKV: int) -> None:
    """Query head h reads kv head h // (H / Hkv); the kv gradients sum over the group (oracle on repeated k, v)."""
    g_ = torch.Generator().manual_seed(H)
    q = torch.randn(2, H, 7, 8, generator=g_).to(DEVICE).requires_grad_()
    k, v = (torch.randn(2, HKV, 19, 8, generator=g_).to(DEVICE).requires_grad_() for _ in range(2))
    o = rr.rerope_attention(q, k, v, 3, leak=16.0)
    g = torch.randn_like(o)
    dq, dk, dv = torch.autograd.grad(o, (q, k, v), g)
    G = H // HKV
    kr, vr = (t.detach().cpu().repeat_interleave(G, 1) for t in (k, v))
    assert np.abs(o.detach().cpu().numpy() - ref.rerope_attention(q.detach().cpu(), kr, vr, 3, leak=16.0)).max() < 2e-6
    rq, rk, rv = ref.rerope_attention_vjp(q.detach().cpu(), kr, vr, g.cpu(), 3, leak=16.0)
    for got, want in ((dq, rq), (dk, rk.reshape(2, HKV, G, 19, 8).sum(2)), (dv, rv.reshape(2, HKV, G, 19, 8).sum(2))):
        assert np.abs(got.double().cpu().numpy() - want).max() < 1e-6 * max(1.0, float(np.abs(want).max()))


def test_rerope_kernel_errors() -> None:
    q, k, v = _case(3, 5, 8, torch.float32, 0)
    with pytest.raises(ValueError, match="leak"):
        rr.rerope_attention(q, k, v, 3, leak=1.5)  # w (k - 1) = 1.5 is not an integer
    with pytest.raises(ValueError, match="window"):
        rr.rerope_attention(q, k, v, -1)
    with pytest.raises(ValueError, match="'q'"):
        rr.rerope_attention(k, q, q, 1)  # T > S
    with pytest.raises(ValueError, match="'k'"):
        rr.rerope_attention(torch.zeros(1, 3, 2, 8), torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8), 1)


@pytest.mark.gpu
@pytest.mark.parametrize("T,S", [(1024, 1024), (1, 4096), (777, 2049)])
def test_rerope_kernel_gpu(T: int, S: int) -> None:
    if DEVICE != "cuda":
        pytest.skip("needs a GPU")
    q, k, v = _case(T, S, 128, torch.bfloat16, T)
    q.requires_grad_()
    o = rr.rerope_attention(q, k, v, 512, leak=16.0)
    want = ref.rerope_attention(q.detach().cpu(), k.cpu(), v.cpu(), 512, leak=16.0)
    assert np.abs(o.detach().double().cpu().numpy() - want).max() < 3e-2
    o.sum().backward()
    assert q.grad is not None and bool(torch.isfinite(q.grad).all())
