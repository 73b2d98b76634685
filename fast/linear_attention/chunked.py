"""Chunked causal linear attention in Triton (Lightning Attention-2 / fla ``chunk_simple_gla``): forward and
backward, per-token log-gates or a per-head scalar decay, initial and final states.

Public: :func:`chunk_linear_attention` (op ``linear_attention`` convention) and :func:`lightning_attention`
(per-head decay ``lambda_h = exp(-slope_h)``, RetNet / Lightning, through the same kernels).

Layout (flash-linear-attention's convention, ``fla.ops.simple_gla.chunk_simple_gla``): q, k [B, T, H, K],
v [B, T, H, V], log-gates g [B, T, H] (entries <= 0), states [B, H, K, V], output o [B, T, H, V]::

    S_t = exp(g_t) S_{t-1} + k_t v_t^T,    S_{-1} = initial_state (0 if None),    o_t = scale q_t^T S_t

``scale`` defaults to K^-0.5.  Semantics and float64 gold: :mod:`veriformer.reference.linear_attention`.

Design (Qin et al. 2024, Lightning Attention-2; Yang et al. 2024, GLA / fla's chunk kernels).  Chunks of
``C = chunk_size`` tokens, the last one possibly short; within a chunk the local inclusive cumulative
log-gate ``G_i = sum_{j<=i} g_j`` is formed in float64 (``tl.cumsum``; padded tokens carry g = 0, so
``G_last`` is the chunk's own total, not that of a full chunk), the exponents ``G_i - G_j``, ``G_i``,
``G_last - G_j`` are differenced in float64 and rounded once to float32 before ``exp``.  Why not float32:
each float32 partial sum carries an error ~u |G|, which the difference ``G_i - G_j`` does not cancel, so
at |G| ~ 80 (gates of -5 over a chunk of 32) the decays were 1e-5 off relative (measured: o error 1.8e-5,
4x the naive quadratic form's; float64 brings it to 4.5e-7, 0.1x).  The cost is O(C) float64 work per
chunk plus one [C, C] float64 difference, against the O(C^2 (K + V)) float32 dots::

    o_[c]   = scale (Q_c (.) e^{G}) h_c + (scale Q_c K_c^T (.) D_c) V_c,  D_ij = e^{G_i - G_j} (i >= j), 0 above
    h_{c+1} = e^{G_last} h_c + (K_c (.) e^{G_last - G})^T V_c

* ``_fwd_h`` (one program per (K block, V block, batch*head), sequential over chunks): the state entering
  every chunk, carried in float32 registers and written in the input dtype to a buffer [B, H, NT, K, V] (its
  consumers use it only as a tensor-core operand of that dtype, which rounds it the same way, so storing it
  rounded halves the traffic and changes no result bit); the float32 final state.
* ``_fwd_o`` (one program per (V block, chunk, batch*head), parallel): intra-chunk quadratic part plus the
  inter-chunk part from the stored state.
* backward: ``_fwd_h`` again on a GPU (the per-chunk states are recomputed, not kept across the autograd
  boundary: B H T/C K V floats; the interpreter keeps them), ``_bwd_dh`` (reverse sequential: dH_c, the
  gradient of the state after chunk c, from ``dH_{c-1} = e^{G_last} dH_c + scale (Q_c (.) e^G)^T dO_c``
  starting at the final-state cotangent; what is left after chunk 0 is d initial_state), ``_bwd_dqk``
  (parallel over chunks and K blocks of <= 64) and ``_bwd_dv`` (parallel over chunks and V blocks; in the
  interpreter, with one K block, dv is computed inside ``_bwd_dqk`` instead: one launch fewer)::

      M   = scale dO V^T (.) D               A = scale Q K^T (.) D
      dQ  = M K + scale e^{G} (.) dO h_c^T     dK = M^T Q + e^{G_last - G} (.) V dH_c^T
      dV  = A^T dO + e^{G_last - G} (.) K dH_c

  and ``_bwd_dg``: with ``q~_t = q_t e^{G_t}``, ``k~_s = k_s e^{-G_s}`` (global cumsum G) the loss depends
  on G only through q~, k~ and the prefactor ``e^{G_{T-1}}`` of the final state, so
  ``dL/dG_t = q_t.dq_t - k_t.dk_t + [t = T-1] sum(S_T (.) dS_T)`` and, as ``G_t = sum_{r<=t} g_r``,
  ``dg_r = sum_{t>=r} dL/dG_t``: a reverse cumulative sum (per chunk as a masked row sum, float32, carried
  across chunks; the final-state term ``sum(S_T (.) dS_T)`` [B, H] is one torch reduction), from the float32
  dq, dk before they are rounded.  Checked against :func:`veriformer.reference.linear_attention_vjp`'s ``dg``
  (quadratic-form derivation) by ``check()``.

Precision: every product enters ``tl.dot`` rounded to the input dtype (as the tensor cores consume it:
``q e^{G}``, ``k e^{G_last - G}``, the masked scores, the stored float32 state), every dot accumulates in
float32, the state stays float32 (the gate cumsum float64, above); outputs are rounded once (round to
nearest even).  float32 inputs use IEEE float32 dots (never TF32).  Head dims K, V in 1..256 are padded to
a power of two >= 16 inside the kernels by masked loads (exact zeros, never stored).  ``final_state`` is
float32 (as fla returns it; the input dtype for float32 inputs); ``initial_state`` may be the input dtype or
float32.

Under the Triton CPU interpreter (selected automatically without CUDA, :mod:`veriformer.fast._triton.env`) the
kernels run
with ``EMULATE=True`` (operands upcast after loading, rounded onto the dtype's grid before each dot; bf16
rounding by an exact bit trick since the interpreter's cast truncates), which reproduces the GPU arithmetic
up to summation order; the small helpers are then plain Python functions (see
:func:`veriformer.fast._triton.env.device_function`).

Sources: Qin et al. 2024 (Lightning Attention-2, arXiv 2401.04658, Algorithm 1 and 2); Yang et al. 2024 (Gated Linear
Attention, chunkwise form); fla-org/flash-linear-attention ``fla/ops/simple_gla/chunk.py`` (layout, state
order, dg by the reverse-cumsum identity); Sun et al. 2023 (RetNet decay).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import torch

from veriformer.fast._triton.env import (
    HAVE_TRITON,
    KERNEL_DTYPES,
    bounded_jit,
    device_function,
    interpreting,
    launch,
    length_bucket,
    pow2,
    require_kernel_device,
    require_triton,
    tl,
    triton,
    tuned_launch,
)
from veriformer.reference._validate import require

__all__ = ["chunk_linear_attention", "lightning_attention", "transpose_workaround"]

_MAX_HEAD_DIM = 256
_DTYPES = KERNEL_DTYPES
_CHUNKS = (16, 32, 64, 128)
_NO_GATE, _TOKEN_GATE, _HEAD_DECAY = 0, 1, 2


if HAVE_TRITON:
    from veriformer.fast._triton.precision import load_tile as _load
    from veriformer.fast._triton.precision import to_operand as _operand
    from veriformer.fast._triton.precision import to_store as _to_store

    @device_function
    def _gates(GB, SLOPE, h, t0, T, H, BT: tl.constexpr, GATE: tl.constexpr):
        """Per-token log-gates of the chunk starting at t0 (GB: g of this batch and head; 0 beyond T): their
        local inclusive cumsum G [BT] and the chunk total G_last, in float64 (a float32 sum would lose
        u |G| in every difference G_i - G_j: 1e-5 relative at |G| ~ 100, measured)."""
        offs_t = tl.arange(0, BT)
        valid = (t0 + offs_t) < T
        if GATE == 1:
            g = tl.load(GB + (t0 + offs_t) * H, mask=valid, other=0.0).to(tl.float64)
        else:
            g = tl.where(valid, -tl.load(SLOPE + h).to(tl.float64), 0.0)
        cum = tl.cumsum(g, axis=0)
        return cum, tl.sum(g, axis=0)

    @device_function
    def _decays(cum, last, BT: tl.constexpr):
        """From the float64 local cumsum: D [BT, BT] = exp(G_i - G_j) (i >= j, else 0), the query decays
        exp(G_i), the key decays exp(G_last - G_j) and the state decay exp(G_last), all float32 (each exponent
        rounded once to float32)."""
        offs_t = tl.arange(0, BT)
        causal = offs_t[:, None] >= offs_t[None, :]
        dmat = tl.exp(tl.where(causal, (cum[:, None] - cum[None, :]).to(tl.float32), float("-inf")))
        return dmat, tl.exp(cum.to(tl.float32)), tl.exp((last - cum).to(tl.float32)), tl.exp(last.to(tl.float32))

    @bounded_jit(free=["T", "H", "NT"])
    def _fwd_h(K_, V_, G_, SLOPE, H0, HS, HT, T, H, K, V, NT,
               GATE: tl.constexpr, USE_H0: tl.constexpr, STORE_HT: tl.constexpr, BT: tl.constexpr,
               BK: tl.constexpr, BV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """State entering each chunk -> HS[b, h, c] (rounded to the input dtype: its consumers use it only as
        a dot operand of that dtype); the float32 final state -> HT.  The carried state is float32."""
        DTYPE: tl.constexpr = K_.dtype.element_ty
        i_k = tl.program_id(0)
        i_v = tl.program_id(1)
        i_bh = tl.program_id(2).to(tl.int64)
        b = i_bh // H
        h = i_bh % H
        offs_k = i_k * BK + tl.arange(0, BK)
        offs_v = i_v * BV + tl.arange(0, BV)
        offs_t = tl.arange(0, BT)
        kv_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
        kv_offs = offs_k[:, None] * V + offs_v[None, :]
        k_ptrs = K_ + (b * T * H + h) * K + offs_t[None, :] * (H * K) + offs_k[:, None]  # [BK, BT], chunk 0
        v_ptrs = V_ + (b * T * H + h) * V + offs_t[:, None] * (H * V) + offs_v[None, :]  # [BT, BV]
        GB = G_ + b * T * H + h
        hs_ptrs = HS + i_bh * NT * K * V + kv_offs
        state = tl.zeros([BK, BV], tl.float32)
        if USE_H0:
            state += tl.load(H0 + i_bh * K * V + kv_offs, mask=kv_mask, other=0.0).to(tl.float32)
        for c in range(0, NT):
            t0 = c * BT
            tl.store(hs_ptrs + c * K * V, _to_store(state, DTYPE, EMULATE), mask=kv_mask)
            t_ok = (t0 + offs_t) < T
            kt = _load(k_ptrs + t0 * H * K, t_ok[None, :] & (offs_k[:, None] < K), EMULATE)
            vv = _load(v_ptrs + t0 * H * V, t_ok[:, None] & (offs_v[None, :] < V), EMULATE)
            if GATE != 0:
                cum, last = _gates(GB, SLOPE, h, t0, T, H, BT, GATE)
                kdec = tl.exp((last - cum).to(tl.float32))
                kt = _operand(kt * kdec[None, :], DTYPE, EMULATE)
                state = state * tl.exp(last.to(tl.float32))
            state += tl.dot(kt, vv, input_precision=DOT_PREC)
        if STORE_HT:
            tl.store(HT + i_bh * K * V + kv_offs, state, mask=kv_mask)

    @bounded_jit(free=["T", "H", "NT"])
    def _fwd_o(Q, K_, V_, G_, SLOPE, HS, O, scale, T, H, K, V, NT,
               GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
               EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """o of one chunk and V block: intra-chunk masked quadratic part + inter-chunk part from HS."""
        DTYPE: tl.constexpr = Q.dtype.element_ty
        i_v = tl.program_id(0)
        c = tl.program_id(1)
        i_bh = tl.program_id(2).to(tl.int64)
        b = i_bh // H
        h = i_bh % H
        t0 = c * BT
        offs_t = tl.arange(0, BT)
        offs_k = tl.arange(0, BK)
        offs_v = i_v * BV + tl.arange(0, BV)
        t_ok = (t0 + offs_t) < T
        k_ok = offs_k < K
        v_ok = offs_v < V
        qk_base = (b * T * H + h) * K + t0 * H * K
        q = _load(Q + qk_base + offs_t[:, None] * (H * K) + offs_k[None, :], t_ok[:, None] & k_ok[None, :], EMULATE)
        kt = _load(K_ + qk_base + offs_t[None, :] * (H * K) + offs_k[:, None], t_ok[None, :] & k_ok[:, None],
                   EMULATE)
        tv_offs = (b * T * H + h) * V + t0 * H * V + offs_t[:, None] * (H * V) + offs_v[None, :]
        tv_mask = t_ok[:, None] & v_ok[None, :]
        vv = _load(V_ + tv_offs, tv_mask, EMULATE)
        hs = _load(HS + (i_bh * NT + c) * K * V + offs_k[:, None] * V + offs_v[None, :],
                   k_ok[:, None] & v_ok[None, :], EMULATE)
        a = tl.dot(q, kt, input_precision=DOT_PREC)
        causal = offs_t[:, None] >= offs_t[None, :]
        if GATE != 0:
            cum, last = _gates(G_ + b * T * H + h, SLOPE, h, t0, T, H, BT, GATE)
            dmat, qdec, _, _ = _decays(cum, last, BT)
            a = a * dmat
            qd = _operand(q * qdec[:, None], DTYPE, EMULATE)
        else:
            a = tl.where(causal, a, 0.0)
            qd = q
        o = tl.dot(qd, hs, input_precision=DOT_PREC)
        o += tl.dot(_operand(a, DTYPE, EMULATE), vv, input_precision=DOT_PREC)
        tl.store(O + tv_offs, _to_store(o * scale, DTYPE, EMULATE), mask=tv_mask)

    @bounded_jit(free=["T", "H", "NT"])
    def _bwd_dh(Q, DO, G_, SLOPE, DHT, DHS, DH0, scale, T, H, K, V, NT,
                GATE: tl.constexpr, STORE_DH0: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
                BV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """Reverse sweep: DHS[b, h, c] = gradient of the state after chunk c (carried in float32, stored in the
        input dtype, a dot operand of that dtype); d initial_state (float32)."""
        DTYPE: tl.constexpr = Q.dtype.element_ty
        i_k = tl.program_id(0)
        i_v = tl.program_id(1)
        i_bh = tl.program_id(2).to(tl.int64)
        b = i_bh // H
        h = i_bh % H
        offs_k = i_k * BK + tl.arange(0, BK)
        offs_v = i_v * BV + tl.arange(0, BV)
        offs_t = tl.arange(0, BT)
        kv_mask = (offs_k[:, None] < K) & (offs_v[None, :] < V)
        kv_offs = offs_k[:, None] * V + offs_v[None, :]
        q_ptrs = Q + (b * T * H + h) * K + offs_t[None, :] * (H * K) + offs_k[:, None]  # [BK, BT]
        do_ptrs = DO + (b * T * H + h) * V + offs_t[:, None] * (H * V) + offs_v[None, :]  # [BT, BV]
        GB = G_ + b * T * H + h
        dhs_ptrs = DHS + i_bh * NT * K * V + kv_offs
        dh = tl.load(DHT + i_bh * K * V + kv_offs, mask=kv_mask, other=0.0).to(tl.float32)
        for cc in range(0, NT):
            c = NT - 1 - cc
            t0 = c * BT
            tl.store(dhs_ptrs + c * K * V, _to_store(dh, DTYPE, EMULATE), mask=kv_mask)
            t_ok = (t0 + offs_t) < T
            qt = _load(q_ptrs + t0 * H * K, t_ok[None, :] & (offs_k[:, None] < K), EMULATE)
            do = _load(do_ptrs + t0 * H * V, t_ok[:, None] & (offs_v[None, :] < V), EMULATE)
            if GATE != 0:
                cum, last = _gates(GB, SLOPE, h, t0, T, H, BT, GATE)
                qt = _operand(qt * tl.exp(cum.to(tl.float32))[None, :], DTYPE, EMULATE)
                dh = dh * tl.exp(last.to(tl.float32))
            dh += tl.dot(qt, do, input_precision=DOT_PREC) * scale
        if STORE_DH0:
            tl.store(DH0 + i_bh * K * V + kv_offs, dh, mask=kv_mask)

    @bounded_jit(free=["T", "H", "NT"])
    def _bwd_dqk(Q, K_, V_, G_, SLOPE, DO, HS, DHS, DQ, DK, DV, DGP, SCR, scale, T, H, K, V, NT,
                 GATE: tl.constexpr, STORE_DG: tl.constexpr, FUSE_DV: tl.constexpr, BT: tl.constexpr,
                 BK: tl.constexpr, BV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr,
                 TRANS_SCRATCH: tl.constexpr = False):
        """dq, dk of one chunk and K block (loop over V blocks) and the per-token partial dL/dG = q.dq - k.dk of
        the K block (float32, DGP[i_k]).  ``FUSE_DV`` (only with one K block): dv in the same V loop.
        ``TRANS_SCRATCH``: M^T for dk = M^T Q is read back transposed from a per-program scratch tile SCR [BT, BT]
        instead of ``tl.trans`` of the rounded dot accumulator, the structure Triton 3.4-3.7.0 miscompiles on
        Hopper (fla #640 / PR #826; see :func:`transpose_workaround`)."""
        DTYPE: tl.constexpr = Q.dtype.element_ty
        i_k = tl.program_id(0)
        c = tl.program_id(1)
        i_bh = tl.program_id(2).to(tl.int64)
        b = i_bh // H
        h = i_bh % H
        t0 = c * BT
        offs_t = tl.arange(0, BT)
        offs_k = i_k * BK + tl.arange(0, BK)
        t_ok = (t0 + offs_t) < T
        k_ok = offs_k < K
        qk_mask = t_ok[:, None] & k_ok[None, :]
        qk_offs = (b * T * H + h) * K + t0 * H * K + offs_t[:, None] * (H * K) + offs_k[None, :]
        q = _load(Q + qk_offs, qk_mask, EMULATE)
        k = _load(K_ + qk_offs, qk_mask, EMULATE)
        if FUSE_DV:
            if GATE != 0:
                cum, last = _gates(G_ + b * T * H + h, SLOPE, h, t0, T, H, BT, GATE)
                dmat, qdec, kdec, _ = _decays(cum, last, BT)
                kd = _operand(k * kdec[:, None], DTYPE, EMULATE)
            else:
                dmat = tl.where(offs_t[:, None] >= offs_t[None, :], 1.0, 0.0)
                kd = k
            # A^T = K Q^T (.) D^T formed directly: no transpose of a dot accumulator (fla #640's structure)
            at = _operand(tl.dot(k, tl.trans(q), input_precision=DOT_PREC) * tl.trans(dmat) * scale, DTYPE, EMULATE)
        m = tl.zeros([BT, BT], tl.float32)
        dq_h = tl.zeros([BT, BK], tl.float32)
        dk_h = tl.zeros([BT, BK], tl.float32)
        tv_base = (b * T * H + h) * V + t0 * H * V + offs_t[:, None] * (H * V)
        kv_base = (i_bh * NT + c) * K * V + offs_k[:, None] * V
        for v0 in range(0, V, BV):
            offs_v = v0 + tl.arange(0, BV)
            v_ok = offs_v < V
            tv_mask = t_ok[:, None] & v_ok[None, :]
            do = _load(DO + tv_base + offs_v[None, :], tv_mask, EMULATE)
            vv = _load(V_ + tv_base + offs_v[None, :], tv_mask, EMULATE)
            kv_mask = k_ok[:, None] & v_ok[None, :]
            hs = _load(HS + kv_base + offs_v[None, :], kv_mask, EMULATE)
            dhs = _load(DHS + kv_base + offs_v[None, :], kv_mask, EMULATE)
            m += tl.dot(do, tl.trans(vv), input_precision=DOT_PREC)
            dq_h += tl.dot(do, tl.trans(hs), input_precision=DOT_PREC)
            dk_h += tl.dot(vv, tl.trans(dhs), input_precision=DOT_PREC)
            if FUSE_DV:
                dv = tl.dot(at, do, input_precision=DOT_PREC) + tl.dot(kd, dhs, input_precision=DOT_PREC)
                tl.store(DV + tv_base + offs_v[None, :], _to_store(dv, DTYPE, EMULATE), mask=tv_mask)
        if GATE != 0:
            if not FUSE_DV:  # the decays after the loop: not live across it (register pressure on the GPU)
                cum, last = _gates(G_ + b * T * H + h, SLOPE, h, t0, T, H, BT, GATE)
                dmat, qdec, kdec, _ = _decays(cum, last, BT)
            m = _operand(m * dmat * scale, DTYPE, EMULATE)
            dk_h = dk_h * kdec[:, None]
            dq_h = dq_h * (qdec * scale)[:, None]
        else:
            m = _operand(tl.where(offs_t[:, None] >= offs_t[None, :], m, 0.0) * scale, DTYPE, EMULATE)
            dq_h = dq_h * scale
        dq = tl.dot(m, k, input_precision=DOT_PREC) + dq_h
        if TRANS_SCRATCH:
            scr = SCR + (i_bh * NT + c) * (tl.num_programs(0) * BT * BT) + i_k * (BT * BT)
            tl.store(scr + offs_t[:, None] * BT + offs_t[None, :], m.to(SCR.dtype.element_ty))
            tl.debug_barrier()
            mt = tl.load(scr + offs_t[None, :] * BT + offs_t[:, None])
            if EMULATE:
                mt = mt.to(tl.float32)
            dk = tl.dot(mt, q, input_precision=DOT_PREC) + dk_h
        else:
            dk = tl.dot(tl.trans(m), q, input_precision=DOT_PREC) + dk_h
        tl.store(DQ + qk_offs, _to_store(dq, DTYPE, EMULATE), mask=qk_mask)
        tl.store(DK + qk_offs, _to_store(dk, DTYPE, EMULATE), mask=qk_mask)
        if STORE_DG:
            dgp = tl.sum(q.to(tl.float32) * dq - k.to(tl.float32) * dk, axis=1)
            tl.store(DGP + (i_k * tl.num_programs(2) + i_bh) * T + t0 + offs_t, dgp, mask=t_ok)

    @bounded_jit(free=["T", "H", "NT"])
    def _bwd_dv(Q, K_, G_, SLOPE, DO, DHS, DV, scale, T, H, K, V, NT,
                GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """dv of one chunk and V block, ``A^T dO + (K (.) e^{G_last - G}) dH_c`` (whole K per program; used
        when dq/dk are split over K blocks)."""
        DTYPE: tl.constexpr = Q.dtype.element_ty
        i_v = tl.program_id(0)
        c = tl.program_id(1)
        i_bh = tl.program_id(2).to(tl.int64)
        b = i_bh // H
        h = i_bh % H
        t0 = c * BT
        offs_t = tl.arange(0, BT)
        offs_k = tl.arange(0, BK)
        offs_v = i_v * BV + tl.arange(0, BV)
        t_ok = (t0 + offs_t) < T
        k_ok = offs_k < K
        v_ok = offs_v < V
        qk_offs = (b * T * H + h) * K + t0 * H * K + offs_t[:, None] * (H * K) + offs_k[None, :]
        q = _load(Q + qk_offs, t_ok[:, None] & k_ok[None, :], EMULATE)
        k = _load(K_ + qk_offs, t_ok[:, None] & k_ok[None, :], EMULATE)
        if GATE != 0:
            cum, last = _gates(G_ + b * T * H + h, SLOPE, h, t0, T, H, BT, GATE)
            dmat, _, kdec, _ = _decays(cum, last, BT)
            kd = _operand(k * kdec[:, None], DTYPE, EMULATE)
        else:
            dmat = tl.where(offs_t[:, None] >= offs_t[None, :], 1.0, 0.0)
            kd = k
        # A^T = K Q^T (.) D^T formed directly: no transpose of a dot accumulator (fla #640's structure)
        at = _operand(tl.dot(k, tl.trans(q), input_precision=DOT_PREC) * tl.trans(dmat) * scale, DTYPE, EMULATE)
        tv_offs = (b * T * H + h) * V + t0 * H * V + offs_t[:, None] * (H * V) + offs_v[None, :]
        tv_mask = t_ok[:, None] & v_ok[None, :]
        do = _load(DO + tv_offs, tv_mask, EMULATE)
        dhs = _load(DHS + (i_bh * NT + c) * K * V + offs_k[:, None] * V + offs_v[None, :],
                    k_ok[:, None] & v_ok[None, :], EMULATE)
        dv = tl.dot(at, do, input_precision=DOT_PREC) + tl.dot(kd, dhs, input_precision=DOT_PREC)
        tl.store(DV + tv_offs, _to_store(dv, DTYPE, EMULATE), mask=tv_mask)

    @bounded_jit(free=["T", "H", "NT", "NK"])
    def _bwd_dg(DGP, EXTRA, DG, T, H, NT, NK, BT: tl.constexpr, EMULATE: tl.constexpr):
        """dg_r = sum_{t >= r} dL/dG_t, with sum(S_T (.) dS_T) added at t = T - 1: a reverse cumsum over the
        chunks (masked row sums within a chunk, a float32 carry across chunks); DGP holds NK partial sums."""
        DTYPE: tl.constexpr = DG.dtype.element_ty
        i_bh = tl.program_id(0)
        b = (i_bh // H).to(tl.int64)
        h = (i_bh % H).to(tl.int64)
        offs_t = tl.arange(0, BT)
        carry = tl.load(EXTRA + i_bh)
        for cc in range(0, NT):
            c = NT - 1 - cc
            rows = c * BT + offs_t
            d = tl.zeros([BT], tl.float32)
            for i_k in range(0, NK):  # the K blocks' partial q.dq - k.dk
                d += tl.load(DGP + (i_k * tl.num_programs(0) + i_bh.to(tl.int64)) * T + rows, mask=rows < T,
                             other=0.0)
            suffix = tl.sum(tl.where(offs_t[None, :] >= offs_t[:, None], d[None, :], 0.0), axis=1) + carry
            tl.store(DG + (b * T + rows) * H + h, _to_store(suffix, DTYPE, EMULATE), mask=rows < T)
            carry += tl.sum(d, axis=0)


_TRANSPOSE_OVERRIDE: list[bool | None] = [None]


def _triton_version() -> tuple[int, int, int]:
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in triton.__version__.split(".")[:3]]
    padded = [*parts, 0, 0, 0]
    return padded[0], padded[1], padded[2]


def transpose_workaround(device: torch.device | None = None, *, dtype: torch.dtype | None = None,
                         force: bool | None = None, reset: bool = False) -> bool:
    """Whether the backward's ``_bwd_dqk`` forms ``dk = M^T Q`` from a scratch round trip (store M, read it back
    transposed) instead of ``tl.trans(M)`` of the rounded dot accumulator M = scale dO V^T (.) D.

    Why: flash-linear-attention refuses its gated ``chunk_bwd_kernel_dqkwg`` on Hopper with Triton >= 3.4, <
    3.7.1 (fla issue #640): ``b_dk += tl.dot(tl.trans(b_ds.to(dtype)), b_q)``, with ``b_ds`` a wgmma accumulator,
    gives wrong dk / dg there (PR #826: the transposed accumulator layout is mis-lowered; the bisection failed
    with 64-wide K blocks and passed with 32 and 128).  Our kernel has that very structure (BT = 64 chunks, K
    blocks of 64 on the GPU), so by default the workaround is on exactly there: a CUDA device of compute
    capability 9.x and Triton in [3.4.0, 3.7.1), for 16-bit inputs: float32 products are IEEE FMA loops, not wgmma,
    so the mis-lowered layout never arises (and the round trip made the float32 kernel spill 1.3-1.4 KB per thread
    under the GPU image's Triton 3.6; sm_90 static).  Cost: one [BT, BT] store and load per program (8 KB in bf16).
    ``force=True/False`` pins the choice (tests, sweeps), ``reset=True`` returns to the automatic rule; the
    environment variable ``VERIFORMER_LA_TRANSPOSE_SCRATCH=0/1`` pins it too."""
    import os

    if reset:
        _TRANSPOSE_OVERRIDE[0] = None
    if force is not None:
        _TRANSPOSE_OVERRIDE[0] = bool(force)
    if _TRANSPOSE_OVERRIDE[0] is not None:
        return _TRANSPOSE_OVERRIDE[0]
    env = os.environ.get("VERIFORMER_LA_TRANSPOSE_SCRATCH")
    if env is not None:
        return env.strip() not in ("0", "", "false", "no", "off")
    if device is None or device.type != "cuda" or not torch.cuda.is_available() or dtype == torch.float32:
        return False
    return torch.cuda.get_device_capability(device)[0] == 9 and (3, 4, 0) <= _triton_version() < (3, 7, 1)


_pow2 = functools.partial(pow2, lo=16)  # tile sizes: at least 16


class _Geometry:
    """Shapes, flags, tile sizes and launch options shared by forward and backward."""

    def __init__(self, q: torch.Tensor, v: torch.Tensor, gate: int, scale: float, chunk: int,
                 has_h0: bool, head_blocks: tuple[int, int] | None) -> None:
        self.B, self.T, self.H, self.K = q.shape
        self.V = v.shape[3]
        self.gate, self.scale, self.BT, self.has_h0 = gate, scale, chunk, has_h0
        self.NT = triton.cdiv(self.T, chunk)
        self.emulate = interpreting()
        self.dot_prec = "ieee" if (q.dtype == torch.float32 or self.emulate) else "tf32"
        self.bk_full = _pow2(self.K)
        self.bv_full = _pow2(self.V)
        if self.emulate:  # whole head dims per program: fewer interpreted programs
            self.bk_state, self.bv_state, self.bv_o = self.bk_full, self.bv_full, self.bv_full
        else:
            self.bk_state, self.bv_state = min(64, self.bk_full), min(64, self.bv_full)
            self.bv_o = min(64 if self.bk_full <= 128 else 32, self.bv_full)
        if head_blocks is not None:
            self.bk_state = min(head_blocks[0], self.bk_full)
            self.bv_state = self.bv_o = min(head_blocks[1], self.bv_full)
        # GPU: dq/dk split over K blocks of <= 64 (8 warps) and dv in its own kernel: the kernel with dv fused
        # into its V loop needs 255 registers and spills (ptxas, sm_90, chunk 64, compiled without the JIT's
        # launch specialisation: 1.3 KB per thread at K = 128, 1.8 KB at K = 64 with 4 warps).  The split
        # kernels, compiled as the JIT specialises them, use <= 150 registers and do not spill (Triton's ptxas log)
        # (reports/sm90-static/resources.md).  The interpreter
        # fuses them when the whole K fits one block (one launch fewer); both paths are tested there
        # (``head_blocks`` forces the split).
        self.bk_dqk = self.bk_full if self.emulate else min(64, self.bk_full)
        if head_blocks is not None:
            self.bk_dqk = min(head_blocks[0], self.bk_full)
        self.nk_dqk = triton.cdiv(self.K, self.bk_dqk)
        self.fuse_dv = self.emulate and self.nk_dqk == 1
        big = self.bk_full >= 128 or chunk >= 128
        self.launch = {} if self.emulate else {"num_warps": 8 if big else 4, "num_stages": 2}
        self.fixed_tiles = head_blocks is not None  # a caller's tiles are not tuned
        # launch options of the V-blocked kernels (_fwd_o, _bwd_dv) and of _bwd_dqk (its V step bv_dqk)
        self.o_launch = self.launch
        self.dqk_launch = self.launch if self.emulate else {**self.launch, "num_warps": 8}
        self.bv_dqk = self.bv_o
        self.fp32 = q.dtype == torch.float32 and not self.emulate
        if self.fp32:
            # IEEE float32 products are FMA loops with their operands in registers (sm_90, Triton 3.9 ptxas, static,
            # chunk 64).  _fwd_o / _bwd_dv, gated: 32 warps at K = 128 (45-50 registers), 16 at K <= 64 (58-60),
            # 1 stage, no spill; the 16-bit options (8 warps at K = 128, 4 at 64, 2 stages) spilled 18.7 / 1.1 KB
            # per thread at K = 128 and 20.1 / 19.7 KB at K = 64.  Ungated (GATE 0) they spill at every warp count
            # with 64-wide V blocks (1.0-1.1 KB at 16-32 warps); 16-wide at 8 warps: no spill at K = 64 (164 / 178
            # registers), still 536 / 644 bytes at K = 128, the least of the tiles tried.  _bwd_dqk: 16-wide V
            # steps at 16 warps, 1 stage (106-123 registers, every gate, no spill); the 64-wide step at 8 warps
            # and 2 stages spilled 684-812 bytes, the 32-wide one 764-860 bytes ungated or without dg.
            # One configuration each, not tuned.
            self.dqk_launch = {"num_warps": 16, "num_stages": 1}
            self.bv_dqk = min(16, self.bv_o)
            if gate == _NO_GATE:
                self.o_launch = {"num_warps": 8, "num_stages": 1}
                if head_blocks is None:
                    self.bv_o = min(16, self.bv_o)
            else:
                self.o_launch = {"num_warps": 32 if self.bk_full >= 128 else 16, "num_stages": 1}

    # Curated launch configurations (tuned_launch: the first is the default, the others are timed only with
    # VERIFORMER_AUTOTUNE=1 on launches that are not small): tiles and warps of fla's chunk kernels on Hopper
    # (fla/ops/common/chunk_o.py: BK = BV in {128, 64, 32} at 8 / 4 / 2 warps, 3 stages; chunk_h.py: BV in
    # {32, 64}, 2-4 warps, 2-4 stages), restricted to tiles no larger than the padded head dims.
    _O_CHOICES = ((64, 4, 3), (64, 8, 3), (32, 4, 3), (128, 8, 2))
    _STATE_CHOICES = ((64, 64, 4, 3), (64, 32, 4, 3), (32, 64, 4, 2), (128, 64, 8, 2), (64, 128, 8, 2))

    def tune_key(self, dtype: torch.dtype) -> tuple[Any, ...]:
        """What the best tiles depend on: dtype, padded head dims, gate kind, chunk, length bucket."""
        return (str(dtype), self.bk_full, self.bv_full, self.gate, self.BT, length_bucket(self.T))

    def o_configs(self) -> list[dict[str, Any]]:
        """Configurations of the V-blocked kernels (_fwd_o, _bwd_dv): BV, warps, stages; the first is the default
        (float32: the only one)."""
        out = [{"BV": self.bv_o, **self.o_launch}]
        if not (self.emulate or self.fixed_tiles or self.fp32):
            for bv, w, st in self._O_CHOICES:
                c = {"BV": bv, "num_warps": w, "num_stages": st}
                if bv <= self.bv_full and (bv < 128 or self.bk_full <= 128) and c not in out:
                    out.append(c)
        return out

    def state_configs(self) -> list[dict[str, Any]]:
        """Configurations of the state kernels (_fwd_h, _bwd_dh): BK, BV, warps, stages; the first is the default."""
        out = [{"BK": self.bk_state, "BV": self.bv_state, **self.launch}]
        if not (self.emulate or self.fixed_tiles or self.fp32):  # float32: the default (no spill) only
            for bk, bv, w, st in self._STATE_CHOICES:
                c = {"BK": bk, "BV": bv, "num_warps": w, "num_stages": st}
                if bk <= self.bk_full and bv <= self.bv_full and c not in out:
                    out.append(c)
        return out

    def base_flags(self) -> dict[str, Any]:
        """The constexpr flags of every launch (the launch options come with a configuration)."""
        return {"GATE": self.gate, "BT": self.BT, "EMULATE": self.emulate, "DOT_PREC": self.dot_prec}

    def states(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor | None,
               slope: torch.Tensor | None, h0: torch.Tensor | None,
               want_final: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(HS [B, H, NT, K, V] in q's dtype: the state entering each chunk, final state [B, H, K, V] float32
        or None)."""
        hs = torch.empty((self.B, self.H, self.NT, self.K, self.V), dtype=q.dtype, device=q.device)
        ht = torch.empty((self.B, self.H, self.K, self.V), dtype=torch.float32, device=q.device) if want_final \
            else None
        tuned_launch(_fwd_h, lambda c: (triton.cdiv(self.K, c["BK"]), triton.cdiv(self.V, c["BV"]), self.B * self.H),
                     self.state_configs(), ("fwd_h", h0 is not None, ht is not None, *self.tune_key(q.dtype)),
                     k, v, _ptr(g, slope, q), _ptr(slope, g, q), _ptr(h0, q), hs, _ptr(ht, hs),
                     self.T, self.H, self.K, self.V, self.NT, USE_H0=h0 is not None, STORE_HT=ht is not None,
                     **self.base_flags())
        return hs, ht


def _ptr(*candidates: torch.Tensor | None) -> torch.Tensor:
    """The first tensor given (placeholder pointer for an argument a constexpr switches off)."""
    return next(t for t in candidates if t is not None)


class _ChunkLinearAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor | None,
                slope: torch.Tensor | None, h0: torch.Tensor | None,
                geo: _Geometry) -> tuple[torch.Tensor, torch.Tensor]:
        hs, ht = geo.states(q, k, v, g, slope, h0, True)
        assert ht is not None
        o = torch.empty((geo.B, geo.T, geo.H, geo.V), dtype=q.dtype, device=q.device)
        tuned_launch(_fwd_o, lambda c: (triton.cdiv(geo.V, c["BV"]), geo.NT, geo.B * geo.H), geo.o_configs(),
                     ("fwd_o", *geo.tune_key(q.dtype)), q, k, v, _ptr(g, slope, q), _ptr(slope, g, q), hs, o,
                     geo.scale, geo.T, geo.H, geo.K, geo.V, geo.NT, BK=geo.bk_full, **geo.base_flags())
        # the per-chunk states are recomputed in the backward on a GPU (B H T/C K V floats: too big to keep);
        # the interpreter keeps them (tiny there, and one launch fewer)
        ctx.save_for_backward(q, k, v, g, slope, h0, ht, hs if geo.emulate else None)
        ctx.geo = geo
        return o, ht

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor, dht: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, g, slope, h0, ht, hs = ctx.saved_tensors
        geo: _Geometry = ctx.geo
        do = do.contiguous()
        dht = dht.to(torch.float32).contiguous()
        if hs is None:
            hs, _ = geo.states(q, k, v, g, slope, h0, False)
        dhs = torch.empty_like(hs)
        want_dh0 = h0 is not None and ctx.needs_input_grad[5]
        dh0 = torch.empty((geo.B, geo.H, geo.K, geo.V), dtype=torch.float32, device=q.device) if want_dh0 else None
        gp, sp = _ptr(g, slope, q), _ptr(slope, g, q)
        tuned_launch(_bwd_dh, lambda c: (triton.cdiv(geo.K, c["BK"]), triton.cdiv(geo.V, c["BV"]), geo.B * geo.H),
                     geo.state_configs(), ("bwd_dh", want_dh0, *geo.tune_key(q.dtype)),
                     q, do, gp, sp, dht, dhs, _ptr(dh0, dhs), geo.scale, geo.T, geo.H, geo.K, geo.V, geo.NT,
                     STORE_DH0=want_dh0, **geo.base_flags())
        want_dg = g is not None and ctx.needs_input_grad[3]
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        dgp = torch.empty((geo.nk_dqk, geo.B, geo.H, geo.T), dtype=torch.float32, device=q.device) if want_dg \
            else None
        scratch = transpose_workaround(q.device, dtype=q.dtype)
        scr = torch.empty((geo.B * geo.H * geo.NT * geo.nk_dqk, geo.BT, geo.BT), device=q.device,
                          dtype=torch.float32 if geo.emulate else q.dtype) if scratch else hs
        launch(_bwd_dqk, (geo.nk_dqk, geo.NT, geo.B * geo.H), q, k, v, gp, sp, do, hs, dhs, dq, dk, dv,
               _ptr(dgp, hs), scr, geo.scale, geo.T, geo.H, geo.K, geo.V, geo.NT, STORE_DG=want_dg,
               FUSE_DV=geo.fuse_dv, BK=geo.bk_dqk, BV=geo.bv_dqk, TRANS_SCRATCH=scratch, **geo.base_flags(),
               **geo.dqk_launch)
        if not geo.fuse_dv:
            tuned_launch(_bwd_dv, lambda c: (triton.cdiv(geo.V, c["BV"]), geo.NT, geo.B * geo.H), geo.o_configs(),
                         ("bwd_dv", *geo.tune_key(q.dtype)), q, k, gp, sp, do, dhs, dv, geo.scale, geo.T, geo.H,
                         geo.K, geo.V, geo.NT, BK=geo.bk_full, **geo.base_flags())
        dg = None
        if want_dg:
            assert g is not None and dgp is not None
            dg = torch.empty_like(g)
            extra = (ht * dht).sum((-2, -1)).contiguous()  # sum(S_T (.) dS_T) per (b, h), float32 [B, H]
            launch(_bwd_dg, (geo.B * geo.H,), dgp, extra, dg, geo.T, geo.H, geo.NT, geo.nk_dqk, BT=geo.BT,
                   EMULATE=geo.emulate)
        return dq, dk, dv, dg, None, (None if dh0 is None else dh0.to(h0.dtype)), None


def _check_tensor(func: str, name: str, t: Any, shape: tuple[int, ...], layout: str, q: torch.Tensor,
                  dtypes: tuple[torch.dtype, ...], dtype_text: str) -> None:
    require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
    require(tuple(t.shape) == shape, func, name, f"of shape {layout} = {list(shape)}", f"shape {tuple(t.shape)}")
    require(t.dtype in dtypes, func, name, dtype_text, f"dtype {t.dtype}")
    require(t.device == q.device, func, name, f"on q's device {q.device}", f"device {t.device}")


def _validate(func: str, q: Any, k: Any, v: Any, scale: Any, initial_state: Any, output_final_state: Any,
              chunk_size: Any, head_blocks: Any) -> float:
    require_triton(func)
    require(isinstance(q, torch.Tensor), func, "q", "a torch.Tensor", type(q).__name__)
    require(q.dim() == 4, func, "q", "a rank-4 tensor [B, T, H, K]", f"shape {tuple(q.shape)}")
    require(q.dtype in _DTYPES, func, "q", "float16, bfloat16 or float32", f"dtype {q.dtype}")
    B, T, H, K = q.shape
    require(T >= 1, func, "q", "non-empty along T (T >= 1)", f"shape {tuple(q.shape)}")
    require(B >= 1 and H >= 1 and 1 <= K <= _MAX_HEAD_DIM, func, "q",
            f"of shape [B >= 1, T, H >= 1, 1 <= K <= {_MAX_HEAD_DIM}]", f"shape {tuple(q.shape)}")
    same = (q.dtype,)
    _check_tensor(func, "k", k, (B, T, H, K), "[B, T, H, K]", q, same, f"of q's dtype {q.dtype}")
    require(isinstance(v, torch.Tensor) and v.dim() == 4, func, "v", "a rank-4 tensor [B, T, H, V]",
            f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__)
    require(tuple(v.shape[:3]) == (B, T, H) and 1 <= v.shape[3] <= _MAX_HEAD_DIM, func, "v",
            f"of shape [B, T, H, V] = [{B}, {T}, {H}, V <= {_MAX_HEAD_DIM}]", f"shape {tuple(v.shape)}")
    _check_tensor(func, "v", v, tuple(v.shape), "[B, T, H, V]", q, same, f"of q's dtype {q.dtype}")
    if scale is None:
        scale = K**-0.5
    require(isinstance(scale, numbers.Real) and not isinstance(scale, bool) and math.isfinite(scale), func,
            "scale", "None or a finite float", repr(scale))
    if initial_state is not None:
        _check_tensor(func, "initial_state", initial_state, (B, H, K, v.shape[3]), "[B, H, K, V]", q,
                      (q.dtype, torch.float32), f"of q's dtype {q.dtype} or float32")
        require(bool(torch.isfinite(initial_state.detach()).all()), func, "initial_state", "finite",
                "NaN or inf entries")
    require(isinstance(output_final_state, bool), func, "output_final_state", "a bool", repr(output_final_state))
    require(isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size in _CHUNKS, func,
            "chunk_size", f"one of {_CHUNKS}", repr(chunk_size))
    if head_blocks is not None:
        ok = isinstance(head_blocks, tuple) and len(head_blocks) == 2 and all(
            isinstance(x, int) and 16 <= x <= _MAX_HEAD_DIM and x & (x - 1) == 0 for x in head_blocks)
        require(ok, func, "head_blocks", "None or two powers of two in 16..256", repr(head_blocks))
    require_kernel_device(q, func, "q")
    return float(scale)


def _run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor | None, slope: torch.Tensor | None,
         scale: float, initial_state: torch.Tensor | None, output_final_state: bool, chunk_size: int,
         head_blocks: tuple[int, int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    gate = _TOKEN_GATE if g is not None else (_HEAD_DECAY if slope is not None else _NO_GATE)
    geo = _Geometry(q, v, gate, scale, chunk_size, initial_state is not None, head_blocks)
    h0 = None if initial_state is None else initial_state.contiguous()
    o, ht = _ChunkLinearAttention.apply(q.contiguous(), k.contiguous(), v.contiguous(),
                                        None if g is None else g.contiguous(), slope, h0, geo)
    return o, (ht if output_final_state else None)


def chunk_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                           scale: float | None = None, initial_state: torch.Tensor | None = None,
                           output_final_state: bool = False, chunk_size: int = 64,
                           head_blocks: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked causal linear attention with log-gates (Triton forward and backward), fla ``chunk_simple_gla``.

    ``S_t = exp(g_t) S_{t-1} + k_t v_t^T`` (``S_{-1}`` = initial_state or 0), ``o_t = scale q_t^T S_t``;
    equivalently ``o = (scale Q K^T (.) D) V + scale (Q (.) e^{G}) S0`` with ``G`` the cumulative log-gates
    and ``D_ts = e^{G_t - G_s}`` (s <= t).

    Layout (fla's, not the [B, H, T, D] of :func:`veriformer.fast.attention`): q, k [B, T, H, K], v
    [B, T, H, V] (float16, bfloat16 or float32, one dtype), g [B, T, H] per-token log-decays <= 0 (q's
    dtype or float32; None = no decay), initial_state [B, H, K, V] (q's dtype or float32).  Returns
    ``(o [B, T, H, V] in q's dtype, final_state [B, H, K, V] float32 or None)``; the final state is float32
    for every input dtype (fla's choice; the input dtype for float32 inputs) and None unless
    ``output_final_state``.  ``scale`` defaults to K^-0.5.  Any T >= 1 (the last chunk may be short), any
    K, V in 1..256.  ``chunk_size`` in (16, 32, 64, 128); ``head_blocks=(BK, BV)`` overrides the K/V tiles of
    the state kernels and the V tile of the others (powers of two >= 16; tests and tuning).  Differentiable in
    q, k, v, g and initial_state.
    Inputs must be on CUDA, or on the CPU when Triton runs in its interpreter.  Bad input raises
    ``InputError`` naming the argument (g > 0 or non-finite included).
    Source: Qin et al. 2024 (Lightning Attention-2); Yang et al. 2024 (GLA); fla
    ``fla/ops/simple_gla/chunk.py``; semantics of :func:`veriformer.reference.linear_attention`.
    """
    func = "chunk_linear_attention"
    sc = _validate(func, q, k, v, scale, initial_state, output_final_state, chunk_size, head_blocks)
    if g is not None:
        B, T, H, _ = q.shape
        _check_tensor(func, "g", g, (B, T, H), "[B, T, H]", q, (q.dtype, torch.float32),
                      f"of q's dtype {q.dtype} or float32")
        g_ = g.detach()
        require(bool(torch.isfinite(g_).all()), func, "g", "finite log-decays", "NaN or inf entries")
        require(bool((g_ <= 0).all()), func, "g", "log-decays <= 0", f"max {float(g_.max())}")
    return _run(q, k, v, g, None, sc, initial_state, output_final_state, chunk_size, head_blocks)


def lightning_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, slope: torch.Tensor,
                        scale: float | None = None, initial_state: torch.Tensor | None = None,
                        output_final_state: bool = False, chunk_size: int = 64,
                        head_blocks: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Lightning Attention-2 / RetNet: causal linear attention with a per-head scalar decay
    ``lambda_h = exp(-slope_h)``: ``S_t = lambda_h S_{t-1} + k_t v_t^T``, ``o_t = scale q_t^T S_t``, i.e.
    :func:`chunk_linear_attention` with ``g = -slope_h`` at every token (the same kernels; the gates are
    formed in-kernel from ``slope``, no [B, T, H] tensor).  Within a chunk query i gets ``lambda^(i+1)`` and
    key j ``lambda^(b-1-j)``, b the chunk's own length (only non-negative powers, never ``Lambda^{-1}``).

    slope [H] >= 0, finite (float tensor on q's device; e.g. ALiBi slopes ``2^(-8(h+1)/H)``, see
    :func:`veriformer.reference.alibi_slopes`); not differentiable.  Other arguments, layout and result as
    :func:`chunk_linear_attention`.  Source: Qin et al. 2024 (Lightning Attention-2); Sun et al. 2023
    (RetNet); Qin et al. 2024 (arXiv 2401.04658); oracle ``reference.linear_attention(..., decay=exp(-slope))``.
    """
    func = "lightning_attention"
    sc = _validate(func, q, k, v, scale, initial_state, output_final_state, chunk_size, head_blocks)
    H = q.shape[2]
    require(isinstance(slope, torch.Tensor), func, "slope", "a torch.Tensor [H]", type(slope).__name__)
    require(tuple(slope.shape) == (H,), func, "slope", f"of shape [H] = [{H}]", f"shape {tuple(slope.shape)}")
    require(slope.is_floating_point(), func, "slope", "a floating tensor", f"dtype {slope.dtype}")
    require(slope.device == q.device, func, "slope", f"on q's device {q.device}", f"device {slope.device}")
    require(bool(torch.isfinite(slope).all()) and bool((slope >= 0).all()), func, "slope",
            "finite per-head decay rates >= 0", f"{slope.tolist()}")
    return _run(q, k, v, None, slope.detach().to(torch.float32).contiguous(), sc, initial_state,
                output_final_state, chunk_size, head_blocks)
