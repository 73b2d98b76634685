"""Flash attention in Triton: forward and backward, causal (end-aligned), sliding window, attention sinks,
GQA/MQA, any T and S, head dims 1..256, float16/bfloat16/float32 with float32 accumulation.

Public: :func:`attention` (op ``softmax_attention`` convention) and :func:`config_override` (launch
configurations, for tuning).  Layout q [B, H, T, D], k [B, Hkv, S, D],
v [B, Hkv, S, Dv] -> o [B, H, T, Dv] (and the log-sum-exp [B, H, T] with ``return_lse=True``).

Semantics (same as :mod:`veriformer.reference.attention`): query i sits at key position ``p = i + S - T``;
``causal``: keys ``j <= p``; ``window=w``: ``p - w < j <= p``; ``sinks=s`` (with a window): keys ``j < s``
with ``j <= p`` also visible; query head h reads kv head ``h // (H // Hkv)``; a query with no visible key
outputs 0 and has log-sum-exp ``-inf``.

Design (Dao 2023, FlashAttention-2):

* forward: one program per (block of BLOCK_M queries, batch*head); q stays in registers; the loop runs
  over the key blocks that can hold a visible key (the sink blocks first, then ``[lo, hi)`` of the
  window/causal band; blocks entirely outside are never loaded; blocks visible to every query of the tile
  skip the mask arithmetic, only the edge blocks compute it); online softmax in base 2 (the logit is
  ``q.k * scale * log2 e`` in float32), running max ``m``, running sums and a float32 accumulator; the
  probabilities are rounded to the input dtype for the ``P V`` product exactly as the GPU tensor cores
  consume them, and the normaliser is the sum of those *rounded* probabilities (so the output is a convex
  combination of the values); the log-sum-exp uses the unrounded sum.
* backward: ``delta_i = sum_d dO_id O_id`` (a small kernel), then one launch, as FlexAttention's backward
  (torch/_inductor/kernel/flex/templates/flex_backwards.py.jinja): per (batch, kv head) its first programs
  compute dK/dV (one per key block, looping over the H/Hkv query heads of the group and the query blocks
  that can see the key block: no atomics, GQA reduced in registers), the others dQ (one per query block of
  each query head, the forward's key range, heaviest causal blocks first), so the two halves run side by
  side.  Both skip the mask arithmetic on fully visible tiles, like the forward.  P is recomputed as
  ``exp2(s - lse)``; ``dS = P (dP - delta)``.  The same programs also run as two kernels (dK/dV, then dQ):
  with ``config_override(bwd={"FUSED": 0})``, with TMA loads, under autotuning (which times each kernel's
  tiles), and for VQ attention's dK/dV.
* loads: by default pointer tiles (masked loads, ``cp.async``-pipelined on Hopper).  With
  :func:`config_override` ``TMA=1`` the looped tiles (K, V of the forward and dQ kernels; Q, dO of the dK/dV
  kernel) come through Hopper TMA descriptors over the [B, H, L, D] tensors (out-of-range rows and padded
  columns arrive as zeros; layouts TMA cannot address fall back to pointers).  Same arithmetic; off by default
  until timed on a GPU (``benchmarks/tune_attention.py``).  The launch configurations of the forward, dK/dV and
  dQ kernels (tiles, warps, stages) are first guesses that :func:`config_override` replaces for sweeps.
* float32 inputs use IEEE float32 dot products (``input_precision="ieee"``, never TF32).
* head dims are padded to the next power of two >= 16 *inside* the kernel by masked loads (the padding
  adds exact zeros to q.k and is never stored), so every D, Dv in 1..256 runs the same kernel (64 and 128
  with no waste); D or Dv > 256 raise ``InputError``.
* limits: no arbitrary ``mask=`` (feature not declared); the returned log-sum-exp is not differentiable.
  The backward recomputes ``s`` with a different summation order than the forward (``k q^T`` vs
  ``q k^T``), so at huge logits (|s| ~ 1e4) P differs from the forward's by ~ulp(s): float32 dK/dV are
  then up to ~20x the naive float32 error, inside the conditioned floor ``max|logit| * ulp(max|v|)``.

Under the Triton CPU interpreter (selected automatically without CUDA, see :mod:`veriformer.fast._triton.env`) the
kernels run with ``EMULATE=True``: operands are upcast to float32 after loading and rounded to the input
dtype's grid where the GPU would convert them (bf16 by an exact round-to-nearest-even bit trick, since
the interpreter's own cast truncates), which reproduces the GPU arithmetic up to summation order.

Sources: Dao et al. 2022 (FlashAttention); Dao 2023 (FlashAttention-2, Algorithm 1/2 and the delta
trick); Milakov & Gimelshein 2018 (online softmax); Xiao et al. 2023 (StreamingLLM sinks); Ainslie et
al. 2023 (GQA).
"""

import contextvars
import functools
import math
import numbers
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from veriformer.fast._triton.env import (
    HAVE_TRITON,
    KERNEL_DTYPES,
    autotune_enabled,
    bounded_jit,
    device_function,
    interpreting,
    launch,
    length_bucket,
    pow2,
    require_kernel_device,
    require_triton,
    small_launch,
    tl,
    triton,
    tuned_launch,
)
from veriformer.reference._validate import require

__all__ = ["attention", "coarse_small_launches", "config_override"]

_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_MAX_HEAD_DIM = 256
_DTYPES = KERNEL_DTYPES


