"""Triton selective scan (fast/ssm/scan.py): conformance through check(), outputs against the float64
oracle (several chunks with a ragged last one, L = 1, several channel blocks), gradients of every input against
float64 torch autograd of ``naive_ssm.selective_scan_ref``, mixed mamba-style dtypes, strided inputs, input errors,
and a GPU-size run.  Shapes are tiny: without CUDA the kernels run in Triton's CPU interpreter."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from _helpers import compile_in_subprocess, load_benchmark

import veriformer
from veriformer import reference as ref
from veriformer.fast._triton import env as _triton_env
from veriformer.fast.ssm.naive import selective_scan_ref
from veriformer.properties.ssm.strategies import SCAN_FEATURES as _ALL_FEATURES
from veriformer.reference import InputError

SCAN_FEATURES = _ALL_FEATURES - {"complex_A"}  # this kernel takes real A (it rejects complex A)

pytestmark = pytest.mark.skipif(not _triton_env.HAVE_TRITON, reason="triton not installed")

if _triton_env.HAVE_TRITON:
    from veriformer.fast.ssm.scan import selective_scan

DEV = "cuda" if torch.cuda.is_available() else "cpu"
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _inputs(b: int, d: int, n: int, L: int, bc: str, *, groups: int = 2, softplus: bool = True, seed: int = 0,
            dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = {"constant": (d, n), "variable": (b, n, L), "grouped": (b, groups, n, L)}[bc]

    def r(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g, dtype=torch.float64)

    x = {"u": r(b, d, L), "delta": r(b, d, L) - 1.0 if softplus else torch.rand(b, d, L, generator=g) * 0.2,
         "A": -torch.exp(torch.rand(d, n, generator=g, dtype=torch.float64) * 3.5 - 0.7), "B": r(*shape),
         "C": r(*shape), "D": r(d), "z": r(b, d, L),
         "delta_bias": torch.rand(d, generator=g, dtype=torch.float64) - 0.5}
    return {k: v.to(device=DEV, dtype=dtype) for k, v in x.items()}


def _oracle(x: dict[str, torch.Tensor], softplus: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return ref.selective_scan(*(x[k] for k in NAMES), softplus, True)


# -- conformance -------------------------------------------------------------------------------------------------


def test_check_forward_all_features_three_dtypes() -> None:
    r = veriformer.check(selective_scan, op="selective_scan", dtypes=("float16", "bfloat16", "float32"),
                         features=SCAN_FEATURES, max_examples=6)
    assert r.passed, r.summary()
    assert len(r.cases) >= 18  # 6 drawn per dtype, plus check()'s corner cases


def test_check_gradients_all_features() -> None:
    r = veriformer.check(selective_scan, op="selective_scan", dtypes=("bfloat16", "float32"), features=SCAN_FEATURES,
                         grad=True, max_examples=3)
    assert r.passed, r.summary()
    assert sum(v.output == "du" for c in r.cases for v in c.verdicts) == len(r.cases) >= 6  # + corner cases


def test_check_gradients_gpu_tiles() -> None:
    """The GPU's fixed tiles for any size (16 rows per program, UNIFORM only when 16 divides a group's channels,
    chunks of 64 with a masked tail: the bounded-compilation choice) under the interpreter, with gradients."""
    import functools

    fn = functools.partial(selective_scan, block_d=16, chunk=64)
    r = veriformer.check(fn, op="selective_scan", dtypes=("bfloat16", "float32"), features=SCAN_FEATURES,
                         grad=True, max_examples=4, name="triton_selective_scan[16 rows, chunk 64]")
    assert r.passed, r.summary()


# -- outputs against the oracle ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bc", ["constant", "variable", "grouped"])
def test_float64_matches_oracle_ragged_chunks(bc: str) -> None:
    """L = 19 with chunk 8: three chunks, the last one ragged; float64 inputs run the kernels in float64."""
    x = _inputs(2, 4, 3, 19, bc)
    out, last = selective_scan(*(x[k] for k in NAMES), True, True, chunk=8)
    o, s = _oracle(x)
    assert out.dtype == torch.float64 and last.dtype == torch.float64
    np.testing.assert_allclose(out.cpu().numpy(), o, rtol=0, atol=1e-12 * np.abs(o).max())
    np.testing.assert_allclose(last.cpu().numpy(), s, rtol=0, atol=1e-12 * np.abs(s).max())


def test_length_one_and_no_options() -> None:
    x = _inputs(1, 2, 4, 1, "variable", softplus=False)
    out = selective_scan(x["u"], x["delta"], x["A"], x["B"], x["C"])
    o = ref.selective_scan(*(x[k] for k in ("u", "delta", "A", "B", "C")))
    np.testing.assert_allclose(out.cpu().numpy(), o, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_within_twice_the_naive_error(dtype: torch.dtype) -> None:
    """Several channel blocks (block_d=2, d=4) and a ragged chunk; error against the float64 oracle of the rounded
    inputs within 2x the naive baseline's plus a few ulps of the output scale; last state float32 for bf16."""
    x = {k: v.to(dtype) for k, v in _inputs(2, 4, 16, 21, "variable", seed=3).items()}
    out, last = selective_scan(*(x[k] for k in NAMES), True, True, block_d=2, chunk=16)
    base, _ = selective_scan_ref(*(x[k] for k in NAMES), True, True)
    o, s = _oracle(x)
    assert out.dtype == dtype and last.dtype == torch.float32
    eps = torch.finfo(dtype).eps
    err = np.abs(out.double().cpu().numpy() - o).max()
    base_err = np.abs(base.double().cpu().numpy() - o).max()
    assert err <= 2 * base_err + 4 * eps * np.abs(o).max(), (err, base_err)
    np.testing.assert_allclose(last.double().cpu().numpy(), s, rtol=0, atol=1e-5 * np.abs(s).max())


