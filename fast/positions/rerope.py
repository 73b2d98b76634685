"""Causal ReRoPE / Leaky ReRoPE attention in Triton (forward): the two score matrices of the prefill merged per tile
inside an online-softmax loop, so neither n x n matrix is materialised.

Formula (:func:`veriformer.reference.rerope_attention`): ``O = softmax(scale * a) V`` with, for ``i >= j``,
``a_ij = (R_i q_i)^T (R_j k_j)`` when ``i - j < w`` and otherwise the rectified score: ReRoPE ``(R_w q_i)^T k_j``,
Leaky ReRoPE (leak k >= 1) ``(R_{(i-w)/k + w} q_i)^T (R_{j/k} k_j)``; keys after the query are masked.  Queries
end-aligned: query t sits at position ``S - T + t``, keys at ``0..S-1``.

Plan: the four rotated operands (q at i, q at w or ``(i-w)/k + w``, k at j, k at ``j/k``) are formed once by the
Triton RoPE kernel (:func:`veriformer.fast.rope.fused.rope`: float64 angles reduced before float32 cos/sin) on the
float32 upcast of q and k -- the Leaky positions as integer positions ``i + w(k-1)`` and ``j`` under linear scaling
by k, as ``bojone/rerope`` does with its linear-scaled table, hence integer ``w (k - 1)``; the attention kernel then
loads both q tiles and both k tiles, forms both score tiles in float32 (``tl.dot``, IEEE precision), picks one per
element by ``i - j < w``, and runs the usual online softmax (running max, rescaled sum and accumulator in
float32).  Output rounded once to the input dtype.

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
    from veriformer.fast._triton.precision import to_store as _to_store

    @bounded_jit(free=["T", "S", "W"], units=["sqd", "skd", "svd", "sod"], keep=["G"])
    def _rerope_fwd(Q1, Q2, K1, K2, V, O, LSE, sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd,
                    sob, soh, sot, sod, H, G, T, S, W, D, DV, scale,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                    EMULATE: tl.constexpr):
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
        qoff = b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd
        qmask = m_ok[:, None] & (offs_d[None, :] < D)
        q1 = tl.load(Q1 + qoff, mask=qmask, other=0.0)
        q2 = tl.load(Q2 + qoff, mask=qmask, other=0.0)
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M + (S - T))
        for start in range(0, hi, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            n_ok = offs_n < S
            koff = b * skb + (h // G) * skh + offs_n[:, None] * skt + offs_d[None, :] * skd
            kmask = n_ok[:, None] & (offs_d[None, :] < D)
            k1 = tl.load(K1 + koff, mask=kmask, other=0.0)
            k2 = tl.load(K2 + koff, mask=kmask, other=0.0)
            v = tl.load(V + b * svb + (h // G) * svh + offs_n[:, None] * svt + offs_dv[None, :] * svd,
                        mask=n_ok[:, None] & (offs_dv[None, :] < DV), other=0.0).to(tl.float32)
            s1 = tl.dot(q1, tl.trans(k1), input_precision="ieee")
            s2 = tl.dot(q2, tl.trans(k2), input_precision="ieee")
            dlt = qpos[:, None] - offs_n[None, :]
            s = tl.where(dlt < W, s1, s2) * scale
            s = tl.where((dlt >= 0) & n_ok[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.exp(s - m_safe[:, None])
            alpha = tl.exp(m_i - m_safe)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="ieee")
            m_i = m_new
        l_safe = tl.where(l_i > 0, l_i, 1.0)
        out = acc / l_safe[:, None]
        tl.store(LSE + bh * T + offs_m, m_i + tl.log(l_safe), mask=m_ok)
        ooff = b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod
        tl.store(O + ooff, _to_store(out, DTYPE, EMULATE), mask=m_ok[:, None] & (offs_dv[None, :] < DV))

    @bounded_jit(free=["T", "S", "W"], units=["sqd", "skd", "svd", "sod"], keep=["G"])
    def _rerope_bwd_dkdv(Q1, Q2, K1, K2, V, DO, LSE, DELTA, DK1, DK2, DV_, sqb, sqh, sqt, sqd, skb, skh, skt, skd,
                         svb, svh, svt, svd, sob, soh, sot, sod, HKV, G, T, S, W, D, DV, scale,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                         BLOCK_DV: tl.constexpr):
        """Per (key block, kv head): dV = sum over the G query heads of P^T dO, dK1 = (dS masked to the window)^T Q1,
        dK2 = (dS outside it)^T Q2 (float32, contiguous [B, Hkv, S, *] outputs), recomputing P from the saved
        log-sum-exp."""
        pid_n = tl.program_id(0)
        bkv = tl.program_id(1).to(tl.int64)
        b = bkv // HKV
        hk = bkv % HKV
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        n_ok = offs_n < S
        koff = b * skb + hk * skh + offs_n[:, None] * skt + offs_d[None, :] * skd
        kmask = n_ok[:, None] & (offs_d[None, :] < D)
        k1 = tl.load(K1 + koff, mask=kmask, other=0.0)
        k2 = tl.load(K2 + koff, mask=kmask, other=0.0)
        vmask = n_ok[:, None] & (offs_dv[None, :] < DV)
        v = tl.load(V + b * svb + hk * svh + offs_n[:, None] * svt + offs_dv[None, :] * svd, mask=vmask,
                    other=0.0).to(tl.float32)
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
                qoff = b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd
                qmask = m_ok[:, None] & (offs_d[None, :] < D)
                q1 = tl.load(Q1 + qoff, mask=qmask, other=0.0)
                q2 = tl.load(Q2 + qoff, mask=qmask, other=0.0)
                do = tl.load(DO + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod,
                             mask=m_ok[:, None] & (offs_dv[None, :] < DV), other=0.0).to(tl.float32)
                lse = tl.load(LSE + bh * T + offs_m, mask=m_ok, other=0.0)
                delta = tl.load(DELTA + bh * T + offs_m, mask=m_ok, other=0.0)
                s1 = tl.dot(q1, tl.trans(k1), input_precision="ieee")
                s2 = tl.dot(q2, tl.trans(k2), input_precision="ieee")
                dlt = (offs_m + (S - T))[:, None] - offs_n[None, :]
                inside = dlt < W
                s = tl.where(inside, s1, s2) * scale
                ok = (dlt >= 0) & m_ok[:, None] & n_ok[None, :]
                p = tl.where(ok, tl.exp(tl.where(ok, s - lse[:, None], 0.0)), 0.0)
                dv += tl.dot(tl.trans(p), do, input_precision="ieee")
                dp = tl.dot(do, tl.trans(v), input_precision="ieee")
                ds = p * (dp - delta[:, None]) * scale
                dk1 += tl.dot(tl.trans(tl.where(inside, ds, 0.0)), q1, input_precision="ieee")
                dk2 += tl.dot(tl.trans(tl.where(inside, 0.0, ds)), q2, input_precision="ieee")
        base_k = bkv * S * D + offs_n[:, None] * D + offs_d[None, :]
        tl.store(DK1 + base_k, dk1, mask=kmask)
        tl.store(DK2 + base_k, dk2, mask=kmask)
        tl.store(DV_ + bkv * S * DV + offs_n[:, None] * DV + offs_dv[None, :], dv, mask=vmask)

    @bounded_jit(free=["T", "S", "W"], units=["sqd", "skd", "svd", "sod"], keep=["G"])
    def _rerope_bwd_dq(Q1, Q2, K1, K2, V, DO, LSE, DELTA, DQ1, DQ2, sqb, sqh, sqt, sqd, skb, skh, skt, skd,
                       svb, svh, svt, svd, sob, soh, sot, sod, H, G, T, S, W, D, DV, scale,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                       BLOCK_DV: tl.constexpr):
        """Per query block: dQ1 = (dS in the window) K1, dQ2 = (dS outside) K2 (float32, contiguous)."""
        pid_m = tl.program_id(0)
        bh = tl.program_id(1).to(tl.int64)
        b = bh // H
        h = bh % H
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        m_ok = offs_m < T
        qoff = b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :] * sqd
        qmask = m_ok[:, None] & (offs_d[None, :] < D)
        q1 = tl.load(Q1 + qoff, mask=qmask, other=0.0)
        q2 = tl.load(Q2 + qoff, mask=qmask, other=0.0)
        do = tl.load(DO + b * sob + h * soh + offs_m[:, None] * sot + offs_dv[None, :] * sod,
                     mask=m_ok[:, None] & (offs_dv[None, :] < DV), other=0.0).to(tl.float32)
        lse = tl.load(LSE + bh * T + offs_m, mask=m_ok, other=0.0)
        delta = tl.load(DELTA + bh * T + offs_m, mask=m_ok, other=0.0)
        dq1 = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
        dq2 = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M + (S - T))
        for start in range(0, hi, BLOCK_N):
            offs_n = start + tl.arange(0, BLOCK_N)
            n_ok = offs_n < S
            koff = b * skb + (h // G) * skh + offs_n[:, None] * skt + offs_d[None, :] * skd
            kmask = n_ok[:, None] & (offs_d[None, :] < D)
            k1 = tl.load(K1 + koff, mask=kmask, other=0.0)
            k2 = tl.load(K2 + koff, mask=kmask, other=0.0)
            v = tl.load(V + b * svb + (h // G) * svh + offs_n[:, None] * svt + offs_dv[None, :] * svd,
                        mask=n_ok[:, None] & (offs_dv[None, :] < DV), other=0.0).to(tl.float32)
            s1 = tl.dot(q1, tl.trans(k1), input_precision="ieee")
            s2 = tl.dot(q2, tl.trans(k2), input_precision="ieee")
            dlt = (offs_m + (S - T))[:, None] - offs_n[None, :]
            inside = dlt < W
            s = tl.where(inside, s1, s2) * scale
            ok = (dlt >= 0) & m_ok[:, None] & n_ok[None, :]
            p = tl.where(ok, tl.exp(tl.where(ok, s - lse[:, None], 0.0)), 0.0)
            dp = tl.dot(do, tl.trans(v), input_precision="ieee")
            ds = p * (dp - delta[:, None]) * scale
            dq1 += tl.dot(tl.where(inside, ds, 0.0), k1, input_precision="ieee")
            dq2 += tl.dot(tl.where(inside, 0.0, ds), k2, input_precision="ieee")
        base_q = bh * T * D + offs_m[:, None] * D + offs_d[None, :]
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


def _blocks(T: int, S: int, D: int, DV: int) -> dict[str, int]:
    return {"BLOCK_M": min(64, max(16, pow2(T))), "BLOCK_N": min(64, max(16, pow2(S))),
            "BLOCK_D": max(16, pow2(D)), "BLOCK_DV": max(16, pow2(DV))}


class _ReropeAttention(torch.autograd.Function):
    """Attention over the four rotated float32 operands; backward: dV, dK1, dK2 per key block and dQ1, dQ2 per query
    block from the saved log-sum-exp (flash-attention style), the rotations' VJPs left to the RoPE kernel's autograd."""

    @staticmethod
    def forward(ctx: Any, q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, v: torch.Tensor,
                cfg: tuple[int, float, torch.dtype]) -> torch.Tensor:
        window, sc, dtype = cfg
        B, H, T, D = q1.shape
        S, DV = k1.shape[-2], v.shape[-1]
        o = torch.empty((B, H, T, DV), dtype=dtype, device=q1.device)
        lse = torch.empty((B * H, T), dtype=torch.float32, device=q1.device)
        bl = _blocks(T, S, D, DV)
        G = H // k1.shape[1]
        launch(_rerope_fwd, (triton.cdiv(T, bl["BLOCK_M"]), B * H), q1, q2, k1, k2, v, o, lse, *q1.stride(),
               *k1.stride(), *v.stride(), *o.stride(), H, G, T, S, window, D, DV, sc, EMULATE=interpreting(), **bl)
        ctx.save_for_backward(q1, q2, k1, k2, v, o, lse)
        ctx.cfg = cfg
        return o

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor) -> tuple[Any, ...]:
        q1, q2, k1, k2, v, o, lse = ctx.saved_tensors
        window, sc, _ = ctx.cfg
        B, H, T, D = q1.shape
        S, DV = k1.shape[-2], v.shape[-1]
        do = do.contiguous()
        delta = (do.float() * o.float()).sum(-1).reshape(B * H, T).contiguous()
        f32 = {"dtype": torch.float32, "device": q1.device}
        HKV = k1.shape[1]
        G = H // HKV
        dk1, dk2 = torch.empty((B, HKV, S, D), **f32), torch.empty((B, HKV, S, D), **f32)
        dv = torch.empty((B, HKV, S, DV), **f32)
        dq1, dq2 = torch.empty((B, H, T, D), **f32), torch.empty((B, H, T, D), **f32)
        bl = _blocks(T, S, D, DV)
        strides = (*q1.stride(), *k1.stride(), *v.stride(), *do.stride())
        launch(_rerope_bwd_dkdv, (triton.cdiv(S, bl["BLOCK_N"]), B * HKV), q1, q2, k1, k2, v, do, lse, delta, dk1,
               dk2, dv, *strides, HKV, G, T, S, window, D, DV, sc, **bl)
        launch(_rerope_bwd_dq, (triton.cdiv(T, bl["BLOCK_M"]), B * H), q1, q2, k1, k2, v, do, lse, delta, dq1, dq2,
               *strides, H, G, T, S, window, D, DV, sc, **bl)
        return dq1, dq2, dk1, dk2, dv.to(v.dtype), None
