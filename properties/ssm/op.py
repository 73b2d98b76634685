"""State-space ops for ``veriformer.check``.

* ``ssm_convolution``: ``fn(u, kernel) -> y`` — causal long convolution ``y_k = sum_{j<=k} K_j u_{k-j}`` per
  channel; u [B, C, L], kernel [C, L], y [B, C, L].  Differentiable in u and kernel.
* ``s4d_kernel``: ``fn(log_dt, A, B, C, L) -> K`` — S4D ZOH Vandermonde kernel ``K = 2 Re sum_n C B (e^{dt A} - 1)/A
  e^{l dt A}``; log_dt [H] real in the test dtype; A, B, C [H, N2] **complex64** (complex128 when the test dtype is
  float64), whose real and imaginary parts are the test-dtype values (``check()`` rounds the parts, which the
  case stores as separate real arrays, so gold and candidate see identical numbers); K [H, L] in the test dtype.
* ``selective_scan``: mamba's ``selective_scan_fn`` / ``selective_scan_ref`` signature ``fn(u, delta, A, B, C,
  D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False)``; outputs ("out",
  "last_state").  Features: D, z, delta_bias, delta_softplus, return_last_state, variable_BC, grouped_BC, complex_A
  (A complex64 — complex128 for float64 — built from test-dtype real and imaginary parts, constant B/C likewise,
  variable B/C real [..., n, 2L] with interleaved (re, im) as mamba takes them; no last state, which is complex;
  gradients are checked on the parts A_re, A_im, ... that torch reaches through ``torch.complex``).
* ``ssd_scan``: ``fn(X, A, B, C, chunk_size, initial_states=None) -> (Y, final_state)`` with mamba's
  ``ssd_minimal_discrete`` layouts (B/C per head [b, l, h, n]; initial/final state [b, h, p, n]).

Semantics: :mod:`veriformer.reference.ssm.s4`, :mod:`~veriformer.reference.ssm.selective_scan`,
:mod:`~veriformer.reference.ssm.ssd`.

Gradients (``check(grad=True)``), gold VJPs of :mod:`veriformer.reference.ssm.vjp`:

* ``s4d_kernel``: log_dt, A_re, A_im, B_re, B_im, C_re, C_im (autograd reaches the parts through the
  ``torch.complex`` the op's call builds); ``s4d_kernel_vjp``.
* ``selective_scan``: u, delta, A, B, C and, when the case has them, D, z, delta_bias; cotangents of out and of
  last_state (when returned); ``selective_scan_vjp``.  ``last_state`` may come back in float32 for half inputs
  (mamba keeps it in its float32 accumulator).
* ``ssd_scan``: X, A, B, C and initial_states (when present); cotangents of Y and final_state; ``ssd_vjp``.
  ``final_state`` may come back in float32 for half inputs.

The rounding floors of the gradients are the summand masses of each VJP (``absolute=True``), see the ``.grad``
tolerance rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.ops import OpSpec, max_or_zero, register_op
from veriformer.properties.ssm import regions
from veriformer.properties.ssm import strategies as sst
from veriformer.tolerances import Tolerance, register_tolerance

__all__ = ["S4D_KERNEL", "SELECTIVE_SCAN", "SSD_SCAN", "SSM_CONVOLUTION"]

_FLOOR_REASON = ("plus a {f} ulp floor at each element and {f} ulp at the root-sum-square of that element's "
                 "summands (u^2 * K^2 convolved, or the scan run on squares with squared decays; the sum of "
                 "|summands|, |u| * |K| convolved or the scan on absolute values, for the conditioned term), "
                 "measured per element: rounding each summand once to the test dtype is an error any correct "
                 "kernel may incur, and independent roundings add in quadrature.")

register_tolerance(Tolerance("op.ssm_convolution", rho=2.0, floor_ulps=4.0, reason=(
    "rho = 2 over the naive rfft convolution (float32 FFT for half inputs, float64 for float64): an FFT "
    "convolution has a normwise error ~ u log2(2L) ||K|| ||u|| (Higham 2002, 24.1) that a direct sum need not "
    "match element by element; " + _FLOOR_REASON.format(f=4))))
register_tolerance(Tolerance("op.ssm_convolution.grad", rho=2.0, floor_ulps=8.0, reason=(
    "The VJP is two correlations of the same length (du with K, dK with u summed over the batch): as the forward "
    "with twice the floor for the batch sum.")))
register_tolerance(Tolerance("op.s4d_kernel", rho=2.0, floor_ulps=4.0, reason=(
    "rho = 2 over the naive complex64 Vandermonde product; 4 ulp at each element plus 4 ulp x (L max|dt A|) at "
    "sum|C Bd|: the argument l dt A of exp carries a relative rounding error u, i.e. an absolute phase error "
    "u l |dt A| that any kernel (exp of the product or repeated multiplication) incurs.")))
register_tolerance(Tolerance("op.s4d_kernel.grad", rho=2.0, floor_ulps=8.0, reason=(
    "rho = 2 over torch autograd of the naive complex64 kernel; gold reference.s4d_kernel_vjp.  Every gradient "
    "is a sum over l of 2 gK_l l^k e^{l dt A} (k = 0, 1) times products of C, B, (e^{dt A} - 1)/A: 8 ulp at "
    "each element plus 8 ulp x (1 + (L - 1) max|dt A|) at the sum of |summands| of that gradient (the backward "
    "run on absolute values, s4d_kernel_vjp(absolute=True)): the same phase error u l |dt A| as the forward, "
    "doubled because each gradient is a product of two rounded sums.")))
register_tolerance(Tolerance("op.selective_scan", rho=2.0, floor_ulps=4.0, reason=(
    "rho = 2 over mamba's selective_scan_ref (float32 internally, out rounded to the input dtype); "
    + _FLOOR_REASON.format(f=4))))
register_tolerance(Tolerance("op.selective_scan.grad", rho=2.0, floor_ulps=8.0, reason=(
    "rho = 2 over torch autograd of mamba's selective_scan_ref (float32 internally, gradients rounded to the "
    "input dtype); gold reference.selective_scan_vjp (reverse-time adjoint recurrence).  8 ulp at each element "
    "plus 8 ulp at the sum of |summands| of each gradient (the backward run on absolute values, decays e^{dt A} "
    "kept: selective_scan_vjp(absolute=True)): the adjoint and the forward states are each rounded once per "
    "step, and du, ddelta, dA, dB, dC, dD, ddelta_bias are sums over n, d, b or t of their products, so a "
    "correct kernel may differ from gold by a few u times that mass; twice the forward floor because each "
    "gradient is a product of two rounded scans.")))
register_tolerance(Tolerance("op.ssd_scan", rho=2.0, floor_ulps=4.0, reason=(
    "rho = 2 over the better of mamba's ssd_minimal_discrete in the input dtype (stable segsum) and a careful "
    "float32 recurrence (its dA is not ruined by cumulative-sum cancellation: ssd_minimal's dA had a relative "
    "RMS error of 0.54 in float32, which admitted almost anything); the decays exp(segsum) are "
    "formed from rounded log-decays, so each summand L_ts (C_t . B_s) x_s carries a relative error ~ u; "
    + _FLOOR_REASON.format(f=4))))
register_tolerance(Tolerance("op.ssd_scan.grad", rho=2.0, floor_ulps=8.0, reason=(
    "rho = 2 over torch autograd of ssd_minimal_discrete in the input dtype; gold reference.ssd_vjp (the simple-"
    "GLA VJP with q = C, k = B, v = X, g = A).  Floors at the sum of |summands| of each gradient (the VJP on "
    "|X|, |B|, |C|, |h0|, |cotangents| with the actual decays, ssd_vjp(absolute=True)): 8 ulp x (1 + Q max|a|) "
    "for dX, dB, dC, dinitial_states, because chunked kernels (mamba's chunk_scan / chunk_state) form every "
    "decay as exp(cs_t - cs_s) from in-chunk cumulative log-decays rounded to float32, an exponent error up to "
    "u Q max|a| (Q = chunk size), i.e. that relative error on every decayed summand; 8 ulp x (l + Q max|a|) for "
    "dA, which kernels form as a reverse cumulative sum over the l steps of per-step terms (mamba's "
    "ddA_cumsum: row minus column sums of W_ts = D_ts dL/dD_ts, each bounded by twice the largest |W| "
    "rectangle sum that the absolute VJP gives).")))


# -- ssm_convolution ---------------------------------------------------------------------------------------------


def _conv_vjp(case: sst.ConvCase, a: dict[str, np.ndarray], g: dict[str, np.ndarray],
              opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """du_i = sum_{k>=i} g_k K_{k-i} and dK_j = sum_b sum_{k>=j} g_k u_{k-j}: causal convolutions of the
    time-reversed cotangent."""
    gr = g["out"][..., ::-1]
    du = ref.causal_convolution(gr, a["kernel"])[..., ::-1]
    dK = ref.causal_convolution(gr, a["u"])[..., ::-1].sum(axis=0)
    return {"u": np.ascontiguousarray(du), "kernel": np.ascontiguousarray(dK)}


def _conv_conditioning(case: sst.ConvCase, a: dict[str, np.ndarray],
                       cots: dict[str, np.ndarray] | None,
                       opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Per element: sum_j |K_j u_{k-j}| and sqrt(sum_j (K_j u_{k-j})^2) (the convolution of |u|, |K| and of
    their squares)."""
    mass = ref.causal_convolution(np.abs(a["u"]), np.abs(a["kernel"]))
    rss = np.sqrt(np.maximum(ref.causal_convolution(a["u"] ** 2, a["kernel"] ** 2), 0.0))
    return {"out": (1.0, mass, rss)}


