"""Selective scan (Mamba-1) in Triton: forward and backward, with mamba's ``selective_scan_fn`` signature.

Public: :func:`selective_scan` (op ``selective_scan`` convention).  Layouts (mamba ``selective_scan_ref``):
u, delta, z [b, d, L]; A [d, n] real; B, C constant [d, n], variable [b, n, L] or grouped [b, g, n, L] (g divides
d; channel c reads group ``c // (d / g)``); D, delta_bias [d]; last state [b, d, n].

Formula (as :func:`veriformer.reference.ssm.selective_scan`)::

    dt_t = softplus(delta_t + delta_bias)      (bias and softplus optional; softplus only with the flag)
    h_t  = exp(dt_t A) * h_{t-1} + dt_t B_t u_t  (h_{-1} = 0; Bbar = dt B, mamba's convention, not exact ZOH)
    y_t  = sum_n h_t C_t + D u_t;   out_t = y_t * silu(z_t)

Design:

* rows: the kernels walk rows ``r = batch * d + channel``; one program per block of BLOCK_D rows.  On the GPU
  BLOCK_D divides d and d / g, so a block lies in one batch and one group (``UNIFORM``): a step loads one row of
  B and of C ([1, n]) for the whole block.  Otherwise (the interpreter packs all b*d rows of a small problem
  into one program, or a caller's ``block_d``) each row gathers its own B/C row.
* forward: the state h [BLOCK_D, BLOCK_N] (BLOCK_N = n padded to a power of two by masked loads, exact zeros)
  lives in float32 registers (float64 for float64 inputs).  The sequence is cut into chunks of CHUNK steps; per
  chunk the program loads u, delta (and z) as coalesced [BLOCK_D, CHUNK] tiles, forms ``dt = softplus(delta +
  bias)`` (``max(x, 0) + log1p(exp(-|x|))``, log1p by Goldberg's exact trick) and ``dt * u`` for the whole chunk
  and stages them in a small per-program float32 scratch [CHUNK, BLOCK_D]; the sequential loop then does only
  ``h = exp(dt A) h + (dt u) B_t`` and ``y_t = sum_n h C_t`` per step (y staged in the scratch), and the chunk's
  output ``(y + D u) * silu(z)`` is formed and stored as one tile.  With gradients on, the state entering each
  chunk is written to a float32 checkpoint buffer [b, chunks, d, n].
* backward: the reverse-time adjoint ``lambda_t = dL/dh_t = gy_t C_t + exp(dt_{t+1} A) lambda_{t+1}``
  (lambda_L = the last state's cotangent, ``gy = dout * silu(z)``), chunk by chunk from the end: the program
  recomputes the chunk's states from its checkpoint into a per-program float32 workspace [CHUNK, BLOCK_D,
  BLOCK_N] (the forward's arithmetic, so the forward's values), then walks the chunk backwards, staging
  ``sum_n lambda B``, ``sum_n lambda h_{t-1} a A`` (and ``sum_n h C`` for dz) per step; the chunk's
  ``du = dt sum_n lambda B + D gy``, ``ddelta = (u sum_n lambda B + sum_n lambda h_{t-1} a A) sigmoid(delta +
  bias)`` (no sigmoid without softplus) and ``dz = dout (sum_n h C + D u) silu'(z)`` are then formed and stored
  as tiles.  Accumulated: ``dA = sum_t lambda h_{t-1} a dt``, ``dB_t = sum_d lambda dt u``,
  ``dC_t = sum_d gy h_t``, ``dD = sum gy u``, ``ddelta_bias = sum ddelta``.
* no atomics, deterministic: per-channel sums (dA, dD, ddelta_bias, constant dB/dC) are float32 registers
  written per row and summed over the batch on the host; variable/grouped dB, dC (sums over channels) are
  reduced over the block's rows in registers and written per block to a float32 buffer [blocks, L, n] (per row
  [b d, L, n] when a block is not UNIFORM), then summed over the blocks of each (batch, group) on the host
  (memory: ``d / BLOCK_D`` times dB's size, in float32).
* dtypes: u, delta, z one of float16/bfloat16/float32 (float64 runs the same kernels in float64); A, B, C, D,
  delta_bias each float16/bfloat16/float32 (mamba keeps A, D, delta_bias in float32); out in u's dtype, the last
  state in float32 for half inputs (as mamba's CUDA kernel) else in u's dtype; gradients in each input's dtype.
* GPU launch defaults (a first guess, not tuned: no GPU was available when this was written): BLOCK_D = 16
  (8 for n > 16) rows, CHUNK = 64, 2-4 warps.

Under the Triton CPU interpreter (selected automatically without CUDA, see :mod:`veriformer.fast._triton.env`) the
kernels
run with ``EMULATE=True``: loads are upcast to float32 at once (the interpreter holds bf16 as raw bits) and
bf16 stores are rounded to nearest even by the exact bit trick of :mod:`.flash_attention`.  The interpreter
re-patches ``triton.language`` on every call of a ``@jit`` function, so the time loops call none (helpers are
inlined; ``tl.reduce(x, axis, _SUM)`` replaces ``tl.sum``, which is itself a ``@jit`` function).

Sources: Gu & Dao 2023 (Mamba, Algorithm 2 and the hardware-aware scan); mamba ``selective_scan_interface.py``
(``selective_scan_fn`` / ``selective_scan_ref``) and ``csrc/selective_scan`` (backward formulas, float32 last
state); Gu & Dao 2023 (Mamba, arXiv 2312.00752); Goldberg 1991 (log1p).
"""

