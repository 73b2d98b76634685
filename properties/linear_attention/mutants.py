"""Planted bugs in linear attention: oracle mutants (laws must fail) and kernel mutants (torch callables
that ``check(op="linear_attention")`` must reject)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.linear_attention import naive
from veriformer.properties.linear_attention.strategies import LinearAttentionCase
from veriformer.properties.wrong_answers import DTYPES, QUADRATIC, wrong_answer_mutants
from veriformer.registry import mutant

FAMILY = "linear_attention"

# -- oracle mutants ---------------------------------------------------------------------------------


@mutant("linear_attention.decay_one_step_late", family=FAMILY, replaces="linear_attention_recurrent",
        caught_by=["linear_attention.forms_agree"])
def decay_one_step_late(q: Any, k: Any, v: Any, *, g: Any = None, **kw: Any) -> Any:
    """Recurrence that decays the state with the previous token's gate: S_t = exp(g_{t-1}) S_{t-1} + k_t v_t^T."""
    if g is not None:
        g = np.concatenate([np.zeros_like(np.asarray(g)[:, :1]), np.asarray(g)[:, :-1]], axis=1)
    return ref.linear_attention_recurrent(q, k, v, g=g, **kw)


@mutant("linear_attention.state_leaks_across_batch", family=FAMILY, replaces="linear_attention_recurrent",
        caught_by=["linear_attention.forms_agree"])
def state_leaks(q: Any, k: Any, v: Any, *, g: Any = None, initial_state: Any = None,
                output_final_state: bool = False, **kw: Any) -> Any:
    """The state is not reset between the sequences of a batch: sequence b starts from b-1's final state."""
    if kw.get("normalize"):
        return ref.linear_attention_recurrent(q, k, v, g=g, initial_state=initial_state,
                                              output_final_state=output_final_state, **kw)
    outs, states, carry = [], [], None
    for b in range(np.shape(q)[0]):
        init = initial_state[b:b + 1] if initial_state is not None and carry is None else carry
        o, carry = ref.linear_attention_recurrent(q[b:b + 1], k[b:b + 1], v[b:b + 1],
                                                  g=None if g is None else g[b:b + 1], initial_state=init,
                                                  output_final_state=True, **kw)
        outs.append(o)
        states.append(carry)
    return np.concatenate(outs), (np.concatenate(states) if output_final_state else None)


@mutant("linear_attention.normaliser_missing", family=FAMILY, replaces="linear_attention",
        caught_by=["linear_attention.normalised_is_weighted_average", "linear_attention.forms_agree"])
def normaliser_missing(q: Any, k: Any, v: Any, *, normalize: bool = False, **kw: Any) -> Any:
    """normalize=True returns the numerator only (the division by phi(q_t) . z_t is forgotten)."""
    if normalize and kw.get("scale") is None:
        kw["scale"] = np.shape(q)[-1] ** -0.5
    return ref.linear_attention(q, k, v, **kw)


@mutant("linear_attention.partial_chunk_decays_full_block", family=FAMILY, replaces="linear_attention_chunked",
        caught_by=["linear_attention.final_state_chunked_equals_recurrent"])
def partial_chunk_full_power(q: Any, k: Any, v: Any, *, chunk_size: int, g: Any = None, decay: Any = None,
                             **kw: Any) -> Any:
    """The sequence is zero-padded to a multiple of C and the padded steps still decay the state, so the
    last chunk of length b < C carries lambda^C instead of lambda^b."""
    T = np.shape(q)[1]
    pad = (-T) % chunk_size
    if pad == 0 or decay is None:
        return ref.linear_attention_chunked(q, k, v, chunk_size=chunk_size, g=g, decay=decay, **kw)

    def z(x: Any) -> np.ndarray:
        x = np.asarray(x)
        return np.concatenate([x, np.zeros((x.shape[0], pad, *x.shape[2:]))], axis=1)

    o, S = ref.linear_attention_chunked(z(q), z(k), z(v), chunk_size=chunk_size, g=None if g is None else z(g),
                                        decay=decay, **kw)
    return o[:, :T], S


