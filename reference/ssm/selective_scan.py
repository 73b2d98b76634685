"""Selective scan (Mamba): the semantics of mamba's ``selective_scan_ref``, sequential and by associative scan.

Layouts (mamba ``mamba_ssm/ops/selective_scan_interface.py::selective_scan_ref``, read at commit 01887ed):
u, delta [b, d, L]; A [d, n] real or complex; B, C either constant [d, n], variable [b, n, L] or grouped
[b, g, n, L] (g divides d; channel c uses group c // (d/g), i.e. ``repeat(B, "B G N L -> B (G H) N L")``);
for complex A a variable B/C is given as a *real* tensor [..., n, 2L] holding interleaved (re, im) pairs
(``view_as_complex(rearrange(B, "... (L two) -> ... L two"))``), or directly as a complex array here;
D [d]; z [b, d, L]; delta_bias [d].

Recurrence (x_{-1} = 0, state x [b, d, n]):
``delta <- softplus(delta + delta_bias)`` (bias added first; softplus only with the flag),
``x_t = exp(delta_t A) * x_t-1 + delta_t B_t u_t`` (**Bd = delta B**, not the exact ZOH (delta A)^-1 (e^{delta A} - I)
delta B: they differ by O(delta^2)), ``y_t = sum_n x_t C_t`` (``2 Re`` of it for complex A), ``out = y + D u``,
``out = out * silu(z)``.  ``return_last_state`` also returns x_{L-1} [b, d, n] (complex for complex A).
The reference computes in float32 and returns ``out`` in the input dtype (its last state stays float32).
softplus here is the exact log(1 + e^x) (torch's ``F.softplus`` returns x for x > 20; the difference
log1p(e^-x) < 2.1e-9 is below float32 resolution at that magnitude).

Associative form: h_t = a_t h_t-1 + b_t with the combine (a, b) . (a', b') = (a' a, a' b + b') (earlier element
on the left); an inclusive Hillis-Steele scan gives every h_t, equal to the loop up to rounding (not bitwise).

Sources: Gu & Dao 2023 (Mamba, arXiv 2312.00752); mamba
``selective_scan_interface.py::selective_scan_ref``; Blelloch 1990 (prefix sums).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = ["scan_combine", "selective_scan", "selective_scan_assoc"]


def _prepare(func: str, u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any, z: Any,
             delta_bias: Any) -> dict[str, Any]:
    uu = as_float64(u, func, "u", ndim=3)
    b, d, L = uu.shape
    require(L >= 1 and b >= 1 and d >= 1, func, "u", "of shape [b, d, L] with b, d, L >= 1 (no empty sequence)",
            f"shape {uu.shape}")
    dl = as_float64(delta, func, "delta", ndim=3)
    require(dl.shape == uu.shape, func, "delta", f"of shape [b, d, L] = {uu.shape}", f"shape {dl.shape}")
    aa = as_float64(A, func, "A", ndim=2, allow_complex=True)
    require(aa.shape[0] == d, func, "A", f"of shape [d={d}, n]", f"shape {aa.shape}")
    n = aa.shape[1]
    cplx = np.iscomplexobj(aa)
    out = {"u": uu, "delta": dl, "A": aa, "b": b, "d": d, "L": L, "n": n, "complex": cplx}
    for name, val in (("B", B), ("C", C)):
        v = as_float64(val, func, name, ndim=(2, 3, 4), allow_complex=True)
        if v.ndim == 2:
            require(v.shape == (d, n), func, name, f"of shape [d, n] = ({d}, {n}) (constant)", f"shape {v.shape}")
            require(cplx or not np.iscomplexobj(v), func, name, "real when A is real", "a complex array")
            out[name] = v.astype(np.complex128) if cplx else v
            out[name + "_kind"] = "constant"
            continue
        lead = (b, n) if v.ndim == 3 else (b, v.shape[1], n)
        if v.ndim == 4:
            require(v.shape[1] >= 1 and d % v.shape[1] == 0, func, name, f"grouped [b, g, n, L] with g dividing d={d}",
                    f"shape {v.shape}")
        if cplx and not np.iscomplexobj(v):
            require(v.shape == (*lead, 2 * L), func, name,
                    f"of shape {(*lead, 2 * L)} (interleaved re/im for complex A)", f"shape {v.shape}")
            v = v[..., 0::2] + 1j * v[..., 1::2]
        else:
            require(v.shape == (*lead, L), func, name, f"of shape {(*lead, L)}", f"shape {v.shape}")
            require(cplx or not np.iscomplexobj(v), func, name, "real when A is real", "a complex array")
        if v.ndim == 4:
            v = np.repeat(v, d // v.shape[1], axis=1)  # [b, d, n, L]
        out[name] = v
        out[name + "_kind"] = "variable" if v.ndim == 3 else "grouped"
    if D is not None:
        dd = as_float64(D, func, "D", ndim=1)
        require(dd.shape == (d,), func, "D", f"of shape [d] = ({d},)", f"shape {dd.shape}")
    out["D"] = None if D is None else dd
    if z is not None:
        zz = as_float64(z, func, "z", ndim=3)
        require(zz.shape == uu.shape, func, "z", f"of shape [b, d, L] = {uu.shape}", f"shape {zz.shape}")
    out["z"] = None if z is None else zz
    if delta_bias is not None:
        db = as_float64(delta_bias, func, "delta_bias", ndim=1)
        require(db.shape == (d,), func, "delta_bias", f"of shape [d] = ({d},)", f"shape {db.shape}")
    out["delta_bias"] = None if delta_bias is None else db
    for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias"):
        if out[k] is not None:
            require_finite(out[k], func, k)
    return out


def _coeffs(xp: Backend, p: dict[str, Any], delta_softplus: bool) -> tuple[Any, Any, Any]:
    """(a [b, d, L, n], bu [b, d, L, n], C per step [b, d, L, n]) of h_t = a_t h_t-1 + bu_t."""
    dl = xp.asarray(p["delta"])
    if p["delta_bias"] is not None:
        dl = dl + xp.asarray(p["delta_bias"])[:, None]
    if delta_softplus:
        if xp.is_float64:
            dl = np.logaddexp(0.0, dl)
        else:
            dl = xp.log(1 + xp.exp(dl))
    A = xp.asarray(p["A"])
    a = xp.exp(dl[..., None] * A[None, :, None, :])
    u = xp.asarray(p["u"])

    def per_step(name: str) -> Any:
        v = xp.asarray(p[name])
        if p[name + "_kind"] == "constant":
            return np.broadcast_to(v[None, :, None, :], a.shape)
        if p[name + "_kind"] == "variable":  # [b, n, L] -> [b, 1, L, n]
            return np.broadcast_to(np.swapaxes(v, 1, 2)[:, None], a.shape)
        return np.swapaxes(v, 2, 3)  # [b, d, n, L] -> [b, d, L, n]

    bu = (dl * u)[..., None] * per_step("B")
    return a, bu, per_step("C")


def _finish(xp: Backend, p: dict[str, Any], h: Any, Cs: Any, return_last_state: bool) -> Any:
    y = xp.sum(h * Cs, axis=-1)  # [b, d, L]
    if p["complex"]:
        y = 2 * xp.real(y)
    u = xp.asarray(p["u"])
    if p["D"] is not None:
        y = y + u * xp.asarray(p["D"])[:, None]
    if p["z"] is not None:
        zz = xp.asarray(p["z"])
        y = y * (zz / (1 + xp.exp(-zz)))
    out = xp.to_float64(y)
    if return_last_state:
        return out, xp.to_float64(h[:, :, -1, :])
    return out


@oracle
def selective_scan(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                   delta_bias: Any = None, delta_softplus: bool = False, return_last_state: bool = False, *,
                   backend: Backend = F64) -> Any:
    """Sequential selective scan with mamba ``selective_scan_ref`` semantics (module docstring): returns
    out [b, d, L] (and x_{L-1} [b, d, n] with ``return_last_state``).  Source: mamba selective_scan_ref."""
    p = _prepare("selective_scan", u, delta, A, B, C, D, z, delta_bias)
    xp = backend
    a, bu, Cs = _coeffs(xp, p, delta_softplus)
    h = np.empty(a.shape, dtype=object if not xp.is_float64 else np.result_type(a, bu))
    x = bu[:, :, 0] * 0
    for t in range(p["L"]):
        x = a[:, :, t] * x + bu[:, :, t]
        h[:, :, t] = x
    return _finish(xp, p, h, Cs, return_last_state)


def scan_combine(left: tuple[Any, Any], right: tuple[Any, Any]) -> tuple[Any, Any]:
    """Associative combine of affine maps h -> a h + b, ``left`` applied first:
    ``(a, b) . (a', b') = (a' a, a' b + b')``.  Source: Blelloch 1990."""
    a, b = left
    a2, b2 = right
    return a2 * a, a2 * b + b2


def selective_scan_assoc(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                         delta_bias: Any = None, delta_softplus: bool = False, return_last_state: bool = False,
                         combine: Any = None) -> Any:
    """Selective scan by an inclusive Hillis-Steele associative scan over (a_t, b_t) with :func:`scan_combine`
    (float64; ``combine`` overrides the combine, for mutation tests).  Equals :func:`selective_scan` up to
    rounding (reassociated sums), not bitwise.  Source: Blelloch 1990."""
    p = _prepare("selective_scan_assoc", u, delta, A, B, C, D, z, delta_bias)
    comb = combine or scan_combine
    a, bu, Cs = _coeffs(F64, p, delta_softplus)
    a, h = np.array(a), np.array(bu)
    L, step = p["L"], 1
    while step < L:
        na, nh = comb((a[:, :, :-step], h[:, :, :-step]), (a[:, :, step:], h[:, :, step:]))
        a = np.concatenate([a[:, :, :step], na], axis=2)
        h = np.concatenate([h[:, :, :step], nh], axis=2)
        step *= 2
    return _finish(F64, p, h, Cs, return_last_state)
