"""Op ``mamba_chunk_scan`` for ``veriformer.check``: mamba-ssm's ``mamba_chunk_scan_combined`` convention.

``fn(x, dt, A, B, C, chunk_size, D=None, z=None, dt_bias=None, initial_states=None, dt_softplus=False,
return_final_states=False) -> y or (y, final_states)``; outputs ("out", "final_state") (final_state absent, the
candidate returns just y, when the case does not ask for it).  Layouts (mamba's): x [b, l, h, p], dt [b, l, h],
A [h], B/C [b, l, g, n] (g divides h; head i reads group ``i // (h // g)``), D [h] or [h, p], z [b, l, h, p],
dt_bias [h], initial/final states [b, h, p, n].  ``final_state`` may come back in float32 for half inputs
(mamba and our Triton kernel keep it in their float32 accumulator).  Any l >= 1 (a partial last chunk).

Semantics (Dao & Gu 2024, SSD; mamba ``ssd_combined.py``)::

    dt' = softplus(dt + dt_bias) if dt_softplus else dt + dt_bias        (bias optional)
    a_t = dt'_t A_h,   H_t = e^{a_t} H_{t-1} + (dt'_t x_t) B_t^T,   Y_t = H_t C_t   (H_{-1} = initial_states or 0)
    y = (Y + D x) silu(z)                                                 (D, z optional)

i.e. ``Y = SSD(x dt', dt' A, B, C, h0)`` of :func:`veriformer.reference.ssd_recurrence` (B/C expanded to heads).
Unlike op ``ssd_scan`` (per-token log-decays, no dt), dt scales both the decay and the input, so mamba's kernel
is checked here without any adapter arithmetic.

Features: ``D``, ``z``, ``dt_bias``, ``dt_softplus``, ``initial_states``, ``return_final_states``, ``grouped``
(g < h drawn).  ``check()`` rounds every float input to the test dtype, dt, A and dt_bias included, although
mamba keeps dt and A in float32: gold and candidate see the same rounded values, so nothing is lost but the
realism of half-precision dt.

Gold: float64 :func:`mamba_chunk_scan64` (``reference.ssd_recurrence`` on the processed inputs); gradients
:func:`mamba_chunk_scan64_vjp`: ``reference.ssd_vjp`` (dX, da, dB/dC per head, dH_0) and the chain rule
through ``X = x dt'``, ``a = dt' A``, the gate and the skip::

    dz = gy (Y + D x) silu'(z),  go = gy silu(z),  dD = sum_{b,l} go x  (summed over p for D [h])
    dx = dX dt' + go D,  d(dt') = sum_p dX x + da A,  dA = sum_{b,l} da dt',
    ddt = d(dt') sigmoid(dt + dt_bias) (softplus; d(dt') without),  ddt_bias = sum_{b,l} ddt,
    dB, dC = the per-head gradients summed over the heads of each group.

Rounding floors: summand masses (every product of the forward / backward on absolute values, actual decays),
see the tolerance rows ``op.mamba_chunk_scan`` and ``op.mamba_chunk_scan.grad``.
Sources: mamba ``mamba_ssm/ops/triton/ssd_combined.py`` (signature, layouts); Dao & Gu 2024 (Mamba-2);
mamba ``mamba_ssm/modules/ssd_minimal.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.ssm import naive_chunk_scan as naive_mamba_chunk_scan
from veriformer.ops import OpSpec, max_or_zero, register_op
from veriformer.properties.ssm import regions
from veriformer.properties.ssm import strategies_chunk_scan as mst
from veriformer.reference.ssm.mamba_chunk_scan import (
    _prepare,
    _sigmoid,
    _skip,
    mamba_chunk_scan64,
    mamba_chunk_scan64_vjp,
)
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["MAMBA_CHUNK_SCAN", "mamba_chunk_scan64", "mamba_chunk_scan64_vjp"]  # oracles re-exported (old path)

register_tolerance(Tolerance("op.mamba_chunk_scan", rho=2.0, floor_ulps=4.0, reason=(
    "rho = 2 over the naive torch baseline (dt math in float32, mamba's ssd_minimal_discrete on (x dt, dt A) in "
    "the input dtype, (Y + D x) silu(z) in float32 rounded once); 4 ulp at each element plus 4 ulp x "
    "(1 + Q max|a|) at the summand mass (the SSD run on |x dt|, |B|, |C|, |h0| with the actual decays, plus "
    "|D x|, times |silu(z)|; the state's own mass for final_state), Q the chunk size and a = dt' A: chunked "
    "kernels form every decay from in-chunk cumulative log-decays in float32 (mamba's dA_cumsum, "
    "exp(cs_t - cs_s)), an exponent error up to u Q max|a|, i.e. that relative error on every decayed summand; "
    "dt' itself is formed in float32 (bias, softplus), a relative error of a few u on x dt' and dt' A.")))
register_tolerance(Tolerance("op.mamba_chunk_scan.grad", rho=2.0, floor_ulps=8.0, reason=(
    "rho = 2 over torch autograd of the naive baseline; gold reference.ssd_vjp through the chain rule (dt', A, "
    "x, D, z, dt_bias, group sums, initial_states).  Floors at the summand mass of each gradient (the same "
    "chain rule on absolute values over ssd_vjp(absolute=True)): 8 ulp x (1 + Q max|a|) for dx, dB, dC, dD, "
    "dz, dinitial_states (decays from float32 in-chunk cumulative sums, as the forward; twice the floor for the "
    "product of two rounded scans); 8 ulp x (l + Q max|a|) for ddt, dA, ddt_bias, which contain da, formed by "
    "kernels as a reverse cumulative sum over the l steps of per-step terms (mamba's ddA_cumsum), see "
    "op.ssd_scan.grad.")))

_INPUTS = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


# -- the op --------------------------------------------------------------------------------------------------------


def _kwargs(case: mst.MambaChunkCase, a: dict[str, Any]) -> dict[str, Any]:
    kw = {name: a[name] for name in ("D", "z", "dt_bias", "initial_states") if name in a}
    if case.softplus:
        kw["dt_softplus"] = True
    return kw


def _call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: mst.MambaChunkCase,
          opts: dict[str, Any]) -> Any:
    kw = _kwargs(case, t)
    if case.final:
        kw["return_final_states"] = True
    res = fn(t["x"], t["dt"], t["A"], t["B"], t["C"], case.chunk_size, **kw)
    return res if case.final else (res, None)


def _gold(case: mst.MambaChunkCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, np.ndarray]:
    y, H = mamba_chunk_scan64(a["x"], a["dt"], a["A"], a["B"], a["C"], **_kwargs(case, a))
    return {"out": y, "final_state": H} if case.final else {"out": y}


def _vjp(case: mst.MambaChunkCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray], opts: dict[str, Any],
         absolute: bool = False) -> dict[str, np.ndarray]:
    return mamba_chunk_scan64_vjp(a["x"], a["dt"], a["A"], a["B"], a["C"], cots["out"], **_kwargs(case, a),
                                  grad_final_state=cots.get("final_state"), absolute=absolute)


def _conditioning(case: mst.MambaChunkCase, a: dict[str, np.ndarray],
                  cots: dict[str, np.ndarray] | None,
                  opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Forward: the SSD on |x dt'|, |B|, |C|, |h0| (actual decays), plus |D x|, times |silu(z)|; gradients: the
    chain rule on absolute values (mamba_chunk_scan64_vjp(absolute=True)).  Conditions 1 + Q max|a|, and
    l + Q max|a| for the gradients that contain da (dt, A, dt_bias); see the tolerance rows."""
    q = _prepare("mamba_chunk_scan conditioning", a["x"], a["dt"], a["A"], a["B"], a["C"], a.get("D"), a.get("z"),
                 a.get("dt_bias"), a.get("initial_states"), case.softplus)
    h0 = q["initial_states"]
    Y, H = ref.ssd_recurrence(np.abs(q["X"]), q["a"], np.abs(q["Bh"]), np.abs(q["Ch"]),
                              None if h0 is None else np.abs(h0))
    Y2, H2 = ref.ssd_recurrence(q["X"] ** 2, 2 * q["a"], q["Bh"] ** 2, q["Ch"] ** 2, None if h0 is None else h0**2)
    if q["D"] is not None:
        Y = Y + np.abs(q["x"] * _skip(q))
        Y2 = Y2 + (q["x"] * _skip(q)) ** 2
    if q["z"] is not None:
        silu = np.abs(q["z"] * _sigmoid(q["z"]))
        Y, Y2 = Y * silu, Y2 * silu**2
    expo = case.chunk_size * max_or_zero(np.abs(q["a"]))  # max in-chunk |cumsum a|
    out: dict[str, tuple[Any, ...]] = {"out": (1.0 + expo, Y, np.sqrt(np.maximum(Y2, 0.0))),
                                       "final_state": (1.0 + expo, H, np.sqrt(np.maximum(H2, 0.0)))}
    if cots is not None:
        gm = _vjp(case, a, cots, {}, absolute=True)
        out.update({"d" + k: ((case.l if k in ("dt", "A", "dt_bias") else 1.0) + expo, max_or_zero(v))
                    for k, v in gm.items()})
    return out