@mutant("linear_attention.lightning_forms_inverse_decay", family=FAMILY, replaces="linear_attention_chunked",
        caught_by=["linear_attention.lightning_alibi_block_form"])
def inverse_decay(q: Any, k: Any, v: Any, *, chunk_size: int, decay: Any = None, g: Any = None,
                  scale: float | None = None, output_final_state: bool = False, **kw: Any) -> Any:
    """Block form written literally as in the paper: key weights lambda^B Lambda^{-1} K_t (inf * 0 = NaN for
    lambda = 0, overflow for tiny lambda) instead of lambda^(B-j)."""
    if decay is None or g is not None or kw.get("normalize") or not kw.get("causal", True) or \
            kw.get("feature_map", "identity") != "identity" or kw.get("initial_state") is not None:
        return ref.linear_attention_chunked(q, k, v, chunk_size=chunk_size, decay=decay, g=g, scale=scale,
                                            output_final_state=output_final_state, **kw)
    q, k, v = (np.moveaxis(np.asarray(x, np.float64), 1, 2) for x in (q, k, v))
    B, H, T, K = q.shape
    sc = K**-0.5 if scale is None else scale
    lam = np.asarray(decay, np.float64)[None, :, None, None]
    S = np.zeros((B, H, K, v.shape[-1]))
    outs = []
    with np.errstate(all="ignore"):
        for c0 in range(0, T, chunk_size):
            b = min(chunk_size, T - c0)
            i = np.arange(1, b + 1, dtype=np.float64)
            qb, kb, vb = q[:, :, c0:c0 + b], k[:, :, c0:c0 + b], v[:, :, c0:c0 + b]
            Lam = lam ** i[:, None]  # diag(lambda^1..lambda^b) as [1, H, b, 1]
            M = np.tril(lam ** (i[:, None] - i[None, :]))
            outs.append(sc * ((qb @ np.swapaxes(kb, -1, -2)) * M) @ vb + sc * (Lam * qb) @ S)
            S = lam**b * S + np.swapaxes(lam**b * Lam**-1.0 * kb, -1, -2) @ vb
    return np.moveaxis(np.concatenate(outs, axis=2), 1, 2), (S if output_final_state else None)


@mutant("linear_attention.initial_state_ignored", family=FAMILY, replaces="linear_attention_chunked",
        caught_by=["linear_attention.segment_carry"])
def initial_state_ignored(q: Any, k: Any, v: Any, *, initial_state: Any = None, **kw: Any) -> Any:
    """The chunked kernel's USE_INITIAL_STATE flag is not wired: the state always starts at 0."""
    return ref.linear_attention_chunked(q, k, v, **kw)


@mutant("linear_attention.default_scale_one", family=FAMILY, replaces="linear_attention",
        caught_by=["linear_attention.zero_decay_is_plain_linear_attention",
                   "linear_attention.lambda_zero_keeps_current_token"])
def default_scale_one(q: Any, k: Any, v: Any, *, scale: float | None = None, **kw: Any) -> Any:
    """scale=None defaults to 1 instead of K^-0.5 (fla's default)."""
    return ref.linear_attention(q, k, v, scale=1.0 if scale is None else scale, **kw)


@mutant("linear_attention.float32_state", family=FAMILY, replaces="linear_attention",
        caught_by=["linear_attention.mpmath_certificate"])
def float32_state(q: Any, k: Any, v: Any, *, backend: Any = ref.F64, **kw: Any) -> Any:
    """An oracle that rounds its results through float32 (a float32 state accumulator)."""
    o, S = ref.linear_attention(q, k, v, backend=backend, **kw)
    if not backend.is_float64:
        return o, S

    def r(x: Any) -> Any:
        return None if x is None else np.asarray(x, np.float32).astype(np.float64)

    return r(o), r(S)


@mutant("linear_attention.vjp_initial_state_undecayed", family=FAMILY, replaces="linear_attention_vjp",
        caught_by=["linear_attention.vjp_directional_derivative"])