def test_mamba_dtypes_and_strided_inputs() -> None:
    """bf16 u/delta/z/B/C with float32 A, D, delta_bias (mamba's parameter dtypes); u and delta as non-contiguous
    views; gradients come back in each input's dtype."""
    x = _inputs(1, 4, 4, 12, "variable", seed=5)
    t = {k: (v.float() if k in ("A", "D", "delta_bias") else v.to(torch.bfloat16)) for k, v in x.items()}
    t["u"] = t["u"].transpose(1, 2).contiguous().transpose(1, 2)  # strides (L*d, 1, d)
    t["delta"] = torch.cat([t["delta"], t["delta"]], dim=2)[..., ::2]  # stride 2 along L
    assert not t["u"].is_contiguous() and not t["delta"].is_contiguous()
    p = {k: v.detach().requires_grad_() for k, v in t.items()}
    out = selective_scan(*(p[k] for k in NAMES), True)
    o, _ = _oracle(t)
    assert out.dtype == torch.bfloat16
    np.testing.assert_allclose(out.detach().double().cpu().numpy(), o, rtol=0, atol=3e-2 * np.abs(o).max())
    grads = torch.autograd.grad(out, [p[k] for k in NAMES], torch.ones_like(out))
    for k, gr in zip(NAMES, grads, strict=True):
        assert gr.dtype == t[k].dtype and gr.shape == t[k].shape, k


# -- gradients ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bc", ["constant", "variable", "grouped"])
def test_gradients_match_float64_autograd(bc: str) -> None:
    """Every input's gradient, with cotangents on out and on the last state, against float64 autograd of
    naive_ssm.selective_scan_ref: float64 kernels to 1e-11 (every B/C kind; one block of all b*d rows, B/C rows
    gathered per row), float32 kernels to 2e-5 (grouped; block_d=2: four blocks, each inside one batch and group,
    B/C rows shared) relative to the largest entry; three chunks of 4, the last ragged (L = 10)."""
    b, d, n, L = 2, 4, 3, 10
    x = _inputs(b, d, n, L, bc, seed=11)
    x64 = {k: v.detach().requires_grad_() for k, v in x.items()}
    o64, s64 = selective_scan_ref(*(x64[k] for k in NAMES), True, True)
    g = torch.Generator().manual_seed(1)
    go = torch.randn(o64.shape, generator=g, dtype=torch.float64).to(DEV)
    gs = torch.randn(s64.shape, generator=g, dtype=torch.float64).to(DEV)
    want = torch.autograd.grad((o64, s64), [x64[k] for k in NAMES], (go, gs))
    for dtype, tol, bd in ((torch.float64, 1e-11, None), (torch.float32, 2e-5, 2))[:2 if bc == "grouped" else 1]:
        p = {k: v.detach().to(dtype).requires_grad_() for k, v in x.items()}
        out, last = selective_scan(*(p[k] for k in NAMES), True, True, chunk=4, block_d=bd)
        got = torch.autograd.grad((out, last), [p[k] for k in NAMES], (go.to(dtype), gs.to(dtype)))
        for k, gw, gg in zip(NAMES, want, got, strict=True):
            scale = gw.abs().max().item()
            err = (gg.double() - gw).abs().max().item()
            assert err <= tol * scale, (dtype, k, err, scale)


