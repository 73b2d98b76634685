"""Rotary position embedding (RoPE) in Triton: one kernel rotates q and k together, in place or out of
place, layouts "half" (GPT-NeoX / HF Llama) and "interleaved" (GPT-J / RoFormer), partial rotary,
explicit position ids (plus an offset for decoding), float16/bfloat16/float32 inputs.

Public: :func:`rope` (op ``rope`` convention ``fn(x, positions, *, base) -> y``, x [B, H, T, D]) and
:func:`rope_qk` (q [B, Hq, T, D] and k [B, Hk, T, D] in one launch).

Formula (as :func:`veriformer.reference.rope`): pair i of a token at position n, features
``(a_i, b_i) = (i, i + r/2)`` ("half") or ``(2i, 2i + 1)`` ("interleaved"), is rotated by the angle
``n theta_i``, ``theta_i = base^(-2i/r)``: ``(a, b) -> (a cos - b sin, a sin + b cos)``; features
``>= r = rotary_dim`` are copied.  The backward is the inverse rotation (angle ``-n theta_i``).

Angle accuracy.  A float32 angle ``n * theta`` is off by up to half an ulp of ``n theta``: 0.03 rad at
``n ~ 1e6`` (the spec's warning; the naive HF-style baseline has exactly this error).  Here the host
computes ``theta_i / (2 pi)`` (turns per position) in float64 once per (r, base); the kernel forms
``n * turns_i`` in float64 (n is an exact integer), removes the whole turns
(``f = x - floor(x + 1/2)``, exact) and forms the reduced angle ``2 pi f`` in [-pi, pi] in float64.  That
angle is split into two float32s ``hi + lo`` and ``cos(hi + lo) = cos hi - lo sin hi``,
``sin(hi + lo) = sin hi + lo cos hi`` (first order; the neglected term is ~lo^2 ~ 1e-14), with float32
``cos``/``sin`` of ``hi`` (libdevice on the GPU; NumPy in the interpreter).  The angle error is thus
``|n theta| 2^-52`` from the float64 product (the float64 oracle carries the same term), float32-rounding
level for |n theta| up to ~1e9, instead of the float32 angle's ``|n theta| 2^-24``; cos/sin are as accurate
as float32 cos/sin of an exact argument (which the naive formula enjoys at theta_0 = 1, where ``n * 1`` is
exact in float32 for |n| < 2^24).  The float64 work is per (token, pair) and shared by all heads of q and k.
Rotation arithmetic is float32; the result is rounded once to the input dtype.

Scaling (``scaling=``, as :func:`veriformer.reference.rope`): the host computes the per-pair frequencies
``theta'_i`` of the scheme in float64 (:func:`veriformer.reference.positions.scaled_frequencies`: PI, NTK, base
conversion, fixed, mixed base, dynamic NTK) and hands the kernel ``theta'_i / (2 pi)``; the kernel is unchanged.
Dynamic NTK reads the largest position (``positions.max() + offset + 1``, one host sync) unless the description
carries ``seq_len``.

Tiling: one program per (block of BLOCK_T tokens, batch index, group of heads); it computes the cos/sin
tile [BLOCK_T, r/2] once and then streams the heads of q and then k of its group through it (loads
upcast to float32, stores rounded to nearest even).  In place is safe: each element is read and written
by the same program.  Out of place, the features beyond r are copied by the same program.

Sources: Su et al. 2021 (RoFormer); GPT-NeoX rotary_pct (partial rotary).
"""

import math
import numbers
from typing import Any

import numpy as np
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
    small_launch,
    tl,
    triton,
)
from veriformer.reference._validate import InputError, require
from veriformer.reference.positions import scaled_frequencies, validate_scaling

__all__ = ["rope", "rope_qk"]

_DTYPES = KERNEL_DTYPES
_LAYOUTS = ("half", "interleaved")

