"""S4D kernel generation (Vandermonde) in Triton and the FFT long convolution for many channels, forward and
backward.

Public:

* :func:`s4d_kernel` (op ``s4d_kernel`` convention ``fn(log_dt, A, B, C, L) -> K``): the S4D ZOH kernel
  ``K[h, l] = 2 Re sum_n W[h, n] exp(l dt_h A[h, n])``, ``W = C B (exp(dt A) - 1)/A``, ``dt = exp(log_dt)``;
  log_dt [H] real, A/B/C [H, N2] complex (conjugate pairs implied), K [H, L] in log_dt's dtype.
* :func:`fft_conv` (op ``ssm_convolution`` convention ``fn(u, kernel) -> y``): the causal long convolution
  ``y[b, c, k] = sum_{j<=k} K[c, j] u[b, c, k-j] (+ D[c] u[b, c, k])``, u [B, C, L], kernel [C, L], by rfft
  zero-padded to 2L, batched over all channels.

**s4d_kernel forward** (Triton, float32 arithmetic on (re, im) parts, no complex dtype in the kernel).  The host
forms, in float64/complex128 from the given values, per (h, n): ``W`` (with ``expm1``), the decay rate
``dt Re A log2 e`` (float32) and the phase increment in turns ``tau = dt Im A / (2 pi)`` reduced to [-1/2, 1/2]
(exactly: ``t - round(t)``, float64).  One program per (chunk of TILES x BLOCK_L positions, h) writes
``l = b_t + j`` (tile starts ``b_t``, offsets ``j < BLOCK_L``) and sums over N2 in blocks of BLOCK_N:
``K[b_t + j] = 2 Re sum_n (W_n Z[t, n]) P[j, n]``, ``Z = e^{b_t dt A}``, ``P = e^{j dt A}`` -- two float32
``tl.dot`` per block (``input_precision="ieee"``, no TF32), so the exp/cos/sin are evaluated (TILES + BLOCK_L)
times per eigenvalue and chunk instead of TILES x BLOCK_L times.  Each phasor ``e^{l dt A} = 2^(l rate)
(cos theta + i sin theta)`` has decay ``2^(l rate)`` (exponent rounded once in float32: an error
``<= u |l rate| 2^(l rate) <= u/e`` relative, bounded for every l) and rotation ``theta = 2 pi frac(l tau)``
reduced as in :mod:`.triton_rope`: ``l tau`` formed in float64 (l is an exact integer), whole turns removed
exactly (``x - floor(x + 1/2)``), the reduced angle split into two float32s ``hi + lo`` with
``cos(hi + lo) = cos hi - lo sin hi``, ``sin(hi + lo) = sin hi + lo cos hi``.  The angle error is thus
``~ l |dt Im A| 2^-53`` (float64 level, the oracle's own) plus float32 cos/sin rounding, instead of the complex64
formula's ``~ l |dt A| 2^-24`` (0.06 rad at l = 65536, |dt A| = 15); the product ``Z P`` adds ~2 float32
roundings per term.

**s4d_kernel backward** (Triton + torch).  With ``S_n = sum_l G_l e^{l dt A_n}`` and
``S'_n = sum_l l G_l e^{l dt A_n}`` (the transposed Vandermonde products of the cotangent G [H, L]), a second
Triton kernel computes per chunk ``Q = G P``, ``R = (G j) P`` (float32 dots [TILES, BLOCK_N]) and the partial sums
``sum_t Z_t Q_t`` and ``sum_t Z_t (b_t Q_t + R_t)``; the host adds the chunks in float64 and applies the O(H N2)
chain rule in complex128 (torch's convention for complex leaves: ``grad = dL/dRe + i dL/dIm = 2 conj(df/dz)``
for ``L = 2 Re f(z)``):
``gC = 2 conj(B E S)``, ``gB = 2 conj(C E S)``, ``gA = 2 conj(C B (E' S + E dt S'))``,
``glog_dt = 2 dt Re sum_n C B (e^{dt A} S + (e^{dt A} - 1) S')``, with ``E = (e^{dt A} - 1)/A`` and
``E' = dE/dA = (dt e^{dt A} - E)/A``.  float64 inputs take a torch complex128 path (the formula with torch
autograd): a float32 kernel cannot match a float64 baseline.

**fft_conv** (torch FFT: cuFFT on the GPU, pocketfft on the CPU): ``y = irfft(rfft(u, 2L) rfft(K, 2L), 2L)[:L]``
(padding to 2L >= 2L - 1 makes the circular convolution linear), in float32 for float16/bfloat16/float32 inputs
and float64 for float64; result rounded once to u's dtype.  Backward (custom autograd Function, saves u and K,
not the spectra): ``du = irfft(rfft(g) conj(rfft(K)))[:L] + D g`` and ``dK = irfft(sum_b rfft(g_b)
conj(rfft(u_b)))[:L]`` (correlations; the batch sum is taken on the spectra), ``dD = sum_{b,k} g u``.  The normwise
error is ``~ u log2(2L) ||K|| ||u||`` (Higham 2002, 24.1).

Sources: Gu et al. 2022 (S4, arXiv 2111.00396: FFT convolution, padding) and S4D (arXiv 2206.11893:
Vandermonde, ZOH); Gu et al. 2022
"On the Parameterization and Initialization of Diagonal State Space Models" (S4D), state-spaces/s4
``models/s4/s4d.py`` (``S4DKernel``) and ``FFTConv``; :func:`veriformer.reference.s4d_kernel`,
:func:`veriformer.reference.causal_convolution`.
"""

