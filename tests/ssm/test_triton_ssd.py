"""The Triton SSD (Mamba-2) chunked scan (``veriformer.fast.ssm.ssd``) against the float64 oracles.

Forward: ``check()`` of op ``ssd_scan`` (chunk sizes that do not divide l, l = 1) and :func:`chunk_scan` (D, z,
dt_bias, softplus, groups, initial states) against an oracle built from ``reference.ssd_recurrence``.
Backward: every input's gradient against torch autograd of a float64 quadratic-form SSD (itself checked against
``reference.ssd_recurrence``).  Without CUDA the kernels run in Triton's CPU interpreter, so shapes are tiny;
the GPU-size test is marked ``gpu``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
import torch
import torch.nn.functional as F

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON, interpreting  # isort: skip

from _helpers import compile_in_subprocess, load_benchmark

import veriformer
from veriformer import reference as ref
from veriformer.properties.ssm.strategies import SSDCase
from veriformer.reference import InputError

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")

if HAVE_TRITON:
    from veriformer.fast.ssm.ssd import chunk_scan, ssd_scan

DEV = "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"


# -- float64 oracles ---------------------------------------------------------------------------------------------


def _segsum(a: torch.Tensor) -> torch.Tensor:
    """Stable segment sum [..., T, T] (masked cumulative sums, -inf above the diagonal)."""
    T = a.shape[-1]
    x = a[..., None].expand(*a.shape, T)
    low = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), -1)
    s = torch.cumsum(x.masked_fill(~low, 0), dim=-2)
    return s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device)), -torch.inf)


def ssd64(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
          h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable float64 SSD in the quadratic (masked attention) form, op ``ssd_scan`` layouts."""
    a = A.permute(0, 2, 1)
    Lm = torch.exp(_segsum(a))
    Y = torch.einsum("bhts,bthn,bshn,bshp->bthp", Lm, C, B, X)
    Hf = torch.einsum("bhs,bshp,bshn->bhpn", Lm[:, :, -1, :], X, B)
    if h0 is not None:
        cs = torch.cumsum(a, -1)
        Y = Y + torch.exp(cs).permute(0, 2, 1)[..., None] * torch.einsum("bthn,bhpn->bthp", C, h0)
        Hf = Hf + torch.exp(cs[..., -1])[..., None, None] * h0
    return Y, Hf


def chunk64(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
            D: torch.Tensor | None = None, z: torch.Tensor | None = None, dt_bias: torch.Tensor | None = None,
            h0: torch.Tensor | None = None, softplus: bool = False, ssd: Any = ssd64) -> tuple[torch.Tensor, ...]:
    """mamba_chunk_scan_combined semantics in float64 on top of ``ssd`` (per-head B/C)."""
    if dt_bias is not None:
        dt = dt + dt_bias
    if softplus:
        dt = F.softplus(dt)
    rep = x.shape[2] // B.shape[2]
    Y, Hf = ssd(x * dt[..., None], dt * A, B.repeat_interleave(rep, dim=2), C.repeat_interleave(rep, dim=2), h0)
    if D is not None:
        Y = Y + x * (D[:, None] if D.dim() == 1 else D)
    if z is not None:
        Y = Y * F.silu(z)
    return Y, Hf