SSM_CONVOLUTION = register_op(OpSpec(
    name="ssm_convolution",
    convention="fn(u, kernel) -> y; u [B,C,L], kernel [C,L], y [B,C,L]; y_k = sum_{j<=k} K_j u_{k-j}",
    source="Gu et al. 2022 (S4, arXiv 2111.00396); S4 FFTConv",
    features=frozenset(),
    options={},
    strategy=lambda features, dtype, opts: sst.conv_cases(),
    call=lambda fn, t, case, opts: fn(t["u"], t["kernel"]),
    gold=lambda case, a, opts: ref.causal_convolution(a["u"], a["kernel"]),
    gold_vjp=_conv_vjp,
    baseline=lambda opts: naive_ssm.ssm_convolution,
    differentiable=("u", "kernel"),
    size=lambda case: case.L,
    tolerance="op.ssm_convolution",
    conditioning=_conv_conditioning,
    regions=regions.CONV_REGIONS,
    corners=regions.conv_corners,
    sweep=lambda size, seed: sst.ConvCase(B=1, C=2, L=size, kernel="decay", amp=1.0, seed=seed),
    sweep_sizes=(16, 256, 2048),
))


# -- s4d_kernel --------------------------------------------------------------------------------------------------


def _complex_parts(a: dict[str, Any], name: str) -> Any:
    return a[name + "_re"] + 1j * a[name + "_im"]


