"""Causal ReRoPE / Leaky ReRoPE attention in Triton (forward): the two score matrices of the prefill merged per tile
inside an online-softmax loop, so neither n x n matrix is materialised.

Formula (:func:`veriformer.reference.rerope_attention`): ``O = softmax(scale * a) V`` with, for ``i >= j``,
``a_ij = (R_i q_i)^T (R_j k_j)`` when ``i - j < w`` and otherwise the rectified score: ReRoPE ``(R_w q_i)^T k_j``,
Leaky ReRoPE (leak k >= 1) ``(R_{(i-w)/k + w} q_i)^T (R_{j/k} k_j)``; keys after the query are masked.  Queries
end-aligned: query t sits at position ``S - T + t``, keys at ``0..S-1``.

Plan: the four rotated operands (q at i, q at w or ``(i-w)/k + w``, k at j, k at ``j/k``) are formed once by the
Triton RoPE kernel (:func:`veriformer.fast.rope.fused.rope`: float64 angles reduced before float32 cos/sin) on the
float32 upcast of q and k -- the Leaky positions as integer positions ``i + w(k-1)`` and ``j`` under linear scaling
by k, as ``bojone/rerope`` does with its linear-scaled table, hence integer ``w (k - 1)``.  The rotated operands are
rounded once to the input dtype (float16/bfloat16 products run on tensor cores with float32 accumulation, as flash
attention's; float32 inputs keep IEEE float32 products); the attention kernel then loads both q tiles and both k
tiles, forms both score tiles, picks one per element by ``i - j < w``, and runs the online softmax shared with flash
attention (:mod:`veriformer.fast._triton.online_softmax`: base 2, float32 running max, sums and accumulator, the
probabilities rounded to the input dtype for the P V product).  Output rounded once to the input dtype.

Backward (flash-attention style, from the saved log-sum-exp): one kernel per key block accumulates dV = P^T dO and
dK1, dK2 (the score gradient dS = scale P (dO V^T - rowsum(dO O)) split by the window mask, times Q1 or Q2), one per
query block dQ1, dQ2; the gradients of the four rotated operands then flow through the RoPE kernel's own backward
(the inverse rotations) to q and k.

Cost: twice the QK^T work of causal attention and no extra memory beyond the rotated copies.
Sources: Su kexue.fm/archives/9708; ``bojone/rerope`` rerope_patch.py, leaky_rerope_patch.py.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from veriformer.fast._triton.env import (
    HAVE_TRITON,
    KERNEL_DTYPES,
    bounded_jit,
    device_function,
    interpreting,
    launch,
    pow2,
    require_kernel_device,
    require_triton,
    tl,
    triton,
)
from veriformer.reference._validate import require

__all__ = ["rerope_attention"]

if HAVE_TRITON:
    from veriformer.fast._triton.online_softmax import online_softmax_step
    from veriformer.fast._triton.precision import load_tile, to_operand, to_store

    @device_function
    def _query_tiles(Q1, Q2, b, h, offs_m, offs_d, T, D, sqb, sqh, sqt, sqd, EMULATE: tl.constexpr):
        """The two rotated query tiles [BLOCK_M, BLOCK_D] of rows offs_m of head (b, h) (zeros outside)."""
        qoff = b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd
        qmask = (offs_m < T)[:, None] & (offs_d[None, :] < D)
        return load_tile(Q1 + qoff, qmask, EMULATE), load_tile(Q2 + qoff, qmask, EMULATE)

    @device_function
    def _key_tiles(K1, K2, V, b, hk, offs_n, offs_d, offs_dv, S, D, DV, skb, skh, skt, skd, svb, svh, svt, svd,
                   EMULATE: tl.constexpr):
        """The two rotated key tiles [BLOCK_N, BLOCK_D] and the value tile [BLOCK_N, BLOCK_DV] of keys offs_n of kv
        head (b, hk) (zeros outside)."""
        n_ok = offs_n < S
        koff = b * skb + hk * skh + offs_n[:, None] * skt + offs_d[None, :] * skd
        kmask = n_ok[:, None] & (offs_d[None, :] < D)
        v = load_tile(V + b * svb + hk * svh + offs_n[:, None] * svt + offs_dv[None, :] * svd,
                      n_ok[:, None] & (offs_dv[None, :] < DV), EMULATE)
        return load_tile(K1 + koff, kmask, EMULATE), load_tile(K2 + koff, kmask, EMULATE), v

    @bounded_jit(free=["H", "T", "S", "W"], units=["sqd", "skd", "svd", "sod"], keep=["G"])
    def _rerope_fwd(Q1, Q2, K1, K2, V, O, LSE, sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd,
                    sob, soh, sot, sod, H, G, T, S, W, D, DV, qk_scale,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                    EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """Per (query block, batch*head): the online softmax over the causal key blocks of the merged scores
        (base 2: ``qk_scale = scale * log2 e``); stores O and the base-2 log-sum-exp."""
        DTYPE: tl.constexpr = O.dtype.element_ty
        pid_m = tl.program_id(0)
        bh = tl.program_id(1).to(tl.int64)
        b = bh // H
        h = bh % H
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        m_ok = offs_m < T
        qpos = offs_m + (S - T)
        q1, q2 = _query_tiles(Q1, Q2, b, h, offs_m, offs_d, T, D, sqb, sqh, sqt, sqd, EMULATE)
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        lt_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M + (S - T))
        for start in range(0, hi, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            n_ok = offs_n < S
            k1, k2, v = _key_tiles(K1, K2, V, b, h // G, offs_n, offs_d, offs_dv, S, D, DV, skb, skh, skt, skd, svb,
                                   svh, svt, svd, EMULATE)
            s1 = tl.dot(q1, tl.trans(k1), input_precision=DOT_PREC)
            s2 = tl.dot(q2, tl.trans(k2), input_precision=DOT_PREC)
            dlt = qpos[:, None] - offs_n[None, :]
            s = tl.where(dlt < W, s1, s2) * qk_scale
            s = tl.where((dlt >= 0) & n_ok[None, :], s, float("-inf"))
            m_i, alpha, pr, l_i, lt_i = online_softmax_step(s, m_i, l_i, lt_i, DTYPE, EMULATE)
            acc = acc * alpha[:, None] + tl.dot(pr, v, input_precision=DOT_PREC)
        empty = lt_i == 0.0
        out = acc / tl.where(empty, 1.0, lt_i)[:, None]
        tl.store(LSE + bh * T + offs_m, tl.where(empty, float("-inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i))),
                 mask=m_ok)
        ooff = b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod
        tl.store(O + ooff, to_store(out, DTYPE, EMULATE), mask=m_ok[:, None] & (offs_dv[None, :] < DV))

    @device_function
    def _probabilities(q1, q2, k1t, k2t, lse, offs_m, offs_n, T, S, W, qk_scale, DOT_PREC: tl.constexpr):
        """P [BLOCK_M, BLOCK_N] recomputed from the base-2 log-sum-exp (0 above the diagonal and on padding) and the
        window mask ``i - j < W`` that picks the score."""
        s1 = tl.dot(q1, k1t, input_precision=DOT_PREC)
        s2 = tl.dot(q2, k2t, input_precision=DOT_PREC)
        dlt = (offs_m + (S - T))[:, None] - offs_n[None, :]
        inside = dlt < W
        s = tl.where(inside, s1, s2) * qk_scale
        ok = (dlt >= 0) & (offs_m < T)[:, None] & (offs_n < S)[None, :]
        lse = tl.where(lse == float("-inf"), 0.0, lse)
        return tl.where(ok, tl.math.exp2(tl.where(ok, s - lse[:, None], 0.0)), 0.0), inside

    @bounded_jit(free=["HKV", "T", "S", "W"], units=["sqd", "skd", "svd", "sod"], keep=["G"])
    def _rerope_bwd_dkdv(Q1, Q2, K1, K2, V, DO, LSE, DELTA, DK1, DK2, DV_, sqb, sqh, sqt, sqd, skb, skh, skt, skd,
                         svb, svh, svt, svd, sob, soh, sot, sod, HKV, G, T, S, W, D, DV, qk_scale, scale,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                         BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """Per (key block, kv head): dV = sum over the G query heads of P^T dO, dK1 = (dS masked to the window)^T Q1,
        dK2 = (dS outside it)^T Q2 (float32, contiguous [B, Hkv, S, *] outputs), recomputing P from the saved
        log-sum-exp; the products take operands in the input dtype, like the forward's."""
        DTYPE: tl.constexpr = DO.dtype.element_ty
        pid_n = tl.program_id(0)
        bkv = tl.program_id(1).to(tl.int64)
        b = bkv // HKV
        hk = bkv % HKV
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        k1, k2, v = _key_tiles(K1, K2, V, b, hk, offs_n, offs_d, offs_dv, S, D, DV, skb, skh, skt, skd, svb, svh, svt,
                               svd, EMULATE)
        k1t, k2t, vt = tl.trans(k1), tl.trans(k2), tl.trans(v)
        dk1 = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
        dk2 = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
        dv = tl.zeros([BLOCK_N, BLOCK_DV], tl.float32)
        lo = tl.maximum(pid_n * BLOCK_N - (S - T), 0)
        lo = (lo // BLOCK_M) * BLOCK_M
        for g in range(0, G):
            h = hk * G + g
            bh = b * (HKV * G) + h
            for start in range(lo, T, BLOCK_M):
                offs_m = start + tl.arange(0, BLOCK_M)
                m_ok = offs_m < T
                q1, q2 = _query_tiles(Q1, Q2, b, h, offs_m, offs_d, T, D, sqb, sqh, sqt, sqd, EMULATE)
                do = load_tile(DO + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod,
                               m_ok[:, None] & (offs_dv[None, :] < DV), EMULATE)
                lse = tl.load(LSE + bh * T + offs_m, mask=m_ok, other=0.0)
                delta = tl.load(DELTA + bh * T + offs_m, mask=m_ok, other=0.0)
                p, inside = _probabilities(q1, q2, k1t, k2t, lse, offs_m, offs_n, T, S, W, qk_scale, DOT_PREC)
                dv += tl.dot(tl.trans(to_operand(p, DTYPE, EMULATE)), do, input_precision=DOT_PREC)
                ds = p * (tl.dot(do, vt, input_precision=DOT_PREC) - delta[:, None]) * scale
                dk1 += tl.dot(tl.trans(to_operand(tl.where(inside, ds, 0.0), DTYPE, EMULATE)), q1,
                              input_precision=DOT_PREC)
                dk2 += tl.dot(tl.trans(to_operand(tl.where(inside, 0.0, ds), DTYPE, EMULATE)), q2,
                              input_precision=DOT_PREC)
        n_ok = offs_n < S
        base_k = bkv * S * D + offs_n[:, None] * D + offs_d[None, :]
        kmask = n_ok[:, None] & (offs_d[None, :] < D)
        tl.store(DK1 + base_k, dk1, mask=kmask)
        tl.store(DK2 + base_k, dk2, mask=kmask)
        tl.store(DV_ + bkv * S * DV + offs_n[:, None] * DV + offs_dv[None, :], dv,
                 mask=n_ok[:, None] & (offs_dv[None, :] < DV))

    @bounded_jit(free=["H", "T", "S", "W"], units=["sqd", "skd", "svd", "sod"], keep=["G"])
    def _rerope_bwd_dq(Q1, Q2, K1, K2, V, DO, LSE, DELTA, DQ1, DQ2, sqb, sqh, sqt, sqd, skb, skh, skt, skd,
                       svb, svh, svt, svd, sob, soh, sot, sod, H, G, T, S, W, D, DV, qk_scale, scale,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                       BLOCK_DV: tl.constexpr, EMULATE: tl.constexpr, DOT_PREC: tl.constexpr):
        """Per query block: dQ1 = (dS in the window) K1, dQ2 = (dS outside) K2 (float32, contiguous)."""
        DTYPE: tl.constexpr = DO.dtype.element_ty
        pid_m = tl.program_id(0)
        bh = tl.program_id(1).to(tl.int64)
        b = bh // H
        h = bh % H
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        m_ok = offs_m < T
        q1, q2 = _query_tiles(Q1, Q2, b, h, offs_m, offs_d, T, D, sqb, sqh, sqt, sqd, EMULATE)
        do = load_tile(DO + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod,
                       m_ok[:, None] & (offs_dv[None, :] < DV), EMULATE)
        lse = tl.load(LSE + bh * T + offs_m, mask=m_ok, other=0.0)
        delta = tl.load(DELTA + bh * T + offs_m, mask=m_ok, other=0.0)
        dq1 = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
        dq2 = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M + (S - T))
        for start in range(0, hi, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            k1, k2, v = _key_tiles(K1, K2, V, b, h // G, offs_n, offs_d, offs_dv, S, D, DV, skb, skh, skt, skd, svb,
                                   svh, svt, svd, EMULATE)
            p, inside = _probabilities(q1, q2, tl.trans(k1), tl.trans(k2), lse, offs_m, offs_n, T, S, W, qk_scale,
                                       DOT_PREC)
            ds = p * (tl.dot(do, tl.trans(v), input_precision=DOT_PREC) - delta[:, None]) * scale
            dq1 += tl.dot(to_operand(tl.where(inside, ds, 0.0), DTYPE, EMULATE), k1, input_precision=DOT_PREC)
            dq2 += tl.dot(to_operand(tl.where(inside, 0.0, ds), DTYPE, EMULATE), k2, input_precision=DOT_PREC)
        base_q = bh * T * D + offs_m[:, None] * D + offs_d[None, :]
        qmask = m_ok[:, None] & (offs_d[None, :] < D)
        tl.store(DQ1 + base_q, dq1, mask=qmask)
        tl.store(DQ2 + base_q, dq2, mask=qmask)


def _operands(q: torch.Tensor, k: torch.Tensor, window: int, leak: float, base: float,
              layout: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four rotated float32 operands (q at i, q rectified, k at j, k rectified), by the Triton RoPE kernel."""
    from veriformer.fast.rope.fused import rope

    T, S = q.shape[-2], k.shape[-2]
    q32, k32 = q.float(), k.float()
    iq = torch.arange(S - T, S, device=q.device)
    jk = torch.arange(S, device=q.device)
    kw = {"base": base, "layout": layout}
    q1, k1 = rope(q32, iq, **kw), rope(k32, jk, **kw)
    if not math.isfinite(leak):
        return q1, rope(q32, torch.full((T,), window, device=q.device), **kw), k1, k32
    lin = {"type": "linear", "factor": float(leak)}
    off = round(window * (leak - 1))
    return q1, rope(q32, iq + off, scaling=lin, **kw), k1, rope(k32, jk, scaling=lin, **kw)


def rerope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, *, leak: float = math.inf,
                     base: float = 10000.0, layout: str = "half", scale: float | None = None) -> torch.Tensor:
    """Causal (Leaky) ReRoPE attention (Triton) of q [B, H, T, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv] -> o [B, H, T,
    Dv] in q's dtype (GQA when Hkv divides H: query head h reads kv head h // (H / Hkv)).

    ``O = softmax(scale * a) V``, ``a_ij = q_i^T R_{-P_ij} k_j``, ``P_ij = i - j`` inside the window
    (``i - j < w``), ``w`` (ReRoPE, ``leak = math.inf``) or ``w + (i - j - w)/k`` (Leaky, ``leak = k >= 1`` with
    ``w (k - 1)`` an integer) beyond; queries end-aligned; ``scale`` default ``1/sqrt(D)``.  float16, bfloat16 or
    float32 on CUDA (or the CPU under the Triton interpreter).  Differentiable in q, k, v.
    Source: Su kexue.fm/archives/9708;
    :func:`veriformer.reference.rerope_attention`.
    """
    func = "rerope_attention"
    require_triton(func)
    for name, t in (("q", q), ("k", k), ("v", v)):
        require(isinstance(t, torch.Tensor) and t.dim() == 4, func, name, "a rank-4 tensor [B, H, *, *]",
                getattr(t, "shape", type(t).__name__))
        require(t.dtype in KERNEL_DTYPES and t.dtype == q.dtype and t.device == q.device, func, name,
                f"float16, bfloat16 or float32 of q's dtype {q.dtype} and device", f"{t.dtype} on {t.device}")
    B, H, T, D = q.shape
    S = k.shape[-2]
    HKV = k.shape[1]
    require(k.shape[0] == B and HKV >= 1 and H % HKV == 0 and k.shape[-1] == D and D % 2 == 0, func, "k",
            f"of shape [B={B}, Hkv dividing H={H}, S, D={D}] with D even", f"shape {tuple(k.shape)}")
    require(v.shape[:3] == (B, HKV, S), func, "v", f"of shape [B={B}, Hkv={HKV}, S={S}, Dv]",
            f"shape {tuple(v.shape)}")
    require(1 <= T <= S, func, "q", f"1 <= T <= S = {S} queries (end-aligned)", f"T={T}")
    require(isinstance(window, int) and not isinstance(window, bool) and window >= 0, func, "window",
            "an int >= 0", repr(window))
    require(leak == math.inf or (leak >= 1 and float(window * (leak - 1)).is_integer()), func, "leak",
            "math.inf or a number k >= 1 with window * (k - 1) an integer", repr(leak))
    require_kernel_device(q, func, "q")
    q1, q2, k1, k2 = _operands(q, k, window, leak, base, layout)
    sc = 1.0 / math.sqrt(D) if scale is None else float(scale)
    return _ReropeAttention.apply(q1, q2, k1, k2, v, (int(window), sc, q.dtype))


_LOG2E = 1.4426950408889634


def _blocks(T: int, S: int, D: int, DV: int, dtype: torch.dtype, kind: str) -> dict[str, Any]:
    """Tiles and launch options of the ``kind`` ("fwd", "dkdv", "dq") kernel.  Interpreter: up to 64 x 64.  GPU:
    16-bit operands take 64 x 64 tiles (tensor cores) at 8 warps above head dim 64, dK/dV stepping 32 queries (its
    three [BLOCK_N, D] float32 accumulators spilled 72 bytes per thread with 64 at D = 128); float32 products are IEEE
    FMA loops, so 32 x 32 tiles, 1 stage, 4 warps forward and 8 backward (where the other count spilled 80 and 1252
    bytes per thread at D = 128; 64 x 64 float32 tiles spilled 42-107 KB and needed 241-274 KiB of shared memory, more
    than an H100/H200 SM has).  All measured by the sm_90 static report (Triton 3.9 ptxas), not timed."""
    bl: dict[str, Any] = {"BLOCK_M": min(64, max(16, pow2(T))), "BLOCK_N": min(64, max(16, pow2(S))),
                          "BLOCK_D": max(16, pow2(D)), "BLOCK_DV": max(16, pow2(DV)),
                          "EMULATE": interpreting(), "DOT_PREC": "ieee"}
    if interpreting():
        return bl
    if dtype == torch.float32:
        return {**bl, "BLOCK_M": min(32, bl["BLOCK_M"]), "BLOCK_N": min(32, bl["BLOCK_N"]),
                "num_warps": 4 if kind == "fwd" else 8, "num_stages": 1}
    step = max(16, bl["BLOCK_M"] // 2) if kind == "dkdv" else bl["BLOCK_M"]
    return {**bl, "BLOCK_M": step, "DOT_PREC": "tf32", "num_warps": 8 if max(D, DV) > 64 else 4, "num_stages": 2}


class _ReropeAttention(torch.autograd.Function):
    """Attention over the four rotated operands (float32 from the RoPE kernel, rounded once to the input dtype for
    the products); backward: dV, dK1, dK2 per key block and dQ1, dQ2 per query block from the saved log-sum-exp
    (flash-attention style), float32, the rotations' VJPs left to the RoPE kernel's autograd."""

    @staticmethod
    def forward(ctx: Any, q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, v: torch.Tensor,
                cfg: tuple[int, float, torch.dtype]) -> torch.Tensor:
        window, sc, dtype = cfg
        q1, q2, k1, k2 = (t.to(dtype) for t in (q1, q2, k1, k2))
        B, H, T, D = q1.shape
        S, DV = k1.shape[-2], v.shape[-1]
        o = torch.empty((B, H, T, DV), dtype=dtype, device=q1.device)
        lse2 = torch.empty((B * H, T), dtype=torch.float32, device=q1.device)
        bl = _blocks(T, S, D, DV, dtype, "fwd")
        G = H // k1.shape[1]
        launch(_rerope_fwd, (triton.cdiv(T, bl["BLOCK_M"]), B * H), q1, q2, k1, k2, v, o, lse2, *q1.stride(),
               *k1.stride(), *v.stride(), *o.stride(), H, G, T, S, window, D, DV, sc * _LOG2E, **bl)
        ctx.save_for_backward(q1, q2, k1, k2, v, o, lse2)
        ctx.cfg = cfg
        return o

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor) -> tuple[Any, ...]:
        q1, q2, k1, k2, v, o, lse2 = ctx.saved_tensors
        window, sc, dtype = ctx.cfg
        B, H, T, D = q1.shape
        S, DV = k1.shape[-2], v.shape[-1]
        do = do.to(dtype).contiguous()
        delta = (do.float() * o.float()).sum(-1).reshape(B * H, T).contiguous()
        f32 = {"dtype": torch.float32, "device": q1.device}
        HKV = k1.shape[1]
        G = H // HKV
        dk1, dk2 = torch.empty((B, HKV, S, D), **f32), torch.empty((B, HKV, S, D), **f32)
        dv = torch.empty((B, HKV, S, DV), **f32)
        dq1, dq2 = torch.empty((B, H, T, D), **f32), torch.empty((B, H, T, D), **f32)
        strides = (*q1.stride(), *k1.stride(), *v.stride(), *do.stride())
        bl = _blocks(T, S, D, DV, dtype, "dkdv")
        launch(_rerope_bwd_dkdv, (triton.cdiv(S, bl["BLOCK_N"]), B * HKV), q1, q2, k1, k2, v, do, lse2, delta, dk1,
               dk2, dv, *strides, HKV, G, T, S, window, D, DV, sc * _LOG2E, sc, **bl)
        bl = _blocks(T, S, D, DV, dtype, "dq")
        launch(_rerope_bwd_dq, (triton.cdiv(T, bl["BLOCK_M"]), B * H), q1, q2, k1, k2, v, do, lse2, delta, dq1, dq2,
               *strides, H, G, T, S, window, D, DV, sc * _LOG2E, sc, **bl)
        return dq1, dq2, dk1, dk2, dv.to(v.dtype), None
