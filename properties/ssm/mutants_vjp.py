"""Planted bugs in the state-space VJPs: oracle mutants (the directional-derivative laws of
:mod:`veriformer.properties.ssm.laws_vjp` must fail) and kernel mutants with a wrong backward (correct forward)
that ``check(op=..., grad=True)`` must reject."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from veriformer import reference as ref
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.reference.ssm import vjp as _sv
from veriformer.registry import mutant

FAMILY = "ssm"
_SCAN_ALL = ("D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC", "grouped_BC")

# -- oracle mutants: SSD -----------------------------------------------------------------------------------------


@mutant("ssm.ssd_vjp_dA_exclusive_cumsum", family=FAMILY, replaces="ssd_vjp", caught_by=["ssm.ssd_vjp_directional"])
def ssd_dA_exclusive(*args: Any, **kw: Any) -> dict[str, np.ndarray]:
    """dA as an exclusive reverse cumulative sum (dA_r = sum_{t > r} of the per-step terms instead of t >= r):
    every decay gradient is taken from the next step, the last one is 0."""
    out = ref.ssd_vjp(*args, **kw)
    dA = np.zeros_like(out["dA"])
    dA[:, :-1] = out["dA"][:, 1:]
    return {**out, "dA": dA}


@mutant("ssm.ssd_vjp_final_state_cotangent_dropped", family=FAMILY, replaces="ssd_vjp",
        caught_by=["ssm.ssd_vjp_directional"])
def ssd_no_final_cot(X: Any, A: Any, B: Any, C: Any, grad_y: Any, initial_states: Any = None,
                     grad_final_state: Any = None, **kw: Any) -> dict[str, np.ndarray]:
    """The cotangent of the final state is ignored (the backward starts from a zero state adjoint)."""
    return ref.ssd_vjp(X, A, B, C, grad_y, initial_states, None, **kw)


# -- oracle mutants: selective scan ------------------------------------------------------------------------------


@mutant("ssm.selective_scan_vjp_softplus_derivative_missing", family=FAMILY, replaces="selective_scan_vjp",
        caught_by=["ssm.selective_scan_vjp_directional"])
def scan_no_softplus_grad(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                          delta_bias: Any = None, delta_softplus: bool = False, **kw: Any) -> dict[str, np.ndarray]:
    """ddelta is the gradient of the softplus output, not of its input: the factor sigmoid(delta + bias) is
    missing (ddelta_bias sums the same wrong terms)."""
    if not delta_softplus:
        return ref.selective_scan_vjp(u, delta, A, B, C, D, z, delta_bias, False, **kw)
    pre = np.asarray(delta, dtype=np.float64) + (0.0 if delta_bias is None else np.asarray(delta_bias)[:, None])
    out = ref.selective_scan_vjp(u, np.logaddexp(0.0, pre), A, B, C, D, z, None, False, **kw)
    if delta_bias is not None:
        out["ddelta_bias"] = out["ddelta"].sum(axis=(0, 2))
    return out


@mutant("ssm.selective_scan_vjp_adjoint_off_by_one", family=FAMILY, replaces="selective_scan_vjp",
        caught_by=["ssm.selective_scan_vjp_directional"])
def scan_adjoint_off_by_one(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                            delta_bias: Any = None, delta_softplus: bool = False, grad_out: Any = None,
                            grad_last_state: Any = None, absolute: bool = False) -> dict[str, np.ndarray]:
    """Adjoint recurrence off by one step: lambda_t = C_t go_t + a_t lambda_{t+1} (the current step's decay
    instead of the next one's, a_{t+1}); real A, everything else as the reference."""
    kw = {"D": D, "z": z, "delta_bias": delta_bias, "delta_softplus": delta_softplus, "grad_out": grad_out,
          "grad_last_state": grad_last_state}
    good = ref.selective_scan_vjp(u, delta, A, B, C, absolute=absolute, **kw)
    if absolute or np.iscomplexobj(np.asarray(A)):
        return good
    p = _sv._scan_prepare("mutant", u, delta, A, B, C, D, z, delta_bias)
    b, d, L, n = p["b"], p["d"], p["L"], p["n"]
    dpre = p["delta"] + (p["delta_bias"][:, None] if p["delta_bias"] is not None else 0.0)
    dl, sig = (np.logaddexp(0.0, dpre), _sv._sigmoid(dpre)) if delta_softplus else (dpre, np.ones_like(dpre))
    shape = (b, d, L, n)
    a = np.exp(dl[..., None] * p["A"][None, :, None, :])
    Bs, Cs = _sv._per_step(p, "B", shape), _sv._per_step(p, "C", shape)
    x = np.empty(shape)
    cur = np.zeros((b, d, n))
    for t in range(L):
        cur = a[:, :, t] * cur + (dl * p["u"])[:, :, t, None] * Bs[:, :, t]
        x[:, :, t] = cur
    go = np.asarray(grad_out, dtype=np.float64)
    if p["z"] is not None:
        go = go * p["z"] * _sv._sigmoid(p["z"])
    lam, g_dA = np.empty(shape), np.empty(shape)
    acc = np.zeros((b, d, n)) if grad_last_state is None else np.asarray(grad_last_state, dtype=np.float64)
    for t in range(L - 1, -1, -1):
        acc = a[:, :, t] * acc + go[:, :, t, None] * Cs[:, :, t]  # bug: a_t, not a_{t+1}
        lam[:, :, t] = acc
        prev = x[:, :, t - 1] if t > 0 else 0.0
        g_dA[:, :, t] = acc * prev * a[:, :, t]
    lb = np.sum(lam * Bs, axis=-1)
    out = dict(good)
    out["du"] = dl * lb + (go * p["D"][:, None] if p["D"] is not None else 0.0)
    out["ddelta"] = (np.sum(g_dA * p["A"][None, :, None, :], axis=-1) + lb * p["u"]) * sig
    out["dA"] = np.sum(g_dA * dl[..., None], axis=(0, 2))
    out["dB"] = _sv._reduce_bc(lam * (dl * p["u"])[..., None], p, "B", B)
    if p["delta_bias"] is not None:
        out["ddelta_bias"] = out["ddelta"].sum(axis=(0, 2))
    return out


# -- oracle mutants: S4D kernel ----------------------------------------------------------------------------------


@mutant("ssm.s4d_kernel_vjp_conjugate_convention", family=FAMILY, replaces="s4d_kernel_vjp",
        caught_by=["ssm.s4d_kernel_vjp_directional"])
def s4d_conj(*args: Any, **kw: Any) -> dict[str, np.ndarray]:
    """Complex gradients in the conjugate convention (dL/dRe - i dL/dIm): the imaginary parts of dA, dB, dC have
    the wrong sign."""
    out = ref.s4d_kernel_vjp(*args, **kw)
    if kw.get("absolute"):
        return out
    return {**out, **{f"d{n}_im": -out[f"d{n}_im"] for n in "ABC"}}


@mutant("ssm.s4d_kernel_vjp_zoh_A_term_dropped", family=FAMILY, replaces="s4d_kernel_vjp",
        caught_by=["ssm.s4d_kernel_vjp_directional"])
def s4d_no_psi(log_dt: Any, A: Any, B: Any, C: Any, L: int, grad_k: Any, **kw: Any) -> dict[str, np.ndarray]:
    """dA forgets that the ZOH input map (e^{dt A} - 1)/A depends on A outside the exponent (the -(e^z - 1)/A^2
    term): dA uses dt e^z/A for dF/dA."""
    out = ref.s4d_kernel_vjp(log_dt, A, B, C, L, grad_k, **kw)
    if kw.get("absolute"):
        return out
    a, bb, cc = (np.asarray(v, dtype=np.complex128) for v in (A, B, C))
    dt = np.exp(np.asarray(log_dt, dtype=np.float64))[:, None]
    zz = dt * a
    E = np.exp(zz[..., None] * np.arange(L))
    G1 = np.sum(2.0 * np.asarray(grad_k)[:, None, :] * np.conj(E), axis=-1)
    gF = G1 * np.conj(cc * bb)
    F_ = _sv.expm1_complex(zz) / a
    dA = out["dA"] + gF * np.conj(F_ / a)  # removes -gF conj(F / A) from gF conj(psi / A^2)
    return {**out, "dA": dA, "dA_re": dA.real.copy(), "dA_im": dA.imag.copy()}


# -- kernel mutants: a correct forward with a wrong backward (check(grad=True) must reject) ----------------------


@mutant("ssm.kernel_scan_softplus_straight_through", family=FAMILY, op="selective_scan",
        features=("delta_softplus", "delta_bias", "variable_BC"), caught_by=["op:selective_scan"], grad=True)
def kernel_scan_st(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                   delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False) -> Any:
    """softplus applied with a straight-through backward (derivative 1 instead of sigmoid): the forward is
    exact, ddelta and ddelta_bias are wrong."""
    if delta_softplus:
        w = torch.float64 if delta.dtype == torch.float64 else torch.float32
        d = delta.to(w) + (delta_bias.to(w)[:, None] if delta_bias is not None else 0.0)
        d = d + (F.softplus(d) - d).detach()  # bug: the backward sees the identity
        return naive_ssm.selective_scan_ref(u, d, A, B, C, D, z, None, False, return_last_state)
    return naive_ssm.selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, False, return_last_state)