def vjp_undecayed(q: Any, k: Any, v: Any, grad_o: Any, *, initial_state: Any = None, **kw: Any) -> Any:
    """Backward that forgets the decay of the initial state in dq: dq += scale dO S0^T instead of
    scale (d0 (.) dO) S0^T; the dg term of the initial state is dropped as well."""
    out = ref.linear_attention_vjp(q, k, v, grad_o, initial_state=initial_state, **kw)
    if initial_state is None:
        return out
    d0 = ref.linear_attention_vjp(q, k, v, grad_o, initial_state=None, **kw)
    scale = kw.get("scale") or np.shape(q)[-1] ** -0.5
    extra = scale * np.einsum("bthv,bhkv->bthk", np.asarray(grad_o), np.asarray(initial_state))
    out["dq"] = d0["dq"] + extra
    if "dg" in out:
        out["dg"] = d0["dg"]
    return out


# -- kernel mutants (torch callables under check(op="linear_attention")) ----------------------------


def _kw(g: torch.Tensor | None, initial_state: torch.Tensor | None) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if g is not None:
        kw["g"] = g
    if initial_state is not None:
        kw["initial_state"] = initial_state
    return kw


@mutant("linear_attention.kernel_gate_one_step_late", family=FAMILY, op="linear_attention", features={"gate"},
        caught_by=["op:linear_attention"])
def kernel_gate_late(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
                     output_final_state: bool, g: torch.Tensor | None = None) -> Any:
    """Kernel that applies token t's decay after adding k_t v_t^T: S_t = exp(g_t) (S_{t-1} + k_t v_t^T)."""
    if g is None:
        return naive.linear_attention(q, k, v, scale=scale, output_final_state=output_final_state)
    # R_t = S_{t-1} + k_t v_t^T obeys the correct recurrence with the gate shifted one step late
    g_prev = torch.cat([torch.zeros_like(g[:, :1]), g[:, :-1]], dim=1)
    o, S = naive.linear_attention(q, k, v, g=g_prev, scale=scale, output_final_state=True)
    o = o * g.exp()[..., None].to(o.dtype)
    return o, (S * g[:, -1].exp()[..., None, None].to(S.dtype) if output_final_state else None)


@mutant("linear_attention.kernel_ignores_initial_state", family=FAMILY, op="linear_attention",
        features={"initial_state"}, caught_by=["op:linear_attention"])
def kernel_no_init(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float, output_final_state: bool,
                   initial_state: torch.Tensor | None = None) -> Any:
    """Kernel that accepts initial_state but never loads it."""
    return naive.linear_attention(q, k, v, scale=scale, output_final_state=output_final_state)


@mutant("linear_attention.kernel_batch_state_leak", family=FAMILY, op="linear_attention",
        features={"gate", "initial_state"}, caught_by=["op:linear_attention"])
def kernel_batch_leak(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
                      output_final_state: bool, g: torch.Tensor | None = None,
                      initial_state: torch.Tensor | None = None) -> Any:
    """Kernel whose state buffer is indexed by head only: sequence b starts from sequence b-1's final state."""
    outs, states = [], []
    carry = None if initial_state is None else initial_state[:1]
    for b in range(q.shape[0]):
        o, carry = naive.linear_attention(q[b:b + 1], k[b:b + 1], v[b:b + 1], scale=scale, output_final_state=True,
                                          **_kw(None if g is None else g[b:b + 1], carry))
        outs.append(o)
        states.append(carry)
    return torch.cat(outs), (torch.cat(states) if output_final_state else None)


@mutant("linear_attention.kernel_gate_cumsum_in_input_dtype", family=FAMILY, op="linear_attention",
        features={"gate"}, caught_by=["op:linear_attention"], dtypes=("bfloat16",))
def kernel_cumsum_low_precision(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
                                output_final_state: bool, g: torch.Tensor | None = None) -> Any:
    """Kernel that accumulates the log-gates (cumsum) in the input dtype: in bfloat16 G_t loses ~2^-8 |G_t|,
    so exp(G_t - G_s) is off by percents once |G| ~ 10."""
    if g is None:
        return naive.linear_attention(q, k, v, scale=scale, output_final_state=output_final_state)
    return naive.linear_attention(q, k, v, g=g, scale=scale, output_final_state=output_final_state,
                                  gate_dtype=g.dtype)


