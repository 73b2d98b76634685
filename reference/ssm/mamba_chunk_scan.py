"""mamba-ssm's ``mamba_chunk_scan_combined`` as a float64 oracle: the SSD recurrence on the processed inputs and its
VJP through the chain rule.

Semantics (Dao & Gu 2024, SSD, arXiv 2405.21060; state-spaces/mamba ``mamba_ssm/ops/triton/ssd_combined.py``)::

    dt' = softplus(dt + dt_bias) if dt_softplus else dt + dt_bias        (bias optional)
    a_t = dt'_t A_h,   H_t = e^{a_t} H_{t-1} + (dt'_t x_t) B_t^T,   Y_t = H_t C_t   (H_{-1} = initial_states or 0)
    y = (Y + D x) silu(z)                                                 (D, z optional)

Layouts (mamba's): x [b, l, h, p], dt [b, l, h], A [h], B/C [b, l, g, n] (g divides h; head i reads group
``i // (h // g)``), D [h] or [h, p], z [b, l, h, p], dt_bias [h], initial/final states [b, h, p, n].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.ssm.ssd import ssd_recurrence
from veriformer.reference.ssm.vjp import ssd_vjp

__all__ = ["mamba_chunk_scan64", "mamba_chunk_scan64_vjp"]

_INPUTS = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))  # no overflow for large |v|


def _prepare(func: str, x: Any, dt: Any, A: Any, B: Any, C: Any, D: Any, z: Any, dt_bias: Any,
             initial_states: Any, dt_softplus: Any) -> dict[str, Any]:
    """float64 copies of the inputs, shapes checked (InputError naming the argument)."""
    xx = as_float64(x, func, "x", ndim=4)
    b, l, h, p = xx.shape
    require(min(xx.shape) >= 1, func, "x", "non-empty [b, l, h, p]", f"shape {xx.shape}")
    d = as_float64(dt, func, "dt", ndim=3)
    require(d.shape == (b, l, h), func, "dt", f"of shape [b, l, h] = ({b}, {l}, {h})", f"shape {d.shape}")
    aa = as_float64(A, func, "A", ndim=1)
    require(aa.shape == (h,), func, "A", f"of shape [h] = ({h},)", f"shape {aa.shape}")
    bb = as_float64(B, func, "B", ndim=4)
    g = bb.shape[2]
    require(bb.shape[:2] == (b, l) and g >= 1 and h % g == 0 and bb.shape[3] >= 1, func, "B",
            f"of shape [b, l, g, n] with (b, l) = ({b}, {l}) and g dividing h = {h}", f"shape {bb.shape}")
    cc = as_float64(C, func, "C", ndim=4)
    require(cc.shape == bb.shape, func, "C", f"of B's shape {bb.shape}", f"shape {cc.shape}")
    n = bb.shape[3]
    out: dict[str, Any] = {"x": xx, "dt": d, "A": aa, "B": bb, "C": cc, "D": None, "z": None, "dt_bias": None,
                           "initial_states": None, "b": b, "l": l, "h": h, "p": p, "g": g, "n": n}
    if D is not None:
        dd = as_float64(D, func, "D", ndim=(1, 2))
        require(dd.shape in ((h,), (h, p)), func, "D", f"of shape [h] = ({h},) or [h, p] = ({h}, {p})",
                f"shape {dd.shape}")
        out["D"] = dd
    if z is not None:
        zz = as_float64(z, func, "z", ndim=4)
        require(zz.shape == xx.shape, func, "z", f"of x's shape {xx.shape}", f"shape {zz.shape}")
        out["z"] = zz
    if dt_bias is not None:
        db = as_float64(dt_bias, func, "dt_bias", ndim=1)
        require(db.shape == (h,), func, "dt_bias", f"of shape [h] = ({h},)", f"shape {db.shape}")
        out["dt_bias"] = db
    if initial_states is not None:
        h0 = as_float64(initial_states, func, "initial_states", ndim=4)
        require(h0.shape == (b, h, p, n), func, "initial_states", f"of shape [b, h, p, n] = ({b}, {h}, {p}, {n})",
                f"shape {h0.shape}")
        out["initial_states"] = h0
    require(isinstance(dt_softplus, bool | np.bool_), func, "dt_softplus", "a bool", repr(dt_softplus))
    for name in _INPUTS:
        if out[name] is not None:
            require_finite(out[name], func, name)
    pre = d + (out["dt_bias"] if out["dt_bias"] is not None else 0.0)
    if dt_softplus:
        dl, sig = np.logaddexp(0.0, pre), _sigmoid(pre)
    else:
        dl, sig = pre, np.ones_like(pre)
    require(bool(np.all(dl >= 0)), func, "dt", "a processed step dt' = dt + dt_bias >= 0 (softplus off)",
            "a negative dt + dt_bias")
    require(bool(np.all(aa < 0)), func, "A", "< 0 everywhere (A = -exp(A_log))", "an entry >= 0")
    rep = h // g
    out.update(dl=dl, sig=sig, a=dl * aa, X=xx * dl[..., None], Bh=np.repeat(bb, rep, axis=2),
               Ch=np.repeat(cc, rep, axis=2))
    return out


def _skip(q: dict[str, Any]) -> np.ndarray:
    D = q["D"]
    return D[:, None] if D.ndim == 1 else D


def mamba_chunk_scan64(x: Any, dt: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None, dt_bias: Any = None,
                       initial_states: Any = None, dt_softplus: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """float64 oracle of ``mamba_chunk_scan_combined``: ``dt' = softplus(dt + dt_bias)`` (or ``dt + dt_bias``),
    ``H_t = e^{dt'_t A_h} H_{t-1} + dt'_t x_t B_t^T``, ``y_t = (H_t C_t + D x_t) silu(z_t)`` (module layouts;
    the chunk size does not change the exact result).  Returns (y [b, l, h, p], final state [b, h, p, n]).
    Requires A < 0 and dt' >= 0.  Source: mamba ``ssd_combined.py``; reference.ssd_recurrence."""
    q = _prepare("mamba_chunk_scan64", x, dt, A, B, C, D, z, dt_bias, initial_states, dt_softplus)
    Y, H = ssd_recurrence(q["X"], q["a"], q["Bh"], q["Ch"], q["initial_states"])
    if q["D"] is not None:
        Y = Y + q["x"] * _skip(q)
    if q["z"] is not None:
        Y = Y * q["z"] * _sigmoid(q["z"])
    return Y, H


def mamba_chunk_scan64_vjp(x: Any, dt: Any, A: Any, B: Any, C: Any, grad_y: Any, D: Any = None, z: Any = None,
                           dt_bias: Any = None, initial_states: Any = None, dt_softplus: bool = False,
                           grad_final_state: Any = None, *, absolute: bool = False) -> dict[str, np.ndarray]:
    """VJP of :func:`mamba_chunk_scan64` with cotangents grad_y [b, l, h, p] and (optional) grad_final_state
    [b, h, p, n]: ``reference.ssd_vjp`` and the chain rule of the module docstring.  Returns ``{"x", "dt",
    "A", "B", "C"}`` plus ``"D"``, ``"z"``, ``"dt_bias"``, ``"initial_states"`` for the inputs given, each in
    its input's layout.  ``absolute=True``: the summand masses (the same chain rule with every factor replaced
    by its absolute value, over ``ssd_vjp(absolute=True)``).  Source: chain rule derived here; checked against
    float64 torch autograd in tests/ssm/test_mamba_chunk_scan.py."""
    func = "mamba_chunk_scan64_vjp"
    q = _prepare(func, x, dt, A, B, C, D, z, dt_bias, initial_states, dt_softplus)
    b, l, h, p, g, n = (q[k] for k in "blhpgn")
    gy = as_float64(grad_y, func, "grad_y", ndim=4)
    require(gy.shape == (b, l, h, p), func, "grad_y", f"of shape [b, l, h, p] = {(b, l, h, p)}", f"shape {gy.shape}")
    require_finite(gy, func, "grad_y")
    gh = None
    if grad_final_state is not None:
        gh = as_float64(grad_final_state, func, "grad_final_state", ndim=4)
        require(gh.shape == (b, h, p, n), func, "grad_final_state", f"of shape [b, h, p, n] = {(b, h, p, n)}",
                f"shape {gh.shape}")
        require_finite(gh, func, "grad_final_state")
    m: Callable[[Any], Any] = np.abs if absolute else (lambda v: v)
    gy = m(gy)
    out: dict[str, np.ndarray] = {}
    go = gy
    if q["z"] is not None:
        zz = q["z"]
        s = _sigmoid(zz)
        if absolute:
            Y, _ = ssd_recurrence(np.abs(q["X"]), q["a"], np.abs(q["Bh"]), np.abs(q["Ch"]),
                                      None if q["initial_states"] is None else np.abs(q["initial_states"]))
        else:
            Y, _ = ssd_recurrence(q["X"], q["a"], q["Bh"], q["Ch"], q["initial_states"])
        pre = Y + (m(q["x"] * _skip(q)) if q["D"] is not None else 0.0)
        out["z"] = gy * pre * m(s * (1 + zz * (1 - s)))
        go = gy * m(zz * s)
    d = ssd_vjp(q["X"], q["a"], q["Bh"], q["Ch"], go, q["initial_states"], gh, absolute=absolute)
    dl, xx = m(q["dl"]), m(q["x"])
    dx = d["dX"] * dl[..., None]
    if q["D"] is not None:
        dx = dx + go * m(_skip(q))
        dDp = np.sum(go * xx, axis=(0, 1))  # [h, p]
        out["D"] = dDp if q["D"].ndim == 2 else dDp.sum(axis=-1)
    ddl = np.sum(d["dX"] * xx, axis=-1) + d["dA"] * m(q["A"])
    ddt = ddl * q["sig"]
    out.update({"x": dx, "dt": ddt, "A": np.sum(d["dA"] * dl, axis=(0, 1)),
                "B": d["dB"].reshape(b, l, g, h // g, n).sum(axis=3),
                "C": d["dC"].reshape(b, l, g, h // g, n).sum(axis=3)})
    if q["dt_bias"] is not None:
        out["dt_bias"] = ddt.sum(axis=(0, 1))
    if q["initial_states"] is not None:
        out["initial_states"] = d["dinitial_states"]
    return out