MAMBA_CHUNK_SCAN = register_op(OpSpec(
    name="mamba_chunk_scan",
    convention="fn(x, dt, A, B, C, chunk_size, D=None, z=None, dt_bias=None, initial_states=None, "
               "dt_softplus=False, return_final_states=False) -> y or (y, final_states); x [b,l,h,p], dt [b,l,h], "
               "A [h] < 0, B/C [b,l,g,n], D [h]|[h,p], z [b,l,h,p], dt_bias [h], states [b,h,p,n]; "
               "y = (SSD(x dt', dt' A, B, C, h0) + D x) silu(z), dt' = softplus(dt + dt_bias) | dt + dt_bias",
    source="mamba ssd_combined.py::mamba_chunk_scan_combined; Dao & Gu 2024 (arXiv 2405.21060)",
    features=mst.MAMBA_CHUNK_FEATURES,
    options={},
    strategy=lambda features, dtype, opts: mst.mamba_chunk_cases(features=features),
    call=_call,
    gold=_gold,
    gold_vjp=_vjp,
    baseline=lambda opts: naive_mamba_chunk_scan.mamba_chunk_scan,
    differentiable=_INPUTS,
    size=lambda case: case.l,
    tolerance="op.mamba_chunk_scan",
    conditioning=_conditioning,
    outputs=("out", "final_state"),
    wide_outputs=frozenset({"final_state"}),
    sweep=lambda size, seed: mst.MambaChunkCase(b=1, l=size, h=2, g=1, p=8, n=16, chunk_size=16, D="h", z=True,
                                                bias=True, softplus=True, final=True, seed=seed),
    sweep_sizes=(16, 256, 1024),
    feature_keywords={k: k for k in ("D", "z", "dt_bias", "dt_softplus", "initial_states", "return_final_states")},
    regions=regions.MAMBA_CHUNK_REGIONS,
    corners=regions.mamba_chunk_corners,
))
