"""Monarch product in Triton (fly layout): ``y = P_(l,s) L P_(r,l) R x`` with x [..., k p], w1 [k, q, p] (R blocks),
w2 [l, s, r] (L blocks, l r = k q), y [..., l s]; forward and backward (``torch.autograd.Function``).

One kernel, :func:`_block_product`, does every step: for a tile of BLOCK_M tokens and one block b it forms
``A[b, tokens, :] @ op(W[b])`` with float32 accumulation and stores the result at addresses that apply the perfect
shuffle on the fly (``j = b JA + c JB``; address ``(j mod DIV) O1 + (j div DIV) O2 + token OT``), so no permutation
is ever materialised:

* forward 1: ``u = R x`` per R block, stored shuffled as v [l, N, r] (float32; j = b q + c, DIV = l);
* forward 2: ``y = L v`` per L block, stored at ``y[:, c l + b]`` (the output shuffle) rounded to x's dtype;
* backward 1: ``dv = gv w2`` with gv read through the output shuffle (strides), stored as du [k, N, q] (float32;
  j = c l + b, DIV = q: the middle shuffle undone);
* backward 2: ``dx = du w1`` per R block;
* weight gradients (:func:`_weight_grad`): ``dw2[b] = sum_tokens gv^T v`` and ``dw1[b] = sum_tokens du^T x``.

Precision: loads upcast to float32 under the interpreter (``EMULATE``); the float32 intermediates v and du are
rounded onto the input dtype's grid as dot operands (as the naive bmm baseline rounds u to the dtype, and as
tensor cores need), float32 inputs use IEEE float32 dots (never TF32); outputs are rounded once to nearest even.
Sources: Dao et al. 2022 (Monarch, arXiv:2204.00595); HazyResearch/fly ``BlockdiagButterflyMultiply``.
"""

from __future__ import annotations

from typing import Any

import torch

from veriformer.fast._triton.env import (
    HAVE_TRITON,
    KERNEL_DTYPES,
    bounded_jit,
    interpreting,
    launch,
    pow2,
    require_kernel_device,
    require_triton,
    tl,
    triton,
)
from veriformer.reference._validate import require

__all__ = ["monarch_matmul"]

_BIG = 1 << 40  # DIV for a non-shuffled store: j mod DIV = j

