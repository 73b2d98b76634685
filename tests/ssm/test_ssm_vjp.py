"""Gold VJPs of the state-space ops (reference/ssm/vjp.py): against torch float64 autograd of the naive baselines
(mamba ssd_minimal_discrete, selective_scan_ref, the S4D kernel code), check(grad=True) of the baselines, the
summand masses, and the errors for missing or malformed cotangents."""

from __future__ import annotations

import itertools
from typing import Any

import mpmath
import numpy as np
import pytest
import torch

import veriformer
from veriformer import reference as ref
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.properties.ssm.implementations import oracle_ssd_scan
from veriformer.reference import InputError
from veriformer.reference.ssm.vjp import _psi

RTOL = 1e-12  # float64 vs float64: both sides round ~ (L + n) u relative to the summand mass


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, requires_grad=True)


def _close(got: np.ndarray, want: torch.Tensor, what: str, rtol: float = RTOL) -> None:
    w = want.detach().numpy()
    err = float(np.max(np.abs(got - w))) if w.size else 0.0
    assert got.shape == w.shape, f"{what}: shape {got.shape} != {w.shape}"
    assert err <= rtol * (float(np.max(np.abs(w))) + 1e-300), f"{what}: max error {err:.3g} vs {np.abs(w).max():.3g}"


# -- SSD ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("decay", "initial", "chunk"), [("mild", True, 4), ("mild", False, 2), ("steep", True, 4),
                                                          ("zero", True, 8)])
def test_ssd_vjp_matches_autograd_of_ssd_minimal(decay: str, initial: bool, chunk: int) -> None:
    rng = np.random.default_rng(0)
    b, l, h, p, n = 2, 8, 2, 3, 4
    X, B, C = rng.standard_normal((b, l, h, p)), rng.standard_normal((b, l, h, n)), rng.standard_normal((b, l, h, n))
    A = {"mild": -rng.uniform(0, 0.5, (b, l, h)), "steep": -rng.uniform(5, 50, (b, l, h)),
         "zero": np.zeros((b, l, h))}[decay]
    h0 = rng.standard_normal((b, h, p, n)) if initial else None
    gy, gH = rng.standard_normal((b, l, h, p)), rng.standard_normal((b, h, p, n))
    ins = {"X": X, "A": A, "B": B, "C": C, **({"initial_states": h0} if initial else {})}
    ts = {k: _t(v) for k, v in ins.items()}
    Y, Hf = naive_ssm.ssd_minimal(ts["X"], ts["A"], ts["B"], ts["C"], chunk, ts.get("initial_states"))
    grads = torch.autograd.grad([Y, Hf], list(ts.values()), [torch.tensor(gy), torch.tensor(gH)])
    d = ref.ssd_vjp(X, A, B, C, gy, h0, gH)
    assert set(d) == {"d" + k for k in ins}
    for k, g in zip(ins, grads, strict=True):
        _close(d["d" + k], g, "d" + k)


def test_ssd_vjp_without_final_state_cotangent_and_in_mpmath() -> None:
    rng = np.random.default_rng(1)
    X, A = rng.standard_normal((1, 3, 1, 2)), -rng.uniform(0, 0.5, (1, 3, 1))
    B, C, gy = rng.standard_normal((1, 3, 1, 2)), rng.standard_normal((1, 3, 1, 2)), rng.standard_normal((1, 3, 1, 2))
    ts = [_t(v) for v in (X, A, B, C)]
    Y, _ = naive_ssm.ssd_minimal(*ts, 3)
    grads = torch.autograd.grad(Y, ts, torch.tensor(gy))
    d = ref.ssd_vjp(X, A, B, C, gy)
    dm = ref.ssd_vjp(X, A, B, C, gy, backend=ref.MP(30))
    for k, g in zip("XABC", grads, strict=True):
        _close(d["d" + k], g, "d" + k)
        _close(dm["d" + k], g, "d" + k + " (mpmath)")