@mutant("linear_attention.kernel_final_state_misses_last_token", family=FAMILY, op="linear_attention",
        caught_by=["op:linear_attention"])
def kernel_stale_state(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
                       output_final_state: bool) -> Any:
    """Kernel that stores the final state before the last token's update (S_{T-2} instead of S_{T-1})."""
    o, _ = naive.linear_attention(q, k, v, scale=scale, output_final_state=False)
    if not output_final_state:
        return o, None
    if q.shape[1] == 1:
        return o, torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype=q.dtype)
    _, S = naive.linear_attention(q[:, :-1], k[:, :-1], v[:, :-1], scale=scale, output_final_state=True)
    return o, S


@mutant("linear_attention.kernel_scale_applied_twice", family=FAMILY, op="linear_attention",
        caught_by=["op:linear_attention"])
def kernel_scale_twice(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
                       output_final_state: bool) -> Any:
    """Kernel that pre-scales q and also scales the scores (scale^2 overall)."""
    return naive.linear_attention(q * scale, k, v, scale=scale, output_final_state=output_final_state)


# -- wrong answers at LLM lengths (veriformer.properties.wrong_answers) and realistic kernel bugs there --------

_LONG = [LinearAttentionCase(B=1, T=n, H=1, K=8, V=8, gate=0.05, output_final_state=True, seed=n) for n in QUADRATIC]
wrong_answer_mutants("linear_attention", family=FAMILY, seq_axis=1, cases=_LONG)


@mutant("linear_attention.drops_carried_state_at_half", family=FAMILY, op="linear_attention",
        caught_by=["op:linear_attention"], features={"gate"}, dtypes=DTYPES, cases=_LONG)
def la_drops_state(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                   scale: float, initial_state: torch.Tensor | None = None,
                   output_final_state: bool = False) -> Any:
    """A chunked kernel that loses its carried state at T/2: the second half restarts from zero."""
    h = q.shape[1] // 2
    kw = {"scale": scale, "output_final_state": output_final_state}
    o1, _ = naive.linear_attention(q[:, :h], k[:, :h], v[:, :h], g=None if g is None else g[:, :h], **kw,
                                 initial_state=initial_state)
    o2, S = naive.linear_attention(q[:, h:], k[:, h:], v[:, h:], g=None if g is None else g[:, h:], **kw)
    return torch.cat([o1, o2], dim=1), S


@mutant("linear_attention.state_in_input_dtype", family=FAMILY, op="linear_attention",
        caught_by=["op:linear_attention"], features={"gate"}, dtypes=("bfloat16",),
        cases=[LinearAttentionCase(B=1, T=n, H=1, K=8, V=8, output_final_state=True, seed=n) for n in QUADRATIC])
def la_state_low_precision(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, g: torch.Tensor | None = None,
                           scale: float, initial_state: torch.Tensor | None = None,
                           output_final_state: bool = False) -> Any:
    """The token recurrence with its state S (decayed, plus k v^T) stored in the input dtype (bf16) at every step;
    outputs read in float32.  Without decay the state sums every token, and its per-step roundings accumulate
    (with a mild decay they are forgotten and the result is as accurate as the naive bf16 form)."""
    qh, kh, vh = (x.transpose(1, 2).float() for x in (q, k, v))
    S = torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype=q.dtype)
    if initial_state is not None:
        S = initial_state.to(q.dtype)
    outs = []
    for t in range(q.shape[1]):
        Sf = S.float() * (1.0 if g is None else g[:, t].float().exp()[..., None, None])
        S = (Sf + kh[:, :, t, :, None] * vh[:, :, t, None, :]).to(q.dtype)  # the bug: the state rounded each step
        outs.append((qh[:, :, t, :, None] * S.float()).sum(-2) * scale)
    o = torch.stack(outs, dim=2).transpose(1, 2).to(q.dtype)
    return o, (S if output_final_state else None)