def _recurrence(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    Y, H = ref.ssd_recurrence(X.detach().cpu(), A.detach().cpu(), B.detach().cpu(), C.detach().cpu(),
                              None if h0 is None else h0.detach().cpu())
    return torch.from_numpy(Y), torch.from_numpy(H)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def _inputs(b: int, L: int, H: int, G: int, P: int, N: int, *, D: int = 0, z: bool = False, bias: bool = False,
            h0: bool = True, softplus: bool = False, seed: int = 0, device: str = DEV) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    out = {"x": r(b, L, H, P), "dt": (r(b, L, H) * 0.5 - 1.0) if softplus else torch.rand(b, L, H, generator=g) * 0.4,
           "A": -torch.rand(H, generator=g) * 2.0, "B": r(b, L, G, N), "C": r(b, L, G, N),
           "D": None if D == 0 else (r(H) if D == 1 else r(H, P)), "z": r(b, L, H, P) if z else None,
           "dt_bias": (r(H) * 0.3 if softplus else torch.rand(H, generator=g) * 0.3) if bias else None,
           "initial_states": r(b, H, P, N) if h0 else None}
    return {k: (None if v is None else v.to(device)) for k, v in out.items()}


_NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def _run_chunk(t: dict[str, Any], Q: int, softplus: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], Q, D=t["D"], z=t["z"], dt_bias=t["dt_bias"],
                      initial_states=t["initial_states"], dt_softplus=softplus, return_final_states=True)


def _run_chunk64(t: dict[str, Any], softplus: bool, ssd: Any = ssd64) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk64(t["x"], t["dt"], t["A"], t["B"], t["C"], t["D"], t["z"], t["dt_bias"], t["initial_states"],
                   softplus, ssd=ssd)


# -- the float64 torch oracle is the recurrence ------------------------------------------------------------------


def test_float64_torch_oracle_matches_recurrence() -> None:
    t = _inputs(2, 11, 4, 2, 3, 5, D=2, z=True, bias=True, softplus=True, device="cpu")
    t64 = {k: None if v is None else v.double() for k, v in t.items()}
    y, h = _run_chunk64(t64, True)
    y2, h2 = _run_chunk64(t64, True, ssd=_recurrence)
    assert _rel(y, y2) < 1e-13 and _rel(h, h2) < 1e-13


# -- op ssd_scan through check() ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 5, 16])
def test_check_ssd_scan_chunks_not_dividing_length(chunk: int) -> None:
    """check() with the kernel's chunk size forced to ``chunk`` (l = 12, 7, 3 or 1: 3 and 5 do not divide 7)."""
    cases = [SSDCase(b=1, h=1, p=1, n=1, chunks=1, chunk_size=1, decay="zero", initial=True, seed=3),
             SSDCase(b=1, h=2, p=3, n=4, chunks=1, chunk_size=3, decay="mild", initial=True, seed=4)]
    if chunk > 1:
        cases += [SSDCase(b=1, h=2, p=3, n=4, chunks=3, chunk_size=4, decay="mild", initial=True, seed=1),
                  SSDCase(b=2, h=1, p=8, n=16, chunks=1, chunk_size=7, decay="steep", initial=False, seed=2)]

    def fn(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
           initial_states: torch.Tensor | None = None) -> Any:
        return ssd_scan(X, A, B, C, chunk, initial_states)

    r = veriformer.check(fn, op="ssd_scan", dtypes=("float16", "bfloat16", "float32"), device=DEV,
                         features={"initial_states"}, cases=cases, name=f"triton_ssd[chunk={chunk}]")
    assert r.passed, r.summary()


def test_ssd_scan_output_dtypes() -> None:
    X, A, B, C = torch.randn(1, 3, 1, 2), -torch.rand(1, 3, 1), torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4)
    for dt in (torch.float16, torch.bfloat16, torch.float32):
        Y, H = ssd_scan(*(t.to(DEV, dt) for t in (X, A, B, C)), 2)
        assert Y.dtype == dt and H.dtype == (torch.float32 if dt != torch.float32 else dt)
        _, Hg = _recurrence(*(t.to(dt).float() for t in (X, A, B, C)), None)
        assert _rel(H, Hg) < (1e-5 if dt == torch.float32 else 1e-2)


# -- chunk_scan forward vs the recurrence ------------------------------------------------------------------------

_CONFIGS = [  # b, L, H, G, P, N, Q, D, z, bias, softplus, h0
    (1, 1, 1, 1, 1, 1, 1, 0, False, False, False, False),
    (1, 13, 4, 2, 3, 5, 5, 1, True, True, True, True),
    (1, 37, 2, 1, 8, 16, 16, 2, True, False, True, True),
    (1, 20, 2, 2, 5, 6, 8, 2, False, True, False, False),
]