# -- selective scan ----------------------------------------------------------------------------------------------


def _scan_inputs(rng: np.random.Generator, bc: str, cplx: bool, opt: bool, b: int = 2, d: int = 4, n: int = 3,
                 L: int = 7) -> dict[str, Any]:
    delta = rng.standard_normal((b, d, L)) - 1 if opt else rng.uniform(0.01, 0.3, (b, d, L))
    A = -np.exp(rng.uniform(-0.5, 2, (d, n))) + (1j * rng.uniform(-3, 3, (d, n)) if cplx else 0)
    shape = {"constant": (d, n), "variable": (b, n, L), "grouped": (b, 2, n, L)}[bc]
    if cplx and bc != "constant":
        shape = (*shape[:-1], 2 * L)  # interleaved (re, im)
    Bm, Cm = rng.standard_normal(shape), rng.standard_normal(shape)
    if cplx and bc == "constant":
        Bm, Cm = Bm + 1j * rng.standard_normal(shape), Cm + 1j * rng.standard_normal(shape)
    out = {"u": rng.standard_normal((b, d, L)), "delta": delta, "A": A, "B": Bm, "C": Cm}
    if opt:
        out.update(D=rng.standard_normal(d), z=rng.standard_normal((b, d, L)), delta_bias=rng.uniform(-0.5, 0.5, d))
    return out


@pytest.mark.parametrize(("bc", "cplx", "opt"), list(itertools.product(("constant", "variable", "grouped"),
                                                                        (False, True), (False, True))))
def test_selective_scan_vjp_matches_autograd_of_selective_scan_ref(bc: str, cplx: bool, opt: bool) -> None:
    rng = np.random.default_rng(2)
    ins = _scan_inputs(rng, bc, cplx, opt)
    b, d, L = ins["u"].shape
    n = ins["A"].shape[1]
    go = rng.standard_normal((b, d, L))
    gl = rng.standard_normal((b, d, n)) + (1j * rng.standard_normal((b, d, n)) if cplx else 0)
    ts = {k: _t(v) for k, v in ins.items()}
    opts = {k: ts[k] for k in ("D", "z", "delta_bias") if k in ts}
    out, last = naive_ssm.selective_scan_ref(ts["u"], ts["delta"], ts["A"], ts["B"], ts["C"], **opts,
                                             delta_softplus=opt, return_last_state=True)
    grads = torch.autograd.grad([out, last], list(ts.values()), [torch.tensor(go), torch.tensor(gl)])
    kw = {k: ins[k] for k in ("D", "z", "delta_bias") if k in ins}
    dd = ref.selective_scan_vjp(ins["u"], ins["delta"], ins["A"], ins["B"], ins["C"], **kw, delta_softplus=opt,
                                grad_out=go, grad_last_state=gl)
    assert set(dd) == {"d" + k for k in ins}
    for k, g in zip(ins, grads, strict=True):
        _close(dd["d" + k], g, f"d{k} ({bc}, complex={cplx}, options={opt})")


