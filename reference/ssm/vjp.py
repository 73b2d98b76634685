"""Gold VJPs (reverse-mode gradients) of the state-space ops: SSD, the selective scan and the S4D kernel (float64).

Each function takes the forward inputs and the cotangents of the outputs and returns the gradient of
``<cotangent, output>`` with respect to every (present) input, in the input's layout.  Complex parameters follow
PyTorch's convention for a real loss: the gradient of a complex ``P = P_re + i P_im`` is ``dL/dP_re + i dL/dP_im``,
so for a holomorphic step ``w = f(p)`` the chain rule reads ``g_p = g_w * conj(f'(p))`` and a real input that feeds
a complex expression receives the real part.

* :func:`ssd_vjp` — SSD (Mamba-2, :mod:`veriformer.reference.ssm.ssd`).  SSD is simple-GLA linear attention with
  q = C, k = B, v = X, log-gate g = A, scale 1 and the state transposed (H [p, n] = S^T), so the gradient is
  :func:`veriformer.reference.linear_attention_vjp` in that layout (float64 or mpmath backend).
* :func:`selective_scan_vjp` — mamba ``selective_scan_ref`` (:mod:`veriformer.reference.ssm.selective_scan`) by
  the reverse-time adjoint recurrence ``lambda_t = conj(a_{t+1}) lambda_{t+1} + dL/dx_t|_t`` (float64).
* :func:`s4d_kernel_vjp` — the S4D ZOH Vandermonde kernel (:func:`veriformer.reference.s4d_kernel`), gradients
  of log_dt and of the real and imaginary parts of A, B, C (float64).

``absolute=True`` (all three) returns the *summand masses* instead of the gradients: every factor of every
product in the backward pass is replaced by its absolute value (decays e^{dt A} by their modulus, forward
states by the scan run on absolute values), so each entry is the sum of |summands| of that gradient entry.
``veriformer.properties.ssm.op`` uses it for the rounding floors of ``check(grad=True)``.

Sources: Gu et al. 2022 (S4D, arXiv 2206.11893); Gu & Dao 2023 (Mamba) appendix (the scan backward:
reverse scan of the adjoint); Dao & Gu 2024 (Mamba-2); mamba ``selective_scan_interface.py::selective_scan_ref``
and ``ssd_minimal.py``; S4 ``models/s4/s4d.py``; chain rule derived here and checked against central differences
in mpmath by the laws in ``veriformer.properties.ssm.laws_vjp``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from veriformer.reference._validate import InputError, as_float64, require, require_finite, require_shape
from veriformer.reference.backends import F64, Backend
from veriformer.reference.linear_attention import linear_attention_vjp
from veriformer.reference.ssm.s4 import _s4d_inputs, expm1_complex
from veriformer.reference.ssm.selective_scan import _prepare as _scan_prepare
from veriformer.reference.ssm.ssd import _prepare as _ssd_prepare

__all__ = ["s4d_kernel_vjp", "selective_scan_vjp", "ssd_vjp"]


def _cotangent(x: Any, func: str, arg: str, shape: tuple[int, ...], names: str, *,
               allow_complex: bool = False) -> np.ndarray:
    if x is None:
        raise InputError(f"{func}: argument '{arg}' must be an array of shape {names} = {shape} (the cotangent "
                         f"of the output); got None")
    a = as_float64(x, func, arg, ndim=len(shape), allow_complex=allow_complex)
    require_shape(a, func, arg, shape, names)
    require_finite(a, func, arg)
    return a


# -- SSD ---------------------------------------------------------------------------------------------------------


def ssd_vjp(X: Any, A: Any, B: Any, C: Any, grad_y: Any, initial_states: Any = None, grad_final_state: Any = None,
            *, absolute: bool = False, backend: Backend = F64) -> dict[str, np.ndarray]:
    """VJP of SSD ``H_t = e^{a_t} H_{t-1} + x_t B_t^T``, ``y_t = H_t C_t`` (H_{-1} = initial state; layouts of
    :mod:`veriformer.reference.ssm.ssd`: X [b, l, h, p], A [b, l, h] <= 0, B, C [b, l, h, n], states [b, h, p, n]).

    With the decays ``D_ts = exp(sum_{s<k<=t} a_k)`` (t >= s, s = -1 for the initial state), cotangents
    dY [b, l, h, p] (required) and dH [b, h, p, n] of the final state (optional, 0 when None)::

        dX_s = sum_{t>=s} D_ts (C_t . B_s) dY_t + D_{l-1,s} dH B_s
        dB_s = sum_{t>=s} D_ts (dY_t . x_s) C_t + D_{l-1,s} dH^T x_s
        dC_t = sum_{s<=t} D_ts (dY_t . x_s) B_s + D_{t,-1} H_{-1}^T dY_t
        dH_{-1} = sum_t D_{t,-1} dY_t C_t^T + D_{l-1,-1} dH
        dA_r = sum_{t >= r > s} W_ts,   W_ts = D_ts dL/dD_ts = D_ts (C_t . B_s)(dY_t . x_s)  (+ state terms)

    i.e. :func:`linear_attention_vjp` with q = C, k = B, v = X, g = A, scale = 1 and the state transposed.
    Returns ``{"dX", "dA", "dB", "dC"}`` plus ``"dinitial_states"`` when ``initial_states`` is given.
    ``absolute=True``: the summand masses (module docstring).  ``backend``: F64 or MP(dps).
    Source: Dao & Gu 2024 (SSD = masked linear attention); chain rule on the quadratic form (linear_attention_vjp).
    """
    func = "ssd_vjp"
    x, a, bb, cc, h0 = _ssd_prepare(func, X, A, B, C, initial_states)
    b, l, h, p = x.shape
    n = bb.shape[3]
    gy = _cotangent(grad_y, func, "grad_y", (b, l, h, p), "[b, l, h, p]")
    gh = None
    if grad_final_state is not None:
        gh = _cotangent(grad_final_state, func, "grad_final_state", (b, h, p, n), "[b, h, p, n]")
    if absolute:
        x, bb, cc, h0, gy = (np.abs(v) for v in (x, bb, cc, h0, gy))
        gh = None if gh is None else np.abs(gh)
    s0 = None if initial_states is None else np.swapaxes(h0, -1, -2)  # [b, h, n, p] = S0
    d = linear_attention_vjp(cc, bb, x, gy, g=a, scale=1.0, initial_state=s0,
                             grad_final_state=None if gh is None else np.swapaxes(gh, -1, -2), backend=backend)
    out = {"dX": d["dv"], "dA": d["dg"], "dB": d["dk"], "dC": d["dq"]}
    if initial_states is not None:
        out["dinitial_states"] = np.ascontiguousarray(np.swapaxes(d["dinitial_state"], -1, -2))
    return out


# -- selective scan ----------------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def _per_step(p: dict[str, Any], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """B or C per step as [b, d, L, n] (broadcast views)."""
    v = p[name]
    if p[name + "_kind"] == "constant":
        return np.broadcast_to(v[None, :, None, :], shape)
    if p[name + "_kind"] == "variable":  # [b, n, L] -> [b, 1, L, n]
        return np.broadcast_to(np.swapaxes(v, 1, 2)[:, None], shape)
    return np.swapaxes(v, 2, 3)  # grouped, expanded to [b, d, n, L] -> [b, d, L, n]


def _reduce_bc(g: np.ndarray, p: dict[str, Any], name: str, raw: Any) -> np.ndarray:
    """Gradient [b, d, L, n] of the per-step B/C back to the input's layout (sum over what was broadcast)."""
    kind = p[name + "_kind"]
    if kind == "constant":
        out = g.sum(axis=(0, 2))  # [d, n]
    elif kind == "variable":
        out = np.swapaxes(g.sum(axis=1), 1, 2)  # [b, n, L]
    else:
        groups = np.shape(raw)[1]
        bsz, d, L, n = g.shape
        out = np.swapaxes(g.reshape(bsz, groups, d // groups, L, n).sum(axis=2), 2, 3)  # [b, g, n, L]
    if not p["complex"]:
        return np.real(out)
    if kind != "constant" and np.shape(raw)[-1] == 2 * g.shape[2]:  # interleaved (re, im) real input
        inter = np.empty((*out.shape[:-1], 2 * out.shape[-1]))
        both = np.iscomplexobj(out)  # absolute mode passes real masses: both parts get them
        inter[..., 0::2], inter[..., 1::2] = (out.real, out.imag) if both else (out, out)
        return inter
    return out


def selective_scan_vjp(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                       delta_bias: Any = None, delta_softplus: bool = False, grad_out: Any = None,
                       grad_last_state: Any = None, *, absolute: bool = False) -> dict[str, np.ndarray]:
    """VJP of mamba's ``selective_scan_ref`` (layouts and semantics of :mod:`veriformer.reference.ssm.selective_scan`;
    real or complex A; constant [d, n], variable [b, n, L] or grouped [b, g, n, L] B/C, interleaved (re, im) for
    complex A), float64.

    Forward: ``delta' = delta + delta_bias``, ``dl = softplus(delta')`` (or delta'), ``a_t = exp(dl_t A)``,
    ``x_t = a_t x_{t-1} + dl_t u_t B_t``, ``y_t = sum_n x_t C_t`` (2 Re for complex A), ``o = y + D u``,
    ``out = o silu(z)``.  Backward, cotangents ``gout`` [b, d, L] (required) and ``gx`` [b, d, n] of the last state
    (optional; complex for complex A)::

        dz = gout o silu'(z),   silu'(z) = s (1 + z (1 - s)),  s = sigmoid(z);   go = gout silu(z)
        dD = sum_{b,t} go u,    du = go D + dl Re sum_n lambda_t conj(B_t)
        lambda_t = c go_t conj(C_t) + conj(a_{t+1}) lambda_{t+1},  lambda_{L-1} += gx   (c = 2 complex, else 1)
        dC_t = c go_t conj(x_t),   dB_t = lambda_t dl_t u_t,   g(dl A)_t = lambda_t conj(x_{t-1}) conj(a_t)
        dA = sum_{b,t} dl_t g(dl A)_t,   g(dl)_t = Re sum_n [g(dl A)_t conj(A) + lambda_t conj(B_t) u_t]
        ddelta = g(dl) sigmoid(delta') (with softplus; g(dl) without),   ddelta_bias = sum_{b,t} ddelta

    B/C gradients are summed over what the layout broadcasts (b and t for constant, d for variable, the channels
    of a group for grouped).  Returns ``{"du", "ddelta", "dA", "dB", "dC"}`` plus ``"dD"``, ``"dz"``,
    ``"ddelta_bias"`` for the optional inputs that are given; each in its input's layout (real A: real).
    ``absolute=True``: the summand masses.  Source: Gu & Dao 2023 (reverse scan for the backward); mamba
    selective_scan_ref; chain rule derived here, checked by the law ``ssm.selective_scan_vjp_directional``.
    """
    func = "selective_scan_vjp"
    p = _scan_prepare(func, u, delta, A, B, C, D, z, delta_bias)
    require(isinstance(delta_softplus, bool | np.bool_), func, "delta_softplus", "a bool", repr(delta_softplus))
    b, d, L, n, cplx = p["b"], p["d"], p["L"], p["n"], p["complex"]
    gout = _cotangent(grad_out, func, "grad_out", (b, d, L), "[b, d, L]")
    glast = None
    if grad_last_state is not None:
        glast = _cotangent(grad_last_state, func, "grad_last_state", (b, d, n), "[b, d, n]", allow_complex=cplx)
    m: Callable[[Any], Any] = np.abs if absolute else (lambda v: v)
    cj: Callable[[Any], Any] = (lambda v: v) if absolute else np.conj
    re: Callable[[Any], Any] = (lambda v: v) if absolute else np.real

    dpre = p["delta"] + (p["delta_bias"][:, None] if p["delta_bias"] is not None else 0.0)
    if delta_softplus:
        dl, sig = np.logaddexp(0.0, dpre), _sigmoid(dpre)
    else:
        dl, sig = dpre, np.ones_like(dpre)
    shape = (b, d, L, n)
    Af = p["A"]
    a = np.exp(dl[..., None] * Af[None, :, None, :])  # [b, d, L, n]
    uu, Bs, Cs, Au, dlu, a = m(p["u"]), m(_per_step(p, "B", shape)), m(_per_step(p, "C", shape)), m(Af), m(dl), m(a)
    gout = m(gout)
    glast = None if glast is None else m(glast)
    c = 2.0 if cplx else 1.0

    x = np.empty(shape, dtype=np.result_type(a, Bs))  # forward states x_t
    bu = (dlu * uu)[..., None] * Bs
    cur = np.zeros((b, d, n), dtype=x.dtype)
    for t in range(L):
        cur = a[:, :, t] * cur + bu[:, :, t]
        x[:, :, t] = cur
    y = c * re(np.sum(x * Cs, axis=-1))  # [b, d, L]
    out: dict[str, np.ndarray] = {}
    if p["D"] is not None:
        y = y + uu * m(p["D"])[:, None]
    go = gout
    if p["z"] is not None:
        zz = p["z"]
        s = _sigmoid(zz)
        out["dz"] = gout * y * m(s * (1 + zz * (1 - s)))
        go = gout * m(zz * s)

    lam = np.empty(shape, dtype=x.dtype)  # adjoint lambda_t = dL/dx_t
    g_dA = np.empty(shape, dtype=x.dtype)  # gradient of the exponent dl_t A
    acc = np.zeros((b, d, n), dtype=x.dtype) if glast is None else glast.astype(x.dtype)
    from_y = c * go[..., None] * cj(Cs)
    for t in range(L - 1, -1, -1):
        acc = acc + from_y[:, :, t]
        lam[:, :, t] = acc
        prev = x[:, :, t - 1] if t > 0 else np.zeros_like(acc)
        g_dA[:, :, t] = acc * cj(prev) * cj(a[:, :, t])
        acc = acc * cj(a[:, :, t])
    lb = re(np.sum(lam * cj(Bs), axis=-1))  # Re sum_n lambda conj(B): [b, d, L]
    du = dlu * lb
    if p["D"] is not None:
        du = du + go * m(p["D"])[:, None]
        out["dD"] = np.sum(go * uu, axis=(0, 2))
    g_dl = re(np.sum(g_dA * cj(Au)[None, :, None, :], axis=-1)) + lb * uu
    g_pre = g_dl * sig
    dA = np.sum(g_dA * dlu[..., None], axis=(0, 2))
    out.update({"du": du, "ddelta": g_pre, "dA": dA if cplx else np.real(dA),
                "dB": _reduce_bc(lam * (dlu * uu)[..., None], p, "B", B),
                "dC": _reduce_bc(c * go[..., None] * cj(x), p, "C", C)})
    if p["delta_bias"] is not None:
        out["ddelta_bias"] = np.sum(g_pre, axis=(0, 2))
    if absolute:
        out = {k: np.abs(v) for k, v in out.items()}
    return out


# -- S4D kernel --------------------------------------------------------------------------------------------------


def _psi(z: np.ndarray) -> np.ndarray:
    """``psi(z) = z e^z - (e^z - 1) = sum_{k>=2} (k - 1) z^k / k!`` (the numerator of d/dA (e^{dt A} - 1)/A =
    psi(dt A)/A^2): the power series for |z| < 1 (42 terms, remainder < 1e-50), the closed form elsewhere."""
    z = np.asarray(z, dtype=np.complex128)
    small = np.abs(z) < 1.0
    zs = np.where(small, z, 0.0)
    acc = np.zeros_like(zs)
    term = np.ones_like(zs)  # z^k / k!
    for k in range(1, 44):
        term = term * zs / k
        if k >= 2:
            acc = acc + (k - 1) * term
    return np.where(small, acc, z * np.exp(z) - expm1_complex(z))


def s4d_kernel_vjp(log_dt: Any, A: Any, B: Any, C: Any, L: int, grad_k: Any, *,
                   absolute: bool = False) -> dict[str, np.ndarray]:
    """VJP of the S4D ZOH kernel ``K[h, l] = 2 Re sum_n W_n E_nl`` with ``dt = e^{log_dt}``, ``z = dt A``,
    ``F = (e^z - 1)/A``, ``W = C B F``, ``E_nl = e^{l z_n}`` (log_dt [H]; A, B, C [H, N2] complex; K [H, L]).

    With the cotangent gK [H, L] (real, required), ``G1_n = sum_l 2 gK_l conj(E_nl)``,
    ``G2_n = sum_l 2 gK_l l conj(E_nl)``::

        dC = G1 conj(B F),   dB = G1 conj(C F),   gF = G1 conj(C B)
        dA = G2 conj(W) dt + gF conj(psi(z) / A^2)      (dF/dA = psi(z)/A^2, psi(z) = z e^z - (e^z - 1))
        dlog_dt = dt Re sum_n [G2 conj(W) conj(A) + gF conj(e^z)]      (dE/ddt = l A E, dF/ddt = e^z)

    psi is summed as its power series sum_{k>=2} (k-1) z^k/k! for |z| < 1, so the O(z^2) derivative of F is
    formed without the cancellation of dt e^z/A - (e^z - 1)/A^2 (relative error ~ u/|z| that the direct chain
    rule, e.g. torch autograd, incurs).  Complex gradients in PyTorch's convention (dP = dL/dP_re + i dL/dP_im).
    Returns ``{"dlog_dt", "dA", "dB", "dC", "dA_re", "dA_im", "dB_re", "dB_im", "dC_re", "dC_im"}`` (the parts are
    the real and imaginary parts of dA, dB, dC: the gradients of the op's real inputs A_re, A_im, ...).
    ``absolute=True``: the summand masses, with the F terms of dA taken as the direct chain rule's
    |gF| (dt |e^z / A| + |F / A|) (what a kernel that does not expand psi rounds).
    Source: S4 ``models/s4/s4d.py`` (forward); chain rule derived here, checked by the law
    ``ssm.s4d_kernel_vjp_directional``.
    """
    func = "s4d_kernel_vjp"
    ld, a, bb, cc = _s4d_inputs(func, log_dt, A, B, C)
    H = ld.size
    require(isinstance(L, int | np.integer) and L >= 1, func, "L", "an int >= 1", repr(L))
    gk = _cotangent(grad_k, func, "grad_k", (H, int(L)), "[H, L]")
    m: Callable[[Any], Any] = np.abs if absolute else (lambda v: v)
    cj: Callable[[Any], Any] = (lambda v: v) if absolute else np.conj
    re: Callable[[Any], Any] = (lambda v: v) if absolute else np.real

    dt = np.exp(ld)[:, None]  # [H, 1]
    zz = dt * a
    ez = np.exp(zz)
    F = expm1_complex(zz) / a
    W = cc * bb * F
    ls = np.arange(int(L), dtype=np.float64)
    E = np.exp(zz[..., None] * ls)  # [H, N2, L]
    g2 = 2.0 * m(gk)[:, None, :]
    G1 = np.sum(g2 * cj(m(E)), axis=-1)
    G2 = np.sum(g2 * ls * cj(m(E)), axis=-1)
    dC = G1 * cj(m(bb * F))
    dB = G1 * cj(m(cc * F))
    gF = G1 * cj(m(cc * bb))
    gE = G2 * cj(m(W))  # gradient of the exponent l z through the powers, per unit l
    if absolute:
        dA = gE * dt + gF * (dt * m(ez / a) + m(F / a))
    else:
        dA = gE * dt + gF * np.conj(_psi(zz) / a**2)
    dlog = dt[:, 0] * re(np.sum(gE * cj(m(a)) + gF * cj(m(ez)), axis=-1))
    out = {"dlog_dt": np.real(dlog) if not absolute else np.abs(dlog), "dA": dA, "dB": dB, "dC": dC}
    for name, g in (("A", dA), ("B", dB), ("C", dC)):
        out[f"d{name}_re"] = np.abs(g) if absolute else g.real.copy()
        out[f"d{name}_im"] = np.abs(g) if absolute else g.imag.copy()
    return out