@mutant("ssm.kernel_ssd_chunk_decay_detached", family=FAMILY, op="ssd_scan", features=("initial_states",),
        caught_by=["op:ssd_scan"], grad=True)
def kernel_ssd_detached(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                        initial_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """mamba's ssd_minimal_discrete with the state-to-output decay e^{cumsum a} of each chunk treated as a
    constant in the backward (detached): the forward is exact, dA misses the state-passing terms."""
    b, l, h, p = X.shape
    c = l // chunk_size
    Xc, Bc, Cc = (t.reshape(b, c, chunk_size, h, -1) for t in (X, B, C))
    Ac = A.reshape(b, c, chunk_size, h).permute(0, 3, 1, 2)
    A_cs = torch.cumsum(Ac, dim=-1)
    Y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", Cc, Bc, torch.exp(naive_ssm._segsum(Ac)), Xc)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", Bc, torch.exp(A_cs[..., -1:] - A_cs), Xc)
    init = torch.zeros_like(states[:, :1]) if initial_states is None else initial_states[:, None]
    states = torch.cat([init, states], dim=1)
    decay_chunk = torch.exp(naive_ssm._segsum(F.pad(A_cs[..., -1], (1, 0))))
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final = new_states[:, :-1], new_states[:, -1]
    Y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", Cc, states, torch.exp(A_cs).detach())  # bug: detached
    return (Y_diag + Y_off).reshape(b, l, h, p), final


@mutant("ssm.kernel_s4d_dt_detached_in_input_map", family=FAMILY, op="s4d_kernel", caught_by=["op:s4d_kernel"],
        grad=True)
def kernel_s4d_dt(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """dt treated as a constant in the ZOH input map (e^{dt A} - 1)/A B (detached) but not in the powers: the
    forward is exact, dlog_dt and dA miss that term."""
    w = torch.float64 if log_dt.dtype == torch.float64 else torch.float32
    cw = torch.complex128 if w == torch.float64 else torch.complex64
    A, B, C = A.to(cw), B.to(cw), C.to(cw)
    dt = torch.exp(log_dt.to(w))
    dtA = A * dt[:, None]
    Cb = C * B * (torch.exp(A * dt.detach()[:, None]) - 1.0) / A
    K = torch.einsum("hn,hnl->hl", Cb, torch.exp(dtA.unsqueeze(-1) * torch.arange(L, dtype=w)))
    return (2 * K.real).to(log_dt.dtype)