# -- S4D ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["lin", "random"])
def test_s4d_kernel_vjp_matches_autograd_of_s4d_code(init: str) -> None:
    rng = np.random.default_rng(3)
    H, N2, L = 3, 5, 40
    ld = rng.uniform(np.log(1e-3), np.log(0.1), H)
    A = (np.broadcast_to(-0.5 + 1j * np.pi * np.arange(N2), (H, N2)).copy() if init == "lin"
         else -rng.uniform(0.05, 2, (H, N2)) + 1j * rng.uniform(-10, 10, (H, N2)))
    B = rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))
    C = rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))
    gk = rng.standard_normal((H, L))
    parts = {"log_dt": ld, "A_re": A.real, "A_im": A.imag, "B_re": B.real, "B_im": B.imag, "C_re": C.real,
             "C_im": C.imag}
    ts = {k: _t(np.ascontiguousarray(v)) for k, v in parts.items()}
    K = naive_ssm.s4d_kernel(ts["log_dt"], *(torch.complex(ts[n + "_re"], ts[n + "_im"]) for n in "ABC"), L)
    grads = torch.autograd.grad(K, list(ts.values()), torch.tensor(gk))
    d = ref.s4d_kernel_vjp(ld, A, B, C, L, gk)
    for k, g in zip(parts, grads, strict=True):
        # autograd differentiates (e^z - 1)/A term by term: dt e^z/A - (e^z - 1)/A^2 cancels to O(z^2), a relative
        # error ~ u/|z| (|z| >= 5e-5 here) that the psi series avoids; hence 1e-10 for dA, 1e-12 elsewhere
        _close(d["d" + k], g, "d" + k, rtol=1e-10 if k.startswith("A") else RTOL)
    np.testing.assert_array_equal(d["dA_re"] + 1j * d["dA_im"], d["dA"])


def test_psi_series_against_mpmath() -> None:
    zs = np.array([1e-8 + 1e-9j, -5e-5 + 0.003j, -0.3 + 0.9j, 0.999j - 0.01, -1.0 + 0.5j, -3 + 20j])
    got = _psi(zs)
    with mpmath.workdps(50):
        want = np.array([complex(mpmath.mpc(z) * mpmath.exp(mpmath.mpc(z)) - mpmath.expm1(mpmath.mpc(z)))
                         for z in zs])
    np.testing.assert_allclose(got, want, rtol=2e-15)
    np.testing.assert_allclose(ref.expm1_complex(zs), [complex(mpmath.expm1(mpmath.mpc(z))) for z in zs], rtol=4e-16)


# -- masses, errors, check() -------------------------------------------------------------------------------------


def test_absolute_masses_bound_the_gradients() -> None:
    rng = np.random.default_rng(4)
    ins = _scan_inputs(rng, "grouped", False, True)
    kw = {k: ins[k] for k in ("D", "z", "delta_bias")}
    args = (ins["u"], ins["delta"], ins["A"], ins["B"], ins["C"])
    go, gl = rng.standard_normal(ins["u"].shape), rng.standard_normal((2, 4, 3))
    g = ref.selective_scan_vjp(*args, **kw, delta_softplus=True, grad_out=go, grad_last_state=gl)
    m = ref.selective_scan_vjp(*args, **kw, delta_softplus=True, grad_out=go, grad_last_state=gl, absolute=True)
    pairs = [(g, m)]
    X, A = rng.standard_normal((1, 6, 2, 3)), -rng.uniform(0, 0.5, (1, 6, 2))
    B, C, h0 = rng.standard_normal((1, 6, 2, 4)), rng.standard_normal((1, 6, 2, 4)), rng.standard_normal((1, 2, 3, 4))
    sargs = (X, A, B, C, rng.standard_normal(X.shape), h0, rng.standard_normal(h0.shape))
    pairs.append((ref.ssd_vjp(*sargs), ref.ssd_vjp(*sargs, absolute=True)))
    Ad = -rng.uniform(0.1, 1, (2, 3)) + 1j * rng.uniform(-5, 5, (2, 3))
    kargs = (rng.uniform(-5, -2, 2), Ad, np.ones((2, 3)) + 0j, rng.standard_normal((2, 3)) + 1j, 9,
             rng.standard_normal((2, 9)))
    pairs.append((ref.s4d_kernel_vjp(*kargs), ref.s4d_kernel_vjp(*kargs, absolute=True)))
    for grads, masses in pairs:
        for k, v in grads.items():
            assert np.all(np.abs(v) <= masses[k] * (1 + 1e-12) + 1e-300), k
            assert np.any(masses[k] > np.abs(v) * (1 + 1e-9)) or np.all(masses[k] == 0) or k in ("dD",), k


