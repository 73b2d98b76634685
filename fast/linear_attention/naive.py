"""Naive torch baselines of the linear-attention family (what a careful plain-torch user writes).

* :func:`linear_attention` — op ``linear_attention`` (fla simple-GLA convention), quadratic masked form.
* :func:`linear_attention_recurrent_fp32` / :func:`linear_attention_chunked` — alternative plain-torch
  implementations checked by the report (fla's naive recurrent and chunk references, re-derived).
"""

from __future__ import annotations

import torch

__all__ = ["linear_attention", "linear_attention_chunked", "linear_attention_recurrent_fp32"]


def _segment_decay(g: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """From log-gates g [B, T, H]: the decay matrix D [B, H, T, T] (D_ts = exp(G_t - G_s), s <= t) and the
    initial-state decay d0 [B, H, T] = exp(G_t), with G the inclusive cumsum, all computed in ``dtype``."""
    G = g.to(dtype).transpose(1, 2).cumsum(-1)
    diff = G[..., :, None] - G[..., None, :]
    T = g.shape[1]
    tril = torch.ones(T, T, dtype=torch.bool, device=g.device).tril()
    D = torch.where(tril, diff, torch.full((), float("-inf"), dtype=dtype, device=g.device)).exp()
    return D, G.exp()


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                     scale: float | None = None, initial_state: torch.Tensor | None = None,
                     output_final_state: bool = False,
                     gate_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Causal linear attention with log-gates, quadratic form, in the input dtype.

    q, k [B, T, H, K], v [B, T, H, V], g [B, T, H] (<= 0), initial_state [B, H, K, V] -> (o [B, T, H, V],
    final_state [B, H, K, V] or None).  ``o = (scale Q K^T (.) D) V + scale (Q (.) d0) S0`` with the decay
    matrix ``D_ts = exp(G_t - G_s)`` from the cumulative log-gates G; the final state is
    ``(K (.) exp(G_T - G))^T V + exp(G_T) S0``.  Choices of a careful user: the gate cumsum and the
    exponentials in float32 (``gate_dtype``; log-space gates lose everything in bfloat16), cast to the
    input dtype; every product and matmul in the input dtype.
    Source: fla ``naive_parallel_simple_gla`` (which computes everything in float32); Qin et al. 2024.
    """
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else scale
    dt = q.dtype
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if g is not None:
        D, d0 = _segment_decay(g, gate_dtype)
        D, d0 = D.to(dt), d0.to(dt)
    else:
        D = torch.ones(T, T, dtype=dt, device=q.device).tril().expand(B, H, T, T)
        d0 = torch.ones(B, H, T, dtype=dt, device=q.device)
    A = (qh @ kh.transpose(-1, -2)) * scale * D
    o = A @ vh
    if initial_state is not None:
        o = o + ((qh * d0[..., None]) * scale) @ initial_state.to(dt)
    S = None
    if output_final_state:
        w = D[..., T - 1, :]  # exp(G_T - G_s)
        S = (kh * w[..., None]).transpose(-1, -2) @ vh
        if initial_state is not None:
            S = S + d0[..., T - 1, None, None] * initial_state.to(dt)
    return o.transpose(1, 2), S


def linear_attention_recurrent_fp32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                                    g: torch.Tensor | None = None, scale: float | None = None,
                                    initial_state: torch.Tensor | None = None,
                                    output_final_state: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token recurrence ``S = exp(g_t) S + k_t v_t^T``, ``o_t = scale q_t^T S`` with everything upcast to
    float32 (float64 input stays float64) and the results cast back (fla ``naive_recurrent_simple_gla``,
    which however returns a float32 state; here the state is cast to the input dtype)."""
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else scale
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    qh, kh, vh = (x.transpose(1, 2).to(work) for x in (q, k, v))
    S = torch.zeros(B, H, K, v.shape[3], dtype=work, device=q.device)
    if initial_state is not None:
        S = S + initial_state.to(work)
    outs = []
    for t in range(T):
        if g is not None:
            S = S * g[:, t].to(work).exp()[..., None, None]
        S = S + kh[:, :, t, :, None] * vh[:, :, t, None, :]
        outs.append((qh[:, :, t, :, None] * S).sum(-2) * scale)
    o = torch.stack(outs, dim=2).transpose(1, 2).to(q.dtype)
    return o, (S.to(q.dtype) if output_final_state else None)


def linear_attention_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                             scale: float | None = None, initial_state: torch.Tensor | None = None,
                             output_final_state: bool = False,
                             chunk_size: int = 16) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked form (Lightning Attention-2 / fla ``chunk_simple_gla``) in plain torch: per chunk, intra-chunk
    quadratic with the in-chunk decay matrix and ``q exp(G_i) S`` from the carried state, then
    ``S = exp(G_b) S + (k exp(G_b - G_j))^T v``.  Matmuls in the input dtype, gates and the state in
    float32 (the state is what a kernel keeps in registers), outputs cast to the input dtype."""
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else scale
    dt = q.dtype
    sdt = torch.float64 if dt == torch.float64 else torch.float32
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    S = torch.zeros(B, H, K, v.shape[3], dtype=sdt, device=q.device)
    if initial_state is not None:
        S = S + initial_state.to(sdt)
    gh = None if g is None else g.to(sdt).transpose(1, 2)
    outs = []
    for c0 in range(0, T, chunk_size):
        b = min(chunk_size, T - c0)
        qb, kb, vb = qh[:, :, c0:c0 + b], kh[:, :, c0:c0 + b], vh[:, :, c0:c0 + b]
        tril = torch.ones(b, b, dtype=torch.bool, device=q.device).tril()
        if gh is not None:
            G = gh[:, :, c0:c0 + b].cumsum(-1)
            D = torch.where(tril, G[..., :, None] - G[..., None, :], torch.full((), float("-inf"), dtype=sdt)).exp()
            qd, kd, sd = G.exp(), (G[..., -1:] - G).exp(), G[..., -1].exp()[..., None, None]
        else:
            D = tril.to(sdt).expand(B, H, b, b)
            qd = kd = torch.ones(B, H, b, dtype=sdt, device=q.device)
            sd = torch.ones((), dtype=sdt)
        A = (qb @ kb.transpose(-1, -2)) * scale * D.to(dt)
        inter = ((qb.to(sdt) * qd[..., None]) * scale) @ S
        outs.append((A @ vb).to(sdt) + inter)
        S = sd * S + (kb.to(sdt) * kd[..., None]).transpose(-1, -2) @ vb.to(sdt)
    o = torch.cat(outs, dim=2).transpose(1, 2).to(dt)
    return o, (S.to(dt) if output_final_state else None)