@pytest.mark.parametrize("cfg", _CONFIGS, ids=lambda c: f"L{c[1]}-Q{c[6]}-G{c[3]}")
def test_chunk_scan_forward_matches_recurrence(cfg: tuple[Any, ...]) -> None:
    b, L, H, G, P, N, Q, D, z, bias, sp, h0 = cfg
    t = _inputs(b, L, H, G, P, N, D=D, z=z, bias=bias, h0=h0, softplus=sp)
    y, fin = _run_chunk(t, Q, sp)
    assert y.dtype == t["x"].dtype and fin.dtype == torch.float32 and fin.shape == (b, H, P, N)
    y2, f2 = _run_chunk64({k: None if v is None else v.double().cpu() for k, v in t.items()}, sp, ssd=_recurrence)
    assert _rel(y, y2) < 1e-5 and _rel(fin, f2) < 1e-5


def test_chunk_scan_half_precision_forward() -> None:
    t = _inputs(1, 21, 2, 1, 4, 8, D=1, z=True, h0=True, softplus=True, seed=5)
    for dt in (torch.float16, torch.bfloat16):
        th = dict(t, x=t["x"].to(dt), B=t["B"].to(dt), C=t["C"].to(dt), z=t["z"].to(dt))
        y, fin = _run_chunk(th, 8, True)
        t64 = {k: None if v is None else v.double().cpu() for k, v in th.items()}
        y2, f2 = _run_chunk64(t64, True, ssd=_recurrence)
        tol = 4 * (2.0**-8 if dt == torch.bfloat16 else 2.0**-11)
        assert y.dtype == dt and _rel(y, y2) < tol and _rel(fin, f2) < tol


def test_decay_exponents_rounded_once() -> None:
    """A sharp decay (a = -1000) then slow ones: |cs| ~ 1e4 inside the chunk while the surviving decays are
    ~ e^{-0.01 k}; a float32 difference cs_t - cs_s would err by ~ ulp(1e4) = 1e-3 relative, ours by ~ u."""
    b, L, H, P, N = 1, 32, 1, 4, 4
    g = torch.Generator().manual_seed(7)
    X, B, C = (torch.randn(b, L, H, d, generator=g) for d in (P, N, N))
    A = torch.full((b, L, H), -0.01)
    A[:, :16] = -1000.0
    Y, H1 = ssd_scan(X.to(DEV), A.to(DEV), B.to(DEV), C.to(DEV), 32)
    Yg, Hg = _recurrence(X, A, B, C, None)
    assert _rel(Y, Yg) < 2e-6 and _rel(H1, Hg) < 2e-6


# -- gradients vs float64 autograd -------------------------------------------------------------------------------


