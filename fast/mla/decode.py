"""MLA decode in Triton: split-KV attention over the shared latent cache (op ``mla_decode``, FlashMLA convention).

q [B, T, H, D] (the absorbed query, D = d_c + d_r), kv_cache [B, S, 1, D] (one latent kv head: the latent c and the
rotated RoPE key), values = the first ``head_dim_v`` channels of the cache -> o [B, T, H, head_dim_v] in q's dtype
and lse [B, H, T] (float32, natural log).  Causal is end-aligned: key j is visible to query t iff
``j <= t + S - T``; a query with no visible key outputs 0 with lse ``-inf``.

Design (FlashDecoding / FlashMLA split-KV; Milakov & Gimelshein 2018 for the merge):

* the T x H query rows of a batch share the single kv head, so a program takes BLOCK_M rows (``r = t H + h``) and
  one split of the keys: every key tile is loaded once for all of them, and the latent tile ``c`` serves both as
  the key's first d_v channels and as the value (the MLA saving: the cache is read once);
* the logit is ``q[:d_v] . c + q[d_v:] . k[d_v:]`` (two dot products over power-of-two tiles, the channel tail
  masked), in base 2 (``scale * log2 e``), float32 accumulation; online softmax per row (running max ``m``, sums,
  float32 accumulator), the probabilities rounded to q's dtype for the ``P V`` product as tensor cores consume
  them, the output's normaliser the sum of those rounded probabilities;
* each split writes its normalised partial output (float32) and its log-sum-exp; a second kernel merges the splits
  (section 3 of the spec): ``M = max_i lse_i``, ``w_i = 2^(lse_i - M)``, ``o = sum w_i o_i / sum w_i``,
  ``lse = M + log2 sum w_i`` (empty splits have weight 0; all empty: o = 0, lse = -inf);
* float32 inputs use IEEE float32 dots (never TF32).

Under the Triton CPU interpreter (selected without CUDA, :mod:`veriformer.fast._triton.env`) the kernels run with
``EMULATE=True``: tiles are upcast to float32 after loading and the operands rounded to the input dtype's grid
(:mod:`veriformer.fast._triton.precision`), reproducing the GPU arithmetic up to summation order.

Sources: DeepSeek-AI 2024 (DeepSeek-V2, arXiv 2405.04434, section 2.1.2); deepseek-ai/FlashMLA
(``flash_mla_with_kvcache``: q [b, s_q, h_q, d], out [b, s_q, h_q, dv], softmax_lse [b, h_q, s_q]); Dao et al. 2023
(Flash-Decoding split-KV); Milakov & Gimelshein 2018 (merging partial softmax states).
"""

from __future__ import annotations

import math
import numbers

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
)
from veriformer.reference._validate import require

__all__ = ["mla_decode"]

_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_MAX_DIM = 1024