import math
import numbers
from typing import Any

import torch

from veriformer.fast._triton.env import (
    HAVE_TRITON,
    KERNEL_DTYPES_F64,
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

__all__ = ["fft_conv", "s4d_kernel"]

_LOG2E = 1.4426950408889634
_DTYPES = KERNEL_DTYPES_F64
_COMPLEX = (torch.complex64, torch.complex128)

if HAVE_TRITON:
    from veriformer.fast._triton.precision import to_store as _to_store
    from veriformer.fast._triton.trig import cos_sin_turns

    @triton.jit
    def _phasor(offs_l, rate, turns, two_pi, EMULATE: tl.constexpr):
        """``e^{l dt A}`` as (re, im) float32 tiles [len(l), BLOCK_N]: decay ``2^(l rate)`` times the rotation by
        ``2 pi frac(l turns)`` (float64 turns, whole turns removed exactly, hi/lo float32 split)."""
        c, s = cos_sin_turns(offs_l.to(tl.float64)[:, None] * turns[None, :], two_pi, EMULATE)
        mag = tl.math.exp2(offs_l.to(tl.float32)[:, None] * rate[None, :])
        return mag * c, mag * s

    @bounded_jit(free=["L"], units=["skl"])
    def _s4d_fwd(WR, WI, RATE, TURNS, K, L, N2, skh, skl, TILES: tl.constexpr, BLOCK_L: tl.constexpr,
                 BLOCK_N: tl.constexpr, EMULATE: tl.constexpr):
        """K over one chunk of TILES * BLOCK_L positions l = l0 + t BLOCK_L + j of channel h:
        ``K[t, j] = 2 Re sum_n (W_n Z[t, n]) P[j, n]`` with ``Z = e^{(l0 + t BLOCK_L) dt A}`` and
        ``P = e^{j dt A}``: two float32 dots (re, im) per block of BLOCK_N eigenvalues."""
        DTYPE: tl.constexpr = K.dtype.element_ty
        pid = tl.program_id(0)
        h = tl.program_id(1).to(tl.int64)
        two_pi = tl.load(TURNS + N2 * tl.num_programs(1))  # float64 2 pi stored after the table
        offs_t = tl.arange(0, TILES)
        offs_j = tl.arange(0, BLOCK_L)
        base = pid * (TILES * BLOCK_L) + offs_t * BLOCK_L
        acc = tl.zeros([TILES, BLOCK_L], tl.float32)
        for n0 in range(0, N2, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            n_ok = offs_n < N2
            p = h * N2 + offs_n
            wr = tl.load(WR + p, mask=n_ok, other=0.0)
            wi = tl.load(WI + p, mask=n_ok, other=0.0)
            rate = tl.load(RATE + p, mask=n_ok, other=0.0)
            turns = tl.load(TURNS + p, mask=n_ok, other=0.0)
            zr, zi = _phasor(base, rate, turns, two_pi, EMULATE)  # [TILES, BLOCK_N]
            wzr = zr * wr[None, :] - zi * wi[None, :]
            wzi = zr * wi[None, :] + zi * wr[None, :]
            pr, pi = _phasor(offs_j, rate, turns, two_pi, EMULATE)  # [BLOCK_L, BLOCK_N]
            acc = tl.dot(wzr, tl.trans(pr), acc, input_precision="ieee")
            acc = tl.dot(-wzi, tl.trans(pi), acc, input_precision="ieee")
        pos = base[:, None] + offs_j[None, :]
        tl.store(K + h * skh + pos.to(tl.int64) * skl, _to_store(2.0 * acc, DTYPE, EMULATE), mask=pos < L)

    @bounded_jit(free=["L", "NCHUNK"], units=["sgl"])
    def _s4d_bwd(G, RATE, TURNS, PART, L, N2, NCHUNK, sgh, sgl, TILES: tl.constexpr, BLOCK_L: tl.constexpr,
                 BLOCK_N: tl.constexpr, EMULATE: tl.constexpr):
        """Partial transposed Vandermonde sums over one chunk: PART[k, h, chunk, n] for k = 0..3 = Re S, Im S,
        Re S', Im S' (S = sum_l G_l e^{l dt A_n}, S' = sum_l l G_l e^{l dt A_n}).  With l = b_t + j
        (b_t = l0 + t BLOCK_L), ``Q = G P`` and ``R = (G j) P`` are float32 dots [TILES, BLOCK_N], and
        ``S = sum_t Z_t Q_t``, ``S' = sum_t Z_t (b_t Q_t + R_t)``."""
        pid = tl.program_id(0)
        h = tl.program_id(1).to(tl.int64)
        H = tl.num_programs(1)
        two_pi = tl.load(TURNS + N2 * H)
        plane = H.to(tl.int64) * NCHUNK * N2
        offs_t = tl.arange(0, TILES)
        offs_j = tl.arange(0, BLOCK_L)
        base = pid * (TILES * BLOCK_L) + offs_t * BLOCK_L
        pos = base[:, None] + offs_j[None, :]
        g = tl.load(G + h * sgh + pos.to(tl.int64) * sgl, mask=pos < L, other=0.0).to(tl.float32)
        gj = g * offs_j.to(tl.float32)[None, :]
        bf = base.to(tl.float32)[:, None]
        for n0 in range(0, N2, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            n_ok = offs_n < N2
            p = h * N2 + offs_n
            rate = tl.load(RATE + p, mask=n_ok, other=0.0)
            turns = tl.load(TURNS + p, mask=n_ok, other=0.0)
            pr, pi = _phasor(offs_j, rate, turns, two_pi, EMULATE)  # [BLOCK_L, BLOCK_N]
            zr, zi = _phasor(base, rate, turns, two_pi, EMULATE)  # [TILES, BLOCK_N]
            qr = tl.dot(g, pr, input_precision="ieee")
            qi = tl.dot(g, pi, input_precision="ieee")
            rr = tl.dot(gj, pr, input_precision="ieee")
            ri = tl.dot(gj, pi, input_precision="ieee")
            zqr = zr * qr - zi * qi
            zqi = zr * qi + zi * qr
            zrr = zr * rr - zi * ri
            zri = zr * ri + zi * rr
            q = PART + (h * NCHUNK + pid) * N2 + offs_n
            tl.store(q, tl.sum(zqr, 0), mask=n_ok)
            tl.store(q + plane, tl.sum(zqi, 0), mask=n_ok)
            tl.store(q + 2 * plane, tl.sum(bf * zqr + zrr, 0), mask=n_ok)
            tl.store(q + 3 * plane, tl.sum(bf * zqi + zri, 0), mask=n_ok)


_pow2 = pow2


def _s4d_tables(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """complex128 dt [H, 1], dtA, E = expm1(dtA)/A, W = C B E, and the kernel tables: W re/im (float32), rate
    ``dt Re A log2 e`` (float32), turns ``dt Im A / 2 pi`` reduced to [-1/2, 1/2] with 2 pi appended (float64)."""
    dt = torch.exp(log_dt.detach().to(torch.float64))[:, None]
    A64, B64, C64 = (x.detach().to(torch.complex128) for x in (A, B, C))
    dtA = A64 * dt
    E = torch.expm1(dtA) / A64
    W = C64 * B64 * E
    t = dtA.imag / (2 * math.pi)
    turns = t - torch.round(t)  # exact: whole turns removed
    turns = torch.cat([turns.reshape(-1), turns.new_full((1,), 2 * math.pi)])
    rate = (dtA.real * _LOG2E).to(torch.float32).contiguous()
    return dt, A64, B64, C64, dtA, E, W, W.real.to(torch.float32).contiguous(), \
        W.imag.to(torch.float32).contiguous(), rate, turns.contiguous()


def _config(L: int, N2: int) -> tuple[int, int, int]:
    """(TILES, BLOCK_L, BLOCK_N): chunks of TILES * BLOCK_L positions per program, eigenvalues in blocks of
    BLOCK_N (dot operands need every dim >= 16).  GPU: 16 x 64 positions, 32 eigenvalues (a first guess: tune on
    the GPU); interpreter: the same shapes capped by the problem (it pays per program and per operation)."""
    if interpreting():
        return 16, min(max(_pow2(triton.cdiv(L, 16)), 16), 256), min(max(_pow2(N2), 16), 64)
    return 16, 64, 32


class _S4DKernel(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                L: int) -> torch.Tensor:
        H, N2 = A.shape
        dt, A64, B64, C64, dtA, E, _, wr, wi, rate, turns = _s4d_tables(log_dt, A, B, C)
        K = torch.empty((H, L), dtype=log_dt.dtype, device=log_dt.device)
        tiles, block_l, block_n = _config(L, N2)
        launch(_s4d_fwd, (triton.cdiv(L, tiles * block_l), H), wr, wi, rate, turns, K, L, N2, *K.stride(),
               TILES=tiles, BLOCK_L=block_l, BLOCK_N=block_n, EMULATE=interpreting())
        ctx.save_for_backward(rate, turns)
        ctx.tabs = (dt, A64, B64, C64, dtA, E)
        ctx.dtypes = (log_dt.dtype, A.dtype, B.dtype, C.dtype)
        ctx.L = L
        return K

    @staticmethod
    def backward(ctx: Any, gK: torch.Tensor) -> tuple[Any, ...]:
        rate, turns = ctx.saved_tensors
        dt, A64, B64, C64, dtA, E = ctx.tabs
        H, N2 = A64.shape
        L = ctx.L
        tiles, block_l, block_n = _config(L, N2)
        nchunk = triton.cdiv(L, tiles * block_l)
        part = torch.empty((4, H, nchunk, N2), dtype=torch.float32, device=gK.device)
        # 8 warps: at the default 4, ptxas (sm_90) spills ~120 B per thread at 255 registers; at 8 it needs 89 and
        # none, with the same two blocks per SM (reports/sm90-static/resources.md)
        launch(_s4d_bwd, (nchunk, H), gK, rate, turns, part, L, N2, nchunk, *gK.stride(),
               TILES=tiles, BLOCK_L=block_l, BLOCK_N=block_n, EMULATE=interpreting(), num_warps=8)
        p = part.to(torch.float64).sum(dim=2)
        S = torch.complex(p[0], p[1])
        Sd = torch.complex(p[2], p[3])
        eA = torch.exp(dtA)
        dE = (dt * eA - E) / A64
        CB = C64 * B64
        ld_t, a_t, b_t, c_t = ctx.dtypes
        g_logdt = g_A = g_B = g_C = None
        if ctx.needs_input_grad[0]:
            g_logdt = (2 * dt[:, 0] * (CB * (eA * S + (eA - 1) * Sd)).real.sum(-1)).to(ld_t)
        if ctx.needs_input_grad[1]:
            g_A = (2 * torch.conj(CB * (dE * S + E * dt * Sd))).to(a_t)
        if ctx.needs_input_grad[2]:
            g_B = (2 * torch.conj(C64 * E * S)).to(b_t)
        if ctx.needs_input_grad[3]:
            g_C = (2 * torch.conj(B64 * E * S)).to(c_t)
        return g_logdt, g_A, g_B, g_C, None


def _s4d_torch64(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """float64 path: the formula in complex128 with torch autograd (exp of the complex128 product l dt A),
    ``e^{dt A} - 1`` by ``expm1`` as the float64 oracle forms it (no cancellation at small |dt A|)."""
    dt = torch.exp(log_dt)[:, None]
    A, B, C = (x.to(torch.complex128) for x in (A, B, C))
    dtA = A * dt
    W = C * B * torch.expm1(dtA) / A
    ls = torch.arange(L, device=log_dt.device, dtype=torch.float64)
    return 2 * torch.einsum("hn,hnl->hl", W, torch.exp(dtA[..., None] * ls)).real


def s4d_kernel(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """S4D ZOH Vandermonde kernel (Triton forward and backward), op ``s4d_kernel`` convention.

    ``K[h, l] = 2 Re sum_{n<N2} C[h,n] B[h,n] (exp(dt_h A[h,n]) - 1)/A[h,n] exp(l dt_h A[h,n])``,
    ``dt = exp(log_dt)``, l = 0..L-1 (conjugate pairs implied by the ``2 Re``).
    log_dt [H] float16/bfloat16/float32/float64; A, B, C [H, N2] complex64 or complex128 (A nonzero);
    returns K [H, L] in log_dt's dtype.  Differentiable in log_dt, A, B, C (complex gradients in torch's
    ``dL/dRe + i dL/dIm`` convention).  float16/bfloat16/float32: Triton kernels with the rotation angle reduced
    in float64 (module docstring); float64: torch complex128.  Inputs on CUDA (or the CPU under the Triton
    interpreter); the float64 path runs on any device.
    Source: Gu et al. 2022 (S4D, arXiv 2206.11893); S4 ``models/s4/s4d.py``; :func:`veriformer.reference.s4d_kernel`.
    """
    func = "s4d_kernel"
    require(isinstance(log_dt, torch.Tensor), func, "log_dt", "a torch.Tensor", type(log_dt).__name__)
    require(log_dt.dim() == 1 and log_dt.shape[0] >= 1, func, "log_dt", "a non-empty rank-1 tensor [H]",
            f"shape {tuple(log_dt.shape)}")
    require(log_dt.dtype in _DTYPES, func, "log_dt", "float16, bfloat16, float32 or float64", f"dtype {log_dt.dtype}")
    H = log_dt.shape[0]
    for name, x in (("A", A), ("B", B), ("C", C)):
        require(isinstance(x, torch.Tensor), func, name, "a torch.Tensor", type(x).__name__)
        require(x.dtype in _COMPLEX, func, name, "complex64 or complex128 (conjugate pairs implied)",
                f"dtype {x.dtype}")
        require(x.dim() == 2 and x.shape[0] == H and x.shape[1] >= 1, func, name,
                f"of shape [H={H}, N2] with N2 >= 1", f"shape {tuple(x.shape)}")
        require(x.shape == A.shape, func, name, f"of A's shape {tuple(A.shape)}", f"shape {tuple(x.shape)}")
        require(x.device == log_dt.device, func, name, f"on log_dt's device {log_dt.device}", f"device {x.device}")
    require(isinstance(L, numbers.Integral) and not isinstance(L, bool) and L >= 1, func, "L", "an int >= 1",
            repr(L))
    L = int(L)
    with torch.no_grad():
        require(bool(torch.isfinite(log_dt).all()), func, "log_dt", "finite", "a NaN or Inf")
        for name, x in (("A", A), ("B", B), ("C", C)):
            require(bool(torch.isfinite(torch.view_as_real(x)).all()), func, name, "finite", "a NaN or Inf")
        require(bool((A != 0).all()), func, "A", "nonzero (ZOH divides by A)", "a zero eigenvalue")
    if log_dt.dtype == torch.float64:
        return _s4d_torch64(log_dt, A, B, C, L)
    require_triton(func)
    require_kernel_device(log_dt, func, "log_dt")
    return _S4DKernel.apply(log_dt, A, B, C, L)


# -- FFT long convolution -----------------------------------------------------------------------------------------


def _work(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _causal_corr(gf: torch.Tensor, xf: torch.Tensor, n: int, L: int) -> torch.Tensor:
    """``r_i = sum_{k>=i} g_k x_{k-i}`` for i < L from padded spectra: ``irfft(G conj(X), n)[:L]``."""
    return torch.fft.irfft(gf * torch.conj(xf), n=n)[..., :L]


class _FFTConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, kernel: torch.Tensor, D: torch.Tensor | None) -> torch.Tensor:
        L = u.shape[-1]
        n = 2 * L
        w = _work(u.dtype)
        uw = u.to(w)
        y = torch.fft.irfft(torch.fft.rfft(uw, n=n) * torch.fft.rfft(kernel.to(w), n=n), n=n)[..., :L]
        if D is not None:
            y = y + uw * D.to(w)[:, None]
        ctx.save_for_backward(u, kernel, D)
        return y.to(u.dtype)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        u, kernel, D = ctx.saved_tensors
        L = u.shape[-1]
        n = 2 * L
        w = _work(u.dtype)
        gw = g.to(w)
        gf = torch.fft.rfft(gw, n=n)
        du = dK = dD = None
        if ctx.needs_input_grad[0]:
            du = _causal_corr(gf, torch.fft.rfft(kernel.to(w), n=n), n, L)
            if D is not None:
                du = du + gw * D.to(w)[:, None]
            du = du.to(u.dtype)
        if ctx.needs_input_grad[1]:
            uf = torch.fft.rfft(u.to(w), n=n)
            dK = torch.fft.irfft((gf * torch.conj(uf)).sum(0), n=n)[..., :L].to(kernel.dtype)
        if D is not None and ctx.needs_input_grad[2]:
            dD = (gw * u.to(w)).sum(dim=(0, 2)).to(D.dtype)
        return du, dK, dD


def fft_conv(u: torch.Tensor, kernel: torch.Tensor, *, D: torch.Tensor | None = None) -> torch.Tensor:
    """Causal long convolution per channel by FFT (op ``ssm_convolution`` convention, plus an optional skip D).

    ``y[b, c, k] = sum_{j=0}^{k} kernel[c, j] u[b, c, k-j] + D[c] u[b, c, k]``; u [B, C, L], kernel [C, L],
    D [C] or None; y [B, C, L] in u's dtype.  ``irfft(rfft(u, 2L) rfft(K, 2L), 2L)[..., :L]`` batched over all
    B*C rows, in float32 for float16/bfloat16/float32 and float64 for float64 (kernel and D must have u's dtype
    and device).  Differentiable in u, kernel and D (backward: FFT correlations, module docstring).
    Source: Gu et al. 2022 (S4, arXiv 2111.00396); S4 ``FFTConv``; :func:`veriformer.reference.causal_convolution`.
    """
    func = "fft_conv"
    require(isinstance(u, torch.Tensor), func, "u", "a torch.Tensor", type(u).__name__)
    require(u.dim() == 3 and min(u.shape) >= 1, func, "u", "a non-empty rank-3 tensor [B, C, L]",
            f"shape {tuple(u.shape)}")
    require(u.dtype in _DTYPES, func, "u", "float16, bfloat16, float32 or float64", f"dtype {u.dtype}")
    _, Cn, L = u.shape
    require(isinstance(kernel, torch.Tensor), func, "kernel", "a torch.Tensor", type(kernel).__name__)
    require(tuple(kernel.shape) == (Cn, L), func, "kernel", f"of shape [C={Cn}, L={L}] (no broadcasting)",
            f"shape {tuple(kernel.shape)}")
    require(kernel.dtype == u.dtype and kernel.device == u.device, func, "kernel",
            f"of u's dtype {u.dtype} on {u.device}", f"{kernel.dtype} on {kernel.device}")
    if D is not None:
        require(isinstance(D, torch.Tensor), func, "D", "None or a torch.Tensor", type(D).__name__)
        require(tuple(D.shape) == (Cn,), func, "D", f"of shape [C={Cn}]", f"shape {tuple(D.shape)}")
        require(D.dtype == u.dtype and D.device == u.device, func, "D", f"of u's dtype {u.dtype} on {u.device}",
                f"{D.dtype} on {D.device}")
    return _FFTConv.apply(u, kernel, D)