def _grads(fn: Any, t: dict[str, Any], seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    live = {k: v.detach().clone().requires_grad_() for k, v in t.items() if v is not None}
    y, fin = fn({k: live.get(k) for k in t})
    g = torch.Generator().manual_seed(seed)
    gy, gf = torch.randn(y.shape, generator=g).to(y.device), torch.randn(fin.shape, generator=g).to(fin.device)
    gr = torch.autograd.grad((y * gy.to(y.dtype)).sum() + (fin * gf.to(fin.dtype)).sum(), list(live.values()))
    return dict(zip(live, gr, strict=True)), {"gy": gy, "gf": gf}


@pytest.mark.parametrize("cfg", _CONFIGS[1:], ids=lambda c: f"L{c[1]}-Q{c[6]}-G{c[3]}")
def test_chunk_scan_gradients(cfg: tuple[Any, ...]) -> None:
    b, L, H, G, P, N, Q, D, z, bias, sp, h0 = cfg
    t = _inputs(b, L, H, G, P, N, D=D, z=z, bias=bias, h0=h0, softplus=sp, seed=11)
    ours, cot = _grads(lambda a: _run_chunk(a, Q, sp), t, seed=3)
    live = {k: v.detach().double().cpu().requires_grad_() for k, v in t.items() if v is not None}
    y, fin = _run_chunk64({k: live.get(k) for k in t}, sp)
    gold = torch.autograd.grad((y * cot["gy"].double().cpu()).sum() + (fin * cot["gf"].double().cpu()).sum(),
                               list(live.values()))
    assert set(ours) == set(live)
    for (name, g1), g2 in zip(ours.items(), gold, strict=True):
        assert g1.dtype == t[name].dtype and g1.shape == g2.shape, name
        assert _rel(g1, g2) < 2e-5, (name, _rel(g1, g2))


@pytest.mark.parametrize("decay", ["mild", "mixed", "zero"])
def test_ssd_scan_gradients(decay: str) -> None:
    b, L, H, P, N, Q = 1, 13, 2, 3, 4, 5
    g = torch.Generator().manual_seed(13)
    t = {"X": torch.randn(b, L, H, P, generator=g), "A": -torch.rand(b, L, H, generator=g) * 0.5,
         "B": torch.randn(b, L, H, N, generator=g), "C": torch.randn(b, L, H, N, generator=g),
         "h0": torch.randn(b, H, P, N, generator=g)}
    if decay == "mixed":  # steep steps (e^{a} underflows) between mild ones
        t["A"][:, ::3] = -60.0
    elif decay == "zero":
        t["A"].zero_()
    t = {k: v.to(DEV) for k, v in t.items()}
    ours, cot = _grads(lambda a: ssd_scan(a["X"], a["A"], a["B"], a["C"], Q, a["h0"]), t, seed=4)
    live = {k: v.detach().double().cpu().requires_grad_() for k, v in t.items()}
    y, fin = ssd64(*live.values())
    gold = torch.autograd.grad((y * cot["gy"].double().cpu()).sum() + (fin * cot["gf"].double().cpu()).sum(),
                               list(live.values()))
    for (name, g1), g2 in zip(ours.items(), gold, strict=True):
        assert bool(torch.isfinite(g1).all()), name
        assert _rel(g1, g2) < 2e-5, (name, _rel(g1, g2))


def test_steep_decay_gradients_match_reference_vjp() -> None:
    """Steep decays (a in [-400, -5]: e^{a} underflows within a few steps): dA is tiny, and every gradient
    must still match ``reference.ssd_vjp`` to float32 rounding element by element (relative RMS).  Keeping the
    O(1) diagonal terms in da's running sums (an inclusive-minus-self prefix sum) gave relative RMS ~1e-3."""
    b, L, H, P, N, Q = 2, 24, 1, 3, 4, 8
    g = torch.Generator().manual_seed(17)
    X, B, C = (torch.randn(b, L, H, d, generator=g) for d in (P, N, N))
    A = -(torch.rand(b, L, H, generator=g) * 395 + 5)
    h0, gy, gf = torch.randn(b, H, P, N, generator=g), torch.randn(b, L, H, P, generator=g), torch.randn(b, H, P, N)
    live = [t.clone().to(DEV).requires_grad_() for t in (X, A, B, C, h0)]
    Y, Hf = ssd_scan(*live[:4], Q, live[4])
    ours = torch.autograd.grad((Y * gy.to(DEV)).sum() + (Hf * gf.to(DEV)).sum(), live)
    gold = ref.ssd_vjp(X, A, B, C, gy, h0, gf)
    for name, g1 in zip(("dX", "dA", "dB", "dC", "dinitial_states"), ours, strict=True):
        g2 = torch.from_numpy(gold[name])
        err, scale = float((g1.double().cpu() - g2).norm()), float(g2.norm())
        assert err <= 2e-6 * scale + 1e-30, (name, err, scale)  # 1e-30: dH_0 ~ e^{-400} underflows float32


def test_gradient_of_y_only_and_bf16_backward_runs() -> None:
    t = _inputs(1, 9, 2, 1, 4, 4, D=1, z=True, h0=True, seed=2)
    x = t["x"].to(torch.bfloat16).requires_grad_()
    y = chunk_scan(x, t["dt"], t["A"], t["B"].to(torch.bfloat16), t["C"].to(torch.bfloat16), 4,
                   D=t["D"], z=t["z"].to(torch.bfloat16))
    (gx,) = torch.autograd.grad(y.float().sum(), [x])
    live = {"x": x.detach().double().cpu().requires_grad_()}
    t64 = {k: None if v is None else v.double().cpu() for k, v in t.items()}
    t64.update(x=live["x"], B=t["B"].to(torch.bfloat16).double().cpu(), C=t["C"].to(torch.bfloat16).double().cpu(),
               z=t["z"].to(torch.bfloat16).double().cpu(), initial_states=None)
    (g2,) = torch.autograd.grad(_run_chunk64(t64, False)[0].sum(), [live["x"]])
    assert gx.dtype == torch.bfloat16 and _rel(gx, g2) < 3e-2


# -- input validation --------------------------------------------------------------------------------------------


def test_input_errors_name_the_argument() -> None:
    t = _inputs(1, 4, 2, 1, 3, 4, h0=True)
    ok = dict(t)
    bad = [({"A": torch.zeros(3)}, "'A'"), ({"dt": torch.zeros(1, 4, 3)}, "'dt'"),
           ({"B": torch.zeros(1, 4, 3, 4)}, "'B'"), ({"C": torch.zeros(1, 4, 1, 5)}, "'C'"),
           ({"D": torch.zeros(2, 2)}, "'D'"), ({"z": torch.zeros(1, 4, 2, 2)}, "'z'"),
           ({"dt_bias": torch.zeros(1)}, "'dt_bias'"),
           ({"initial_states": torch.zeros(1, 2, 3, 5)}, "'initial_states'"),
           ({"x": torch.zeros(1, 4, 2, 3, dtype=torch.float64)}, "'x'"),
           ({"B": t["B"].to(torch.float16)}, "'B'")]
    for change, name in bad:
        a = {**ok, **{k: v.to(DEV) for k, v in change.items()}}
        with pytest.raises(InputError, match=name):
            _run_chunk(a, 2, False)
    with pytest.raises(InputError, match="'chunk_size'"):
        _run_chunk(ok, 0, False)
    with pytest.raises(InputError, match="'chunk_size'"):
        _run_chunk(ok, True, False)  # type: ignore[arg-type]
    X = t["x"]
    with pytest.raises(InputError, match="'A'"):
        ssd_scan(X, torch.zeros(1, 4, 3, device=DEV), t["B"].expand(1, 4, 2, 4), t["B"].expand(1, 4, 2, 4), 2)
    with pytest.raises(InputError, match="'B'"):
        ssd_scan(X, torch.zeros(1, 4, 2, device=DEV), t["B"], t["B"], 2)  # one group, not per head


# -- benchmark ---------------------------------------------------------------------------------------------------


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark("ssm").run(["--smoke", "--modes", "fwd"])
    out = capsys.readouterr().out
    assert "ours" in out and "sequential" in out and rows[0]["ratio"] == 1.0
    timed = [r for r in rows if "ms" in r]
    assert len(timed) >= 2 and all(math.isfinite(r["ms"]) and r["diff"] < 0.05 for r in timed)


# -- GPU size ----------------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_gpu_large_bf16_forward_and_backward() -> None:
    b, L, H, G, P, N, Q = 2, 1000, 4, 1, 64, 128, 256
    t = _inputs(b, L, H, G, P, N, D=1, z=True, bias=True, h0=True, softplus=True, seed=21, device="cuda")
    th = dict(t, x=t["x"].bfloat16(), B=t["B"].bfloat16(), C=t["C"].bfloat16(), z=t["z"].bfloat16())
    ours, cot = _grads(lambda a: _run_chunk(a, Q, True), th, seed=5)
    live = {k: v.detach().double().requires_grad_() for k, v in th.items() if v is not None}
    y, fin = _run_chunk64({k: live.get(k) for k in th}, True)
    y_ours, fin_ours = _run_chunk(th, Q, True)
    assert _rel(y_ours, y) < 2e-2 and _rel(fin_ours, fin) < 2e-2
    gold = torch.autograd.grad((y * cot["gy"].double()).sum() + (fin * cot["gf"].double()).sum(),
                               list(live.values()))
    for (name, g1), g2 in zip(ours.items(), gold, strict=True):
        assert _rel(g1, g2) < 5e-2, (name, _rel(g1, g2))


# -- the GPU code path compiles ----------------------------------------------------------------------------------

_COMPILE_SCRIPT = r"""
import triton.language as tl
from veriformer.fast.ssm import ssd as sd
from veriformer.fast._triton.ptx import compile_ptx

bf = {n: "*bf16" for n in ("U", "V", "X", "B", "C", "Y", "YPRE", "Z", "DY", "DX", "DYB", "DZ")}
f32 = {n: "*fp32" for n in ("DT", "A", "BIAS", "DTP", "ST", "OUT", "HIN", "FIN", "H0", "DTOT", "D", "DCH", "DAP",
                            "DBH", "QS", "DDTX", "DDT", "DAH", "DDP", "DS")}
TYPES = {**bf, **f32, "CS": "*fp64"}
common = dict(EMULATE=False, DOT_PREC="tf32", IDX=tl.int32)
tiles = dict(BLOCK_M=64, BLOCK_K=64, BLOCK_P=64, BLOCK_N=128)
ptx = {
    "cumsum": compile_ptx(sd._cumsum_kernel, TYPES, dict(DT_PATH=True, SOFTPLUS=True, HAS_BIAS=True, BLOCK_Q=256,
                                                         IDX=tl.int32), num_warps=4),
    "state": compile_ptx(sd._chunk_state_kernel, TYPES, dict(common, REVERSE=False, HAS_DT=True, BLOCK_K=64,
                                                             BLOCK_P=64, BLOCK_N=128), num_warps=8, num_stages=2),
    "pass": compile_ptx(sd._state_pass_kernel, TYPES, dict(HAS_H0=True, REVERSE=False, BLOCK=1024, IDX=tl.int32),
                        num_warps=4),
    "scan": compile_ptx(sd._scan_fwd_kernel, TYPES, dict(common, HAS_DT=True, HAS_D=True, D_HDIM=False, HAS_Z=True,
                                                         **tiles), num_warps=8, num_stages=2),
    "dc": compile_ptx(sd._bwd_dc_kernel, TYPES, dict(common, HAS_DT=True, **tiles), num_warps=8, num_stages=2),
    "dxdb": compile_ptx(sd._bwd_dxdb_kernel, TYPES, dict(common, HAS_DT=True, HAS_D=True, D_HDIM=False, **tiles),
                        num_warps=8, num_stages=2),
}
print("mma=%d f64_cumsum=%d" % (all("mma" in ptx[k] for k in ("state", "scan", "dc", "dxdb")), ".f64" in ptx["cumsum"]))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="compilation (~15 s): runs under VERIFORMER_PROFILE=deep")
def test_kernels_compile_for_sm90_without_a_gpu() -> None:
    """The GPU code path (EMULATE=False, int32 indexing, GPU tiles) of the forward kernels and the two large
    backward kernels compiles to PTX for an H100 (sm_90); bf16 dots use MMA and the in-chunk cumsum is float64."""
    stdout = compile_in_subprocess(_COMPILE_SCRIPT)
    assert stdout.split()[-2:] == ["mma=1", "f64_cumsum=1"], stdout
