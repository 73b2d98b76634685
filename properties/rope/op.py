"""Op ``rope``: ``fn(x, positions, *, base: float) -> y``.

x [B, H, T, D] float, positions int64 [T]; the pairing is fixed per ``check()`` call by
``layout="half"|"interleaved"`` and ``rotary_dim=``, the frequencies by ``scaling=`` (None, or a description such
as ``{"type": "ntk", "factor": 8}``; the kernel under test is configured with the same scaling, e.g. through
``functools.partial``).  Semantics: :mod:`veriformer.reference.rope`, :mod:`veriformer.reference.positions`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.fast.rope import naive
from veriformer.ops import OpSpec, register_op
from veriformer.properties.rope import alternatives, regions
from veriformer.properties.rope import strategies as strat
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["ROPE"]

register_tolerance(Tolerance("op.rope", rho=2.0, floor_ulps=2.0, reason=(
    "One rotation per pair: two products and a sum per output (<= 1.5 ulp when the angle is exact), so the "
    "floor is 2 ulp at the output, at the root-sum-square of its two summands x_a cos, x_b sin (which may "
    "cancel) and, with condition 1, at their sum in the accumulator's precision (cos/sin rounded).  Judged "
    "against the better of two same-dtype baselines: the usual one (HF transformers: angles n theta in "
    "float32, which at position 1e6 is off by up to 0.06 rad, losing ~20 of float32's 24 bits) and a careful "
    "one (angles and cos/sin in float64, cast once): a kernel as sloppy as the usual code fails where the "
    "careful code is exact, instead of passing 'as good as the baseline'.")))
register_tolerance(Tolerance("op.rope.grad", rho=2.0, floor_ulps=2.0, reason=(
    "The VJP is the inverse rotation: as op.rope, with the floor at the two summands of each gradient element.")))


def _rope_options(opts: dict[str, Any]) -> None:
    if opts.get("layout") not in ref.LAYOUTS:
        raise ValueError(f"check(op='rope'): argument 'layout' must be one of {ref.LAYOUTS}; "
                         f"got {opts.get('layout')!r}")
    try:
        ref.validate_scaling(opts.get("scaling"), "check(op='rope')")
    except ref.InputError as e:
        raise ValueError(str(e)) from None
    rd = opts.get("rotary_dim")
    if rd is not None and not (isinstance(rd, int) and rd >= 2 and rd % 2 == 0 and rd <= 256):
        raise ValueError(f"check(op='rope'): argument 'rotary_dim' must be None or an even int in "
                         f"[2, 256]; got {rd!r}")


def _rope_kwargs(case: strat.RopeCase, opts: dict[str, Any]) -> dict[str, Any]:
    return {"base": case.base, "layout": opts["layout"], "rotary_dim": opts["rotary_dim"],
            "scaling": opts.get("scaling")}


def _rope_conditioning(case: strat.RopeCase, a: dict[str, np.ndarray],
                       cots: dict[str, np.ndarray] | None,
                       opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Per element of y_a = x_a cos - x_b sin (y_b = x_a sin + x_b cos): the two summands' |sum| and
    root-sum-square; condition 1 (cos/sin carry a relative error of about u of the accumulator).  Pass-through
    channels (beyond rotary_dim) have |x| itself."""
    x = a["x"]
    opts = opts or {"layout": case.layout, "rotary_dim": case.rotary_dim}
    r = x.shape[-1] if opts["rotary_dim"] is None else opts["rotary_dim"]
    ia, ib = ref.rope_pairs(r, opts["layout"])
    theta = ref.rope_frequencies(r, case.base, scaling=opts.get("scaling"), positions=a["positions"])
    ang = a["positions"].astype(np.float64)[:, None] * theta[None, :]
    c, s_ = np.abs(np.cos(ang)), np.abs(np.sin(ang))
    xa, xb = np.abs(x[..., ia]), np.abs(x[..., ib])
    mass, rss = np.abs(x).copy(), np.abs(x).copy()
    mass[..., ia], mass[..., ib] = xa * c + xb * s_, xa * s_ + xb * c
    rss[..., ia], rss[..., ib] = np.hypot(xa * c, xb * s_), np.hypot(xa * s_, xb * c)
    out: dict[str, tuple[Any, ...]] = {"out": (1.0, mass, rss)}
    if cots is not None:
        g = np.abs(cots["out"])
        ga, gb = g[..., ia], g[..., ib]
        gm, gr = g.copy(), g.copy()
        gm[..., ia], gm[..., ib] = ga * c + gb * s_, ga * s_ + gb * c
        gr[..., ia], gr[..., ib] = np.hypot(ga * c, gb * s_), np.hypot(ga * s_, gb * c)
        out["dx"] = (1.0, gm, gr)
    return out


def _sweep(size: int, seed: int) -> strat.RopeCase:
    """Positions 0..T-1 at head dim 128: the angle error of float32 tables grows with T."""
    return strat.RopeCase(B=1, H=2, T=size, D=128, positions="arange", seed=seed)


ROPE = register_op(OpSpec(
    name="rope",
    convention="fn(x, positions, *, base) -> y; x [B,H,T,D], positions int64 [T]; layout/rotary_dim/scaling "
               "fixed per check() call",
    source="Su et al. 2021 (RoFormer, arXiv 2104.09864)",
    features=frozenset(),
    options={"layout": "half", "rotary_dim": None, "scaling": None},
    strategy=lambda features, dtype, opts: strat.rope_cases(layout=opts["layout"],
                                                            rotary_dim=opts["rotary_dim"]),
    call=lambda fn, t, case, opts: fn(t["x"], t["positions"], base=case.base),
    gold=lambda case, a, opts: ref.rope(a["x"], a["positions"], **_rope_kwargs(case, opts)),
    gold_vjp=lambda case, a, g, opts: {"x": ref.rope_vjp(g["out"], a["positions"], **_rope_kwargs(case, opts))},
    baseline=lambda opts: functools.partial(naive.rope, layout=opts["layout"], rotary_dim=opts["rotary_dim"],
                                            scaling=opts.get("scaling")),
    careful_baseline=lambda opts: functools.partial(naive.rope_careful, layout=opts["layout"],
                                                    rotary_dim=opts["rotary_dim"], scaling=opts.get("scaling")),
    differentiable=("x",),
    size=lambda case: case.T,
    tolerance="op.rope",
    conditioning=_rope_conditioning,
    validate_options=_rope_options,
    sweep=_sweep,
    alternatives=alternatives.rope_alternatives,
    regions=regions.ROPE_REGIONS,
    corners=regions.rope_corners,
    sweep_sizes=(16, 256, 4096, 32768),
))