if HAVE_TRITON:
    from veriformer.fast._triton.online_softmax import online_softmax_step
    from veriformer.fast._triton.precision import load_tile as _load
    from veriformer.fast._triton.precision import to_operand as _operand
    from veriformer.fast._triton.precision import to_store as _to_store

    @device_function
    def _head_bases(X, Y, b, h, sxb, sxh, syb, syh, TMA: tl.constexpr):
        """Where head (b, h) of two [B, H, L, D] operands starts: pointers offset by the batch and head strides,
        or the TMA descriptors unchanged (their loads take (b, h) as coordinates)."""
        if TMA:
            xb = X
            yb = Y
        else:
            xb = X + b * sxb + h * sxh
            yb = Y + b * syb + h * syh
        return xb, yb

    @device_function
    def _desc_load(desc, b, h, start, ROWS: tl.constexpr, COLS: tl.constexpr, EMULATE: tl.constexpr):
        """Tile [ROWS, COLS] at rows start.. of head (b, h) from a [B, H, L, D] TMA descriptor (zeros outside);
        in the interpreter upcast to float32 at once, like :func:`_load`."""
        x = desc.load([b.to(tl.int32), h.to(tl.int32), start, 0]).reshape(ROWS, COLS)
        if EMULATE:
            x = x.to(tl.float32)
        return x

    @device_function
    def _heaviest_first(pid, n, CAUSAL: tl.constexpr):
        """Query block ``pid`` of ``n`` in launch order, reversed when causal: the last blocks see the most keys, so
        starting them first shortens the tail."""
        if CAUSAL:
            pid = n - 1 - pid
        return pid

    @triton.jit
    def _visible(offs_m, offs_n, shift, S, window, sinks, CAUSAL: tl.constexpr, WINDOW: tl.constexpr):
        """Boolean [BLOCK_M, BLOCK_N]: key offs_n visible to query offs_m (position p = i + shift)."""
        pos = offs_m[:, None] + shift
        j = offs_n[None, :]
        vis = j < S
        if CAUSAL or WINDOW:
            vis = vis & (j <= pos)
        if WINDOW:
            vis = vis & ((j > pos - window) | (j < sinks))
        return vis

    @triton.jit
    def _visible_t(offs_m, offs_n, shift, S, window, sinks, CAUSAL: tl.constexpr, WINDOW: tl.constexpr):
        """The transpose of :func:`_visible`, [BLOCK_N, BLOCK_M] (built directly, no bool transpose)."""
        pos = offs_m[None, :] + shift
        j = offs_n[:, None]
        vis = j < S
        if CAUSAL or WINDOW:
            vis = vis & (j <= pos)
        if WINDOW:
            vis = vis & ((j > pos - window) | (j < sinks))
        return vis

    @triton.jit
    def _key_range(start_m, T, S, window, sinks, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   CAUSAL: tl.constexpr, WINDOW: tl.constexpr):
        """Key blocks that can hold a key visible to queries [start_m, start_m + BLOCK_M): the sink blocks
        [0, n_sink_blocks) and the band [band_start, hi) (block-aligned, disjoint from the sink blocks).
        Inside the band, the blocks starting in [full_lo, full_hi) are visible to every query of the block
        (no padded keys, entirely below the causal edge and above the window edge): no mask is computed
        there."""
        shift = S - T
        p_lo = start_m + shift
        p_hi = tl.minimum(start_m + BLOCK_M, T) - 1 + shift
        hi = S
        if CAUSAL or WINDOW:
            hi = tl.minimum(S, p_hi + 1)
        lo = 0
        n_sink_blocks = 0
        if WINDOW:
            lo = tl.maximum(0, p_lo - window + 1)
            n_sink_blocks = tl.cdiv(tl.minimum(sinks, lo), BLOCK_N)
        band_start = tl.maximum((lo // BLOCK_N), n_sink_blocks) * BLOCK_N
        full_lo = band_start
        full_hi = (S // BLOCK_N) * BLOCK_N
        if CAUSAL or WINDOW:
            full_hi = tl.minimum(full_hi, (tl.maximum(p_lo + 1, 0) // BLOCK_N) * BLOCK_N)
        if WINDOW:
            full_lo = tl.maximum(full_lo, tl.cdiv(tl.maximum(p_hi - window + 1, 0), BLOCK_N) * BLOCK_N)
        full_lo = tl.minimum(full_lo, hi)
        full_hi = tl.maximum(full_lo, tl.minimum(full_hi, hi))
        return n_sink_blocks, band_start, full_lo, full_hi, hi

    @triton.jit
    def _fwd_block(q, m_i, l_i, lt_i, acc, K, V, kv_b, kv_h, start_n, offs_m, shift, S, D, DV, skn, skd, svn, svd,
                   qk_scale, window, sinks, CAUSAL: tl.constexpr, WINDOW: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                   DTYPE: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr, MASK: tl.constexpr,
                   TMA: tl.constexpr):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        if TMA:  # K, V are [B, Hkv, S, D] descriptors: out-of-range rows and columns arrive as zeros
            kt = tl.trans(_desc_load(K, kv_b, kv_h, start_n, BLOCK_N, BLOCK_D, EMULATE))
        else:
            kt = _load(K + offs_d[:, None] * skd + offs_n[None, :] * skn,
                       (offs_d[:, None] < D) & (offs_n[None, :] < S), EMULATE)
        s = tl.dot(q, kt, input_precision=DOT_PREC) * qk_scale
        if MASK:
            vis = _visible(offs_m, offs_n, shift, S, window, sinks, CAUSAL, WINDOW)
            s = tl.where(vis, s, float("-inf"))
        m_new, alpha, pr, l_i, lt_i = online_softmax_step(s, m_i, l_i, lt_i, DTYPE, EMULATE)
        if TMA:
            v = _desc_load(V, kv_b, kv_h, start_n, BLOCK_N, BLOCK_DV, EMULATE)
        else:
            v = _load(V + offs_n[:, None] * svn + offs_dv[None, :] * svd,
                      (offs_n[:, None] < S) & (offs_dv[None, :] < DV), EMULATE)
        acc = acc * alpha[:, None] + tl.dot(pr, v, input_precision=DOT_PREC)
        return m_new, l_i, lt_i, acc

    @bounded_jit(free=["H", "T", "S", "window", "sinks"], keep=["GROUP"], units=["sqd", "skd", "svd", "sod"])
    def _attn_fwd(Q, K, V, O, LSE,
                  sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sob, soh, sot, sod,
                  H, GROUP, T, S, D, DV, qk_scale, window, sinks,
                  CAUSAL: tl.constexpr, WINDOW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr,
                  DOT_PREC: tl.constexpr, TMA: tl.constexpr = False):
        DTYPE: tl.constexpr = Q.dtype.element_ty
        pid_m = _heaviest_first(tl.program_id(0), tl.num_programs(0), CAUSAL)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        hk = h // GROUP
        start_m = pid_m * BLOCK_M
        offs_m = start_m + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        q = _load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                  (offs_m[:, None] < T) & (offs_d[None, :] < D), EMULATE)
        Kb, Vb = _head_bases(K, V, b, hk, skb, skh, svb, svh, TMA)
        shift = S - T
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        lt_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        n_sink_blocks, band_start, full_lo, full_hi, hi = _key_range(start_m, T, S, window, sinks, BLOCK_M, BLOCK_N,
                                                                     CAUSAL, WINDOW)
        for nb in range(0, n_sink_blocks):
            m_i, l_i, lt_i, acc = _fwd_block(q, m_i, l_i, lt_i, acc, Kb, Vb, b, hk, nb * BLOCK_N, offs_m, shift, S, D,
                                             DV, skn, skd, svn, svd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                             BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, True, TMA)
        for start_n in range(band_start, full_lo, BLOCK_N):  # window edge
            m_i, l_i, lt_i, acc = _fwd_block(q, m_i, l_i, lt_i, acc, Kb, Vb, b, hk, start_n, offs_m, shift, S, D,
                                             DV, skn, skd, svn, svd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                             BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, True, TMA)
        for start_n in range(full_lo, full_hi, BLOCK_N):  # fully visible blocks: no mask
            m_i, l_i, lt_i, acc = _fwd_block(q, m_i, l_i, lt_i, acc, Kb, Vb, b, hk, start_n, offs_m, shift, S, D,
                                             DV, skn, skd, svn, svd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                             BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, False, TMA)
        for start_n in range(full_hi, hi, BLOCK_N):  # causal edge and the last, partial key block
            m_i, l_i, lt_i, acc = _fwd_block(q, m_i, l_i, lt_i, acc, Kb, Vb, b, hk, start_n, offs_m, shift, S, D,
                                             DV, skn, skd, svn, svd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                             BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, True, TMA)
        empty = lt_i == 0.0
        o = acc / tl.where(empty, 1.0, lt_i)[:, None]
        tl.store(O + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod,
                 _to_store(o, DTYPE, EMULATE), mask=(offs_m[:, None] < T) & (offs_dv[None, :] < DV))
        lse = tl.where(empty, float("-inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i)))
        tl.store(LSE + pid_bh.to(tl.int64) * T + offs_m, lse, mask=offs_m < T)

    @bounded_jit(free=["H", "T"], units=["sod", "sdd"])
    def _attn_bwd_delta(O, DO, DELTA, sob, soh, sot, sod, sdb, sdh, sdt, sdd, H, T, DV,
                        BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr):
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_dv = tl.arange(0, BLOCK_DV)
        mask = (offs_m[:, None] < T) & (offs_dv[None, :] < DV)
        o = tl.load(O + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod, mask=mask,
                    other=0.0).to(tl.float32)
        do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdt + offs_dv[None, :] * sdd, mask=mask,
                     other=0.0).to(tl.float32)
        tl.store(DELTA + pid_bh.to(tl.int64) * T + offs_m, tl.sum(o * do, 1), mask=offs_m < T)

    @triton.jit
    def _dkdv_block(k, v, dk, dv, Qb, DOb, q_b, q_h, LSE_bh, DELTA_bh, start_m, offs_n, shift, T, S, D, DV, sqt, sqd,
                    sdt, sdd, qk_scale, window, sinks, CAUSAL: tl.constexpr, WINDOW: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DTYPE: tl.constexpr,
                    EMULATE: tl.constexpr, DOT_PREC: tl.constexpr, MASK: tl.constexpr, TMA: tl.constexpr):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        row_ok = offs_m < T
        if TMA:  # Q, DO are [B, H, T, D] descriptors (rows past T and padded columns load as zeros)
            q = _desc_load(Qb, q_b, q_h, start_m, BLOCK_M, BLOCK_D, EMULATE)
            do = _desc_load(DOb, q_b, q_h, start_m, BLOCK_M, BLOCK_DV, EMULATE)
        else:
            q = _load(Qb + offs_m[:, None] * sqt + offs_d[None, :] * sqd, row_ok[:, None] & (offs_d[None, :] < D),
                      EMULATE)
            do = _load(DOb + offs_m[:, None] * sdt + offs_dv[None, :] * sdd,
                       row_ok[:, None] & (offs_dv[None, :] < DV), EMULATE)
        lse = tl.load(LSE_bh + offs_m, mask=row_ok, other=0.0)
        delta = tl.load(DELTA_bh + offs_m, mask=row_ok, other=0.0)
        lse = tl.where(lse == float("-inf"), 0.0, lse)
        st = tl.dot(k, tl.trans(q), input_precision=DOT_PREC) * qk_scale
        if MASK:
            vis = _visible_t(offs_m, offs_n, shift, S, window, sinks, CAUSAL, WINDOW) & row_ok[None, :]
            st = tl.where(vis, st, float("-inf"))
        pt = tl.math.exp2(st - lse[None, :])
        dv += tl.dot(_operand(pt, DTYPE, EMULATE), do, input_precision=DOT_PREC)
        dpt = tl.dot(v, tl.trans(do), input_precision=DOT_PREC)
        dst = pt * (dpt - delta[None, :])
        dk += tl.dot(_operand(dst, DTYPE, EMULATE), q, input_precision=DOT_PREC)
        return dk, dv

    @triton.jit
    def _dkdv_program(Q, K, V, DO, LSE, DELTA, DK, DV_, sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                      sdb, sdh, sdt, sdd, s_dkb, s_dkh, s_dkn, s_dkd, s_dvb, s_dvh, s_dvn, s_dvd, pid_n, b, hk,
                      H, GROUP, T, S, D, DV, qk_scale, sm_scale, window, sinks, CAUSAL: tl.constexpr,
                      WINDOW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                      BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr, TMA: tl.constexpr,
                      DTYPE: tl.constexpr):
        """dK, dV of key block ``pid_n`` of kv head (b, hk): loops over the GROUP query heads reading it and the query
        blocks that can see the block (causal edge, fully visible, window edge / last partial block)."""
        start_n = pid_n * BLOCK_N
        offs_n = start_n + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        if TMA:
            k = _desc_load(K, b, hk, start_n, BLOCK_N, BLOCK_D, EMULATE)
            v = _desc_load(V, b, hk, start_n, BLOCK_N, BLOCK_DV, EMULATE)
        else:
            k = _load(K + b * skb + hk * skh + offs_n[:, None] * skn + offs_d[None, :] * skd,
                      (offs_n[:, None] < S) & (offs_d[None, :] < D), EMULATE)
            v = _load(V + b * svb + hk * svh + offs_n[:, None] * svn + offs_dv[None, :] * svd,
                      (offs_n[:, None] < S) & (offs_dv[None, :] < DV), EMULATE)
        dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
        dv = tl.zeros([BLOCK_N, BLOCK_DV], tl.float32)
        shift = S - T
        # queries that can see a key of this block: p = i + shift >= start_n (causal/window) and
        # p < last key + window (window, unless the block holds sinks)
        m_lo = 0
        if CAUSAL or WINDOW:
            m_lo = tl.maximum(0, start_n - shift)
        m_hi = T
        if WINDOW:
            if start_n >= sinks:
                m_hi = tl.minimum(T, tl.minimum(start_n + BLOCK_N, S) - 1 + window - shift)
        m_first = (m_lo // BLOCK_M) * BLOCK_M
        # query blocks that see every key of this block (no padded rows or keys, past the causal edge,
        # before the window edge): no mask there
        full_lo = m_first
        full_hi = tl.where(start_n + BLOCK_N > S, 0, (T // BLOCK_M) * BLOCK_M)
        if CAUSAL or WINDOW:
            full_lo = tl.maximum(full_lo, tl.cdiv(tl.maximum(start_n + BLOCK_N - 1 - shift, 0), BLOCK_M) * BLOCK_M)
        if WINDOW:
            full_hi = tl.minimum(full_hi, tl.cdiv(tl.maximum(start_n + window - shift - BLOCK_M + 1, 0), BLOCK_M)
                                 * BLOCK_M)
        full_lo = tl.minimum(full_lo, m_hi)
        full_hi = tl.maximum(full_lo, tl.minimum(full_hi, m_hi))
        for g in range(0, GROUP):
            h = hk * GROUP + g
            bh = b * H + h
            Qb, DOb = _head_bases(Q, DO, b, h, sqb, sqh, sdb, sdh, TMA)
            for start_m in range(m_first, full_lo, BLOCK_M):  # causal edge
                dk, dv = _dkdv_block(k, v, dk, dv, Qb, DOb, b, h, LSE + bh * T, DELTA + bh * T, start_m, offs_n,
                                     shift, T, S, D, DV, sqt, sqd, sdt, sdd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                     BLOCK_M, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, True, TMA)
            for start_m in range(full_lo, full_hi, BLOCK_M):  # fully visible: no mask
                dk, dv = _dkdv_block(k, v, dk, dv, Qb, DOb, b, h, LSE + bh * T, DELTA + bh * T, start_m, offs_n,
                                     shift, T, S, D, DV, sqt, sqd, sdt, sdd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                     BLOCK_M, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, False, TMA)
            for start_m in range(full_hi, m_hi, BLOCK_M):  # window edge, last partial query block
                dk, dv = _dkdv_block(k, v, dk, dv, Qb, DOb, b, h, LSE + bh * T, DELTA + bh * T, start_m, offs_n,
                                     shift, T, S, D, DV, sqt, sqd, sdt, sdd, qk_scale, window, sinks, CAUSAL, WINDOW,
                                     BLOCK_M, BLOCK_D, BLOCK_DV, DTYPE, EMULATE, DOT_PREC, True, TMA)
        dk = dk * sm_scale
        tl.store(DK + b * s_dkb + hk * s_dkh + offs_n[:, None] * s_dkn + offs_d[None, :] * s_dkd,
                 _to_store(dk, DTYPE, EMULATE), mask=(offs_n[:, None] < S) & (offs_d[None, :] < D))
        tl.store(DV_ + b * s_dvb + hk * s_dvh + offs_n[:, None] * s_dvn + offs_dv[None, :] * s_dvd,
                 _to_store(dv, DTYPE, EMULATE), mask=(offs_n[:, None] < S) & (offs_dv[None, :] < DV))


    @bounded_jit(free=["H", "HKV", "T", "S", "window", "sinks"], keep=["GROUP"],
                 units=["sqd", "skd", "svd", "sdd", "s_dkd", "s_dvd"])
    def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV_,
                       sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sdb, sdh, sdt, sdd,
                       s_dkb, s_dkh, s_dkn, s_dkd, s_dvb, s_dvh, s_dvn, s_dvd,
                       H, HKV, GROUP, T, S, D, DV, qk_scale, sm_scale, window, sinks,
                       CAUSAL: tl.constexpr, WINDOW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                       BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr,
                       DOT_PREC: tl.constexpr, TMA: tl.constexpr = False):
        DTYPE: tl.constexpr = DK.dtype.element_ty  # Q may be a TMA descriptor
        pid_bh = tl.program_id(1)
        _dkdv_program(Q, K, V, DO, LSE, DELTA, DK, DV_, sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                      sdb, sdh, sdt, sdd, s_dkb, s_dkh, s_dkn, s_dkd, s_dvb, s_dvh, s_dvn, s_dvd, tl.program_id(0),
                      (pid_bh // HKV).to(tl.int64), (pid_bh % HKV).to(tl.int64), H, GROUP, T, S, D, DV, qk_scale,
                      sm_scale, window, sinks, CAUSAL, WINDOW, BLOCK_M, BLOCK_N, BLOCK_D, BLOCK_DV, EMULATE, DOT_PREC,
                      TMA, DTYPE)

    @triton.jit
    def _dq_block(q, do, lse, delta, dq, K, V, kv_b, kv_h, start_n, offs_m, shift, S, D, DV, skn, skd, svn, svd,
                  qk_scale, window, sinks, CAUSAL: tl.constexpr, WINDOW: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DTYPE: tl.constexpr, EMULATE: tl.constexpr,
                  DOT_PREC: tl.constexpr, MASK: tl.constexpr, TMA: tl.constexpr):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        if TMA:  # row-major K/V tiles [BLOCK_N, D] from the descriptors; products with their transposes
            k = _desc_load(K, kv_b, kv_h, start_n, BLOCK_N, BLOCK_D, EMULATE)
            v = _desc_load(V, kv_b, kv_h, start_n, BLOCK_N, BLOCK_DV, EMULATE)
            s = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * qk_scale
            dp = tl.dot(do, tl.trans(v), input_precision=DOT_PREC)
        else:
            kt = _load(K + offs_d[:, None] * skd + offs_n[None, :] * skn,
                       (offs_d[:, None] < D) & (offs_n[None, :] < S), EMULATE)
            vt = _load(V + offs_dv[:, None] * svd + offs_n[None, :] * svn,
                       (offs_dv[:, None] < DV) & (offs_n[None, :] < S), EMULATE)
            s = tl.dot(q, kt, input_precision=DOT_PREC) * qk_scale
            dp = tl.dot(do, vt, input_precision=DOT_PREC)
            k = tl.trans(kt)
        if MASK:
            vis = _visible(offs_m, offs_n, shift, S, window, sinks, CAUSAL, WINDOW)
            s = tl.where(vis, s, float("-inf"))
        p = tl.math.exp2(s - lse[:, None])
        ds = p * (dp - delta[:, None])
        dq += tl.dot(_operand(ds, DTYPE, EMULATE), k, input_precision=DOT_PREC)
        return dq

    @triton.jit
    def _dq_program(Q, K, V, DO, LSE, DELTA, DQ, sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                    sdb, sdh, sdt, sdd, s_dqb, s_dqh, s_dqt, s_dqd, pid_m, b, h, H, GROUP, T, S, D, DV, qk_scale,
                    sm_scale, window, sinks, CAUSAL: tl.constexpr, WINDOW: tl.constexpr, BLOCK_M: tl.constexpr,
                    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr,
                    DOT_PREC: tl.constexpr, TMA: tl.constexpr, DTYPE: tl.constexpr):
        """dQ of query block ``pid_m`` of query head (b, h): loops over the forward's key range."""
        pid_bh = b * H + h
        hk = h // GROUP
        start_m = pid_m * BLOCK_M
        offs_m = start_m + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        row_ok = offs_m < T
        q = _load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                  row_ok[:, None] & (offs_d[None, :] < D), EMULATE)
        do = _load(DO + b * sdb + h * sdh + offs_m[:, None] * sdt + offs_dv[None, :] * sdd,
                   row_ok[:, None] & (offs_dv[None, :] < DV), EMULATE)
        lse = tl.load(LSE + pid_bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
        lse = tl.where(lse == float("-inf"), 0.0, lse)
        delta = tl.load(DELTA + pid_bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
        Kb, Vb = _head_bases(K, V, b, hk, skb, skh, svb, svh, TMA)
        shift = S - T
        dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
        n_sink_blocks, band_start, full_lo, full_hi, hi = _key_range(start_m, T, S, window, sinks, BLOCK_M, BLOCK_N,
                                                                     CAUSAL, WINDOW)
        for nb in range(0, n_sink_blocks):
            dq = _dq_block(q, do, lse, delta, dq, Kb, Vb, b, hk, nb * BLOCK_N, offs_m, shift, S, D, DV, skn, skd, svn,
                           svd, qk_scale, window, sinks, CAUSAL, WINDOW, BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE,
                           EMULATE, DOT_PREC, True, TMA)
        for start_n in range(band_start, full_lo, BLOCK_N):
            dq = _dq_block(q, do, lse, delta, dq, Kb, Vb, b, hk, start_n, offs_m, shift, S, D, DV, skn, skd, svn,
                           svd, qk_scale, window, sinks, CAUSAL, WINDOW, BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE,
                           EMULATE, DOT_PREC, True, TMA)
        for start_n in range(full_lo, full_hi, BLOCK_N):
            dq = _dq_block(q, do, lse, delta, dq, Kb, Vb, b, hk, start_n, offs_m, shift, S, D, DV, skn, skd, svn,
                           svd, qk_scale, window, sinks, CAUSAL, WINDOW, BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE,
                           EMULATE, DOT_PREC, False, TMA)
        for start_n in range(full_hi, hi, BLOCK_N):
            dq = _dq_block(q, do, lse, delta, dq, Kb, Vb, b, hk, start_n, offs_m, shift, S, D, DV, skn, skd, svn,
                           svd, qk_scale, window, sinks, CAUSAL, WINDOW, BLOCK_N, BLOCK_D, BLOCK_DV, DTYPE,
                           EMULATE, DOT_PREC, True, TMA)
        dq = dq * sm_scale
        tl.store(DQ + b * s_dqb + h * s_dqh + offs_m[:, None] * s_dqt + offs_d[None, :] * s_dqd,
                 _to_store(dq, DTYPE, EMULATE), mask=row_ok[:, None] & (offs_d[None, :] < D))

    @bounded_jit(free=["H", "T", "S", "window", "sinks"], keep=["GROUP"],
                 units=["sqd", "skd", "svd", "sdd", "s_dqd"])
    def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ,
                     sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sdb, sdh, sdt, sdd,
                     s_dqb, s_dqh, s_dqt, s_dqd,
                     H, GROUP, T, S, D, DV, qk_scale, sm_scale, window, sinks,
                     CAUSAL: tl.constexpr, WINDOW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr,
                     DOT_PREC: tl.constexpr, TMA: tl.constexpr = False):
        DTYPE: tl.constexpr = Q.dtype.element_ty
        pid_m = _heaviest_first(tl.program_id(0), tl.num_programs(0), CAUSAL)
        pid_bh = tl.program_id(1)
        _dq_program(Q, K, V, DO, LSE, DELTA, DQ, sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                    sdb, sdh, sdt, sdd, s_dqb, s_dqh, s_dqt, s_dqd, pid_m, (pid_bh // H).to(tl.int64),
                    (pid_bh % H).to(tl.int64), H, GROUP, T, S, D, DV, qk_scale, sm_scale, window, sinks, CAUSAL, WINDOW,
                    BLOCK_M, BLOCK_N, BLOCK_D, BLOCK_DV, EMULATE, DOT_PREC, TMA, DTYPE)

    @bounded_jit(free=["H", "HKV", "T", "S", "window", "sinks", "NKB"], keep=["GROUP"],
                 units=["sqd", "skd", "svd", "sdd", "s_dqd", "s_dkd", "s_dvd"])
    def _attn_bwd_fused(Q, K, V, DO, LSE, DELTA, DQ, DK, DV_,
                        sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sdb, sdh, sdt, sdd,
                        s_dqb, s_dqh, s_dqt, s_dqd, s_dkb, s_dkh, s_dkn, s_dkd, s_dvb, s_dvh, s_dvn, s_dvd,
                        H, HKV, GROUP, T, S, D, DV, qk_scale, sm_scale, window, sinks, NKB,
                        CAUSAL: tl.constexpr, WINDOW: tl.constexpr, BLOCK_M1: tl.constexpr, BLOCK_N1: tl.constexpr,
                        BLOCK_M2: tl.constexpr, BLOCK_N2: tl.constexpr, BLOCK_D: tl.constexpr,
                        BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """The whole backward of kv head (b, hk) in one launch, as FlexAttention's: programs ``pid < NKB`` compute
        dK/dV of key block ``pid`` (BLOCK_N1 keys, BLOCK_M1 queries a step), the others dQ of one query block
        (BLOCK_M2 queries, BLOCK_N2 keys a step) of one of the GROUP query heads, heaviest causal blocks first; so
        both halves run side by side instead of one kernel after the other."""
        DTYPE: tl.constexpr = DK.dtype.element_ty
        pid = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // HKV).to(tl.int64)
        hk = (pid_bh % HKV).to(tl.int64)
        if pid < NKB:
            _dkdv_program(Q, K, V, DO, LSE, DELTA, DK, DV_, sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn,
                          svd, sdb, sdh, sdt, sdd, s_dkb, s_dkh, s_dkn, s_dkd, s_dvb, s_dvh, s_dvn, s_dvd, pid, b, hk,
                          H, GROUP, T, S, D, DV, qk_scale, sm_scale, window, sinks, CAUSAL, WINDOW, BLOCK_M1,
                          BLOCK_N1, BLOCK_D, BLOCK_DV, EMULATE, DOT_PREC, False, DTYPE)
        else:
            nqb = tl.cdiv(T, BLOCK_M2)
            r = pid - NKB
            pid_m = _heaviest_first(r % nqb, nqb, CAUSAL)
            _dq_program(Q, K, V, DO, LSE, DELTA, DQ, sqb, sqh, sqt, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                        sdb, sdh, sdt, sdd, s_dqb, s_dqh, s_dqt, s_dqd, pid_m, b, hk * GROUP + r // nqb, H, GROUP, T,
                        S, D, DV, qk_scale, sm_scale, window, sinks, CAUSAL, WINDOW, BLOCK_M2, BLOCK_N2, BLOCK_D,
                        BLOCK_DV, EMULATE, DOT_PREC, False, DTYPE)


_pow2 = functools.partial(pow2, lo=16)  # tile sizes: at least 16


def _fwd_config(T: int, S: int, bd: int, dtype: torch.dtype) -> dict[str, int]:
    """Block sizes and launch options of the forward kernel (a first guess for the GPU; tune there)."""
    if interpreting():  # big tiles: fewer interpreted iterations
        return {"BLOCK_M": min(64, _pow2(T)), "BLOCK_N": min(64, _pow2(S)), "num_warps": 4, "num_stages": 1}
    if dtype == torch.float32:
        # IEEE float32 products are FMA loops whose operands live in registers: 32 x 32 tiles at 8 warps, 1 stage
        # (16 x 32 at D = 256) compile without a spill at D = 64, 128, 256 (sm_90, Triton 3.9 ptxas); the 64 x 32
        # tiles at 2 stages used before spilled 1.3-1.6 KB per thread at D = 64-128 and 33 KB at D = 256
        return {"BLOCK_M": 32 if bd <= 128 else 16, "BLOCK_N": 32, "num_warps": 8, "num_stages": 1}
    if bd > 128:
        # 16-bit, D = 256: 32 x 32 tiles at 8 warps (no spill; 4 warps spilled 63 KB per thread in float32)
        return {"BLOCK_M": 32, "BLOCK_N": 32, "num_warps": 8, "num_stages": 2}
    return {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4 if bd <= 64 else 8, "num_stages": 3, "TMA": 0}


def _bwd_config(T: int, S: int, bd: int, dtype: torch.dtype, gpu: bool = False) -> dict[str, int]:
    """Block sizes and launch options of the dK/dV kernel (BLOCK_N keys per program, BLOCK_M queries per step).

    Hopper, 16-bit inputs: 128-key tiles, as FlexAttention's sm_90 backward default (``BLOCK_N1 = 128``,
    ``BLOCK_M1 = 64``, 8 warps, 3 stages; torch/_inductor/template_heuristics/triton.py), which halves the Q/dO
    traffic per key of 64-key tiles and gives the dV/dK products 128-row wgmma tiles.  At D = 128 our kernel spills
    44-120 bytes per thread with Flex's 64-query step (its masks, sm_90, Triton 3.9 ptxas), so it steps 32 queries
    (241 registers, no spill); at D <= 64 Flex's configuration compiles without a spill.  Unmeasured: the GPU run's
    autotune (``VERIFORMER_AUTOTUNE=1``) and ``benchmarks/tune_attention.py`` decide.  ``gpu=True``: the GPU's
    configuration even under the interpreter (tests)."""
    if interpreting() and not gpu:
        return {"BLOCK_M": min(64, _pow2(T)), "BLOCK_N": min(64, _pow2(S)), "num_warps": 4, "num_stages": 1}
    if dtype == torch.float32:
        # IEEE FMA products, one launch for dK/dV and dQ: 32 x 32 at D <= 64, 16 x 32 at D = 128, 16 x 16 at D = 256,
        # all at 8 warps and 1 stage, compile without a spill (sm_90, Triton 3.9 ptxas); the 32 x 32 tiles used
        # before at every head dim spilled 1.0 KB per thread at D = 64 (4 warps), 0.5 KB at 128 and 15 KB at 256
        return {"BLOCK_M": 32 if bd <= 64 else 16, "BLOCK_N": 32 if bd <= 128 else 16, "num_warps": 8,
                "num_stages": 1}
    if bd > 128:
        return {"BLOCK_M": 32, "BLOCK_N": 32, "num_warps": 8, "num_stages": 1}
    return {"BLOCK_M": 64 if bd <= 64 else 32, "BLOCK_N": 128, "num_warps": 8, "num_stages": 3, "TMA": 0}


def _dq_config(T: int, S: int, bd: int, dtype: torch.dtype, gpu: bool = False) -> dict[str, int]:
    """Block sizes and launch options of the dQ kernel (BLOCK_M queries per program, BLOCK_N keys per step): 128 x 64
    at 8 warps and 3 stages, FlexAttention's sm_90 default (``BLOCK_M2 = 128``, ``BLOCK_N2 = 64``); no spill at
    D = 64 or 128 (sm_90, Triton 3.9 ptxas).  Float32 and head dims above 128 take :func:`_bwd_config`'s tiles."""
    if (interpreting() and not gpu) or bd > 128 or dtype == torch.float32:
        return _bwd_config(T, S, bd, dtype, gpu)
    return {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3, "TMA": 0}


_CONFIGS = {"fwd": _fwd_config, "bwd": _bwd_config, "dq": _dq_config}
# small launches (check() campaigns' cases, see _Geometry): every kernel, dtype and head dim
_SMALL_CONFIG = {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1, "TMA": 0}
_CONFIG_KEYS = ("BLOCK_M", "BLOCK_N", "num_warps", "num_stages", "TMA", "FUSED")
# launch-config overrides per kernel family ("attention": this module's kernels; "vq_attention": the dK/dV
# kernel of fast.vq_attention, which reuses this module's geometry) -> {"fwd" | "bwd" | "dq": config}; a context
# variable, so overrides nest, are thread- and task-local, and one family's never reaches another's launches
OVERRIDE_KERNELS = ("attention", "vq_attention")
_OVERRIDE: contextvars.ContextVar[dict[str, dict[str, dict[str, int]]] | None] = contextvars.ContextVar(
    "veriformer_flash_override", default=None)


@contextmanager
def config_override(*, fwd: Mapping[str, int] | None = None, bwd: Mapping[str, int] | None = None,
                    dq: Mapping[str, int] | None = None, kernel: str = "attention") -> Iterator[None]:
    """Replace the launch configuration of ``kernel``'s launches made inside the block (their backward keeps it
    even when it runs later). ``kernel``: ``"attention"`` (:func:`attention`: ``fwd`` for the forward, ``bwd``
    for the dK/dV kernel and, unless ``dq`` is given, the dQ kernel, ``dq`` for the dQ kernel) or
    ``"vq_attention"`` (the flash dK/dV kernel that :func:`veriformer.fast.vq.linear_time.vq_attention`'s backward
    launches: ``bwd`` only); an override of one never applies to the other.  Each config is any subset of
    ``BLOCK_M``, ``BLOCK_N`` (powers of two >= 16), ``num_warps``, ``num_stages``, ``FUSED`` (``bwd`` only, 0/1,
    default 1: the backward as one launch of dK/dV and dQ programs when the two configurations share warps and
    stages and TMA is off; 0: two kernels) and ``TMA`` (0/1: stream the
    looped tiles -- K and V in the forward and dQ kernels, Q and dO in the dK/dV kernel -- through Hopper TMA
    descriptors instead of pointer loads, when every layout allows it: unit last stride, 16-byte aligned base
    and strides, and 16-bit inputs; else the pointer path).
    For tuning sweeps (``benchmarks/tune_attention.py``); ``block_sizes=`` of a call still wins."""
    func = "config_override"
    require(kernel in OVERRIDE_KERNELS, func, "kernel", f"one of {OVERRIDE_KERNELS}", repr(kernel))
    new: dict[str, dict[str, int]] = {}
    if bwd is not None and dq is None:
        dq = bwd
    for kind, cfg in (("fwd", fwd), ("bwd", bwd), ("dq", dq)):
        if cfg is None:
            continue
        for key, val in cfg.items():
            require(key in _CONFIG_KEYS, func, kind, f"keys from {_CONFIG_KEYS}", repr(key))
            if key in ("TMA", "FUSED"):
                require(val in (0, 1), func, kind, f"{key}: 0 or 1", repr(val))
                continue
            pow2 = isinstance(val, int) and val >= 16 and val & (val - 1) == 0
            ok = isinstance(val, int) and val >= 1 and (pow2 or not key.startswith("BLOCK"))
            require(ok, func, kind, f"{key}: a positive int (block sizes: powers of two >= 16)", repr(val))
        new[kind] = dict(cfg)
    current = _OVERRIDE.get() or {}
    token = _OVERRIDE.set({**current, kernel: {**current.get(kernel, {}), **new}})
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


_COARSE_IN_INTERPRETER = [False]


@contextmanager
def coarse_small_launches() -> Iterator[None]:
    """Apply the GPU's small-launch coarsening (16 x 16 tiles at 4 warps, one head-dim bucket >= 64 for D and DV,
    pointer loads, every causal / windowed mask run as a window) under the interpreter too, so that tests can check
    its semantics without a GPU."""
    saved, _COARSE_IN_INTERPRETER[0] = _COARSE_IN_INTERPRETER[0], True
    try:
        yield
    finally:
        _COARSE_IN_INTERPRETER[0] = saved


def _strides(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.stride())


_Tiles = tuple[int, int, int, int]  # BLOCK_M, BLOCK_N, num_warps, num_stages


class _Geometry:
    """Shapes, flags and launch constants shared by forward and backward."""

    def __init__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float,
                 window: int | None, sinks: int, blocks: tuple[int, int] | None, kernel: str = "attention") -> None:
        self.B, self.H, self.T, self.D = q.shape
        self.HKV, self.S, self.DV = k.shape[1], k.shape[2], v.shape[3]
        self.group = self.H // self.HKV
        self.causal, self.scale, self.sinks = causal, scale, sinks
        self.has_window = window is not None
        self.window = int(window) if window is not None else 0
        self.bd, self.bdv = _pow2(self.D), _pow2(self.DV)
        self.blocks = blocks
        # config_override(kernel=...) at call time, this kernel family's only
        self.override = {kind: dict(cfg) for kind, cfg in (_OVERRIDE.get() or {}).get(kernel, {}).items()}
        self.emulate = interpreting()
        self.small = (not self.emulate or _COARSE_IN_INTERPRETER[0]) and small_launch(q, k, v)
        if self.small:
            # a small launch (a check() campaign's case) runs the generic binary with pointer loads (TMA off: it
            # pays only for long loops) and one head-dim bucket for D and DV, at least 64, so that a campaign over
            # head dims compiles <= 3 tile shapes instead of 5 x 5, shared by the pointer and TMA variants
            self.bd = self.bdv = max(64, self.bd, self.bdv)
            # and one mask kind for everything causal: a window implies causality (_visible), and a causal
            # launch without a window is the windowed one with a window longer than every query's history
            if self.causal or self.has_window:
                if not self.has_window:
                    self.window, self.sinks = self.S + self.T + 1, 0
                self.causal = self.has_window = True
        self.dot_prec = "ieee" if (q.dtype == torch.float32 or self.emulate) else "tf32"

    def config(self, kind: str, dtype: torch.dtype) -> dict[str, int]:
        cfg = _CONFIGS[kind](self.T, self.S, max(self.bd, self.bdv), dtype)
        if self.small:  # latency-bound anyway: the tiles that compile fastest and never spill (sm_90: 2-3x faster
            cfg = dict(_SMALL_CONFIG)  # to compile than the default tiles, e.g. 5.4 s vs 7.3 s for dK/dV at D = 128)
        cfg = {**cfg, **self.override.get(kind, {})}
        if self.small or dtype == torch.float32:
            # float32: IEEE FMA products with register operands, nothing for TMA to feed; through descriptors the
            # forward and dQ kernels spilled 0.6 and 2.6 KB per thread at D = 128 (sm_90 static): pointer loads
            cfg["TMA"] = 0
        if self.blocks is not None:
            cfg = {**cfg, "BLOCK_M": self.blocks[0], "BLOCK_N": self.blocks[1]}
        return cfg

    # Curated launch configurations for tuned_launch (timed only with VERIFORMER_AUTOTUNE=1 on launches that are
    # not small; the first, the hand-set default of config(), runs otherwise): (BLOCK_M, BLOCK_N, warps, stages)
    # around the defaults, FlexAttention's sm_90 defaults and the Triton tutorial's Hopper fused attention
    # (python/tutorials/06-fused-attention.py), kept only where they compile for sm_90 without a register spill at
    # D = 128, bf16, causal, with 16-byte vector loads (Triton 3.9 ptxas, tests/attention/test_attention_autotune.py;
    # spilling candidates: fwd 128x64/4w 276 B, 128x128/8w 4 B, 128x32/4w 28 B; dK/dV 64x128/8w/3st 108 B (Flex's),
    # 64x64/8w/3st 16 B, 64x64/4w/3st 184 B, 32x128/8w/2st 24 B; dQ 128x32/4w 112 B).  Head dims above 128 and
    # float32 keep their one default.
    _TUNE: ClassVar[dict[str, tuple[_Tiles, ...]]] = {
        "fwd": ((64, 64, 4, 3), (64, 128, 4, 3)),
        "bwd": ((32, 128, 8, 4), (16, 128, 8, 3), (32, 64, 4, 3)),
        "dq": ((64, 64, 8, 2), (64, 64, 4, 3), (128, 32, 8, 3)),
    }

    def configs(self, kind: str, dtype: torch.dtype) -> list[dict[str, int]]:
        """The launch configurations ``tuned_launch`` may choose from for ``kind`` ("fwd", "bwd" = dK/dV, "dq"):
        :meth:`config` first, then the curated list, unless the launch is small, emulated (interpreter), overridden
        (``config_override``, ``block_sizes=``), streams through TMA, or has head dims above 128 or float32 inputs:
        then the one configuration."""
        cfg = self.config(kind, dtype)
        out = [cfg]
        if self.small or self.emulate or self.blocks is not None or self.override.get(kind) or cfg.get("TMA"):
            return out
        if max(self.bd, self.bdv) > 128 or dtype == torch.float32:
            return out
        for bm, bn, warps, stages in self._TUNE[kind]:
            c = {"BLOCK_M": bm, "BLOCK_N": bn, "num_warps": warps, "num_stages": stages}
            if all({**o, "TMA": 0} != {**c, "TMA": 0} for o in out):
                out.append(c)
        return out

    def tune_key(self, kind: str, dtype: torch.dtype) -> tuple[Any, ...]:
        """What the best tiles depend on: kernel, dtype, padded head dims, masking, GQA, the length buckets."""
        return (kind, str(dtype), self.bd, self.bdv, self.causal, self.has_window, self.group > 1,
                length_bucket(self.T), length_bucket(self.S))

    def flags(self) -> dict[str, Any]:
        return {"CAUSAL": self.causal, "WINDOW": self.has_window, "BLOCK_D": self.bd, "BLOCK_DV": self.bdv,
                "EMULATE": self.emulate, "DOT_PREC": self.dot_prec}


def _forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             g: _Geometry) -> tuple[torch.Tensor, torch.Tensor]:
    o = torch.empty((g.B, g.H, g.T, g.DV), dtype=q.dtype, device=q.device)
    lse2 = torch.empty((g.B, g.H, g.T), dtype=torch.float32, device=q.device)
    configs = g.configs("fwd", q.dtype)
    if len(configs) > 1:  # pointer loads; tuned_launch keeps the first unless autotuning is on
        tuned_launch(_attn_fwd, lambda c: (triton.cdiv(g.T, c["BLOCK_M"]), g.B * g.H), _no_tma(configs),
                     g.tune_key("fwd", q.dtype), q, k, v, o, lse2, *_strides(q), *_strides(k), *_strides(v),
                     *_strides(o), g.H, g.group, g.T, g.S, g.D, g.DV, g.scale * _LOG2E, g.window, g.sinks,
                     **g.flags(), TMA=False)
        return o, lse2
    cfg = dict(configs[0])
    kk, vv = k, v
    if cfg.pop("TMA", 0):
        kk, vv = _descriptors((k, v), cfg["BLOCK_N"], (g.bd, g.bdv))
    grid = (triton.cdiv(g.T, cfg["BLOCK_M"]), g.B * g.H)
    launch(_attn_fwd, grid, q, kk, vv, o, lse2, *_strides(q), *_strides(k), *_strides(v), *_strides(o),
           g.H, g.group, g.T, g.S, g.D, g.DV, g.scale * _LOG2E, g.window, g.sinks, **g.flags(), **cfg,
           TMA=kk is not k)
    return o, lse2


def _no_tma(configs: list[dict[str, int]]) -> list[dict[str, int]]:
    """Configurations for ``tuned_launch``: launch options and tiles only (the tuned path loads through pointers)."""
    return [{k: v for k, v in c.items() if k not in ("TMA", "FUSED")} for c in configs]


def _tma_ok(t: torch.Tensor) -> bool:
    """A Hopper TMA descriptor can address ``t``: unit last stride, 16-byte aligned base and other strides, no
    broadcast (zero-stride) dimension."""
    size = t.element_size()
    return (t.stride(-1) == 1 and t.data_ptr() % 16 == 0
            and all((st * size) % 16 == 0 and (st > 0 or n == 1) for st, n in zip(t.stride()[:-1], t.shape[:-1],
                                                                                   strict=True)))


def _descriptors(ts: tuple[torch.Tensor, ...], rows: int, cols: tuple[int, ...]) -> tuple[Any, ...]:
    """TMA descriptors of the [B, H, L, D] tensors ``ts`` with boxes [1, 1, rows, cols[i]] (rows and columns
    outside a tensor load as zeros), or ``ts`` unchanged when one layout does not allow TMA (:func:`_tma_ok`)."""
    if not all(_tma_ok(t) for t in ts):
        return ts
    from triton.tools.tensor_descriptor import TensorDescriptor

    return tuple(TensorDescriptor(t, list(t.shape), list(t.stride()), [1, 1, rows, c])
                 for t, c in zip(ts, cols, strict=True))


def _fused_config(bwd: dict[str, int], dq: dict[str, int]) -> dict[str, int] | None:
    """The launch configuration of :func:`_attn_bwd_fused` from the dK/dV (``bwd``) and dQ configurations, or None
    when the backward runs as two kernels: ``FUSED=0`` in ``bwd`` (``config_override(bwd={"FUSED": 0})``), TMA loads
    (the split kernels' path) or the two asking for different warps or stages (one launch has one of each)."""
    if not bwd.get("FUSED", 1) or bwd.get("TMA") or dq.get("TMA"):
        return None
    if bwd["num_warps"] != dq["num_warps"] or bwd["num_stages"] != dq["num_stages"]:
        return None
    return {"BLOCK_M1": bwd["BLOCK_M"], "BLOCK_N1": bwd["BLOCK_N"], "BLOCK_M2": dq["BLOCK_M"],
            "BLOCK_N2": dq["BLOCK_N"], "num_warps": bwd["num_warps"], "num_stages": bwd["num_stages"]}


def _backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
              lse2: torch.Tensor, g: _Geometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    delta = torch.empty((g.B, g.H, g.T), dtype=torch.float32, device=q.device)
    bm_delta = 64 if not g.emulate else min(64, _pow2(g.T))
    launch(_attn_bwd_delta, (triton.cdiv(g.T, bm_delta), g.B * g.H),
           o, do, delta, *_strides(o), *_strides(do), g.H, g.T, g.DV, BLOCK_M=bm_delta, BLOCK_DV=g.bdv)
    dq = torch.empty_like(q, memory_format=torch.contiguous_format)
    dk = torch.empty_like(k, memory_format=torch.contiguous_format)
    dv = torch.empty_like(v, memory_format=torch.contiguous_format)
    common = (g.scale * _LOG2E, g.scale, g.window, g.sinks)
    configs, dq_configs = g.configs("bwd", q.dtype), g.configs("dq", q.dtype)
    fused = _fused_config(configs[0], dq_configs[0])
    if fused is not None and not (autotune_enabled() and len(configs) > 1 and len(dq_configs) > 1):
        nkb = triton.cdiv(g.S, fused["BLOCK_N1"])
        launch(_attn_bwd_fused, (nkb + g.group * triton.cdiv(g.T, fused["BLOCK_M2"]), g.B * g.HKV),
               q, k, v, do, lse2, delta, dq, dk, dv, *_strides(q), *_strides(k), *_strides(v), *_strides(do),
               *_strides(dq), *_strides(dk), *_strides(dv), g.H, g.HKV, g.group, g.T, g.S, g.D, g.DV, *common, nkb,
               **g.flags(), **fused)
        return dq, dk, dv
    if len(configs) > 1 and len(dq_configs) > 1:
        tuned_launch(_attn_bwd_dkdv, lambda c: (triton.cdiv(g.S, c["BLOCK_N"]), g.B * g.HKV), _no_tma(configs),
                     g.tune_key("bwd", q.dtype), q, k, v, do, lse2, delta, dk, dv, *_strides(q), *_strides(k),
                     *_strides(v), *_strides(do), *_strides(dk), *_strides(dv), g.H, g.HKV, g.group, g.T, g.S, g.D,
                     g.DV, *common, **g.flags(), TMA=False)
        tuned_launch(_attn_bwd_dq, lambda c: (triton.cdiv(g.T, c["BLOCK_M"]), g.B * g.H), _no_tma(dq_configs),
                     g.tune_key("dq", q.dtype), q, k, v, do, lse2, delta, dq, *_strides(q), *_strides(k),
                     *_strides(v), *_strides(do), *_strides(dq), g.H, g.group, g.T, g.S, g.D, g.DV, *common,
                     **g.flags(), TMA=False)
        return dq, dk, dv
    cfg = {key: val for key, val in configs[0].items() if key != "FUSED"}
    ins: tuple[Any, ...] = (q, k, v, do)
    if cfg.pop("TMA", 0):  # Q/dO tiles of BLOCK_M rows, K/V tiles of BLOCK_N rows
        qd = _descriptors((q, do), cfg["BLOCK_M"], (g.bd, g.bdv))
        kv = _descriptors((k, v), cfg["BLOCK_N"], (g.bd, g.bdv))
        if qd[0] is not q and kv[0] is not k:
            ins = (qd[0], kv[0], kv[1], qd[1])
    launch(_attn_bwd_dkdv, (triton.cdiv(g.S, cfg["BLOCK_N"]), g.B * g.HKV),
           *ins, lse2, delta, dk, dv, *_strides(q), *_strides(k), *_strides(v), *_strides(do),
           *_strides(dk), *_strides(dv), g.H, g.HKV, g.group, g.T, g.S, g.D, g.DV, *common, **g.flags(), **cfg,
           TMA=ins[0] is not q)
    cfg = {key: val for key, val in dq_configs[0].items() if key != "FUSED"}
    kv = (k, v)
    if cfg.pop("TMA", 0):  # K/V tiles of BLOCK_N rows (its own q and dO tiles: pointer loads)
        kv = _descriptors((k, v), cfg["BLOCK_N"], (g.bd, g.bdv))
    launch(_attn_bwd_dq, (triton.cdiv(g.T, cfg["BLOCK_M"]), g.B * g.H),
           q, *kv, do, lse2, delta, dq, *_strides(q), *_strides(k), *_strides(v), *_strides(do),
           *_strides(dq), g.H, g.group, g.T, g.S, g.D, g.DV, *common, **g.flags(), **cfg, TMA=kv[0] is not k)
    return dq, dk, dv


class _FlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                g: _Geometry) -> tuple[torch.Tensor, torch.Tensor]:
        o, lse2 = _forward(q, k, v, g)
        ctx.save_for_backward(q, k, v, o, lse2)
        ctx.geometry = g
        ctx.mark_non_differentiable(lse2)
        return o, lse2

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor, dlse: torch.Tensor | None) -> tuple[Any, ...]:
        q, k, v, o, lse2 = ctx.saved_tensors
        dq, dk, dv = _backward(do, q, k, v, o, lse2, ctx.geometry)
        return dq, dk, dv, None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
              scale: float | None = None, window: int | None = None, sinks: int = 0, return_lse: bool = False,
              block_sizes: tuple[int, int] | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Flash attention (Triton): ``o_i = sum_j softmax_j(scale * q_i . k_j | j visible to i) v_j``.

    q [B, H, T, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv] (Hkv divides H; query head h reads kv head
    ``h // (H // Hkv)``) -> o [B, H, T, Dv] in q's dtype (float16, bfloat16 or float32; float32
    accumulation).  ``scale`` defaults to ``D**-0.5``.  Visibility: query i at key position
    ``p = i + S - T``; ``causal``: ``j <= p``; ``window=w``: ``p - w < j <= p``; ``sinks=s`` (with a
    window): also ``j < s, j <= p``.  Rows with no visible key give o = 0 and lse = -inf.
    ``return_lse=True`` also returns ``lse_i = log sum_j exp(scale q_i . k_j)`` (natural log, float32
    [B, H, T]; not differentiable).  Differentiable in q, k, v (Triton backward kernels).
    ``block_sizes=(BLOCK_M, BLOCK_N)`` overrides the tile sizes (powers of two >= 16; tests and tuning).
    Inputs must be on CUDA, or on the CPU when Triton runs in its interpreter (selected automatically
    without CUDA).  Head dims 1..256 (non powers of two are padded inside the kernel); larger raise.
    Source: Dao 2023 (FlashAttention-2); semantics of :func:`veriformer.reference.softmax_attention`.
    """
    func = "attention"
    require_triton(func)
    for name, t in (("q", q), ("k", k), ("v", v)):
        require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
        require(t.dim() == 4, func, name, "a rank-4 tensor [B, heads, length, head dim]", f"shape {tuple(t.shape)}")
        require(t.dtype in _DTYPES, func, name, "float16, bfloat16 or float32", f"dtype {t.dtype}")
        require(t.dtype == q.dtype, func, name, f"of q's dtype {q.dtype}", f"dtype {t.dtype}")
        require(t.device == q.device, func, name, f"on q's device {q.device}", f"device {t.device}")
    B, H, T, D = q.shape
    require(T >= 1 and D >= 1, func, "q", "non-empty (T >= 1, D >= 1)", f"shape {tuple(q.shape)}")
    require(D <= _MAX_HEAD_DIM, func, "q", f"a head dim D <= {_MAX_HEAD_DIM}", f"D={D}")
    require(k.shape[0] == B and k.shape[3] == D and k.shape[2] >= 1 and k.shape[1] >= 1, func, "k",
            f"of shape [B={B}, Hkv, S >= 1, D={D}]", f"shape {tuple(k.shape)}")
    require(H % k.shape[1] == 0, func, "k", f"a kv head count dividing H={H}", f"Hkv={k.shape[1]}")
    require(v.shape[:3] == k.shape[:3] and 1 <= v.shape[3] <= _MAX_HEAD_DIM, func, "v",
            f"of shape [B, Hkv, S, Dv] = [{k.shape[0]}, {k.shape[1]}, {k.shape[2]}, Dv <= {_MAX_HEAD_DIM}]",
            f"shape {tuple(v.shape)}")
    require(isinstance(causal, bool), func, "causal", "a bool", repr(causal))
    if scale is None:
        scale = D**-0.5
    require(isinstance(scale, numbers.Real) and not isinstance(scale, bool) and math.isfinite(scale), func,
            "scale", "None or a finite float", repr(scale))
    require(window is None or (isinstance(window, numbers.Integral) and not isinstance(window, bool) and window >= 1),
            func, "window", "None or an int >= 1", repr(window))
    require(isinstance(sinks, numbers.Integral) and not isinstance(sinks, bool) and sinks >= 0, func, "sinks",
            "an int >= 0", repr(sinks))
    if block_sizes is not None:
        ok = (len(block_sizes) == 2 and all(isinstance(x, int) and x >= 16 and x & (x - 1) == 0
                                            for x in block_sizes))
        require(ok, func, "block_sizes", "None or two powers of two >= 16", repr(block_sizes))
    require_kernel_device(q, func, "q")
    g = _Geometry(q, k, v, causal, float(scale), None if window is None else int(window),
                  int(sinks) if window is not None else 0, block_sizes)
    o, lse2 = _FlashAttention.apply(q, k, v, g)
    if return_lse:
        return o, lse2 * _LN2
    return o