if HAVE_TRITON:
    from veriformer.fast._triton.precision import to_store as _to_store
    from veriformer.fast._triton.trig import cos_sin_turns

    @triton.jit
    def _rope_heads(X, Y, sxb, sxh, sxt, sxd, syb, syh, syt, syd, b, h_lo, h_hi, offs_t, t_ok, cos, sin, offs_p,
                    p_ok, HALF, R, DTAIL, INTERLEAVED: tl.constexpr, COPY_TAIL: tl.constexpr,
                    BLOCK_TAIL: tl.constexpr, EMULATE: tl.constexpr):
        DTYPE: tl.constexpr = Y.dtype.element_ty
        if INTERLEAVED:
            ia = 2 * offs_p
            ib = 2 * offs_p + 1
        else:
            ia = offs_p
            ib = offs_p + HALF
        m = t_ok[:, None] & p_ok[None, :]
        for h in range(h_lo, h_hi):
            xrow = X + b * sxb + h * sxh + offs_t[:, None] * sxt
            yrow = Y + b * syb + h * syh + offs_t[:, None] * syt
            xa = tl.load(xrow + ia[None, :] * sxd, mask=m, other=0.0).to(tl.float32)
            xb = tl.load(xrow + ib[None, :] * sxd, mask=m, other=0.0).to(tl.float32)
            ya = tl.fma(xa, cos, -(xb * sin))  # explicit FMA: the GPU would contract anyway
            yb = tl.fma(xa, sin, xb * cos)
            tl.store(yrow + ia[None, :] * syd, _to_store(ya, DTYPE, EMULATE), mask=m)
            tl.store(yrow + ib[None, :] * syd, _to_store(yb, DTYPE, EMULATE), mask=m)
            if COPY_TAIL:
                offs_x = tl.arange(0, BLOCK_TAIL)
                mt = t_ok[:, None] & (offs_x[None, :] < DTAIL)
                tail = tl.load(xrow + (R + offs_x[None, :]) * sxd, mask=mt)
                tl.store(yrow + (R + offs_x[None, :]) * syd, tail, mask=mt)

    @bounded_jit(free=["T", "HQ", "HK", "offset", "HEADS_PER_PROG"], units=["sqd", "skd", "sqod", "skod", "spt"])
    def _rope_kernel(Q, K, QO, KO, POS, TURNS,
                     sqb, sqh, sqt, sqd, skb, skh, skt, skd, sqob, sqoh, sqot, sqod, skob, skoh, skot, skod,
                     spb, spt, T, HQ, HK, HALF, R, DTAIL, offset, HEADS_PER_PROG,
                     INTERLEAVED: tl.constexpr, INVERSE: tl.constexpr, HAS_POS: tl.constexpr,
                     COPY_TAIL: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_P: tl.constexpr,
                     BLOCK_TAIL: tl.constexpr, EMULATE: tl.constexpr):
        pid_t = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        pid_h = tl.program_id(2)
        offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
        t_ok = offs_t < T
        offs_p = tl.arange(0, BLOCK_P)
        p_ok = offs_p < HALF
        if HAS_POS:
            pos = tl.load(POS + b * spb + offs_t.to(tl.int64) * spt, mask=t_ok, other=0).to(tl.int64)
        else:
            pos = offs_t.to(tl.int64)
        pos = (pos + offset).to(tl.float64)
        turns = tl.load(TURNS + offs_p, mask=p_ok, other=0.0)
        two_pi = tl.load(TURNS + HALF)  # float64 2 pi, stored after the table (no float literal rounding)
        x = pos[:, None] * turns[None, :]  # angle in turns, float64 (exact integer n)
        cos, sin = cos_sin_turns(x, two_pi, EMULATE)  # reduced exactly, hi/lo float32 split (see _triton_trig)
        if INVERSE:
            sin = -sin  # the inverse rotation: bitwise the same as negating the reduced angle
        h0 = pid_h * HEADS_PER_PROG
        h1 = h0 + HEADS_PER_PROG
        _rope_heads(Q, QO, sqb, sqh, sqt, sqd, sqob, sqoh, sqot, sqod, b, h0, tl.minimum(h1, HQ), offs_t, t_ok,
                    cos, sin, offs_p, p_ok, HALF, R, DTAIL, INTERLEAVED, COPY_TAIL, BLOCK_TAIL, EMULATE)
        _rope_heads(K, KO, skb, skh, skt, skd, skob, skoh, skot, skod, b, tl.maximum(h0, HQ) - HQ,
                    tl.minimum(h1, HQ + HK) - HQ, offs_t, t_ok, cos, sin, offs_p, p_ok, HALF, R, DTAIL,
                    INTERLEAVED, COPY_TAIL, BLOCK_TAIL, EMULATE)