if HAVE_TRITON:
    from veriformer.fast._triton.online_softmax import online_softmax_step
    from veriformer.fast._triton.precision import load_tile as _load
    from veriformer.fast._triton.precision import to_operand as _operand
    from veriformer.fast._triton.precision import to_store as _to_store

    @bounded_jit(free=["T", "H", "S", "ROWS", "SPLIT", "NSPLIT"], units=["sqd", "skd", "sod"])
    def _mla_split(Q, KV, OP, LP, sqb, sqt, sqh, sqd, skb, sks, skd, sob, sos, sor, sod,
                   T, H, S, ROWS, SPLIT, NSPLIT, DV, DR, qk_scale,
                   CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_DV: tl.constexpr,
                   BLOCK_DR: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        DTYPE: tl.constexpr = Q.dtype.element_ty
        pid_m = tl.program_id(0)
        pid_s = tl.program_id(1)
        b = tl.program_id(2).to(tl.int64)
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < ROWS
        t = rows // H
        h = rows % H
        offs_v = tl.arange(0, BLOCK_DV)
        offs_r = tl.arange(0, BLOCK_DR)
        q_row = Q + b * sqb + t.to(tl.int64) * sqt + h.to(tl.int64) * sqh
        qv = _load(q_row[:, None] + offs_v[None, :] * sqd, row_ok[:, None] & (offs_v[None, :] < DV), EMULATE)
        qr = _load(q_row[:, None] + (DV + offs_r)[None, :] * sqd, row_ok[:, None] & (offs_r[None, :] < DR), EMULATE)
        limit = t + (S - T)  # the last visible key of each row (causal, end-aligned)
        if not CAUSAL:
            limit = t * 0 + (S - 1)
        start = pid_s * SPLIT
        end = tl.minimum(start + SPLIT, S)
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        lt_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        kv_b = KV + b * skb
        for n0 in range(start, end, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            n_ok = offs_n < end
            lat = _load(kv_b + offs_n[:, None] * sks + offs_v[None, :] * skd, n_ok[:, None] & (offs_v[None, :] < DV),
                        EMULATE)
            kr = _load(kv_b + offs_n[:, None] * sks + (DV + offs_r)[None, :] * skd,
                       n_ok[:, None] & (offs_r[None, :] < DR), EMULATE)
            s = tl.dot(qv, tl.trans(lat), input_precision=DOT_PREC)
            s = s + tl.dot(qr, tl.trans(kr), input_precision=DOT_PREC)
            s = s * qk_scale
            vis = n_ok[None, :] & (offs_n[None, :] <= limit[:, None]) & row_ok[:, None]
            s = tl.where(vis, s, float("-inf"))
            m_new, alpha, pr, l_i, lt_i = online_softmax_step(s, m_i, l_i, lt_i, DTYPE, EMULATE)
            acc = acc * alpha[:, None] + tl.dot(pr, _operand(lat, DTYPE, EMULATE), input_precision=DOT_PREC)
            m_i = m_new
        empty = lt_i == 0.0
        o = acc / tl.where(empty, 1.0, lt_i)[:, None]
        op = OP + b * sob + pid_s * sos
        tl.store(op + rows[:, None].to(tl.int64) * sor + offs_v[None, :] * sod, o,
                 mask=row_ok[:, None] & (offs_v[None, :] < DV))
        lse = tl.where(empty, float("-inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i)))
        tl.store(LP + (b * NSPLIT + pid_s) * ROWS + rows, lse, mask=row_ok)

    @bounded_jit(free=["T", "H", "ROWS", "NSPLIT"], units=["sod", "s_od"])
    def _mla_merge(OP, LP, O, LSE, sob, sos, sor, sod, s_ob, s_ot, s_oh, s_od, T, H, ROWS, NSPLIT, DV,
                   BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr):
        DTYPE: tl.constexpr = O.dtype.element_ty
        pid_m = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < ROWS
        offs_v = tl.arange(0, BLOCK_DV)
        M = tl.full([BLOCK_M], float("-inf"), tl.float32)
        for sp in range(0, NSPLIT):
            lp = tl.load(LP + (b * NSPLIT + sp) * ROWS + rows, mask=row_ok, other=float("-inf"))
            M = tl.maximum(M, lp)
        M_use = tl.where(M == float("-inf"), 0.0, M)
        den = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        for sp in range(0, NSPLIT):
            lp = tl.load(LP + (b * NSPLIT + sp) * ROWS + rows, mask=row_ok, other=float("-inf"))
            w = tl.math.exp2(lp - M_use)
            op = tl.load(OP + b * sob + sp * sos + rows[:, None].to(tl.int64) * sor + offs_v[None, :] * sod,
                         mask=row_ok[:, None] & (offs_v[None, :] < DV), other=0.0)
            den += w
            acc += w[:, None] * op
        empty = den == 0.0
        o = acc / tl.where(empty, 1.0, den)[:, None]
        t = (rows // H).to(tl.int64)
        h = (rows % H).to(tl.int64)
        tl.store(O + b * s_ob + t[:, None] * s_ot + h[:, None] * s_oh + offs_v[None, :] * s_od,
                 _to_store(o, DTYPE, EMULATE), mask=row_ok[:, None] & (offs_v[None, :] < DV))
        lse = tl.where(empty, float("-inf"), M_use + tl.math.log2(tl.where(empty, 1.0, den))) * 0.6931471805599453
        tl.store(LSE + (b * H + h) * T + t, lse, mask=row_ok)


def _config(dtype: torch.dtype, rows: int, block_dv: int) -> dict[str, int]:
    """Tiles and launch options of the split kernel (compiled for sm_90 with ``fast._triton.ptx`` but not timed: no
    GPU in the session that wrote them).  The float32 accumulator of BLOCK_M rows x BLOCK_DV channels lives in
    registers, so wide value heads (d_c = 512) take 8 warps and at most 32 rows; float32 inputs take short key tiles
    (their tiles are twice as large in shared memory)."""
    if interpreting():
        return {"BLOCK_M": 16 if rows <= 16 else 64, "BLOCK_N": 32}
    wide = block_dv >= 256
    if dtype == torch.float32:  # d_c = 512: 32 rows spilled 40 bytes a thread at 8 warps, none at 16 (106 registers;
        # sm_90, Triton 3.9 ptxas, static); 16 rows would not spill at 8 but read the latent cache twice as often
        return {"BLOCK_M": 16 if rows <= 16 else 32, "BLOCK_N": 16, "num_warps": 16 if wide else 4, "num_stages": 1}
    if wide:  # sm_90, d_c = 512, bf16: 32 rows x 8 warps compile without spills (mma.sync); 64 rows use wgmma but
        # spill 388 bytes a thread (Triton 3.9 ptxas): untimed, so the spill-free tile is the default
        return {"BLOCK_M": 16 if rows <= 16 else 32, "BLOCK_N": 32, "num_warps": 8, "num_stages": 2}
    return {"BLOCK_M": 16 if rows <= 16 else 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}


def _default_splits(B: int, row_blocks: int, S: int, block_n: int) -> int:
    """Enough splits to give ~2 programs per SM of an H100/H200 (132 SMs), each split at least 4 key tiles."""
    max_splits = max(1, math.ceil(S / (4 * block_n)))
    want = max(1, math.ceil(264 / max(1, B * row_blocks)))
    return min(max_splits, want, 64)


def mla_decode(q: torch.Tensor, kv_cache: torch.Tensor, *, head_dim_v: int, scale: float, causal: bool = True,
               return_lse: bool = True, num_splits: int | None = None, block_sizes: tuple[int, int] | None = None,
               launch_config: dict[str, int] | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Split-KV MLA decode (Triton): ``o[b, t, h] = sum_j softmax_j(scale q[b, t, h] . kv[b, j]) kv[b, j, :dv]``.

    q [B, T, H, D], kv_cache [B, S, 1, D] (float16, bfloat16 or float32, same dtype), ``head_dim_v`` = dv <= D
    (the values are the first dv channels), ``scale`` the softmax scale (MLA: ``1/sqrt(d_nope + d_r)``, not
    ``1/sqrt(D)``); causal end-aligned.  Returns (o [B, T, H, dv] in q's dtype, lse [B, H, T] float32 natural log)
    or o alone with ``return_lse=False``.  ``num_splits`` (default: by occupancy) and ``block_sizes=(BLOCK_M,
    BLOCK_N)`` (powers of two >= 16) are for tests and tuning.  Forward only.  Inputs on CUDA, or on the CPU under
    the Triton interpreter.  Source: see the module docstring.
    """
    func = "mla_decode"
    require_triton(func)
    for name, x in (("q", q), ("kv_cache", kv_cache)):
        require(isinstance(x, torch.Tensor), func, name, "a torch.Tensor", type(x).__name__)
        require(x.dim() == 4, func, name, "a rank-4 tensor", f"shape {tuple(x.shape)}")
        require(x.dtype in KERNEL_DTYPES, func, name, "float16, bfloat16 or float32", f"dtype {x.dtype}")
    require(kv_cache.dtype == q.dtype, func, "kv_cache", f"of q's dtype {q.dtype}", f"dtype {kv_cache.dtype}")
    require(kv_cache.device == q.device, func, "kv_cache", f"on q's device {q.device}", f"device {kv_cache.device}")
    B, T, H, D = q.shape
    require(T >= 1 and H >= 1 and 1 <= D <= _MAX_DIM, func, "q", f"of shape [B, T >= 1, H >= 1, D <= {_MAX_DIM}]",
            f"shape {tuple(q.shape)}")
    S = kv_cache.shape[1]
    require(kv_cache.shape[0] == B and kv_cache.shape[2] == 1 and kv_cache.shape[3] == D and S >= 1, func,
            "kv_cache", f"of shape [B={B}, S >= 1, 1, D={D}]", f"shape {tuple(kv_cache.shape)}")
    require(isinstance(head_dim_v, numbers.Integral) and 1 <= head_dim_v <= D, func, "head_dim_v",
            f"an int in [1, D={D}]", repr(head_dim_v))
    require(isinstance(scale, numbers.Real) and not isinstance(scale, bool) and math.isfinite(scale), func, "scale",
            "a finite float", repr(scale))
    require(isinstance(causal, bool), func, "causal", "a bool", repr(causal))
    if block_sizes is not None:
        ok = len(block_sizes) == 2 and all(isinstance(x, int) and x >= 16 and x & (x - 1) == 0 for x in block_sizes)
        require(ok, func, "block_sizes", "None or two powers of two >= 16", repr(block_sizes))
    require_kernel_device(q, func, "q")
    DV, DR = int(head_dim_v), D - int(head_dim_v)
    ROWS = T * H
    cfg = _config(q.dtype, ROWS, pow2(DV, 16))
    if launch_config:
        cfg.update(launch_config)
    BLOCK_M, BLOCK_N = block_sizes or (cfg.pop("BLOCK_M"), cfg.pop("BLOCK_N"))
    cfg.pop("BLOCK_M", None)
    cfg.pop("BLOCK_N", None)
    if interpreting():
        cfg = {}
    row_blocks = math.ceil(ROWS / BLOCK_M)
    if num_splits is None:
        num_splits = _default_splits(B, row_blocks, S, BLOCK_N)
    require(isinstance(num_splits, int) and num_splits >= 1, func, "num_splits", "None or an int >= 1",
            repr(num_splits))
    SPLIT = math.ceil(math.ceil(S / num_splits) / BLOCK_N) * BLOCK_N  # split boundaries on key tiles
    NSPLIT = math.ceil(S / SPLIT)
    # small launches run the generic binary: coarse channel buckets (>= 64) so a campaign's head dims share binaries
    lo = 64 if small_launch(q, kv_cache) else 16
    BLOCK_DV, BLOCK_DR = pow2(DV, lo), pow2(DR, lo)
    emulate = interpreting()
    dot_prec = "ieee" if (q.dtype == torch.float32 or emulate) else "tf32"
    op = torch.empty((B, NSPLIT, ROWS, DV), device=q.device, dtype=torch.float32)
    lp = torch.empty((B, NSPLIT, ROWS), device=q.device, dtype=torch.float32)
    launch(_mla_split, (row_blocks, NSPLIT, B), q, kv_cache, op, lp, *q.stride(), kv_cache.stride(0),
           kv_cache.stride(1), kv_cache.stride(3), *op.stride(), T, H, S, ROWS, SPLIT, NSPLIT, DV, DR,
           float(scale) * _LOG2E, CAUSAL=causal, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_DV=BLOCK_DV,
           BLOCK_DR=BLOCK_DR, EMULATE=emulate, DOT_PREC=dot_prec, **cfg)
    o = torch.empty((B, T, H, DV), device=q.device, dtype=q.dtype)
    lse = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
    merge_m = 16  # 16 rows x BLOCK_DV float32 accumulators: no spills at d_c = 512 with 4 warps
    launch(_mla_merge, (math.ceil(ROWS / merge_m), B), op, lp, o, lse, *op.stride(), *o.stride(), T, H, ROWS, NSPLIT,
           DV, BLOCK_M=merge_m, BLOCK_DV=BLOCK_DV, EMULATE=emulate)
    return (o, lse) if return_lse else o