if HAVE_TRITON:
    from veriformer.fast._triton.precision import load_tile, to_operand, to_store

    # strides and shuffle constants keep Triton's own classes (1 / divisible by 16 / other): the four layouts of a
    # forward + backward each compile once with contiguous 16-byte loads (as one canonical class they all ran the
    # generic binary, element by element: sm_90 static report)
    @bounded_jit(free=("N",),
                 keep=("sa_b", "sa_t", "sa_f", "sw_b", "sw_c", "sw_f", "JA", "JB", "DIV", "O1", "O2", "OT"))
    def _block_product(A, W, O, N, KDIM, CDIM, sa_b, sa_t, sa_f, sw_b, sw_c, sw_f, JA, JB, DIV, O1, O2, OT,
                       BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_C: tl.constexpr,
                       DTYPE: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """O[shuffle(b, c), t] = sum_f A[b, t, f] W[b, c, f] for t in the tile, c < CDIM, f < KDIM."""
        pid_m = tl.program_id(0)
        b = tl.program_id(1)
        offs_t = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_f = tl.arange(0, BLOCK_K)
        offs_c = tl.arange(0, BLOCK_C)
        t_ok = offs_t < N
        f_ok = offs_f < KDIM
        c_ok = offs_c < CDIM
        a = load_tile(A + b * sa_b + offs_t[:, None] * sa_t + offs_f[None, :] * sa_f, t_ok[:, None] & f_ok[None, :],
                      EMULATE)
        w = load_tile(W + b * sw_b + offs_f[:, None] * sw_f + offs_c[None, :] * sw_c, f_ok[:, None] & c_ok[None, :],
                      EMULATE)
        acc = tl.dot(to_operand(a.to(tl.float32), DTYPE, EMULATE), to_operand(w.to(tl.float32), DTYPE, EMULATE),
                     input_precision=DOT_PREC)
        j = b * JA + offs_c * JB
        dst = (j % DIV) * O1 + (j // DIV) * O2
        ptrs = O + offs_t[:, None] * OT + dst[None, :]
        tl.store(ptrs, to_store(acc, O.dtype.element_ty, EMULATE), mask=t_ok[:, None] & c_ok[None, :])

    @bounded_jit(free=("N",), keep=("sa_b", "sa_t", "sa_f", "sb_b", "sb_t", "sb_f", "so_b", "so_a", "so_f"))
    def _weight_grad(A, Bm, O, N, ADIM, BDIM, sa_b, sa_t, sa_f, sb_b, sb_t, sb_f, so_b, so_a, so_f,
                     BLOCK_M: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
                     DTYPE: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """O[b, i, f] = sum_t A[b, t, i] Bm[b, t, f] (i < ADIM, f < BDIM), over all N tokens in BLOCK_M steps."""
        b = tl.program_id(0)
        offs_i = tl.arange(0, BLOCK_A)
        offs_f = tl.arange(0, BLOCK_B)
        i_ok = offs_i < ADIM
        f_ok = offs_f < BDIM
        acc = tl.zeros((BLOCK_A, BLOCK_B), dtype=tl.float32)
        for t0 in range(0, N, BLOCK_M):
            offs_t = t0 + tl.arange(0, BLOCK_M)
            t_ok = offs_t < N
            at = load_tile(A + b * sa_b + offs_i[:, None] * sa_f + offs_t[None, :] * sa_t,
                           i_ok[:, None] & t_ok[None, :], EMULATE)
            bt = load_tile(Bm + b * sb_b + offs_t[:, None] * sb_t + offs_f[None, :] * sb_f,
                           t_ok[:, None] & f_ok[None, :], EMULATE)
            acc += tl.dot(to_operand(at.to(tl.float32), DTYPE, EMULATE), to_operand(bt.to(tl.float32), DTYPE, EMULATE),
                          input_precision=DOT_PREC)
        ptrs = O + b * so_b + offs_i[:, None] * so_a + offs_f[None, :] * so_f
        tl.store(ptrs, to_store(acc, O.dtype.element_ty, EMULATE), mask=i_ok[:, None] & f_ok[None, :])


def _tl_dtype(dtype: torch.dtype) -> Any:
    return {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32}[dtype]


def _common(dtype: torch.dtype, width: int) -> dict[str, Any]:
    """Constexprs and launch options shared by every launch of one product; ``width`` is its largest block size.
    Wide blocks (>= 128) and float32 (IEEE FMA products, operands in registers) take 8 warps on the GPU, both 16: at
    the default 4, the 128 x 128 weight gradient spilled 428 bytes per thread in bf16 and the 64 x 64 x 64 float32
    block product 324; the float32 16 x 128 x 128 block product spilled 208 at 8 warps, none at 16 (sm_90, Triton
    3.9 ptxas, static)."""
    c: dict[str, Any] = {"DTYPE": _tl_dtype(dtype), "EMULATE": interpreting(),
                         "DOT_PREC": "ieee" if dtype == torch.float32 else "tf32"}
    if (dtype == torch.float32 or width >= 128) and not interpreting():
        c["num_warps"] = 16 if dtype == torch.float32 and width >= 128 else 8
    return c


def _block_m(n: int, dtype: torch.dtype, width: int) -> int:
    """Tokens per block-product tile: up to 64; float32 with blocks >= 128 takes 16 (64 spilled 7.9 KB per thread at
    128 x 128 blocks, sm_90 static)."""
    cap = 16 if dtype == torch.float32 and width >= 128 and not interpreting() else 64
    return min(cap, pow2(n, 16))


def _forward(x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x2 [N, k p] -> (y [N, l s] in x's dtype, v [l, N, r] float32)."""
    N = x2.shape[0]
    k, q, p = w1.shape
    l_, s, r = w2.shape
    v = torch.empty((l_, N, r), device=x2.device, dtype=torch.float32)
    y = torch.empty((N, l_ * s), device=x2.device, dtype=x2.dtype)
    width = max(k, q, p, l_, s, r)
    bm = _block_m(N, x2.dtype, width)
    c = _common(x2.dtype, width)
    # u[b, t, c] = sum_f x[t, b p + f] w1[b, c, f]; j = b q + c -> v[j mod l, t, j div l]
    launch(_block_product, (triton.cdiv(N, bm), k), x2, w1, v, N, p, q, p, x2.stride(0), 1,
           w1.stride(0), w1.stride(1), w1.stride(2), q, 1, l_, N * r, 1, r,
           BLOCK_M=bm, BLOCK_K=pow2(p, 16), BLOCK_C=pow2(q, 16), **c)
    # y[t, c l + b] = sum_f v[b, t, f] w2[b, c, f]
    launch(_block_product, (triton.cdiv(N, bm), l_), v, w2, y, N, r, s, N * r, r, 1,
           w2.stride(0), w2.stride(1), w2.stride(2), 1, l_, _BIG, 1, 0, y.stride(0),
           BLOCK_M=bm, BLOCK_K=pow2(r, 16), BLOCK_C=pow2(s, 16), **c)
    return y, v


def _backward(g2: torch.Tensor, x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, v: torch.Tensor,
              need: tuple[bool, bool, bool]) -> tuple[Any, Any, Any]:
    N = x2.shape[0]
    k, q, p = w1.shape
    l_, s, r = w2.shape
    width = max(k, q, p, l_, s, r)
    bm = _block_m(N, x2.dtype, width)
    c = _common(x2.dtype, width)
    g2 = g2.contiguous()
    dx = dw1 = dw2 = None
    if need[2]:
        # dw2[b, i, f] = sum_t gv[b, t, i] v[b, t, f], gv[b, t, i] = g[t, i l + b]
        dw2 = torch.empty_like(w2)
        launch(_weight_grad, (l_,), g2, v, dw2, N, s, r, 1, g2.stride(0), l_, N * r, r, 1,
               dw2.stride(0), dw2.stride(1), dw2.stride(2),
               BLOCK_M=bm, BLOCK_A=pow2(s, 16), BLOCK_B=pow2(r, 16), **c)
    if need[0] or need[1]:
        # dv[b, t, f] = sum_i gv[b, t, i] w2[b, i, f]; j = f l + b -> du[j div q, t, j mod q]
        du = torch.empty((k, N, q), device=x2.device, dtype=torch.float32)
        launch(_block_product, (triton.cdiv(N, bm), l_), g2, w2, du, N, s, r, 1, g2.stride(0), l_,
               w2.stride(0), w2.stride(2), w2.stride(1), 1, l_, q, 1, N * q, q,
               BLOCK_M=bm, BLOCK_K=pow2(s, 16), BLOCK_C=pow2(r, 16), **c)
        if need[0]:
            # dx[t, b p + f] = sum_i du[b, t, i] w1[b, i, f]
            dx = torch.empty_like(x2)
            launch(_block_product, (triton.cdiv(N, bm), k), du, w1, dx, N, q, p, N * q, q, 1,
                   w1.stride(0), w1.stride(2), w1.stride(1), p, 1, _BIG, 1, 0, dx.stride(0),
                   BLOCK_M=bm, BLOCK_K=pow2(q, 16), BLOCK_C=pow2(p, 16), **c)
        if need[1]:
            # dw1[b, i, f] = sum_t du[b, t, i] x[t, b p + f]
            dw1 = torch.empty_like(w1)
            launch(_weight_grad, (k,), du, x2, dw1, N, q, p, N * q, q, 1, p, x2.stride(0), 1,
                   dw1.stride(0), dw1.stride(1), dw1.stride(2),
                   BLOCK_M=bm, BLOCK_A=pow2(q, 16), BLOCK_B=pow2(p, 16), **c)
    return dx, dw1, dw2


class _Monarch(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        y, v = _forward(x2, w1, w2)
        ctx.save_for_backward(x2, w1, w2, v)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        x2, w1, w2, v = ctx.saved_tensors
        return _backward(g, x2, w1, w2, v, tuple(ctx.needs_input_grad[:3]))


def monarch_matmul(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Monarch product ``y = P_(l,s) L P_(r,l) R x`` (Triton): x [..., k p], w1 [k, q, p], w2 [l, s, r] with
    l r = k q, all float16, bfloat16 or float32 of one dtype -> y [..., l s] in x's dtype; float32 accumulation;
    differentiable in x, w1 and w2 (Triton backward).  Semantics: :func:`veriformer.reference.monarch_matmul`.
    Block sizes up to 256 (each block is one dot tile).  Inputs on CUDA, or on the CPU under the interpreter.
    Source: Dao et al. 2022 (Monarch), eq. (1); fly ``blockdiag_butterfly_multiply``."""
    func = "monarch_matmul"
    require_triton(func)
    for name, t in (("x", x), ("w1", w1), ("w2", w2)):
        require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
        require(t.dtype in KERNEL_DTYPES, func, name, "float16, bfloat16 or float32", f"dtype {t.dtype}")
        require(t.dtype == x.dtype, func, name, f"of x's dtype {x.dtype}", f"dtype {t.dtype}")
        require(t.device == x.device, func, name, f"on x's device {x.device}", f"device {t.device}")
    require(w1.dim() == 3 and min(w1.shape) >= 1 and max(w1.shape) <= 256, func, "w1",
            "of shape [k, q, p] with sizes in 1..256", f"shape {tuple(w1.shape)}")
    require(w2.dim() == 3 and min(w2.shape) >= 1 and max(w2.shape[1:]) <= 256, func, "w2",
            "of shape [l, s, r] with s, r in 1..256", f"shape {tuple(w2.shape)}")
    k, q, p = w1.shape
    l_, s, r = w2.shape
    require(l_ * r == k * q, func, "w2", f"of shape [l, s, r] with l * r = k * q = {k * q}", f"shape {tuple(w2.shape)}")
    require(x.dim() >= 1 and x.shape[-1] == k * p, func, "x", f"of shape [..., k p] = [..., {k * p}]",
            f"shape {tuple(x.shape)}")
    require_kernel_device(x, func, "x")
    batch = x.shape[:-1]
    x2 = x.reshape(-1, k * p).contiguous()
    if x2.shape[0] == 0:
        return x.new_zeros((*batch, l_ * s)) + 0 * (w1.sum() + w2.sum())
    y = _Monarch.apply(x2, w1.contiguous(), w2.contiguous())
    return y.reshape(*batch, l_ * s)