_TURNS: dict[tuple[Any, ...], torch.Tensor] = {}


def _turns(r: int, base: float, device: torch.device, scaling: dict[str, Any] | None = None) -> torch.Tensor:
    """float64 ``theta_i / (2 pi)``, ``theta_i = base^(-2i/r)`` (the oracle's float64 formula; with ``scaling``
    the oracle's scaled frequencies), then ``2 pi`` itself at index r/2; cached per (r, base, scaling, device)."""
    key = (r, float(base), str(device), None if scaling is None else tuple(sorted(scaling.items())))
    if key not in _TURNS:
        if scaling is None:
            theta = np.power(float(base), -2.0 * np.arange(r // 2) / r)
        else:
            theta = scaled_frequencies(r, float(base), scaling)
        _TURNS[key] = torch.from_numpy(np.append(theta / (2 * math.pi), 2 * math.pi)).to(device)
    return _TURNS[key]


_pow2 = pow2


class _Cfg:
    def __init__(self, T: int, D: int, r: int, base: float, layout: str, offset: int, inplace: bool,
                 scaling: dict[str, Any] | None = None) -> None:
        self.T, self.D, self.r, self.base, self.layout, self.offset = T, D, r, base, layout, offset
        self.inplace, self.scaling = inplace, scaling


def _launch(q: torch.Tensor, k: torch.Tensor | None, qo: torch.Tensor, ko: torch.Tensor | None,
            pos: torch.Tensor | None, cfg: _Cfg, inverse: bool, copy_tail: bool) -> None:
    B, HQ, T, _ = q.shape
    HK = 0 if k is None else k.shape[1]
    k_, ko_ = (q, qo) if k is None else (k, ko)
    assert ko_ is not None
    half = cfg.r // 2
    emulate = interpreting()
    # on the GPU, tiles from size buckets (>= 16, masked) so that a campaign over head dims compiles a bounded set
    floor = 2 if emulate else (64 if small_launch(q, k) else 16)  # small: the generic binary, coarse buckets
    block_p = max(_pow2(half), floor)
    if emulate:
        block_t, hpp = min(64, _pow2(T)), HQ + HK  # few big programs: the interpreter pays per program
    else:
        block_t, hpp = max(1, min(64, 2048 // block_p)), 8  # first guess: tune on the GPU
    if pos is None:
        pos_t, spb, spt = q, 0, 0  # unused pointer
    else:
        pos_t = pos
        spb, spt = (0, int(pos.stride(0))) if pos.dim() == 1 else (int(pos.stride(0)), int(pos.stride(1)))
    dtail = cfg.D - cfg.r
    grid = (triton.cdiv(T, block_t), B, triton.cdiv(HQ + HK, hpp))
    launch(_rope_kernel, grid, q, k_, qo, ko_, pos_t, _turns(cfg.r, cfg.base, q.device, cfg.scaling),
           *q.stride(), *k_.stride(), *qo.stride(), *ko_.stride(), spb, spt, T, HQ, HK, half, cfg.r,
           dtail, int(cfg.offset), hpp,
           INTERLEAVED=cfg.layout == "interleaved", INVERSE=inverse, HAS_POS=pos is not None,
           COPY_TAIL=copy_tail and dtail > 0, BLOCK_T=block_t, BLOCK_P=block_p,
           BLOCK_TAIL=max(_pow2(dtail), floor), EMULATE=emulate)


def _apply(q: torch.Tensor, k: torch.Tensor | None, pos: torch.Tensor | None, cfg: _Cfg, inverse: bool,
           inplace: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    if inplace:
        _launch(q, k, q, k, pos, cfg, inverse, copy_tail=False)
        return q, k
    qo = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    ko = None if k is None else torch.empty(k.shape, dtype=k.dtype, device=k.device)
    _launch(q, k, qo, ko, pos, cfg, inverse, copy_tail=True)
    return qo, ko


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pos: torch.Tensor | None, cfg: _Cfg) -> torch.Tensor:
        y, _ = _apply(x, None, pos, cfg, inverse=False, inplace=cfg.inplace)
        if cfg.inplace:
            ctx.mark_dirty(x)
        ctx.pos, ctx.cfg = pos, cfg
        return y

    @staticmethod
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[Any, ...]:
        gx, _ = _apply(gy, None, ctx.pos, ctx.cfg, inverse=True, inplace=False)
        return gx, None, None


class _RopeQK(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, pos: torch.Tensor | None,
                cfg: _Cfg) -> tuple[torch.Tensor, torch.Tensor]:
        qo, ko = _apply(q, k, pos, cfg, inverse=False, inplace=cfg.inplace)
        if cfg.inplace:
            ctx.mark_dirty(q, k)
        ctx.pos, ctx.cfg = pos, cfg
        assert ko is not None
        return qo, ko

    @staticmethod
    def backward(ctx: Any, gq: torch.Tensor | None, gk: torch.Tensor | None) -> tuple[Any, ...]:
        live = [g for g in (gq, gk) if g is not None]
        if not live:
            return None, None, None, None
        if gq is not None and gk is not None:
            dq, dk = _apply(gq, gk, ctx.pos, ctx.cfg, inverse=True, inplace=False)
            return dq, dk, None, None
        d, _ = _apply(live[0], None, ctx.pos, ctx.cfg, inverse=True, inplace=False)
        return (d, None, None, None) if gq is not None else (None, d, None, None)


def _validate(func: str, tensors: list[tuple[str, torch.Tensor]], positions: torch.Tensor | None, base: float,
              layout: str, rotary_dim: int | None, offset: int, inplace: bool,
              scaling: Any = None) -> tuple[torch.Tensor | None, _Cfg]:
    require_triton(func)
    x0 = tensors[0][1]
    for name, t in tensors:
        require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
        require(t.dim() == 4, func, name, "a rank-4 tensor [B, H, T, D]", f"shape {tuple(t.shape)}")
        require(t.dtype in _DTYPES, func, name, "float16, bfloat16 or float32", f"dtype {t.dtype}")
        require(t.dtype == x0.dtype and t.device == x0.device, func, name,
                f"of {tensors[0][0]}'s dtype {x0.dtype} and device {x0.device}", f"{t.dtype} on {t.device}")
        require(t.shape[0] == x0.shape[0] and t.shape[2:] == x0.shape[2:], func, name,
                f"of shape [B={x0.shape[0]}, heads, T={x0.shape[2]}, D={x0.shape[3]}]", f"shape {tuple(t.shape)}")
    B, _, T, D = x0.shape
    require(T >= 1, func, tensors[0][0], "a non-empty sequence (T >= 1)", f"shape {tuple(x0.shape)}")
    require(layout in _LAYOUTS, func, "layout", "'half' or 'interleaved'", repr(layout))
    require(isinstance(base, numbers.Real) and not isinstance(base, bool) and math.isfinite(base) and base > 1,
            func, "base", "a finite float > 1", repr(base))
    if rotary_dim is None:
        require(D % 2 == 0 and D >= 2, func, tensors[0][0], "of even head dim D >= 2 (RoPE rotates pairs)",
                f"D={D}")
        r = D
    else:
        require(isinstance(rotary_dim, numbers.Integral) and not isinstance(rotary_dim, bool) and 2 <= rotary_dim <= D
                and rotary_dim % 2 == 0, func, "rotary_dim", f"None or an even int in [2, D={D}]", repr(rotary_dim))
        r = int(rotary_dim)
    require(isinstance(offset, numbers.Integral) and not isinstance(offset, bool), func, "offset", "an int",
            repr(offset))
    require(isinstance(inplace, bool), func, "inplace", "a bool", repr(inplace))
    require_kernel_device(x0, func, tensors[0][0])
    pos = None
    if positions is not None:
        require(isinstance(positions, torch.Tensor) and not positions.is_floating_point()
                and not positions.is_complex() and positions.dtype != torch.bool, func, "positions",
                "None or an integer tensor", repr(getattr(positions, "dtype", type(positions).__name__)))
        require(tuple(positions.shape) in ((T,), (B, T)), func, "positions", f"of shape [T={T}] or [B={B}, T={T}]",
                f"shape {tuple(positions.shape)}")
        pos = positions.to(device=x0.device, dtype=torch.int64)
    try:
        sc = validate_scaling(scaling, func)
    except InputError as e:
        raise InputError(str(e)) from None
    if sc is not None and sc["type"] == "dynamic" and "seq_len" not in sc:
        top = int(pos.max()) if pos is not None else T - 1  # one host sync (dynamic NTK only)
        sc["seq_len"] = max(top + int(offset) + 1, 1)
    return pos, _Cfg(T, D, r, float(base), layout, int(offset), inplace, sc)


def rope(x: torch.Tensor, positions: torch.Tensor | None = None, *, base: float = 10000.0, layout: str = "half",
         rotary_dim: int | None = None, offset: int = 0, inplace: bool = False, scaling: Any = None) -> torch.Tensor:
    """Rotate x [B, H, T, D] by RoPE at integer positions ``positions + offset`` (Triton kernel).

    ``y_a = x_a cos(n theta_i) - x_b sin(n theta_i)``, ``y_b = x_a sin(n theta_i) + x_b cos(n theta_i)``,
    ``theta_i = base^(-2i/r)``, pairs (a_i, b_i) = (i, i + r/2) for ``layout="half"``, (2i, 2i + 1) for
    ``"interleaved"``; only the first ``r = rotary_dim`` (default D) features rotate, the rest are copied.
    ``positions``: int tensor [T] or [B, T] (default ``0..T-1``); ``offset`` is added (decoding).
    ``inplace=True`` writes into x and returns it.  Differentiable (the VJP is the inverse rotation).
    Angles: float64 turns reduced before the float32 cos/sin (module docstring).  x float16, bfloat16 or
    float32, on CUDA (or the CPU under the Triton interpreter).  ``scaling``: None or a frequency-scaling
    description (``{"type": "linear"|"ntk"|"ntk_base"|"ntk_fixed"|"mixed"|"dynamic", "factor": k, ...}``, see
    :mod:`veriformer.reference.positions`).
    Source: Su et al. 2021 (RoFormer); :func:`veriformer.reference.rope`.
    """
    pos, cfg = _validate("rope", [("x", x)], positions, base, layout, rotary_dim, offset, inplace, scaling)
    return _Rope.apply(x, pos, cfg)


def rope_qk(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None = None, *, base: float = 10000.0,
            layout: str = "half", rotary_dim: int | None = None, offset: int = 0,
            inplace: bool = False, scaling: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE of q [B, Hq, T, D] and k [B, Hk, T, D] at the same positions in one kernel launch (the cos/sin
    tile of a token block is computed once for all heads of both).  Formula, arguments and accuracy as
    :func:`rope` (``scaling`` included); returns ``(q_rotated, k_rotated)`` (q and k themselves with ``inplace=True``).
    Source: Su et al. 2021 (RoFormer).
    """
    pos, cfg = _validate("rope_qk", [("q", q), ("k", k)], positions, base, layout, rotary_dim, offset, inplace,
                         scaling)
    return _RopeQK.apply(q, k, pos, cfg)
