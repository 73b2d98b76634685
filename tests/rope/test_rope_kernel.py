"""The Triton RoPE kernel (``fast/rope/fused.py``) against the float64 oracle: ``check()`` with gradients, the
direct forms (in place, partial rotation, per-batch positions), angles at large positions, rounding of low-precision
stores and bad inputs.  Without CUDA it runs in Triton's CPU interpreter; GPU-size tests are marked ``gpu``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON  # isort: skip

from _helpers import as_numpy, kernel_device, seeded_randn

import veriformer
from veriformer import reference as ref
from veriformer.fast.rope import naive as naive_rope
from veriformer.fast.rope.fused import rope, rope_qk
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")

DEV = kernel_device()


_rand = functools.partial(seeded_randn, device=DEV)
_np = as_numpy


@pytest.mark.parametrize(("layout", "rotary_dim"), [("interleaved", 8)])  # the catalogue checks the others
def test_rope_check_with_grad(layout: str, rotary_dim: int | None) -> None:
    fn = functools.partial(rope, layout=layout, rotary_dim=rotary_dim)
    r = veriformer.check(fn, op="rope", dtypes=("float16", "bfloat16", "float32"), device=DEV, grad=True,
                         max_examples=4, seed=2, layout=layout, rotary_dim=rotary_dim)
    assert r.passed, r.summary()


# ------------------------------------------------------------------------------------------ rope, direct

def test_rope_qk_equals_rope_and_inplace_equals_out_of_place() -> None:
    q, k = _rand(2, 4, 11, 64, seed=20), _rand(2, 2, 11, 64, seed=21)
    pos = torch.tensor([0, 3, 5, 9, 4095, 70000, 10**6, -7, 12, 13, 2**30])
    qo, ko = rope_qk(q, k, pos, base=500000.0)
    assert torch.equal(qo, rope(q, pos, base=500000.0)) and torch.equal(ko, rope(k, pos, base=500000.0))
    q2, k2 = q.clone(), k.clone()
    r = rope_qk(q2, k2, pos, base=500000.0, inplace=True)
    assert r[0] is q2 and r[1] is k2 and torch.equal(q2, qo) and torch.equal(k2, ko)
    np.testing.assert_allclose(_np(qo), ref.rope(_np(q), pos.numpy(), base=500000.0), atol=2e-6, rtol=0)


def test_rope_positions_per_batch_offset_and_default() -> None:
    x = _rand(2, 3, 6, 32, seed=22)
    pos_b = torch.tensor([[0, 1, 2, 3, 4, 5], [100, 101, 102, 103, 104, 105]])
    y = rope(x, pos_b, offset=7, layout="interleaved")
    for b in range(2):
        gold = ref.rope(_np(x[b]), pos_b[b].numpy() + 7, layout="interleaved")
        np.testing.assert_allclose(_np(y[b]), gold, atol=2e-6, rtol=0)
    assert torch.equal(rope(x), rope(x, torch.arange(6)))
    assert torch.equal(rope(x, offset=100), rope(x, torch.arange(6) + 100))


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_rope_partial_rotary_copies_the_tail_and_inverts(layout: str) -> None:
    x = _rand(1, 2, 9, 80, seed=23)
    pos = torch.arange(9) * 1000 + 3
    y = rope(x, pos, layout=layout, rotary_dim=48)
    assert torch.equal(y[..., 48:], x[..., 48:])
    np.testing.assert_allclose(_np(y), ref.rope(_np(x), pos.numpy(), layout=layout, rotary_dim=48), atol=2e-6,
                               rtol=0)
    back = rope(y, -pos, layout=layout, rotary_dim=48)
    np.testing.assert_allclose(_np(back), _np(x), atol=3e-6, rtol=0)


def test_rope_gradients_are_the_inverse_rotation_inplace_too() -> None:
    x0 = _rand(1, 3, 7, 32, seed=24, grad=True)
    k0 = _rand(1, 1, 7, 32, seed=25, grad=True)
    pos = torch.tensor([5, 1, 99, 12345, -3, 0, 10**6])
    g, gk = _rand(1, 3, 7, 32, seed=26), _rand(1, 1, 7, 32, seed=27)
    x, k = x0 * 1.0, k0 * 1.0  # non-leaf, so in-place is allowed under autograd
    yq, yk = rope_qk(x, k, pos, inplace=True)
    dx, dk = torch.autograd.grad((yq, yk), (x0, k0), (g, gk))
    np.testing.assert_allclose(_np(dx), ref.rope_vjp(_np(g), pos.numpy()), atol=2e-6, rtol=0)
    np.testing.assert_allclose(_np(dk), ref.rope_vjp(_np(gk), pos.numpy()), atol=2e-6, rtol=0)
    (dq_only,) = torch.autograd.grad(rope_qk(x0, k0, pos)[0], (x0,), g)  # k's output unused
    np.testing.assert_allclose(_np(dq_only), _np(dx), atol=0, rtol=0)


def test_rope_angles_at_large_positions_stay_accurate() -> None:
    """The float64 turn reduction: at positions ~1e6 the float32 kernel stays at float32 rounding, while
    the float32-angle naive formula is off by ~1e-2 (the spec's 0.06 rad warning)."""
    x = _rand(1, 1, 8, 128, seed=28)
    pos = torch.tensor([10**6 - 3, 10**6, 10**6 + 1, 2**24 + 1, 3 * 10**6, 2**31, -(10**6), 10**9])
    gold = ref.rope(_np(x), pos.numpy())
    err = np.abs(_np(rope(x, pos)) - gold).max()
    err_naive = np.abs(_np(naive_rope.rope(x, pos)) - gold).max()
    assert err < 3e-6, err
    assert err_naive > 1e-3, err_naive


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rope_low_precision_store_rounds_to_nearest_even(dtype: torch.dtype) -> None:
    """The kernel computes in float32 and rounds once: its output must equal the float32 kernel's output
    rounded by torch (round to nearest even) bit for bit (the interpreter's own bf16 cast truncates)."""
    x = _rand(2, 2, 16, 64, dtype=dtype, seed=29)
    pos = torch.arange(16) * 37 + 5
    assert torch.equal(rope(x, pos), rope(x.float(), pos).to(dtype))


def test_rope_bad_inputs() -> None:
    x = _rand(1, 2, 4, 32)
    with pytest.raises(InputError, match="argument 'x'"):
        rope(_rand(1, 2, 4, 31))
    with pytest.raises(InputError, match="argument 'rotary_dim'"):
        rope(x, rotary_dim=7)
    with pytest.raises(InputError, match="argument 'positions'"):
        rope(x, torch.arange(4.0))
    with pytest.raises(InputError, match="argument 'positions'"):
        rope(x, torch.arange(5))
    with pytest.raises(InputError, match="argument 'base'"):
        rope(x, base=1.0)
    with pytest.raises(InputError, match="argument 'layout'"):
        rope(x, layout="neox")
    with pytest.raises(InputError, match="argument 'k'"):
        rope_qk(x, _rand(1, 2, 5, 32))


@pytest.mark.gpu
def test_rope_gpu_size_large_positions() -> None:
    x = torch.randn(4, 16, 4096, 128, device="cuda")
    pos = torch.arange(4096, device="cuda") + 10**6
    gold = ref.rope(x[:1, :2].cpu().numpy(), pos.cpu().numpy())
    assert np.abs(rope(x, pos)[:1, :2].cpu().double().numpy() - gold).max() < 3e-6


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_rope_check_on_cuda(layout: str) -> None:
    r = veriformer.check(functools.partial(rope, layout=layout), op="rope", device="cuda", grad=True,
                         dtypes=("float16", "bfloat16", "float32"), layout=layout)
    assert r.passed, r.summary()