def _s4d_call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: sst.S4DCase, opts: dict[str, Any]) -> Any:
    w = torch.float64 if t["log_dt"].dtype == torch.float64 else torch.float32
    A, B, C = (torch.complex(t[n + "_re"].to(w), t[n + "_im"].to(w)) for n in ("A", "B", "C"))
    return fn(t["log_dt"], A, B, C, case.L)


def _s4d_gold(case: sst.S4DCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> np.ndarray:
    return ref.s4d_kernel(a["log_dt"], _complex_parts(a, "A"), _complex_parts(a, "B"), _complex_parts(a, "C"),
                          case.L)


_S4D_INPUTS = ("log_dt", "A_re", "A_im", "B_re", "B_im", "C_re", "C_im")


def _s4d_vjp_args(case: sst.S4DCase, a: dict[str, np.ndarray]) -> tuple[Any, ...]:
    return a["log_dt"], _complex_parts(a, "A"), _complex_parts(a, "B"), _complex_parts(a, "C"), case.L


def _s4d_vjp(case: sst.S4DCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray],
             opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """reference.s4d_kernel_vjp: gradients of log_dt and of the real and imaginary parts of A, B, C."""
    d = ref.s4d_kernel_vjp(*_s4d_vjp_args(case, a), cots["out"])
    return {n: d["d" + n] for n in _S4D_INPUTS}


def _s4d_conditioning(case: sst.S4DCase, a: dict[str, np.ndarray],
                      cots: dict[str, np.ndarray] | None,
                      opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    A = _complex_parts(a, "A")
    dtA = np.exp(a["log_dt"])[:, None] * A
    Bd = (np.exp(dtA) - 1) / A * _complex_parts(a, "B")
    phase = 1.0 + (case.L - 1) * float(np.abs(dtA).max())
    # K_l = 2 Re sum_n C_n Bd_n e^{l dt A_n}: per element the sum of |summands| and their root-sum-square
    w = 2 * np.abs(_complex_parts(a, "C") * Bd)  # [H, N2]
    decay = np.exp(np.arange(case.L)[None, :, None] * dtA.real[:, None, :])  # [H, L, N2]
    mass = np.sum(w[:, None, :] * decay, axis=-1)
    rss = np.sqrt(np.sum((w[:, None, :] * decay) ** 2, axis=-1))
    out: dict[str, tuple[Any, ...]] = {"out": (phase, mass, rss)}
    if cots is not None:
        mass = ref.s4d_kernel_vjp(*_s4d_vjp_args(case, a), cots["out"], absolute=True)
        out.update({"d" + n: (phase, max_or_zero(mass["d" + n])) for n in _S4D_INPUTS})
    return out


S4D_KERNEL = register_op(OpSpec(
    name="s4d_kernel",
    convention="fn(log_dt, A, B, C, L) -> K; log_dt [H] real, A/B/C [H,N2] complex64 (complex128 for float64), "
               "K [H,L] real; ZOH, conjugate pairs implied",
    source="Gu et al. 2022 (S4D, arXiv 2206.11893); S4 models/s4/s4d.py",
    features=frozenset(),
    options={},
    strategy=lambda features, dtype, opts: sst.s4d_cases(),
    call=_s4d_call,
    gold=_s4d_gold,
    gold_vjp=_s4d_vjp,
    baseline=lambda opts: naive_ssm.s4d_kernel,
    differentiable=_S4D_INPUTS,
    size=lambda case: case.L,
    tolerance="op.s4d_kernel",
    conditioning=_s4d_conditioning,
    regions=regions.S4D_REGIONS,
    corners=regions.s4d_corners,
    sweep=lambda size, seed: sst.S4DCase(H=1, N2=32, L=size, init="lin", random_B=False, seed=seed),
    sweep_sizes=(64, 1024, 8192),
))


# -- selective_scan ----------------------------------------------------------------------------------------------


def _scan_kwargs(case: sst.ScanCase, a: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for name in ("D", "z", "delta_bias"):
        if name in a:
            kw[name] = a[name]
    if case.softplus:
        kw["delta_softplus"] = True
    if case.last_state:
        kw["return_last_state"] = True
    return kw


def _scan_abc(a: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(A, B, C) of a case: complex A (and constant complex B/C) assembled from their real and imaginary parts,
    in torch (complex64; complex128 for float64 parts) or NumPy (complex128)."""

    def join(name: str) -> Any:
        if name + "_re" not in a:
            return a[name]
        re, im = a[name + "_re"], a[name + "_im"]
        if isinstance(re, torch.Tensor):
            w = torch.float64 if re.dtype == torch.float64 else torch.float32
            return torch.complex(re.to(w), im.to(w))
        return re + 1j * im

    return join("A"), join("B"), join("C")


def _scan_call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: sst.ScanCase, opts: dict[str, Any]) -> Any:
    res = fn(t["u"], t["delta"], *_scan_abc(t), **_scan_kwargs(case, t))
    return res if case.last_state else (res, None)


def _scan_gold(case: sst.ScanCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, np.ndarray]:
    res = ref.selective_scan(a["u"], a["delta"], *_scan_abc(a), **_scan_kwargs(case, a))
    if case.last_state:
        return {"out": res[0], "last_state": res[1]}
    return {"out": res}


_SCAN_INPUTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
_SCAN_PARTS = ("A_re", "A_im", "B_re", "B_im", "C_re", "C_im")  # complex A: gradients of the real parts


def _scan_vjp(case: sst.ScanCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray], opts: dict[str, Any],
              absolute: bool = False) -> dict[str, np.ndarray]:
    """reference.selective_scan_vjp with the cotangents of out (and of last_state when returned)."""
    kw = _scan_kwargs(case, a)
    kw.pop("return_last_state", None)
    d = ref.selective_scan_vjp(a["u"], a["delta"], *_scan_abc(a), grad_out=cots["out"],
                               grad_last_state=cots.get("last_state"), absolute=absolute, **kw)
    out = {n: d["d" + n] for n in _SCAN_INPUTS if n in a}
    for n in ("A", "B", "C"):  # torch's convention for a complex leaf: grad = dL/dRe + i dL/dIm
        if n + "_re" in a:
            g = d["d" + n]
            out[n + "_re"], out[n + "_im"] = (np.abs(g), np.abs(g)) if absolute else (g.real, g.imag)
    return out


def _scan_conditioning(case: sst.ScanCase, a: dict[str, np.ndarray],
                       cots: dict[str, np.ndarray] | None,
                       opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Summand mass: the scan run on |u|, |B|, |C| (decays are positive), plus |D u|, times |silu(z)|; for each
    gradient the backward run on absolute values (selective_scan_vjp(absolute=True)).  Complex A: the real scan
    with Re A and the moduli of B, C (a bound on the complex sums by the triangle inequality), doubled for 2 Re."""
    kw = _scan_kwargs(case, a)
    kw.pop("return_last_state", None)
    kw.pop("D", None)
    kw.pop("z", None)
    A, B, C = _scan_abc(a)
    if np.iscomplexobj(A):
        def modulus(x: np.ndarray) -> np.ndarray:
            return np.abs(x) if np.iscomplexobj(x) else np.hypot(x[..., 0::2], x[..., 1::2])

        A, B, C = A.real, 2 * modulus(B), modulus(C)
    mass, state = ref.selective_scan(np.abs(a["u"]), a["delta"], A, np.abs(B), np.abs(C),
                                     return_last_state=True, **kw)
    # root-sum-square of the summands C_t (prod of decays) delta'_s B_s u_s: the scan of the squares, with the
    # effective step delta' (bias and softplus applied) folded into u and the decays squared through 2 A
    dlt = a["delta"] + (a["delta_bias"][:, None] if "delta_bias" in a else 0.0)
    if case.softplus:
        dlt = np.logaddexp(0.0, dlt)
    sq, sq_state = ref.selective_scan(a["u"] ** 2 * dlt, dlt, 2 * A, B**2, C**2, return_last_state=True)
    if "D" in a:
        mass = mass + np.abs(a["u"] * a["D"][:, None])
        sq = sq + (a["u"] * a["D"][:, None]) ** 2
    if "z" in a:
        silu = np.abs(a["z"] / (1 + np.exp(-a["z"])))
        mass, sq = mass * silu, sq * silu**2
    out: dict[str, tuple[Any, ...]] = {"out": (1.0, mass, np.sqrt(np.maximum(sq, 0.0))),
                                       "last_state": (1.0, np.abs(state), np.sqrt(np.maximum(sq_state, 0.0)))}
    if cots is not None:
        gm = _scan_vjp(case, a, cots, {}, absolute=True)
        out.update({"d" + n: (1.0, max_or_zero(g)) for n, g in gm.items()})
    return out


SELECTIVE_SCAN = register_op(OpSpec(
    name="selective_scan",
    convention="fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, "
               "return_last_state=False) -> out or (out, last_state); mamba selective_scan_ref layouts",
    source="mamba selective_scan_interface.py::selective_scan_ref; Gu & Dao 2023 (Mamba)",
    features=sst.SCAN_FEATURES,
    options={},
    strategy=lambda features, dtype, opts: sst.scan_cases(features=features),
    call=_scan_call,
    gold=_scan_gold,
    gold_vjp=_scan_vjp,
    baseline=lambda opts: naive_ssm.selective_scan_ref,
    differentiable=_SCAN_INPUTS + _SCAN_PARTS,
    size=lambda case: case.L,
    tolerance="op.selective_scan",
    conditioning=_scan_conditioning,
    outputs=("out", "last_state"),
    wide_outputs=frozenset({"last_state"}),
    sweep=lambda size, seed: sst.ScanCase(b=1, d=4, n=16, L=size, seed=seed),
    sweep_sizes=(16, 256, 2048),
    feature_keywords={k: k for k in ("D", "z", "delta_bias", "delta_softplus", "return_last_state")},
    regions=regions.SCAN_REGIONS,
    corners=regions.scan_corners,
))


# -- ssd_scan ----------------------------------------------------------------------------------------------------


def _ssd_call(fn: Callable[..., Any], t: dict[str, torch.Tensor], case: sst.SSDCase, opts: dict[str, Any]) -> Any:
    kw = {"initial_states": t["initial_states"]} if "initial_states" in t else {}
    return fn(t["X"], t["A"], t["B"], t["C"], case.chunk_size, **kw)


def _ssd_gold(case: sst.SSDCase, a: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, np.ndarray]:
    Y, H = ref.ssd_recurrence(a["X"], a["A"], a["B"], a["C"], a.get("initial_states"))
    return {"out": Y, "final_state": H}


_SSD_INPUTS = ("X", "A", "B", "C", "initial_states")


def _ssd_vjp(case: sst.SSDCase, a: dict[str, np.ndarray], cots: dict[str, np.ndarray], opts: dict[str, Any],
             absolute: bool = False) -> dict[str, np.ndarray]:
    """reference.ssd_vjp with the cotangents of Y and of the final state."""
    d = ref.ssd_vjp(a["X"], a["A"], a["B"], a["C"], cots["out"], a.get("initial_states"), cots.get("final_state"),
                    absolute=absolute)
    return {n: d["d" + n] for n in _SSD_INPUTS if n in a}


def _ssd_conditioning(case: sst.SSDCase, a: dict[str, np.ndarray],
                      cots: dict[str, np.ndarray] | None,
                      opts: dict[str, Any] | None = None) -> dict[str, tuple[Any, ...]]:
    """Forward: the recurrence on |X|, |B|, |C|, |h0|.  Gradients: the VJP on absolute values (actual decays) with
    condition 1 + Q max|a| (decays from in-chunk cumulative sums), l + Q max|a| for dA (see the tolerance row)."""
    h0 = a.get("initial_states")
    Y, H = ref.ssd_recurrence(np.abs(a["X"]), a["A"], np.abs(a["B"]), np.abs(a["C"]),
                              None if h0 is None else np.abs(h0))
    Y2, H2 = ref.ssd_recurrence(a["X"] ** 2, 2 * a["A"], a["B"] ** 2, a["C"] ** 2, None if h0 is None else h0**2)
    out: dict[str, tuple[Any, ...]] = {"out": (1.0, Y, np.sqrt(np.maximum(Y2, 0.0))),
                                       "final_state": (1.0, H, np.sqrt(np.maximum(H2, 0.0)))}
    if cots is not None:
        gm = _ssd_vjp(case, a, cots, {}, absolute=True)
        expo = case.chunk_size * max_or_zero(np.abs(a["A"]))  # max in-chunk |cumsum a|
        out.update({"d" + n: ((case.length if n == "A" else 1.0) + expo, max_or_zero(g)) for n, g in gm.items()})
    return out


SSD_SCAN = register_op(OpSpec(
    name="ssd_scan",
    convention="fn(X, A, B, C, chunk_size, initial_states=None) -> (Y, final_state); X [b,l,h,p], A [b,l,h] "
               "(dt*A <= 0), B/C [b,l,h,n], states [b,h,p,n]",
    source="mamba ssd_minimal.py::ssd_minimal_discrete; Dao & Gu 2024 (Mamba-2)",
    features=frozenset({"initial_states"}),
    options={},
    strategy=lambda features, dtype, opts: sst.ssd_cases(initial="initial_states" in features),
    call=_ssd_call,
    gold=_ssd_gold,
    gold_vjp=_ssd_vjp,
    baseline=lambda opts: naive_ssm.ssd_minimal,
    careful_baseline=lambda opts: naive_ssm.ssd_recurrence_careful,
    differentiable=_SSD_INPUTS,
    size=lambda case: case.length,
    tolerance="op.ssd_scan",
    conditioning=_ssd_conditioning,
    outputs=("out", "final_state"),
    wide_outputs=frozenset({"final_state"}),
    sweep=lambda size, seed: sst.SSDCase(b=1, h=2, p=8, n=16, chunks=max(1, size // 16), chunk_size=16, seed=seed),
    sweep_sizes=(16, 256, 1024),
    feature_keywords={"initial_states": "initial_states"},
    regions=regions.SSD_REGIONS,
    corners=regions.ssd_corners,
))