@pytest.mark.parametrize("which", ["ssd", "scan", "s4d"])
def test_missing_or_bad_cotangent_raises(which: str) -> None:
    rng = np.random.default_rng(5)
    if which == "ssd":
        X, A, B, C = (rng.standard_normal((1, 4, 1, 2)), -rng.uniform(0, 1, (1, 4, 1)),
                      rng.standard_normal((1, 4, 1, 3)), rng.standard_normal((1, 4, 1, 3)))
        with pytest.raises(InputError, match=r"argument 'grad_y'.*None"):
            ref.ssd_vjp(X, A, B, C, None)
        with pytest.raises(InputError, match="argument 'grad_final_state'"):
            ref.ssd_vjp(X, A, B, C, np.zeros(X.shape), grad_final_state=np.zeros((1, 1, 3, 2)))
    elif which == "scan":
        ins = _scan_inputs(rng, "variable", False, False)
        args = (ins["u"], ins["delta"], ins["A"], ins["B"], ins["C"])
        with pytest.raises(InputError, match=r"argument 'grad_out'.*None"):
            ref.selective_scan_vjp(*args)
        with pytest.raises(InputError, match="argument 'grad_last_state'"):
            ref.selective_scan_vjp(*args, grad_out=np.zeros(ins["u"].shape), grad_last_state=np.zeros((2, 4, 3)) + 1j)
        with pytest.raises(InputError, match="argument 'grad_out'"):
            ref.selective_scan_vjp(*args, grad_out=np.full(ins["u"].shape, np.nan))
    else:
        A = np.array([[-0.5 + 1j]])
        with pytest.raises(InputError, match=r"argument 'grad_k'.*None"):
            ref.s4d_kernel_vjp(np.array([-2.0]), A, A, A, 4, None)
        with pytest.raises(InputError, match="argument 'grad_k'"):
            ref.s4d_kernel_vjp(np.array([-2.0]), A, A, A, 4, np.zeros((1, 5)))


_NAIVE = {"ssd_scan": naive_ssm.ssd_minimal, "selective_scan": naive_ssm.selective_scan_ref,
          "s4d_kernel": naive_ssm.s4d_kernel, "ssm_convolution": naive_ssm.ssm_convolution}


@pytest.mark.parametrize("op", sorted(_NAIVE))
def test_check_grad_passes_for_the_naive_baselines(op: str) -> None:
    spec = veriformer.ops.get_op(op)
    r = veriformer.check(_NAIVE[op], op=op, dtypes=("float16", "bfloat16", "float32"), features=spec.features,
                         grad=True, max_examples=5)
    assert r.passed, r.summary()
    names = {v.output for c in r.cases for v in c.verdicts}
    if op == "selective_scan":  # complex A with constant B/C (parts B_re, ...) and with interleaved B/C
        from veriformer.properties.ssm.strategies import ScanCase

        rc = veriformer.check(_NAIVE[op], op=op, dtypes=("float32",), grad=True, features=spec.features, cases=[
            ScanCase(b=1, d=2, n=4, L=9, bc=bc, use_D=True, use_z=True, use_bias=True, softplus=True, seed=3,
                     complex_A=True) for bc in ("constant", "variable")])
        assert rc.passed, rc.summary()
        names |= {v.output for c in rc.cases for v in c.verdicts}
    assert {"d" + n for n in spec.differentiable} <= names, names  # every gradient (optional ones too) judged


def test_check_grad_accepts_float32_states_and_rejects_a_forward_only_kernel() -> None:
    def wide(*a: Any, **k: Any) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = naive_ssm.ssd_minimal(*a, **k)
        return y, h.float()

    r = veriformer.check(wide, op="ssd_scan", dtypes=("bfloat16",), features={"initial_states"}, grad=True,
                         max_examples=4)
    assert r.passed, r.summary()
    r = veriformer.check(oracle_ssd_scan, op="ssd_scan", dtypes=("float32",), grad=True, max_examples=2,
                         shrink=False)
    assert not r.passed and "does not require grad" in r.failure.message
