"""Transformer-VQ attention in linear time (Triton forward, straight-through backward), equal to dense softmax
attention over the quantised keys.

Public: :func:`vq_attention` (op ``vq_attention`` convention, plus ``block_size``).  Layout q, k [B, H, T, D],
v [B, H, T, Dv], codebook [H or 1, C, D] (per-head or shared) -> o [B, H, T, Dv] in q's dtype.

Semantics (:mod:`veriformer.reference.vq.attention`): ``z_j = argmin_s ||k_j - c_s||^2`` (first index on ties),
``k_hat_j = c_{z_j}``, ``o = softmax(scale q k_hat^T [+ causal mask]) v``; gradients straight-through
(``k_hat = sg(c_z) + (k - sg(k))``: dk = dk_hat, no gradient to the codebook).

Algorithm (Lingle 2023, arXiv 2309.16354), three Triton kernels forward (one more backward):

* **quantise** (``_vq_quantize``): one program per (BLOCK_T keys, batch*head); the code tiles are scanned with
  ``d_s = ||c_s||^2 - 2 k.c_s`` (a tensor-core dot; fp32 accumulation), keeping the best and the second-best
  distance.  Ties resolve to the first index.  A key whose gap (second - best) is within the rounding bound
  of that expansion, ``4 (D + 2) u (max||c||^2 + 2 ||k|| max||c||)``, is flagged and re-quantised in torch
  with the float64 difference form ``sum_d (k_d - c_sd)^2`` (the oracle's), so the codes equal the
  oracle's argmin except for float64-level near-ties, and exact ties go to the first index.
* **compressed cache** (``_vq_cache``): one program per (code tile, batch*head) walks the blocks of W keys in
  order and accumulates ``U = Delta^T V`` (per-code value sums, float32, as one-hot tile dots) and the
  counts ``u = Delta^T 1``; causal: it stores the *exclusive* prefix ``(U, u)_{t-1}`` of every block t
  (the cache of all earlier blocks), non-causal: the totals.
* **forward** (``_vq_fwd``): one program per (query tile of one block, batch*head).  Online softmax in base 2
  over (a) the cache: logits ``scale q.c_s`` for codes with count > 0 (unused codes are excluded from the
  maximum and weigh exactly 0), weights ``exp(l - m) * u_s``, numerator ``exp(l - m) U`` — the key lemma
  ``exp(q K_hat^T) = exp(q C^T) Delta^T`` — and, causal only, (b) the dense local part: the keys of the
  query's own block up to itself, ``k_hat`` gathered from the codebook by z inside the kernel.  One running
  maximum across both (the log-sum-exp merge), float32 accumulators, and the log-sum-exp stored for the
  backward.  Non-causal queries read the totals only (no local part).

Cost: quantise ``O(T C D)``, cache ``O(T C Dv)``, forward ``O(T (C + W) (D + Dv))`` — linear in T; memory
``O(T (C + D + Dv) + (T / W) C Dv)`` (the prefix caches, float32).

Backward (exact straight-through VJP, i.e. the VJP of softmax attention at k_hat, ``dk = dk_hat``; lse from
the forward, ``delta_i = dO_i . o_i``, ``P_ij = exp(s_ij - lse_i)``, ``dS = P (dO V^T - delta)``):

* dq (``_vq_bwd_dq``, linear in T, the forward's tiling): ``dq_i = scale [sum_s p_is (dO_i.U_s - delta_i u_s)
  c_s + sum_{j in block, j <= i} dS_ij k_hat_j]`` with ``p_is = exp(scale q_i.c_s - lse_i)`` and the same
  prefix caches (U, u) as the forward (kept from it).
* dk and dv: the dK/dV kernel of our flash attention (:mod:`veriformer.fast.attention.flash`, called, not
  copied) at k_hat with this forward's log-sum-exp — **quadratic in T**.  dv alone could be linear
  (suffix sums of ``p^T dO`` per code), but ``dk_j = scale sum_i P_ij (dO_i.v_j - delta_i) q_i`` sums
  ``(dO_i.v_j) q_i`` over every later query: its compressed form needs a [C, D, Dv] state per code
  (``O(T C D Dv)`` flops), more than the dense ``O(T^2 D)`` below T ~ 0.4 C Dv (26K at C=512, Dv=128).
  (The paper's training gradient, with the cache behind a stop-gradient, is a different, cheaper gradient.)
  So the backward costs 4 of the dense backward's 7 tile products (the dense dq kernel is replaced).

Precision: q.c and q.k_hat dots take the input dtype's operands (float32: IEEE, never TF32); local
probabilities are rounded to the input dtype for ``P V`` as in flash attention; the cache product
``p U`` uses TF32 operands for float16/bfloat16 inputs on the GPU (U sums many values and is kept in
float32) and IEEE float32 otherwise; under the interpreter the TF32 rounding is emulated (round to nearest,
10 mantissa bits).  float64 inputs (or no Triton / a CPU tensor beside a GPU) take a plain-torch block form
with the same algorithm (float64 or float32 arithmetic) and a dense torch backward.

Under the Triton CPU interpreter (no CUDA) the kernels run with ``EMULATE=True`` as in flash attention.

Sources: Lingle 2023 (Transformer-VQ, arXiv 2309.16354, theorem 3.7 and the block recurrence; official
``attn.py``); van den Oord et al. 2017 (straight-through estimator); Milakov & Gimelshein 2018 (online
softmax); Dao 2023 (FlashAttention-2, for the local part and the backward); Lingle 2023 (arXiv 2309.16354).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import torch

from veriformer.fast._triton.env import (
    HAVE_TRITON,
    KERNEL_DTYPES_F64,
    bounded_jit,
    interpreting,
    kernel_device_ok,
    launch,
    pow2,
    tl,
    triton,
)
from veriformer.reference._validate import require

__all__ = ["vq_attention", "vq_quantize"]

_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_MAX_HEAD_DIM = 256
_DTYPES = KERNEL_DTYPES_F64
_U32 = 2.0**-24


if HAVE_TRITON:
    from veriformer.fast._triton.online_softmax import online_softmax_step
    from veriformer.fast._triton.precision import to_operand as _operand
    from veriformer.fast._triton.precision import to_store as _to_store
    from veriformer.fast.attention.flash import _attn_bwd_dkdv as _flash_dkdv
    from veriformer.fast.attention.flash import _Geometry as _FlashGeometry

    @bounded_jit(free=["H", "T", "C"], units=["skd", "scbd", "scmh"])
    def _vq_quantize(K, CB, CN2, CMAX, Z, AMB,
                     skb, skh, skt, skd, scbh, scbc, scbd, scnh, scmh,
                     H, T, D, C, eps_scale,
                     BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
                     EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        pid_t = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
        offs_d = tl.arange(0, BLOCK_D)
        row_ok = offs_t < T
        k = tl.load(K + b * skb + h * skh + offs_t[:, None] * skt + offs_d[None, :] * skd,
                    mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0)
        if EMULATE:
            k = k.to(tl.float32)
        kf = k.to(tl.float32)
        knorm = tl.sqrt(tl.sum(kf * kf, 1))
        cmax = tl.load(CMAX + h * scmh)
        eps = eps_scale * (cmax * cmax + 2.0 * knorm * cmax)
        best = tl.full([BLOCK_T], float("inf"), tl.float32)
        second = tl.full([BLOCK_T], float("inf"), tl.float32)
        idx = tl.zeros([BLOCK_T], tl.int32)
        CBh = CB + h * scbh
        for c0 in range(0, C, BLOCK_C):
            offs_c = c0 + tl.arange(0, BLOCK_C)
            ct = tl.load(CBh + offs_c[None, :] * scbc + offs_d[:, None] * scbd,
                         mask=(offs_c[None, :] < C) & (offs_d[:, None] < D), other=0.0)
            if EMULATE:
                ct = ct.to(tl.float32)
            cn2 = tl.load(CN2 + h * scnh + offs_c, mask=offs_c < C, other=0.0)
            dots = tl.dot(k, ct, input_precision=DOT_PREC)
            d = cn2[None, :] - 2.0 * dots
            d = tl.where(offs_c[None, :] < C, d, float("inf"))
            tmin = tl.min(d, 1)
            targ = tl.argmin(d, 1, tie_break_left=True).to(tl.int32) + c0
            d2 = tl.where(offs_c[None, :] == targ[:, None], float("inf"), d)
            tsec = tl.min(d2, 1)
            better = tmin < best
            second = tl.where(better, tl.minimum(best, tsec), tl.minimum(second, tmin))
            idx = tl.where(better, targ, idx)
            best = tl.where(better, tmin, best)
        out = b * (H * T) + h * T + offs_t
        tl.store(Z + out, idx, mask=row_ok)
        tl.store(AMB + out, ((second - best) <= eps).to(tl.int8), mask=row_ok)

    @bounded_jit(free=["H", "T", "C", "W", "NB"], units=["svd", "sud"])
    def _vq_cache(Z, V, U, CNT,
                  svb, svh, svt, svd, sub, suh, sus, suc, sud, scb, sch, scs,
                  H, T, DV, C, W, NB,
                  CAUSAL: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_DV: tl.constexpr,
                  EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        DTYPE: tl.constexpr = V.dtype.element_ty
        pid_c = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        offs_dv = tl.arange(0, BLOCK_DV)
        c_ok = offs_c < C
        Zb = Z + b * (H * T) + h * T
        Vb = V + b * svb + h * svh
        Ub = U + b * sub + h * suh
        Cb = CNT + b * scb + h * sch
        acc = tl.zeros([BLOCK_C, BLOCK_DV], tl.float32)
        cnt = tl.zeros([BLOCK_C], tl.float32)
        for t in range(0, NB):
            if CAUSAL:  # exclusive prefix: the cache of all blocks before t
                tl.store(Ub + t * sus + offs_c[:, None] * suc + offs_dv[None, :] * sud, acc,
                         mask=c_ok[:, None] & (offs_dv[None, :] < DV))
                tl.store(Cb + t * scs + offs_c, cnt, mask=c_ok)
            k_lo = t * W
            k_hi = tl.minimum(k_lo + W, T)
            for n0 in range(k_lo, k_hi, BLOCK_N):
                offs_n = n0 + tl.arange(0, BLOCK_N)
                n_ok = offs_n < k_hi
                z = tl.load(Zb + offs_n, mask=n_ok, other=-1)
                hit = (z[None, :] == offs_c[:, None]) & n_ok[None, :]
                v = tl.load(Vb + offs_n[:, None] * svt + offs_dv[None, :] * svd,
                            mask=n_ok[:, None] & (offs_dv[None, :] < DV), other=0.0)
                if EMULATE:
                    v = v.to(tl.float32)
                    onehot = hit.to(tl.float32)
                else:
                    onehot = hit.to(DTYPE)
                acc += tl.dot(onehot, v, input_precision=DOT_PREC)
                cnt += tl.sum(hit.to(tl.float32), 1)
        if not CAUSAL:
            tl.store(Ub + offs_c[:, None] * suc + offs_dv[None, :] * sud, acc,
                     mask=c_ok[:, None] & (offs_dv[None, :] < DV))
            tl.store(Cb + offs_c, cnt, mask=c_ok)

    @bounded_jit(free=["H", "T", "C", "W", "TPB"], units=["sqd", "scbd", "svd", "sud", "sod"])
    def _vq_fwd(Q, Z, CB, V, U, CNT, O, LSE,
                sqb, sqh, sqt, sqd, scbh, scbc, scbd, svb, svh, svt, svd,
                sub, suh, sus, suc, sud, scb, sch, scs, sob, soh, sot, sod,
                H, T, D, DV, C, W, TPB, qk_scale,
                CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
                BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr,
                CACHE_TF32: tl.constexpr):
        DTYPE: tl.constexpr = Q.dtype.element_ty
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        if CAUSAL:
            blk = pid_m // TPB
            row0 = blk * W + (pid_m % TPB) * BLOCK_M
            row_end = tl.minimum(blk * W + W, T)
            n_codes = C
            if blk == 0:  # block 0 has an empty cache
                n_codes = 0
            slot = blk
        else:
            blk = 0
            row0 = pid_m * BLOCK_M
            row_end = T
            n_codes = C
            slot = 0
        offs_m = row0 + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        row_ok = offs_m < row_end
        q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                    mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0)
        if EMULATE:  # the interpreter holds bf16 as raw bits: upcast at once (exact)
            q = q.to(tl.float32)
        CBh = CB + h * scbh
        Ub = U + b * sub + h * suh + slot * sus
        Cb = CNT + b * scb + h * sch + slot * scs
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)  # sum of the probabilities (log-sum-exp for the backward)
        lt_i = tl.zeros([BLOCK_M], tl.float32)  # the same with the local probabilities as rounded for P V
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        # (a) compressed cache: exp(q C^T) (Delta^T V) and exp(q C^T) (Delta^T 1), codes in use only
        for c0 in range(0, n_codes, BLOCK_C):
            offs_c = c0 + tl.arange(0, BLOCK_C)
            c_ok = offs_c < C
            cnt = tl.load(Cb + offs_c, mask=c_ok, other=0.0)
            ct = tl.load(CBh + offs_c[None, :] * scbc + offs_d[:, None] * scbd,
                         mask=c_ok[None, :] & (offs_d[:, None] < D), other=0.0)
            if EMULATE:
                ct = ct.to(tl.float32)
            s = tl.dot(q, ct, input_precision=DOT_PREC) * qk_scale
            s = tl.where(cnt[None, :] > 0.0, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.math.exp2(s - m_use[:, None])
            alpha = tl.math.exp2(m_i - m_use)
            w = tl.sum(p * cnt[None, :], 1)
            l_i = l_i * alpha + w
            lt_i = lt_i * alpha + w
            u = tl.load(Ub + offs_c[:, None] * suc + offs_dv[None, :] * sud,
                        mask=c_ok[:, None] & (offs_dv[None, :] < DV), other=0.0)
            if CACHE_TF32:
                if EMULATE:  # TF32 operands, rounded to nearest (10 mantissa bits)
                    pb = p.to(tl.uint32, bitcast=True)
                    p = ((pb + 0xFFF + ((pb >> 13) & 1)) & 0xFFFFE000).to(tl.float32, bitcast=True)
                    ub = u.to(tl.uint32, bitcast=True)
                    u = ((ub + 0xFFF + ((ub >> 13) & 1)) & 0xFFFFE000).to(tl.float32, bitcast=True)
                    acc = acc * alpha[:, None] + tl.dot(p, u, input_precision="ieee")
                else:
                    acc = acc * alpha[:, None] + tl.dot(p, u, input_precision="tf32")
            else:
                acc = acc * alpha[:, None] + tl.dot(p, u, input_precision="ieee")
            m_i = m_new
        # (b) causal: the dense part over the query's own block, keys [blk W, i], k_hat_j = c_{z_j} gathered
        if CAUSAL:
            k_lo = blk * W
            k_hi = tl.minimum(row0 + BLOCK_M, row_end)
            Zb = Z + b * (H * T) + h * T
            Vb = V + b * svb + h * svh
            for start_n in range(k_lo, k_hi, BLOCK_N):
                offs_n = start_n + tl.arange(0, BLOCK_N)
                n_ok = offs_n < k_hi
                zk = tl.load(Zb + offs_n, mask=n_ok, other=0).to(tl.int64)
                kt = tl.load(CBh + zk[None, :] * scbc + offs_d[:, None] * scbd,
                             mask=n_ok[None, :] & (offs_d[:, None] < D), other=0.0)
                v = tl.load(Vb + offs_n[:, None] * svt + offs_dv[None, :] * svd,
                            mask=n_ok[:, None] & (offs_dv[None, :] < DV), other=0.0)
                if EMULATE:
                    kt = kt.to(tl.float32)
                    v = v.to(tl.float32)
                s = tl.dot(q, kt, input_precision=DOT_PREC) * qk_scale
                s = tl.where((offs_n[None, :] <= offs_m[:, None]) & n_ok[None, :], s, float("-inf"))
                # P rounded to the input dtype for the P V product (as the tensor cores consume it)
                m_new, alpha, pr, l_i, lt_i = online_softmax_step(s, m_i, l_i, lt_i, DTYPE, EMULATE)
                acc = acc * alpha[:, None] + tl.dot(pr, v, input_precision=DOT_PREC)
                m_i = m_new
        o = acc / tl.where(lt_i > 0.0, lt_i, 1.0)[:, None]
        tl.store(O + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod, _to_store(o, DTYPE, EMULATE),
                 mask=row_ok[:, None] & (offs_dv[None, :] < DV))
        lse = tl.where(l_i > 0.0, m_i + tl.math.log2(tl.where(l_i > 0.0, l_i, 1.0)), float("-inf"))
        tl.store(LSE + pid_bh.to(tl.int64) * T + offs_m, lse, mask=row_ok)

    @bounded_jit(free=["H", "T", "C", "W", "TPB"], units=["sqd", "scbd", "svd", "sud", "sdd", "s_dqd"])
    def _vq_bwd_dq(Q, Z, CB, V, U, CNT, DO, LSE, DELTA, DQ,
                   sqb, sqh, sqt, sqd, scbh, scbc, scbd, svb, svh, svt, svd,
                   sub, suh, sus, suc, sud, scb, sch, scs, sdb, sdh, sdt, sdd, s_dqb, s_dqh, s_dqt, s_dqd,
                   H, T, D, DV, C, W, TPB, qk_scale, sm_scale,
                   CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
                   BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr,
                   CACHE_TF32: tl.constexpr):
        """dq_i = scale [sum_s p_is (dO_i.U_s - delta_i u_s) c_s + sum_{j in block, j <= i} P_ij (dO_i.v_j -
        delta_i) k_hat_j] with p = exp2(s - lse): the forward's tiling, linear in T."""
        DTYPE: tl.constexpr = Q.dtype.element_ty
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        if CAUSAL:
            blk = pid_m // TPB
            row0 = blk * W + (pid_m % TPB) * BLOCK_M
            row_end = tl.minimum(blk * W + W, T)
            n_codes = C
            if blk == 0:
                n_codes = 0
            slot = blk
        else:
            blk = 0
            row0 = pid_m * BLOCK_M
            row_end = T
            n_codes = C
            slot = 0
        offs_m = row0 + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        row_ok = offs_m < row_end
        q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                    mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0)
        do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdt + offs_dv[None, :] * sdd,
                     mask=row_ok[:, None] & (offs_dv[None, :] < DV), other=0.0)
        if EMULATE:
            q = q.to(tl.float32)
            do = do.to(tl.float32)
        lse = tl.load(LSE + pid_bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
        delta = tl.load(DELTA + pid_bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
        CBh = CB + h * scbh
        Ub = U + b * sub + h * suh + slot * sus
        Cb = CNT + b * scb + h * sch + slot * scs
        dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
        dof = do.to(tl.float32)
        for c0 in range(0, n_codes, BLOCK_C):
            offs_c = c0 + tl.arange(0, BLOCK_C)
            c_ok = offs_c < C
            cnt = tl.load(Cb + offs_c, mask=c_ok, other=0.0)
            ct = tl.load(CBh + offs_c[None, :] * scbc + offs_d[:, None] * scbd,
                         mask=c_ok[None, :] & (offs_d[:, None] < D), other=0.0)
            if EMULATE:
                ct = ct.to(tl.float32)
            s = tl.dot(q, ct, input_precision=DOT_PREC) * qk_scale
            s = tl.where(cnt[None, :] > 0.0, s, float("-inf"))
            p = tl.math.exp2(s - lse[:, None])
            ut = tl.load(Ub + offs_c[None, :] * suc + offs_dv[:, None] * sud,
                         mask=c_ok[None, :] & (offs_dv[:, None] < DV), other=0.0)  # U^T [DV, C]
            if CACHE_TF32:
                if EMULATE:
                    db = dof.to(tl.uint32, bitcast=True)
                    d32 = ((db + 0xFFF + ((db >> 13) & 1)) & 0xFFFFE000).to(tl.float32, bitcast=True)
                    ub = ut.to(tl.uint32, bitcast=True)
                    ut = ((ub + 0xFFF + ((ub >> 13) & 1)) & 0xFFFFE000).to(tl.float32, bitcast=True)
                    dpu = tl.dot(d32, ut, input_precision="ieee")
                else:
                    dpu = tl.dot(dof, ut, input_precision="tf32")
            else:
                dpu = tl.dot(dof, ut, input_precision="ieee")
            ds = p * (dpu - delta[:, None] * cnt[None, :])
            dq += tl.dot(_operand(ds, DTYPE, EMULATE), tl.trans(ct), input_precision=DOT_PREC)
        if CAUSAL:
            k_lo = blk * W
            k_hi = tl.minimum(row0 + BLOCK_M, row_end)
            Zb = Z + b * (H * T) + h * T
            Vb = V + b * svb + h * svh
            for start_n in range(k_lo, k_hi, BLOCK_N):
                offs_n = start_n + tl.arange(0, BLOCK_N)
                n_ok = offs_n < k_hi
                zk = tl.load(Zb + offs_n, mask=n_ok, other=0).to(tl.int64)
                kt = tl.load(CBh + zk[None, :] * scbc + offs_d[:, None] * scbd,
                             mask=n_ok[None, :] & (offs_d[:, None] < D), other=0.0)
                vt = tl.load(Vb + offs_n[None, :] * svt + offs_dv[:, None] * svd,
                             mask=n_ok[None, :] & (offs_dv[:, None] < DV), other=0.0)
                if EMULATE:
                    kt = kt.to(tl.float32)
                    vt = vt.to(tl.float32)
                s = tl.dot(q, kt, input_precision=DOT_PREC) * qk_scale
                s = tl.where((offs_n[None, :] <= offs_m[:, None]) & n_ok[None, :], s, float("-inf"))
                p = tl.math.exp2(s - lse[:, None])
                dp = tl.dot(do, vt, input_precision=DOT_PREC)
                ds = p * (dp - delta[:, None])
                dq += tl.dot(_operand(ds, DTYPE, EMULATE), tl.trans(kt), input_precision=DOT_PREC)
        dq = dq * sm_scale
        tl.store(DQ + b * s_dqb + h * s_dqh + offs_m[:, None] * s_dqt + offs_d[None, :] * s_dqd,
                 _to_store(dq, DTYPE, EMULATE),
                 mask=row_ok[:, None] & (offs_d[None, :] < D))


_pow2 = functools.partial(pow2, lo=16)  # tile sizes: at least 16


def _strides(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.stride())


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------- quantisation


def _quantize_f64(k: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
    """argmin_s sum_d (k_d - c_sd)^2 in float64 (the oracle's difference form), first index on ties.
    k [N, D] float, cb [N, C, D] or [C, D] -> z [N] int64, chunked so the difference tensor stays small."""
    out = []
    C, D = cb.shape[-2], cb.shape[-1]
    step = max(1, (1 << 22) // max(1, C * D))
    for i in range(0, k.shape[0], step):
        kk = k[i:i + step].double()[:, None, :]
        cc = cb[i:i + step].double() if cb.dim() == 3 else cb.double()[None]
        out.append(((kk - cc) ** 2).sum(-1).argmin(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=k.device)


def _quantize_torch(k: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
    """z [B, H, T] int64 by the float64 difference form (k [B, H, T, D], cb [Hc, C, D])."""
    B, H, T, D = k.shape
    cbh = cb.expand(H, *cb.shape[1:])
    kf = k.reshape(B * H * T, D)
    cbr = cbh[None, :, None].expand(B, H, T, *cb.shape[1:]).reshape(B * H * T, *cb.shape[1:])
    return _quantize_f64(kf, cbr).reshape(B, H, T)


def _quantize_triton(k: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
    """z [B, H, T] int64: Triton expansion-form argmin, near-ties refined in float64 (module docstring)."""
    B, H, T, D = k.shape
    Hc, C, _ = cb.shape
    cbf = cb.float()
    cn2 = (cbf * cbf).sum(-1).contiguous()  # [Hc, C]
    cmax = cn2.max(-1).values.sqrt().contiguous()  # [Hc]
    z = torch.empty((B, H, T), dtype=torch.int32, device=k.device)
    amb = torch.empty((B, H, T), dtype=torch.int8, device=k.device)
    emulate = interpreting()
    bd = _pow2(D)
    block_t = min(64, _pow2(T)) if emulate else 64
    block_c = min(64, _pow2(C)) if emulate else (64 if bd <= 128 else 32)
    warps, stages = 4, 1 if emulate else 2
    if k.dtype == torch.float32 and not emulate:
        cfg = _f32_config("quantize", bd)
        block_t, block_c, warps, stages = cfg["BLOCK_T"], cfg["BLOCK_C"], cfg["num_warps"], cfg["num_stages"]
    dot_prec = "ieee" if (k.dtype == torch.float32 or emulate) else "tf32"
    eps_scale = 4.0 * (D + 2) * _U32
    sh = 0 if Hc == 1 else 1
    launch(_vq_quantize, (triton.cdiv(T, block_t), B * H), k, cb, cn2, cmax, z, amb,
           *_strides(k), cb.stride(0) * sh, cb.stride(1), cb.stride(2), cn2.stride(0) * sh, cmax.stride(0) * sh,
           H, T, D, C, eps_scale, BLOCK_T=block_t, BLOCK_C=block_c, BLOCK_D=bd, EMULATE=emulate,
           DOT_PREC=dot_prec, num_warps=warps, num_stages=stages)
    z = z.long()
    flat = amb.reshape(-1).nonzero().squeeze(-1)
    if flat.numel():
        hh = (flat // T) % H
        cbh = cb[hh * sh]  # [N, C, D]
        z.view(-1)[flat] = _quantize_f64(k.reshape(-1, D)[flat], cbh)
    return z


def vq_quantize(k: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest code per key: ``z_j = argmin_s ||k_j - c_s||^2`` (first index on ties) and ``k_hat = C[z]``
    (bitwise codebook rows, no gradient).  k [B, H, T, D], codebook [H or 1, C, D] (k's dtype and device)
    -> (z int64 [B, H, T], k_hat [B, H, T, D]).  Triton kernel with float64 refinement of near-ties
    (module docstring); plain float64 torch for float64 inputs or without Triton.
    Source: Lingle 2023 (arXiv 2309.16354) section 3 (quantisation)."""
    _validate_kc("vq_quantize", k, codebook)
    z = _quantize(k.detach(), codebook.detach())
    return z, _gather(codebook.detach(), z)


def _use_triton(x: torch.Tensor) -> bool:
    if not HAVE_TRITON or x.dtype == torch.float64:
        return False
    return kernel_device_ok(x)


def _quantize(k: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
    return _quantize_triton(k, cb) if _use_triton(k) else _quantize_torch(k, cb)


def _gather(cb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """k_hat [B, H, T, D] = cb[h or 0, z]."""
    H = z.shape[1]
    cbh = cb.expand(H, *cb.shape[1:])
    return cbh[torch.arange(H, device=z.device)[None, :, None], z]


# ------------------------------------------------------------------------------------------ forward


def _f32_config(kind: str, bd: int) -> dict[str, int]:
    """Launch configuration of kernel ``kind`` ("quantize", "cache", "fwd", "dq") for float32 inputs on the GPU at
    head-dim tile ``bd`` (quantize: D's, cache: Dv's, fwd and dq: the larger).  IEEE float32 products are FMA
    loops whose operands live in registers, so the 16-bit tiles spill; these compile without a spill at
    D = Dv = 16, 32, 64, 128, 256 (sm_90, Triton 3.9 ptxas, static; T = 4096, C = 512, W = 256, causal and not)."""
    if kind == "quantize":
        # 32 x 32 (16 x 16 at D = 256, 2 stages); 8 warps (16 at D = 128): 166 / 44 / 42 registers at D = 64 / 128 /
        # 256.  The 64 x 64 tiles at 4 warps, 2 stages used before spilled 9.2 KB per thread at D = 128
        if bd > 128:
            return {"BLOCK_T": 16, "BLOCK_C": 16, "num_warps": 8, "num_stages": 2}
        return {"BLOCK_T": 32, "BLOCK_C": 32, "num_warps": 16 if bd > 64 else 8, "num_stages": 1}
    if kind == "cache":
        # 64 codes x 32 keys, 1 stage, 4 warps (8 at Dv = 256): 162 / 241 / 226 registers at Dv = 64 / 128 / 256;
        # the 64 x 64 tiles at 2 stages used before spilled 304 B per thread at Dv = 128
        return {"BLOCK_C": 64, "BLOCK_N": 32, "num_warps": 4 if bd <= 128 else 8, "num_stages": 1}
    if kind == "fwd":
        # 32 x 32 tiles (queries, keys, codes) at 16 warps (8 at D <= 32: 16 spilled 4 B at D = 16), 1 stage: 48 /
        # 64 / 74 registers at D = 64 / 128 / 256; the 64 x 64 x 64 tiles at 8 warps, 2 stages used before spilled
        # 27 KB per thread at D = 128
        return {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_C": 32, "num_warps": 16 if bd > 32 else 8, "num_stages": 1}
    # dq: 16 x 16 x 16 tiles at 8 warps (2 stages at D = 256): 132 / 170 / 80 registers at D = 64 / 128 / 256; the
    # 64 x 64 x 64 tiles at 8 warps, 2 stages used before spilled 36 KB per thread at D = 128 (32-query tiles
    # spilled at every head dim)
    return {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_C": 16, "num_warps": 8, "num_stages": 1 if bd <= 128 else 2}


class _Tiles:
    """Launch constants shared by the forward and the dq kernel (one query tile = BLOCK_M rows of one block)."""

    def __init__(self, q: torch.Tensor, cb: torch.Tensor, v: torch.Tensor, causal: bool, W: int,
                 max_bm: int = 128, kind: str = "fwd") -> None:
        B, H, T, D = q.shape
        C, DV = cb.shape[1], v.shape[3]
        self.emulate = emulate = interpreting()
        self.bd, self.bdv = bd, bdv = _pow2(D), _pow2(DV)
        self.nb = triton.cdiv(T, W) if causal else 1
        self.dot_prec = "ieee" if (q.dtype == torch.float32 or emulate) else "tf32"
        big = max(bd, bdv) > 128
        if emulate:
            bm = min(64, _pow2(min(W, T) if causal else T))
            bn = min(bm, _pow2(min(W, T))) if causal else 16
            bc = min(64, _pow2(C))
            self.warps, self.stages = 4, 1
            self.bc_cache, self.bn_cache = min(64, _pow2(C)), min(64, _pow2(min(W, T)))
            self.cache_warps, self.cache_stages = 4, 1
        elif q.dtype == torch.float32:
            cfg, cc = _f32_config(kind, max(bd, bdv)), _f32_config("cache", bdv)
            bm, bn, bc = cfg["BLOCK_M"], cfg["BLOCK_N"], cfg["BLOCK_C"]
            self.warps, self.stages = cfg["num_warps"], cfg["num_stages"]
            self.bc_cache, self.bn_cache = cc["BLOCK_C"], cc["BLOCK_N"]
            self.cache_warps, self.cache_stages = cc["num_warps"], cc["num_stages"]
        else:
            bm = 64 if big else max_bm
            bn, bc = (32 if big else 64), (32 if big else 64)
            self.warps, self.stages = (4 if max(bd, bdv) <= 64 else 8), 2
            self.bc_cache, self.bn_cache = (32 if big else 64), 64
            # 8 warps above Dv = 64: at 4 the 64 x 64 x 128 cache tile took 254-255 registers and spilled 12 bytes a
            # thread under the GPU image's Triton 3.6 (182 / 230 registers, no spill at 8; sm_90 static)
            self.cache_warps, self.cache_stages = (8 if bdv > 64 else 4), 2
        if causal:
            bm = min(bm, _pow2(W))  # tiles of bm rows inside each block; the block's last tile may be partial
            bn = min(bn, bm)
            self.tpb = triton.cdiv(W, bm)
            self.grid = (self.nb * self.tpb, B * H)
        else:
            self.tpb = 1
            self.grid = (triton.cdiv(T, bm), B * H)
        self.bm, self.bn, self.bc = bm, bn, bc
        self.sh = 0 if cb.shape[0] == 1 else 1

    def consts(self, causal: bool, dtype: torch.dtype) -> dict[str, Any]:
        return {"CAUSAL": causal, "BLOCK_M": self.bm, "BLOCK_N": self.bn, "BLOCK_C": self.bc, "BLOCK_D": self.bd,
                "BLOCK_DV": self.bdv, "EMULATE": self.emulate, "DOT_PREC": self.dot_prec,
                "CACHE_TF32": dtype != torch.float32, "num_warps": self.warps, "num_stages": self.stages}


def _forward_triton(q: torch.Tensor, z: torch.Tensor, cb: torch.Tensor, v: torch.Tensor, causal: bool,
                    scale: float, W: int) -> tuple[torch.Tensor, ...]:
    """(o, lse2, z32, U, cnt): o [B, H, T, Dv] in q's dtype, lse2 [B, H, T] float32 log2-sum-exp2 of
    ``scale log2e q.k_hat`` (the flash-attention backward's format), the codes as int32 and the caches
    (float32 [B, H, slots, C, Dv] and [B, H, slots, C]) for the backward."""
    B, H, T, D = q.shape
    C, DV = cb.shape[1], v.shape[3]
    tl_ = _Tiles(q, cb, v, causal, W)
    z32 = z.to(torch.int32).contiguous()
    U = torch.empty((B, H, tl_.nb, C, DV), dtype=torch.float32, device=q.device)
    cnt = torch.empty((B, H, tl_.nb, C), dtype=torch.float32, device=q.device)
    launch(_vq_cache, (triton.cdiv(C, tl_.bc_cache), B * H), z32, v, U, cnt, *_strides(v), *_strides(U),
           *_strides(cnt)[:3], H, T, DV, C, W if causal else T, tl_.nb, CAUSAL=causal, BLOCK_C=tl_.bc_cache,
           BLOCK_N=tl_.bn_cache, BLOCK_DV=tl_.bdv, EMULATE=tl_.emulate, DOT_PREC=tl_.dot_prec,
           num_warps=tl_.cache_warps, num_stages=tl_.cache_stages)
    o = torch.empty((B, H, T, DV), dtype=q.dtype, device=q.device)
    lse2 = torch.empty((B, H, T), dtype=torch.float32, device=q.device)
    launch(_vq_fwd, tl_.grid, q, z32, cb, v, U, cnt, o, lse2, *_strides(q), cb.stride(0) * tl_.sh, cb.stride(1),
           cb.stride(2), *_strides(v), *_strides(U), *_strides(cnt)[:3], *_strides(o), H, T, D, DV, C, W, tl_.tpb,
           scale * _LOG2E, **tl_.consts(causal, q.dtype))
    return o, lse2, z32, U, cnt


def _backward_triton(do: torch.Tensor, q: torch.Tensor, z32: torch.Tensor, cb: torch.Tensor, v: torch.Tensor,
                     o: torch.Tensor, lse2: torch.Tensor, U: torch.Tensor, cnt: torch.Tensor, causal: bool,
                     scale: float, W: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Straight-through VJP: dk (= dk_hat) and dv from the flash-attention dK/dV kernel at k_hat (quadratic),
    dq from :func:`_vq_bwd_dq` through the compressed cache (linear)."""
    B, H, T, D = q.shape
    C, DV = cb.shape[1], v.shape[3]
    k_hat = _gather(cb, z32.long())
    delta = (do.float() * o.float()).sum(-1).contiguous()  # [B, H, T]
    g = _FlashGeometry(q, k_hat, v, causal, scale, None, 0, None, kernel="vq_attention")
    dk = torch.empty_like(k_hat, memory_format=torch.contiguous_format)
    dv = torch.empty_like(v, memory_format=torch.contiguous_format)
    cfg = g.config("bwd", q.dtype)
    launch(_flash_dkdv, (triton.cdiv(T, cfg["BLOCK_N"]), B * H),
           q, k_hat, v, do, lse2, delta, dk, dv, *_strides(q), *_strides(k_hat), *_strides(v), *_strides(do),
           *_strides(dk), *_strides(dv), H, H, 1, T, T, D, DV, scale * _LOG2E, scale, 0, 0, **g.flags(), **cfg)
    dq = torch.empty_like(q, memory_format=torch.contiguous_format)
    tl_ = _Tiles(q, cb, v, causal, W, max_bm=64, kind="dq")  # dq tile + q + dO in registers: smaller query tiles
    launch(_vq_bwd_dq, tl_.grid, q, z32, cb, v, U, cnt, do, lse2, delta, dq, *_strides(q), cb.stride(0) * tl_.sh,
           cb.stride(1), cb.stride(2), *_strides(v), *_strides(U), *_strides(cnt)[:3], *_strides(do), *_strides(dq),
           H, T, D, DV, C, W, tl_.tpb, scale * _LOG2E, scale, **tl_.consts(causal, q.dtype))
    return dq, dk, dv


def _forward_torch(q: torch.Tensor, z: torch.Tensor, cb: torch.Tensor, v: torch.Tensor, causal: bool,
                   scale: float, W: int) -> torch.Tensor:
    """The same block form in plain torch (float64 for float64 inputs, float32 otherwise), rounded once."""
    B, H, T, D = q.shape
    C, DV = cb.shape[1], v.shape[3]
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    qf, vf = q.to(acc), v.to(acc)
    cbh = cb.to(acc).expand(H, C, D)
    logits = torch.einsum("bhtd,hcd->bhtc", qf, cbh) * scale  # [B, H, T, C]
    onehot = torch.nn.functional.one_hot(z, C).to(acc)  # [B, H, T, C]
    if not causal:
        U = onehot.transpose(-1, -2) @ vf  # [B, H, C, DV]
        u = onehot.sum(2)[:, :, None, :]  # [B, H, 1, C]
        lc = logits.masked_fill(u == 0, float("-inf"))
        m = lc.amax(-1, keepdim=True)
        p = torch.exp(lc - m)
        return ((p @ U) / (p * u).sum(-1, keepdim=True)).to(q.dtype)
    nb = -(-T // W)
    pad = nb * W - T
    padded = [torch.nn.functional.pad(x, (0, 0, 0, pad)) for x in (qf, vf, onehot, logits)]
    qb, vb, ob, lb = (x.reshape(B, H, nb, W, x.shape[-1]) for x in padded)
    kb = torch.nn.functional.pad(_gather(cb.to(acc), z), (0, 0, 0, pad)).reshape(B, H, nb, W, D)
    Ub = ob.transpose(-1, -2) @ vb  # [B, H, nb, C, DV] per-block sums
    ub = ob.sum(3)  # [B, H, nb, C]
    U = torch.cumsum(Ub, 2) - Ub  # exclusive prefix: all earlier blocks
    u = (torch.cumsum(ub, 2) - ub)[:, :, :, None, :]  # [B, H, nb, 1, C]
    s = (qb @ kb.transpose(-1, -2)) * scale  # [B, H, nb, W, W]
    vis = torch.ones(W, W, dtype=torch.bool, device=q.device).tril()
    s = s.masked_fill(~vis, float("-inf"))
    lc = lb.masked_fill(u == 0, float("-inf"))
    m = torch.maximum(s.amax(-1, keepdim=True), lc.amax(-1, keepdim=True))
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    ps, pc = torch.exp(s - m), torch.exp(lc - m)
    num = ps @ vb + pc @ U
    den = ps.sum(-1, keepdim=True) + (pc * u).sum(-1, keepdim=True)
    den = torch.where(den > 0, den, torch.ones_like(den))
    o = (num / den).reshape(B, H, nb * W, DV)[:, :, :T]
    return o.to(q.dtype)


def _dense_vjp_torch(q: torch.Tensor, k_hat: torch.Tensor, v: torch.Tensor, do: torch.Tensor, causal: bool,
                     scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax attention's VJP at k_hat by autograd of the dense form (float64 or float32; O(T^2) memory)."""
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    with torch.enable_grad():
        qq, kk, vv = (x.detach().to(acc).requires_grad_(True) for x in (q, k_hat, v))
        s = (qq @ kk.transpose(-1, -2)) * scale
        if causal:
            T = q.shape[2]
            s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=q.device).tril(), float("-inf"))
        o = torch.softmax(s, -1) @ vv
        dq, dk, dv = torch.autograd.grad(o, (qq, kk, vv), do.to(acc))
    return dq.to(q.dtype), dk.to(k_hat.dtype), dv.to(v.dtype)


class _VQAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cb: torch.Tensor, causal: bool,
                scale: float, W: int) -> torch.Tensor:
        z = _quantize(k, cb)
        tri = _use_triton(q)
        ctx.tri, ctx.causal, ctx.scale, ctx.W = tri, causal, scale, W
        if tri:
            o, lse2, z32, U, cnt = _forward_triton(q, z, cb, v, causal, scale, W)
            ctx.save_for_backward(q, z32, cb, v, o, lse2, U, cnt)
        else:
            o = _forward_torch(q, z, cb, v, causal, scale, W)
            ctx.save_for_backward(q, z, cb, v)
        return o

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor) -> tuple[Any, ...]:
        if ctx.tri:
            q, z32, cb, v, o, lse2, U, cnt = ctx.saved_tensors
            dq, dk, dv = _backward_triton(do.contiguous(), q, z32, cb, v, o, lse2, U, cnt, ctx.causal, ctx.scale,
                                          ctx.W)
        else:
            q, z, cb, v = ctx.saved_tensors
            dq, dk, dv = _dense_vjp_torch(q, _gather(cb, z), v, do, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None, None, None


# ------------------------------------------------------------------------------------------ validation


def _validate_kc(func: str, k: Any, codebook: Any) -> None:
    for name, t in (("k", k), ("codebook", codebook)):
        require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
    require(k.dim() == 4, func, "k", "a rank-4 tensor [B, H, T, D]", f"shape {tuple(k.shape)}")
    require(k.dtype in _DTYPES, func, "k", "float16, bfloat16, float32 or float64", f"dtype {k.dtype}")
    require(k.shape[2] >= 1 and k.shape[3] >= 1, func, "k", "non-empty (T >= 1, D >= 1)", f"shape {tuple(k.shape)}")
    H, D = k.shape[1], k.shape[3]
    require(codebook.dim() == 3 and codebook.shape[0] in (1, H) and codebook.shape[1] >= 1
            and codebook.shape[2] == D, func, "codebook", f"of shape [H or 1, C >= 1, D] = [{H}|1, C, {D}]",
            f"shape {tuple(codebook.shape)}")
    require(codebook.dtype == k.dtype, func, "codebook", f"of k's dtype {k.dtype}", f"dtype {codebook.dtype}")
    require(codebook.device == k.device, func, "codebook", f"on k's device {k.device}", f"device {codebook.device}")


def vq_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, codebook: torch.Tensor, *, causal: bool = False,
                 scale: float | None = None, block_size: int = 256) -> torch.Tensor:
    """Transformer-VQ attention in linear time: ``o = softmax(scale q k_hat^T [+ causal mask]) v`` with
    ``k_hat_j = c_{z_j}``, ``z_j = argmin_s ||k_j - c_s||^2`` (first index on ties), computed as
    (key lemma ``exp(Q K_hat^T) = exp(Q C^T) Delta^T``)

    * non-causal: ``o = [w (Delta^T V)] / [w (Delta^T 1)]``, ``w = exp(scale q C^T - m)`` over codes in use;
    * causal, blocks of ``block_size`` = W queries: query i of block t attends densely (masked) to the keys
      ``[t W, i]`` and through the compressed cache ``(U, u)_{t-1}`` (per-code value sums and counts of all
      earlier blocks) to the rest, both with one shared maximum.

    q, k [B, H, T, D], v [B, H, T, Dv], codebook [H or 1, C, D] (one codebook per head, or shared), all of
    one dtype (float16, bfloat16, float32; float64 takes the torch path) and device -> o [B, H, T, Dv] in
    q's dtype.  ``scale`` defaults to ``D**-0.5``.  Differentiable in q, k, v with straight-through keys
    (``dk = dk_hat``, exactly the VJP of dense softmax attention at k_hat); no gradient to the codebook.
    Head dims 1..256.  Cost and precision: module docstring (the forward and dq are linear in T; dk, dv
    come from the flash-attention dK/dV kernel at k_hat, quadratic).
    Source: Lingle 2023 (Transformer-VQ, arXiv 2309.16354); oracle
    :func:`veriformer.reference.vq.attention`.
    """
    func = "vq_attention"
    for name, t in (("q", q), ("k", k), ("v", v), ("codebook", codebook)):
        require(isinstance(t, torch.Tensor), func, name, "a torch.Tensor", type(t).__name__)
    require(q.dim() == 4, func, "q", "a rank-4 tensor [B, H, T, D]", f"shape {tuple(q.shape)}")
    require(q.dtype in _DTYPES, func, "q", "float16, bfloat16, float32 or float64", f"dtype {q.dtype}")
    B, H, T, D = q.shape
    require(T >= 1 and 1 <= D <= _MAX_HEAD_DIM, func, "q", f"non-empty with head dim D <= {_MAX_HEAD_DIM}",
            f"shape {tuple(q.shape)}")
    require(k.dim() == 4 and tuple(k.shape) == (B, H, T, D), func, "k", f"of q's shape [B, H, T, D] = "
            f"{[B, H, T, D]}", f"shape {tuple(k.shape)}")
    require(v.dim() == 4 and tuple(v.shape[:3]) == (B, H, T) and 1 <= v.shape[3] <= _MAX_HEAD_DIM, func, "v",
            f"of shape [B, H, T, Dv] = [{B}, {H}, {T}, Dv <= {_MAX_HEAD_DIM}]", f"shape {tuple(v.shape)}")
    for name, t in (("k", k), ("v", v), ("codebook", codebook)):
        require(t.dtype == q.dtype, func, name, f"of q's dtype {q.dtype}", f"dtype {t.dtype}")
        require(t.device == q.device, func, name, f"on q's device {q.device}", f"device {t.device}")
    _validate_kc(func, k, codebook)
    require(isinstance(causal, bool), func, "causal", "a bool", repr(causal))
    if scale is None:
        scale = D**-0.5
    require(isinstance(scale, numbers.Real) and not isinstance(scale, bool) and math.isfinite(scale), func,
            "scale", "None or a finite float", repr(scale))
    require(_is_int(block_size) and block_size >= 1, func, "block_size", "an int >= 1", repr(block_size))
    cb = codebook.detach()
    return _VQAttention.apply(q, k, v, cb, causal, float(scale), int(block_size))