def test_gradient_without_bias_softplus_D_z() -> None:
    """The plain path (no optional input, no softplus, no last state): du, ddelta, dA, dB, dC."""
    x = _inputs(1, 2, 4, 9, "variable", softplus=False, seed=2)
    p = {k: x[k].detach().float().requires_grad_() for k in ("u", "delta", "A", "B", "C")}
    q = {k: x[k].detach().requires_grad_() for k in p}
    out = selective_scan(*p.values())
    want = selective_scan_ref(*q.values())
    go = torch.linspace(-1, 1, out.numel(), dtype=torch.float64, device=DEV).reshape(out.shape)
    got = torch.autograd.grad(out, list(p.values()), go.float())
    ref_g = torch.autograd.grad(want, list(q.values()), go)
    for k, a, e in zip(p, got, ref_g, strict=True):
        assert (a.double() - e).abs().max().item() <= 2e-5 * e.abs().max().item(), k


def test_gradient_through_the_last_state_only() -> None:
    """Only the last state used (out's cotangent arrives as None) and a stride-0 cotangent (``sum().backward()``)."""
    x = _inputs(1, 3, 4, 7, "variable", seed=4)
    p = {k: x[k].detach().requires_grad_() for k in ("u", "delta", "A", "B", "C", "delta_bias")}
    q = {k: x[k].detach().requires_grad_() for k in p}
    _, last = selective_scan(*(p[k] for k in ("u", "delta", "A", "B", "C")), delta_bias=p["delta_bias"],
                             delta_softplus=True, return_last_state=True)
    last.sum().backward()
    _, want = selective_scan_ref(*(q[k] for k in ("u", "delta", "A", "B", "C")), delta_bias=q["delta_bias"],
                                 delta_softplus=True, return_last_state=True)
    want.sum().backward()
    for k in p:
        expect = q[k].grad if q[k].grad is not None else torch.zeros_like(x[k])  # C does not reach the state
        assert p[k].grad is not None and (p[k].grad - expect).abs().max().item() <= 1e-12 * (1 + expect.abs().max()), k


# -- input errors ------------------------------------------------------------------------------------------------


def _bad_calls() -> list[tuple[str, dict[str, object]]]:
    x = _inputs(1, 4, 2, 5, "variable", dtype=torch.float32)
    f = torch.float32
    return [
        ("'u'", {"u": x["u"][0]}),
        ("'u'", {"u": x["u"].to(torch.int32)}),
        ("'delta'", {"delta": x["delta"][..., :4]}),
        ("'delta'", {"delta": x["delta"].half()}),
        ("'A'", {"A": x["A"][:3]}),
        ("'A'", {"A": torch.complex(x["A"], x["A"])}),
        ("'B'", {"B": x["B"][..., :4]}),
        ("'B'", {"B": torch.zeros(1, 3, 2, 5, dtype=f, device=DEV)}),  # 3 groups do not divide d = 4
        ("'C'", {"C": torch.zeros(2, 2, 2, 2, 5, dtype=f, device=DEV)}),
        ("'D'", {"D": x["D"][:2]}),
        ("'z'", {"z": x["z"][:, :2]}),
        ("'delta_bias'", {"delta_bias": x["delta_bias"][None]}),
        ("'delta_softplus'", {"delta_softplus": 1}),
        ("'block_d'", {"block_d": 3}),
        ("'chunk'", {"chunk": 6}),
    ]


@pytest.mark.parametrize("case", range(15))
def test_input_errors_name_the_argument(case: int) -> None:
    name, bad = _bad_calls()[case]
    x = _inputs(1, 4, 2, 5, "variable", dtype=torch.float32)
    kw = {**{k: x[k] for k in ("u", "delta", "A", "B", "C")}, **bad}
    with pytest.raises(InputError, match=name):
        selective_scan(**kw)  # type: ignore[arg-type]