from __future__ import annotations

import math
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
    small_launch,
    tl,
    triton,
)
from veriformer.reference._validate import require

__all__ = ["selective_scan"]

_HALF = (torch.float16, torch.bfloat16)
_DTYPES = KERNEL_DTYPES_F64
_MAX_N = 256


if HAVE_TRITON:
    # The kernels are written without @jit helper calls inside the time loops: the interpreter re-patches
    # triton.language on every call of a @jit function (about 1 ms each), so helpers and ``tl.sum`` (itself a
    # @jit function) are inlined; ``tl.reduce(x, axis, _SUM)`` is what ``tl.sum`` lowers to for floats.
    from veriformer.fast._triton.precision import to_store as _to_store

    _SUM = tl.standard._sum_combine

    @triton.jit
    def _params(A, Dp, BIAS, B, C, rb, rc, r_ok, offs_n, n_ok, rb0, rc0, s_ad, s_an, s_D, s_bias,
                s_bb, s_bg, s_bn, s_cb, s_cg, s_cn, cpg_b, cpg_c, ACC: tl.constexpr, HAS_D: tl.constexpr,
                HAS_BIAS: tl.constexpr, B_VAR: tl.constexpr, C_VAR: tl.constexpr, UNIFORM: tl.constexpr,
                BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
        """Per-program constants for rows (batch rb, channel rc): A [BD, BN], D and bias [BD], and for B/C either
        the constant [BD, BN] tile or the pointers of the rows' B/C at t = 0: [1, BN] when the block lies in one
        batch and group (UNIFORM: one row serves the whole block), else [BD, BN] (one row per channel)."""
        m2 = r_ok[:, None] & n_ok[None, :]
        a_mat = tl.load(A + rc[:, None] * s_ad + offs_n[None, :] * s_an, mask=m2, other=0.0).to(ACC)
        dvec = tl.zeros([BLOCK_D], ACC)
        if HAS_D:
            dvec = tl.load(Dp + rc * s_D, mask=r_ok, other=0.0).to(ACC)
        bias = tl.zeros([BLOCK_D], ACC)
        if HAS_BIAS:
            bias = tl.load(BIAS + rc * s_bias, mask=r_ok, other=0.0).to(ACC)
        if B_VAR:
            if UNIFORM:
                b_src = B + rb0 * s_bb + (rc0 // cpg_b) * s_bg + offs_n[None, :] * s_bn
            else:
                b_src = B + (rb * s_bb + (rc // cpg_b) * s_bg)[:, None] + offs_n[None, :] * s_bn
            b_cst = tl.zeros([BLOCK_D, BLOCK_N], ACC)
        else:
            b_src = B + offs_n[None, :] * s_bn
            b_cst = tl.load(B + rc[:, None] * s_bb + offs_n[None, :] * s_bn, mask=m2, other=0.0).to(ACC)
        if C_VAR:
            if UNIFORM:
                c_src = C + rb0 * s_cb + (rc0 // cpg_c) * s_cg + offs_n[None, :] * s_cn
            else:
                c_src = C + (rb * s_cb + (rc // cpg_c) * s_cg)[:, None] + offs_n[None, :] * s_cn
            c_cst = tl.zeros([BLOCK_D, BLOCK_N], ACC)
        else:
            c_src = C + offs_n[None, :] * s_cn
            c_cst = tl.load(C + rc[:, None] * s_cb + offs_n[None, :] * s_cn, mask=m2, other=0.0).to(ACC)
        return a_mat, dvec, bias, b_src, b_cst, c_src, c_cst

    @triton.jit
    def _chunk_dt(u_rows, dl_rows, offs_t, mt, s_ul, s_dl, bias, ACC: tl.constexpr, HAS_BIAS: tl.constexpr,
                  SOFTPLUS: tl.constexpr):
        """Tiles [BD, CHUNK] of u, x = delta + bias and dt = softplus(x) (or x): max(x, 0) + log1p(e^-|x|), with
        log1p(y) = log(w) y / (w - 1), w = 1 + y (Goldberg's exact trick; y itself where w rounds to 1)."""
        u = tl.load(u_rows + offs_t[None, :] * s_ul, mask=mt, other=0.0).to(ACC)
        x = tl.load(dl_rows + offs_t[None, :] * s_dl, mask=mt, other=0.0).to(ACC)
        if HAS_BIAS:
            x = x + bias[:, None]
        if SOFTPLUS:
            ey = tl.exp(-tl.abs(x))
            w = 1.0 + ey
            dt = tl.maximum(x, 0.0) + tl.where(w == 1.0, ey, tl.log(w) * (ey / tl.where(w == 1.0, 1.0, w - 1.0)))
        else:
            dt = x
        return u, x, dt

    @bounded_jit(free=["L", "n_chunks"],
                 units=["s_ul", "s_dl", "s_an", "s_bl", "s_cl", "s_zl", "s_D", "s_bias", "s_ol"])
    def _scan_fwd(U, DL, A, B, C, Dp, Z, BIAS, OUT, LAST, HCK, SCR,
                  s_ub, s_ud, s_ul, s_db, s_dd, s_dl, s_ad, s_an, s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl,
                  s_zb, s_zd, s_zl, s_D, s_bias, s_ob, s_od, s_ol,
                  d, n, L, n_rows, cpg_b, cpg_c, n_chunks,
                  ACC: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                  SOFTPLUS: tl.constexpr, B_VAR: tl.constexpr, C_VAR: tl.constexpr, STORE_CHUNKS: tl.constexpr,
                  UNIFORM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
                  EVEN_N: tl.constexpr, EMULATE: tl.constexpr):
        pid = tl.program_id(0)
        r0 = pid.to(tl.int64) * BLOCK_D
        rows = r0 + tl.arange(0, BLOCK_D)  # row = batch * d + channel
        r_ok = rows < n_rows
        rb = rows // d
        rc = rows % d
        offs_n = tl.arange(0, BLOCK_N)
        n_ok = offs_n < n
        m2 = r_ok[:, None] & n_ok[None, :]
        a_mat, dvec, bias, b_src, b_cst, c_src, c_cst = _params(
            A, Dp, BIAS, B, C, rb, rc, r_ok, offs_n, n_ok, r0 // d, r0 % d, s_ad, s_an, s_D, s_bias, s_bb, s_bg,
            s_bn, s_cb, s_cg, s_cn, cpg_b, cpg_c, ACC, HAS_D, HAS_BIAS, B_VAR, C_VAR, UNIFORM, BLOCK_D, BLOCK_N)
        BDT: tl.constexpr = B.dtype.element_ty
        CDT: tl.constexpr = C.dtype.element_ty
        u_rows = U + (rb * s_ub + rc * s_ud)[:, None]
        dl_rows = DL + (rb * s_db + rc * s_dd)[:, None]
        z_rows = Z + (rb * s_zb + rc * s_zd)[:, None]
        o_rows = OUT + (rb * s_ob + rc * s_od)[:, None]
        hck_rows = HCK + ((rb * n_chunks) * d + rc)[:, None] * n + offs_n[None, :]
        # per-program scratch [3, CHUNK, BLOCK_D]: dt, dt*u and y of the chunk (rows contiguous per step)
        loc = tl.arange(0, BLOCK_D)
        tc = tl.arange(0, CHUNK)
        CD: tl.constexpr = CHUNK * BLOCK_D
        sc = SCR + pid.to(tl.int64) * (3 * CD)
        tile_s = tc[None, :] * BLOCK_D + loc[:, None]
        h = tl.zeros([BLOCK_D, BLOCK_N], ACC)
        for c in range(0, n_chunks):
            t0 = c * CHUNK
            t1 = tl.minimum(t0 + CHUNK, L)
            if STORE_CHUNKS:
                tl.store(hck_rows + c * (d * n), h, mask=m2)
            offs_t = t0 + tc
            t_ok = offs_t < L
            mt = r_ok[:, None] & t_ok[None, :]
            u, _x, dt = _chunk_dt(u_rows, dl_rows, offs_t, mt, s_ul, s_dl, bias, ACC, HAS_BIAS, SOFTPLUS)
            tl.debug_barrier()  # the previous chunk is done with the scratch
            tl.store(sc + tile_s, dt)
            tl.store(sc + CD + tile_s, dt * u)
            tl.debug_barrier()
            p_dt = sc + loc[:, None]  # [BD, 1] pointers: loads come shaped for broadcasting over n
            p_b = b_src + t0 * s_bl
            p_c = c_src + t0 * s_cl
            for _t in range(t0, t1):  # the sequential part: h = exp(dt A) h + dt u B; y = C . h
                dtt = tl.load(p_dt)
                dtu = tl.load(p_dt + CD)
                if B_VAR:
                    if EVEN_N and UNIFORM:
                        bt = tl.load(p_b)
                    elif UNIFORM:
                        bt = tl.load(p_b, mask=n_ok[None, :], other=0.0)
                    else:
                        bt = tl.load(p_b, mask=m2, other=0.0)
                    if BDT != ACC:
                        bt = bt.to(ACC)
                    p_b += s_bl
                else:
                    bt = b_cst
                h = tl.exp(dtt * a_mat) * h + dtu * bt
                if C_VAR:
                    if EVEN_N and UNIFORM:
                        ct = tl.load(p_c)
                    elif UNIFORM:
                        ct = tl.load(p_c, mask=n_ok[None, :], other=0.0)
                    else:
                        ct = tl.load(p_c, mask=m2, other=0.0)
                    if CDT != ACC:
                        ct = ct.to(ACC)
                    p_c += s_cl
                else:
                    ct = c_cst
                tl.store(p_dt + 2 * CD, tl.reduce(h * ct, 1, _SUM, keep_dims=True))
                p_dt += BLOCK_D
            tl.debug_barrier()
            y = tl.load(sc + 2 * CD + tile_s, mask=t_ok[None, :], other=0.0)
            if HAS_D:
                y = y + dvec[:, None] * u
            if HAS_Z:
                zz = tl.load(z_rows + offs_t[None, :] * s_zl, mask=mt, other=0.0).to(ACC)
                y = y * (zz / (1.0 + tl.exp(-zz)))
            tl.store(o_rows + offs_t[None, :] * s_ol, _to_store(y, OUT.dtype.element_ty, EMULATE), mask=mt)
        tl.store(LAST + rows[:, None] * n + offs_n[None, :], h.to(LAST.dtype.element_ty), mask=m2)

    @bounded_jit(free=["L", "n_chunks"],
                 units=["s_ul", "s_dl", "s_an", "s_bl", "s_cl", "s_zl", "s_D", "s_bias", "s_gl"])
    def _scan_bwd(U, DL, A, B, C, Dp, Z, BIAS, GOUT, GLAST, HCK, SCR, WS,
                  DU, DDL, DZ, DA_P, DB_P, DC_P, DD_P, DBIAS_P,
                  s_ub, s_ud, s_ul, s_db, s_dd, s_dl, s_ad, s_an, s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl,
                  s_zb, s_zd, s_zl, s_D, s_bias, s_gb, s_gd, s_gl, s_lb, s_ld, s_ln,
                  d, n, L, n_rows, cpg_b, cpg_c, n_chunks,
                  ACC: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                  SOFTPLUS: tl.constexpr, B_VAR: tl.constexpr, C_VAR: tl.constexpr, HAS_GLAST: tl.constexpr,
                  UNIFORM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
                  EVEN_N: tl.constexpr, EMULATE: tl.constexpr):
        pid = tl.program_id(0)
        r0 = pid.to(tl.int64) * BLOCK_D
        rows = r0 + tl.arange(0, BLOCK_D)  # row = batch * d + channel
        r_ok = rows < n_rows
        rb = rows // d
        rc = rows % d
        offs_n = tl.arange(0, BLOCK_N)
        n_ok = offs_n < n
        m2 = r_ok[:, None] & n_ok[None, :]
        a_mat, dvec, bias, b_src, b_cst, c_src, c_cst = _params(
            A, Dp, BIAS, B, C, rb, rc, r_ok, offs_n, n_ok, r0 // d, r0 % d, s_ad, s_an, s_D, s_bias, s_bb, s_bg,
            s_bn, s_cb, s_cg, s_cn, cpg_b, cpg_c, ACC, HAS_D, HAS_BIAS, B_VAR, C_VAR, UNIFORM, BLOCK_D, BLOCK_N)
        BDT: tl.constexpr = B.dtype.element_ty
        CDT: tl.constexpr = C.dtype.element_ty
        UDT: tl.constexpr = DU.dtype.element_ty
        u_rows = U + (rb * s_ub + rc * s_ud)[:, None]
        dl_rows = DL + (rb * s_db + rc * s_dd)[:, None]
        z_rows = Z + (rb * s_zb + rc * s_zd)[:, None]
        g_rows = GOUT + (rb * s_gb + rc * s_gd)[:, None]
        hck_rows = HCK + ((rb * n_chunks) * d + rc)[:, None] * n + offs_n[None, :]
        o_rows = rows[:, None] * L  # du, ddelta, dz: contiguous [b, d, L] in u's dtype
        # dB/dC partials: [blocks, L, n] per block (UNIFORM) or [rows, L, n] per row, float32
        if UNIFORM:
            p_rows = pid.to(tl.int64) * L * n + offs_n
        else:
            p_rows = rows[:, None] * (L * n) + offs_n[None, :]
        # per-program scratch [6, CHUNK, BLOCK_D]: dt, dt*u, gy (= dout silu(z)), sum_n lambda B,
        # sum_n lambda h_{t-1} a A, sum_n h C; workspace [CHUNK, BLOCK_D, BLOCK_N]: h_{t-1} of the chunk
        loc = tl.arange(0, BLOCK_D)
        tc = tl.arange(0, CHUNK)
        CD: tl.constexpr = CHUNK * BLOCK_D
        sc = SCR + pid.to(tl.int64) * (6 * CD)
        tile_s = tc[None, :] * BLOCK_D + loc[:, None]
        ws = WS + pid.to(tl.int64) * (CD * BLOCK_N) + loc[:, None] * BLOCK_N + offs_n[None, :]
        lam_next = tl.zeros([BLOCK_D, BLOCK_N], ACC)  # exp(dt_{t+1} A) lambda_{t+1}; at t = L-1: dL/d(last)
        if HAS_GLAST:
            lam_next = tl.load(GLAST + (rb * s_lb + rc * s_ld)[:, None] + offs_n[None, :] * s_ln, mask=m2,
                               other=0.0).to(ACC)
        da_acc = tl.zeros([BLOCK_D, BLOCK_N], ACC)
        db_acc = tl.zeros([BLOCK_D, BLOCK_N], ACC)
        dc_acc = tl.zeros([BLOCK_D, BLOCK_N], ACC)
        dd_acc = tl.zeros([BLOCK_D], ACC)
        dbias_acc = tl.zeros([BLOCK_D], ACC)
        for cc in range(0, n_chunks):
            c = n_chunks - 1 - cc
            t0 = c * CHUNK
            t1 = tl.minimum(t0 + CHUNK, L)
            offs_t = t0 + tc
            t_ok = offs_t < L
            mt = r_ok[:, None] & t_ok[None, :]
            u, x, dt = _chunk_dt(u_rows, dl_rows, offs_t, mt, s_ul, s_dl, bias, ACC, HAS_BIAS, SOFTPLUS)
            g = tl.load(g_rows + offs_t[None, :] * s_gl, mask=mt, other=0.0).to(ACC)
            gy = g
            if HAS_Z:
                zz = tl.load(z_rows + offs_t[None, :] * s_zl, mask=mt, other=0.0).to(ACC)
                sg = 1.0 / (1.0 + tl.exp(-zz))
                gy = g * (zz * sg)
            tl.debug_barrier()  # the previous chunk is done with the scratch and the workspace
            tl.store(sc + tile_s, dt)
            tl.store(sc + CD + tile_s, dt * u)
            tl.store(sc + 2 * CD + tile_s, gy)
            h = tl.load(hck_rows + c * (d * n), mask=m2, other=0.0)
            tl.debug_barrier()
            # recompute the chunk's states: workspace slot t - t0 holds h_{t-1}
            p_dt = sc + loc[:, None]
            p_ws = ws
            p_b = b_src + t0 * s_bl
            for _t in range(t0, t1):
                tl.store(p_ws, h)
                dtt = tl.load(p_dt)
                dtu = tl.load(p_dt + CD)
                if B_VAR:
                    if EVEN_N and UNIFORM:
                        bt = tl.load(p_b)
                    elif UNIFORM:
                        bt = tl.load(p_b, mask=n_ok[None, :], other=0.0)
                    else:
                        bt = tl.load(p_b, mask=m2, other=0.0)
                    if BDT != ACC:
                        bt = bt.to(ACC)
                    p_b += s_bl
                else:
                    bt = b_cst
                h = tl.exp(dtt * a_mat) * h + dtu * bt
                p_dt += BLOCK_D
                p_ws += BLOCK_D * BLOCK_N
            tl.debug_barrier()
            # the reverse-time adjoint: lambda_t = gy_t C_t + exp(dt_{t+1} A) lambda_{t+1}
            last = t1 - 1 - t0
            p_dt = sc + loc[:, None] + last * BLOCK_D
            p_ws = ws + last * (BLOCK_D * BLOCK_N)
            p_b = b_src + (t1 - 1) * s_bl
            p_c = c_src + (t1 - 1) * s_cl
            p_db = DB_P + p_rows + (t1 - 1) * n
            p_dc = DC_P + p_rows + (t1 - 1) * n
            for _tt in range(t0, t1):
                h_prev = tl.load(p_ws)
                dtt = tl.load(p_dt)
                dtu = tl.load(p_dt + CD)
                gyt = tl.load(p_dt + 2 * CD)
                if B_VAR:
                    if EVEN_N and UNIFORM:
                        bt = tl.load(p_b)
                    elif UNIFORM:
                        bt = tl.load(p_b, mask=n_ok[None, :], other=0.0)
                    else:
                        bt = tl.load(p_b, mask=m2, other=0.0)
                    if BDT != ACC:
                        bt = bt.to(ACC)
                    p_b -= s_bl
                else:
                    bt = b_cst
                if C_VAR:
                    if EVEN_N and UNIFORM:
                        ct = tl.load(p_c)
                    elif UNIFORM:
                        ct = tl.load(p_c, mask=n_ok[None, :], other=0.0)
                    else:
                        ct = tl.load(p_c, mask=m2, other=0.0)
                    if CDT != ACC:
                        ct = ct.to(ACC)
                    p_c -= s_cl
                else:
                    ct = c_cst
                a = tl.exp(dtt * a_mat)
                h = a * h_prev + dtu * bt
                lam = gyt * ct + lam_next
                da = lam * h_prev * a
                tl.store(p_dt + 3 * CD, tl.reduce(lam * bt, 1, _SUM, keep_dims=True))
                tl.store(p_dt + 4 * CD, tl.reduce(da * a_mat, 1, _SUM, keep_dims=True))
                if HAS_Z:
                    tl.store(p_dt + 5 * CD, tl.reduce(h * ct, 1, _SUM, keep_dims=True))
                da_acc += da * dtt
                if B_VAR:
                    if UNIFORM:
                        tl.store(p_db, tl.reduce(lam * dtu, 0, _SUM), mask=n_ok)
                    else:
                        tl.store(p_db, lam * dtu, mask=m2)
                    p_db -= n
                else:
                    db_acc += lam * dtu
                if C_VAR:
                    if UNIFORM:
                        tl.store(p_dc, tl.reduce(gyt * h, 0, _SUM), mask=n_ok)
                    else:
                        tl.store(p_dc, gyt * h, mask=m2)
                    p_dc -= n
                else:
                    dc_acc += gyt * h
                lam_next = a * lam
                p_dt -= BLOCK_D
                p_ws -= BLOCK_D * BLOCK_N
            tl.debug_barrier()
            # per-element gradients of the chunk, as tiles
            lb = tl.load(sc + 3 * CD + tile_s, mask=t_ok[None, :], other=0.0)
            sa = tl.load(sc + 4 * CD + tile_s, mask=t_ok[None, :], other=0.0)
            du = dt * lb
            if HAS_D:
                du = du + dvec[:, None] * gy
                dd_acc += tl.reduce(gy * u, 1, _SUM)
            ddt = u * lb + sa
            if SOFTPLUS:
                ddt = ddt / (1.0 + tl.exp(-x))
            dbias_acc += tl.reduce(ddt, 1, _SUM)
            tl.store(DU + o_rows + offs_t[None, :], _to_store(du, UDT, EMULATE), mask=mt)
            tl.store(DDL + o_rows + offs_t[None, :], _to_store(ddt, UDT, EMULATE), mask=mt)
            if HAS_Z:
                y = tl.load(sc + 5 * CD + tile_s, mask=t_ok[None, :], other=0.0)
                if HAS_D:
                    y = y + dvec[:, None] * u
                dz = g * y * (sg * (1.0 + zz * (1.0 - sg)))
                tl.store(DZ + o_rows + offs_t[None, :], _to_store(dz, UDT, EMULATE), mask=mt)
        pd = rows[:, None] * n + offs_n[None, :]
        tl.store(DA_P + pd, da_acc, mask=m2)
        if not B_VAR:
            tl.store(DB_P + pd, db_acc, mask=m2)
        if not C_VAR:
            tl.store(DC_P + pd, dc_acc, mask=m2)
        tl.store(DD_P + rows, dd_acc, mask=r_ok)
        tl.store(DBIAS_P + rows, dbias_acc, mask=r_ok)


_pow2 = pow2


def _pow2_divisor(n: int) -> int:
    return n & -n


class _Geometry:
    """Shapes, B/C kinds, block sizes and flags shared by forward and backward."""

    def __init__(self, u: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, has: dict[str, bool],
                 softplus: bool, block_d: int | None, chunk: int | None) -> None:
        self.b, self.d, self.L = u.shape
        self.n = A.shape[1]
        self.rows = self.b * self.d
        self.emulate = interpreting()
        # GPU tiles come from size buckets, not raw sizes, so a campaign over n, d and L compiles a bounded set:
        # BLOCK_N >= 16 (masked), BLOCK_D fixed per BLOCK_N (UNIFORM when it divides the channels of a group),
        # CHUNK = 64 (masked tail)
        self.bn = _pow2(self.n) if self.emulate else max(16, _pow2(self.n))
        self.small = not self.emulate and small_launch(u, B, C)  # a campaign's case: the generic binary anyway
        self.f64 = u.dtype == torch.float64
        self.acc = tl.float64 if self.f64 else tl.float32
        self.softplus = softplus
        self.has = has
        self.kinds: dict[str, tuple[str, int, int]] = {}  # kind, groups, channels per group
        for name, t in (("B", B), ("C", C)):
            kind = {2: "constant", 3: "variable", 4: "grouped"}[t.dim()]
            groups = t.shape[1] if kind == "grouped" else 1
            self.kinds[name] = (kind, groups, self.d // groups)
        span = self.d  # rows of a block must share batch and group for one B/C row to serve them all
        for kind, _, cpg in self.kinds.values():
            if kind != "constant":
                span = math.gcd(span, cpg)
        if block_d is not None:
            bd = block_d
        elif self.emulate:  # few, wide programs: the interpreter's cost is per operation, not per element
            bd = min(64, _pow2(self.rows))
        else:
            bd = 16 if self.bn <= 16 else 8
        self.bd = bd
        self.uniform = span % bd == 0
        self.n_blocks = triton.cdiv(self.rows, bd)
        self.chunk = chunk or (min(64, _pow2(self.L)) if self.emulate else 64)
        self.n_chunks = triton.cdiv(self.L, self.chunk)
        self.num_warps = 4 if self.bd * self.bn >= 512 else (2 if self.bd * self.bn >= 128 else 1)
        # the backward holds about twice the live tiles: twice the warps keeps it out of spills (sm_90, ptxas:
        # d_state 16 at 2 warps spilled 320 B per thread, at 4 warps none; reports/sm90-static/resources.md)
        self.num_warps_bwd = min(8, 2 * self.num_warps)  # (ignored by the interpreter)

    def bc_args(self, t: torch.Tensor, name: str) -> tuple[int, tuple[int, int, int, int]]:
        """(channels per group, strides (batch or d, group, n, L)) of B or C as the kernels address them."""
        kind, _, cpg = self.kinds[name]
        if kind == "constant":
            return 1, (t.stride(0), 0, t.stride(1), 0)
        if kind == "variable":
            return cpg, (t.stride(0), 0, t.stride(1), t.stride(2))
        return cpg, tuple(t.stride())  # type: ignore[return-value]

    def flags(self) -> dict[str, Any]:
        return {"ACC": self.acc, "HAS_D": self.has["D"], "HAS_Z": self.has["z"], "HAS_BIAS": self.has["delta_bias"],
                "SOFTPLUS": self.softplus, "B_VAR": self.kinds["B"][0] != "constant",
                "C_VAR": self.kinds["C"][0] != "constant", "UNIFORM": self.uniform, "BLOCK_D": self.bd,
                "BLOCK_N": self.bn, "CHUNK": self.chunk, "EVEN_N": self.bn == self.n and not self.small,
                "EMULATE": self.emulate, "num_warps": self.num_warps}


def _s3(t: torch.Tensor | None) -> tuple[int, int, int]:
    return (0, 0, 0) if t is None else (t.stride(0), t.stride(1), t.stride(2))


def _s1(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.stride(0)


def _common_args(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                 D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None,
                 g: _Geometry) -> tuple[list[Any], list[Any], tuple[int, int]]:
    cpg_b, sb = g.bc_args(B, "B")
    cpg_c, sc = g.bc_args(C, "C")
    ptrs = [u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u]
    strides = [*_s3(u), *_s3(delta), A.stride(0), A.stride(1), *sb, *sc, *_s3(z), _s1(D), _s1(delta_bias)]
    return ptrs, strides, (cpg_b, cpg_c)


def _forward(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
             D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None, g: _Geometry,
             store_chunks: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    out = torch.empty((g.b, g.d, g.L), dtype=u.dtype, device=u.device)
    last_dtype = torch.float32 if u.dtype in _HALF else u.dtype
    last = torch.empty((g.b, g.d, g.n), dtype=last_dtype, device=u.device)
    wdt = torch.float64 if g.f64 else torch.float32
    hck = torch.empty((g.b, g.n_chunks, g.d, g.n) if store_chunks else (1,), dtype=wdt, device=u.device)
    scratch = torch.empty((g.n_blocks, 3, g.chunk, g.bd), dtype=wdt, device=u.device)
    ptrs, strides, (cpg_b, cpg_c) = _common_args(u, delta, A, B, C, D, z, delta_bias, g)
    launch(_scan_fwd, (g.n_blocks,), *ptrs, out, last, hck, scratch, *strides, *_s3(out), g.d, g.n, g.L, g.rows,
           cpg_b, cpg_c, g.n_chunks, STORE_CHUNKS=store_chunks, **g.flags())
    return out, last, (hck if store_chunks else None)


def _backward(gout: torch.Tensor, glast: torch.Tensor | None, u: torch.Tensor, delta: torch.Tensor,
              A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None,
              delta_bias: torch.Tensor | None, hck: torch.Tensor, g: _Geometry) -> tuple[Any, ...]:
    dev = u.device
    wdt = torch.float64 if g.f64 else torch.float32
    ws = torch.empty((g.n_blocks, g.chunk, g.bd, g.bn), dtype=wdt, device=dev)
    scratch = torch.empty((g.n_blocks, 6, g.chunk, g.bd), dtype=wdt, device=dev)
    du = torch.empty((g.b, g.d, g.L), dtype=u.dtype, device=dev)
    ddelta = torch.empty((g.b, g.d, g.L), dtype=u.dtype, device=dev)
    dz = torch.empty((g.b, g.d, g.L), dtype=u.dtype, device=dev) if z is not None else du
    da_p = torch.empty((g.rows, g.n), dtype=wdt, device=dev)
    parts = {}
    for name in ("B", "C"):
        kind = g.kinds[name][0]
        if kind == "constant":
            shape: tuple[int, ...] = (g.rows, g.n)
        else:
            shape = (g.n_blocks if g.uniform else g.rows, g.L, g.n)
        parts[name] = torch.empty(shape, dtype=wdt, device=dev)
    dd_p = torch.empty((g.rows,), dtype=wdt, device=dev)
    dbias_p = torch.empty((g.rows,), dtype=wdt, device=dev)
    ptrs, strides, (cpg_b, cpg_c) = _common_args(u, delta, A, B, C, D, z, delta_bias, g)
    gl_strides = (glast.stride(0), glast.stride(1), glast.stride(2)) if glast is not None else (0, 0, 0)
    launch(_scan_bwd, (g.n_blocks,), *ptrs, gout, glast if glast is not None else gout, hck, scratch, ws,
           du, ddelta, dz, da_p, parts["B"], parts["C"], dd_p, dbias_p, *strides, *_s3(gout), *gl_strides,
           g.d, g.n, g.L, g.rows, cpg_b, cpg_c, g.n_chunks, HAS_GLAST=glast is not None,
           **{**g.flags(), "num_warps": g.num_warps_bwd})
    grads_bc = []
    for name, t in (("B", B), ("C", C)):
        kind, groups, cpg = g.kinds[name]
        p = parts[name]
        if kind == "constant":
            gr = p.view(g.b, g.d, g.n).sum(0)
        else:  # per block (uniform: blocks of bd rows inside one group) or per row -> per (batch, group)
            per_group = cpg // g.bd if g.uniform else cpg
            gr = p.view(g.b, groups, per_group, g.L, g.n).sum(2).transpose(-1, -2)
            if kind == "variable":
                gr = gr[:, 0]
        grads_bc.append(gr.to(t.dtype))
    dA = da_p.view(g.b, g.d, g.n).sum(0).to(A.dtype)
    dD = dd_p.view(g.b, g.d).sum(0).to(D.dtype) if D is not None else None
    dbias = dbias_p.view(g.b, g.d).sum(0).to(delta_bias.dtype) if delta_bias is not None else None
    return du, ddelta, dA, grads_bc[0], grads_bc[1], dD, (dz if z is not None else None), dbias


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None,
                g: _Geometry) -> tuple[torch.Tensor, torch.Tensor]:
        need = any(ctx.needs_input_grad[:8])
        out, last, hck = _forward(u, delta, A, B, C, D, z, delta_bias, g, store_chunks=need)
        if need:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, hck)
        ctx.geometry = g
        ctx.set_materialize_grads(False)  # an unused output's cotangent arrives as None, not as a zero tensor
        return out, last

    @staticmethod
    def backward(ctx: Any, gout: torch.Tensor | None, glast: torch.Tensor | None) -> tuple[Any, ...]:
        u, delta, A, B, C, D, z, delta_bias, hck = ctx.saved_tensors
        g = ctx.geometry
        if gout is None:
            gout = torch.zeros((g.b, g.d, g.L), dtype=u.dtype, device=u.device)
        grads = _backward(gout, glast, u, delta, A, B, C, D, z, delta_bias, hck, g)
        return (*grads, None)


def _check_tensor(func: str, name: str, t: Any, shape: tuple[int, ...], what: str, u: torch.Tensor,
                  dtypes: tuple[torch.dtype, ...]) -> None:
    require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
    require(tuple(t.shape) == shape, func, name, f"of shape {what} = {shape}", f"shape {tuple(t.shape)}")
    require(t.dtype in dtypes, func, name, " or ".join(str(x).replace("torch.", "") for x in dtypes),
            f"dtype {t.dtype}")
    require(t.device == u.device, func, name, f"on u's device {u.device}", f"device {t.device}")


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                   delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False, *, block_d: int | None = None,
                   chunk: int | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan (Triton), mamba ``selective_scan_fn`` semantics:
    ``dt = softplus(delta + delta_bias)`` (bias/softplus optional), ``h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t``,
    ``out_t = (sum_n h_t C_t + D u_t) * silu(z_t)``.

    u, delta, z [b, d, L] (float16, bfloat16, float32 or float64; delta and z in u's dtype); A [d, n] real;
    B, C constant [d, n], variable [b, n, L] or grouped [b, g, n, L] (g divides d); D, delta_bias [d]; A, B, C,
    D, delta_bias in float16/bfloat16/float32 (float64 when u is).  Returns out [b, d, L] in u's dtype and,
    with ``return_last_state``, h_{L-1} [b, d, n] (float32 for half u, as mamba; else u's dtype).
    Differentiable in every tensor input (Triton reverse-time adjoint kernel; see the module docstring),
    including through the last state.  ``block_d`` (rows = (batch, channel) pairs per program, a power of
    two) and ``chunk`` (steps per staged tile and per backward checkpoint, a power of two) override the launch
    configuration (tests and tuning).
    Inputs must be on CUDA, or on the CPU when Triton runs in its interpreter (selected without CUDA).
    Source: Gu & Dao 2023 (Mamba); mamba ``selective_scan_interface.py``.
    """
    func = "selective_scan"
    require_triton(func)
    require(isinstance(u, torch.Tensor), func, "u", "a torch.Tensor", type(u).__name__)
    require(u.dim() == 3, func, "u", "a rank-3 tensor [b, d, L]", f"shape {tuple(u.shape)}")
    require(u.dtype in _DTYPES, func, "u", "float16, bfloat16, float32 or float64", f"dtype {u.dtype}")
    b, d, L = u.shape
    require(b >= 1 and d >= 1 and L >= 1, func, "u", "non-empty (b, d, L >= 1)", f"shape {tuple(u.shape)}")
    require_kernel_device(u, func, "u")
    wide = (torch.float64,) if u.dtype == torch.float64 else (torch.float16, torch.bfloat16, torch.float32)
    _check_tensor(func, "delta", delta, (b, d, L), "[b, d, L]", u, (u.dtype,))
    require(isinstance(A, torch.Tensor), func, "A", "a torch.Tensor", type(A).__name__)
    require(not A.is_complex(), func, "A", "real (complex A is not supported by this kernel)", f"dtype {A.dtype}")
    require(A.dim() == 2 and A.shape[0] == d and 1 <= A.shape[1] <= _MAX_N, func, "A",
            f"of shape [d={d}, n] with 1 <= n <= {_MAX_N}", f"shape {tuple(A.shape)}")
    n = A.shape[1]
    _check_tensor(func, "A", A, (d, n), "[d, n]", u, wide)
    for name, t in (("B", B), ("C", C)):
        require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
        if t.dim() == 2:
            _check_tensor(func, name, t, (d, n), "[d, n] (constant)", u, wide)
        elif t.dim() == 3:
            _check_tensor(func, name, t, (b, n, L), "[b, n, L] (variable)", u, wide)
        elif t.dim() == 4:
            gr = t.shape[1]
            require(gr >= 1 and d % gr == 0, func, name, f"grouped [b, g, n, L] with g dividing d={d}",
                    f"shape {tuple(t.shape)}")
            _check_tensor(func, name, t, (b, gr, n, L), "[b, g, n, L] (grouped)", u, wide)
        else:
            require(False, func, name, "a tensor of rank 2 [d, n], 3 [b, n, L] or 4 [b, g, n, L]",
                    f"shape {tuple(t.shape)}")
    if D is not None:
        _check_tensor(func, "D", D, (d,), "[d]", u, wide)
    if z is not None:
        _check_tensor(func, "z", z, (b, d, L), "[b, d, L]", u, (u.dtype,))
    if delta_bias is not None:
        _check_tensor(func, "delta_bias", delta_bias, (d,), "[d]", u, wide)
    require(isinstance(delta_softplus, bool), func, "delta_softplus", "a bool", repr(delta_softplus))
    require(isinstance(return_last_state, bool), func, "return_last_state", "a bool", repr(return_last_state))
    require(block_d is None or (isinstance(block_d, int) and block_d >= 1 and block_d & (block_d - 1) == 0), func,
            "block_d", "None or a power of two", repr(block_d))
    require(chunk is None or (isinstance(chunk, int) and chunk >= 1 and chunk & (chunk - 1) == 0), func, "chunk",
            "None or a power of two", repr(chunk))
    has = {"D": D is not None, "z": z is not None, "delta_bias": delta_bias is not None}
    g = _Geometry(u, A, B, C, has, delta_softplus, block_d, chunk)
    out, last = _SelectiveScan.apply(u, delta, A, B, C, D, z, delta_bias, g)
    if return_last_state:
        return out, last
    return out