# -- GPU ---------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("bc", ["variable", "grouped"])
def test_gpu_mamba_size_bf16(bc: str) -> None:
    """b=2, d=512, n=16, L=1000 in bf16 (float32 A, D, bias) against the float64 oracle and float64 autograd."""
    x = _inputs(2, 512, 16, 1000, bc, groups=4, seed=7)
    t = {k: (v.float() if k in ("A", "D", "delta_bias") else v.to(torch.bfloat16)) for k, v in x.items()}
    p = {k: v.detach().requires_grad_() for k, v in t.items()}
    out, last = selective_scan(*(p[k] for k in NAMES), True, True)
    base = selective_scan_ref(*(t[k] for k in NAMES), True)
    o, s = _oracle(t)
    err = np.abs(out.double().cpu().numpy() - o).max()
    base_err = np.abs(base.double().cpu().numpy() - o).max()
    assert err <= 2 * base_err + 4 * 2**-8 * np.abs(o).max(), (err, base_err)
    assert np.abs(last.double().cpu().numpy() - s).max() <= 1e-4 * np.abs(s).max()
    q = {k: v.detach().double().requires_grad_() for k, v in t.items()}
    want = torch.autograd.grad(selective_scan_ref(*(q[k] for k in NAMES), True), [q[k] for k in NAMES],
                               torch.ones(out.shape, device=DEV, dtype=torch.float64))
    got = torch.autograd.grad(out, [p[k] for k in NAMES], torch.ones_like(out))
    for k, gw, gg in zip(NAMES, want, got, strict=True):
        assert (gg.double() - gw).abs().max().item() <= 3e-2 * gw.abs().max().item(), k


# -- benchmark ---------------------------------------------------------------------------------------------------


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark("selective_scan").run(["--smoke", "--modes", "fwd"])
    out = capsys.readouterr().out
    assert "ours" in out and rows and rows[0]["ratio"] == 1.0
    timed = [r for r in rows if "ms" in r]
    assert {r["impl"] for r in rows} >= {"triton_selective_scan (ours)", "torch selective_scan_ref",
                                         "mamba_ssm selective_scan_fn"}
    assert all(math.isfinite(r["ms"]) and r["diff"] < 0.05 for r in timed)


# -- the GPU code path compiles ----------------------------------------------------------------------------------

_COMPILE_SCRIPT = r"""
import triton.language as tl
import veriformer.fast.ssm.scan as ss
from veriformer.fast._triton.ptx import compile_ptx

def build(fn, io, cst):
    return compile_ptx(fn, io, cst, num_warps=4)

io = {n: "*bf16" for n in ("U", "DL", "B", "C", "Z", "OUT", "GOUT", "DU", "DDL", "DZ")}
io.update({n: "*fp32" for n in ("A", "Dp", "BIAS", "LAST", "HCK", "SCR", "WS", "GLAST", "DA_P", "DB_P", "DC_P",
                                 "DD_P", "DBIAS_P")})
f = dict(ACC=tl.float32, HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, B_VAR=True, C_VAR=True, UNIFORM=True,
         BLOCK_D=16, BLOCK_N=16, CHUNK=64, EVEN_N=True, EMULATE=False)
fwd = build(ss._scan_fwd, io, dict(f, STORE_CHUNKS=True))
bwd = build(ss._scan_bwd, io, dict(f, HAS_GLAST=True))
io32 = {k: "*fp32" for k in io}
g = dict(f, HAS_Z=False, C_VAR=False, UNIFORM=False, EVEN_N=False, BLOCK_N=32)
build(ss._scan_fwd, io32, dict(g, STORE_CHUNKS=False))
build(ss._scan_bwd, io32, dict(g, HAS_GLAST=False))
print("rn_bf16=%d atomics=%d" % (all("cvt.rn.bf16" in p and "cvt.rz" not in p for p in (fwd, bwd)),
                                 "atom." in fwd + bwd))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="compilation (~10 s): runs under VERIFORMER_PROFILE=deep")
def test_kernels_compile_for_sm90_without_a_gpu() -> None:
    """The GPU code path (EMULATE=False) of the forward and backward kernels compiles to PTX for an H100 (sm_90)
    in a subprocess with the interpreter off (bf16 variable B/C with every option; float32 per-row variable B and
    constant C with padded n): bf16 outputs and gradients are stored round-to-nearest-even and the backward uses
    no atomics."""
    stdout = compile_in_subprocess(_COMPILE_SCRIPT)
    assert stdout.split()[-2:] == ["rn_bf16=1", "atomics=0"], stdout
