"""Op ``mamba_chunk_scan`` (mamba's ``mamba_chunk_scan_combined`` convention, properties/ssm/op_chunk_scan.py).

* The gold (``mamba_chunk_scan64``, built on ``reference.ssd_recurrence``) and its VJP (``reference.ssd_vjp`` and
  the chain rule) against an independent float64 torch implementation (the quadratic masked-attention form,
  torch autograd), values and every gradient, over all features;
* the naive torch baseline against the gold in float64 (partial last chunk, groups);
* input errors of the naive and gold paths;
* ``check()`` of the registered rows (naive, float64 oracle, our Triton ``chunk_scan``), and the native mamba row's
  identity mapping with a fake kernel of mamba's signature in its place (the real row: CUDA, GPU-marked).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON  # isort: skip

import veriformer
from veriformer.fast.ssm.naive_chunk_scan import mamba_chunk_scan as naive
from veriformer.implementations import IMPLEMENTATIONS
from veriformer.ops import get_op
from veriformer.properties import third_party as tp
from veriformer.properties.ssm.op_chunk_scan import mamba_chunk_scan64, mamba_chunk_scan64_vjp
from veriformer.properties.ssm.strategies_chunk_scan import MAMBA_CHUNK_FEATURES, MambaChunkCase
from veriformer.reference import InputError

_OPT = ("D", "z", "dt_bias", "initial_states")


def torch64(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
            D: torch.Tensor | None = None, z: torch.Tensor | None = None, dt_bias: torch.Tensor | None = None,
            initial_states: torch.Tensor | None = None, dt_softplus: bool = False) -> tuple[torch.Tensor, ...]:
    """Independent float64 mamba_chunk_scan_combined: the quadratic (masked attention) form
    ``Y_t = sum_{s<=t} exp(cs_t - cs_s) (C_t . B_s) dt'_s x_s + exp(cs_t) C_t H_{-1}``, groups by
    repeat_interleave, softplus as logaddexp (exact derivative sigmoid), differentiable by torch autograd."""
    d = dt if dt_bias is None else dt + dt_bias
    if dt_softplus:
        d = torch.logaddexp(d, torch.zeros_like(d))
    rep = x.shape[2] // B.shape[2]
    Bh, Ch = B.repeat_interleave(rep, dim=2), C.repeat_interleave(rep, dim=2)
    cs = torch.cumsum((d * A).permute(0, 2, 1), dim=-1)  # [b, h, l]
    T = cs.shape[-1]
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool))
    Lm = torch.exp(torch.where(keep, cs[..., :, None] - cs[..., None, :], -torch.inf))
    X = x * d[..., None]
    Y = torch.einsum("bhts,bthn,bshn,bshp->bthp", Lm, Ch, Bh, X)
    Hf = torch.einsum("bhs,bshp,bshn->bhpn", Lm[:, :, -1, :], X, Bh)
    if initial_states is not None:
        Y = Y + torch.exp(cs).permute(0, 2, 1)[..., None] * torch.einsum("bthn,bhpn->bthp", Ch, initial_states)
        Hf = Hf + torch.exp(cs[..., -1])[..., None, None] * initial_states
    if D is not None:
        Y = Y + x * (D[:, None] if D.dim() == 1 else D)
    if z is not None:
        Y = Y * z * torch.sigmoid(z)
    return Y, Hf


_CASES = [
    MambaChunkCase(b=1, l=1, h=1, g=1, p=1, n=1, chunk_size=4),
    MambaChunkCase(b=2, l=9, h=4, g=2, p=3, n=5, chunk_size=4, D="hp", z=True, bias=True, softplus=True,
                   initial=True, final=True, seed=1),
    MambaChunkCase(b=1, l=13, h=3, g=1, p=2, n=4, chunk_size=8, D="h", z=True, bias=True, initial=True, final=True,
                   seed=2),
    MambaChunkCase(b=2, l=7, h=2, g=2, p=4, n=3, chunk_size=1, decay="steep", D="h", bias=True, softplus=True,
                   initial=True, final=True, seed=3),
    MambaChunkCase(b=1, l=11, h=4, g=4, p=2, n=2, chunk_size=16, decay="steep", z=True, softplus=True, seed=4),
    MambaChunkCase(b=1, l=6, h=2, g=1, p=3, n=2, chunk_size=4, softplus=True, final=True, seed=5),
]


def _kw(case: MambaChunkCase, a: dict[str, Any]) -> dict[str, Any]:
    return {k: a[k] for k in _OPT if k in a} | {"dt_softplus": case.softplus}


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))


@pytest.mark.parametrize("case", _CASES, ids=lambda c: f"l{c.l}-h{c.h}g{c.g}-{c.decay}-sp{int(c.softplus)}")
def test_gold_and_vjp_match_float64_autograd(case: MambaChunkCase) -> None:
    a = case.arrays()
    y, H = mamba_chunk_scan64(a["x"], a["dt"], a["A"], a["B"], a["C"], **_kw(case, a))
    t = {k: torch.from_numpy(v).requires_grad_() for k, v in a.items()}
    y2, H2 = torch64(t["x"], t["dt"], t["A"], t["B"], t["C"], **_kw(case, t))
    assert _rel(y, y2.detach().numpy()) < 1e-12 and _rel(H, H2.detach().numpy()) < 1e-12
    rng = np.random.default_rng(case.seed + 7)
    gy = rng.standard_normal(y.shape)
    gh = rng.standard_normal(H.shape) if case.final else None
    gold = mamba_chunk_scan64_vjp(a["x"], a["dt"], a["A"], a["B"], a["C"], gy, **_kw(case, a), grad_final_state=gh)
    loss = (y2 * torch.from_numpy(gy)).sum() + ((H2 * torch.from_numpy(gh)).sum() if gh is not None else 0.0)
    auto = dict(zip(t, torch.autograd.grad(loss, list(t.values())), strict=True))
    assert set(gold) == set(a)
    mass = mamba_chunk_scan64_vjp(a["x"], a["dt"], a["A"], a["B"], a["C"], gy, **_kw(case, a), grad_final_state=gh,
                                  absolute=True)
    for name, g in gold.items():
        want = auto[name].numpy()
        assert g.shape == a[name].shape, name
        assert np.abs(g - want).max() <= 1e-11 * np.abs(want).max() + 1e-300, (name, _rel(g, want))
        assert bool(np.all(np.abs(g) <= mass[name] * (1 + 1e-12) + 1e-300)), name  # mass >= |gradient|


@pytest.mark.parametrize("case", _CASES[1:4], ids=lambda c: f"l{c.l}-Q{c.chunk_size}")
def test_naive_baseline_is_the_gold_in_float64(case: MambaChunkCase) -> None:
    a = case.arrays()
    t = {k: torch.from_numpy(v) for k, v in a.items()}
    y, H = naive(t["x"], t["dt"], t["A"], t["B"], t["C"], case.chunk_size, **_kw(case, t), return_final_states=True)
    y2, H2 = mamba_chunk_scan64(a["x"], a["dt"], a["A"], a["B"], a["C"], **_kw(case, a))
    # 1e-9: torch's softplus is the identity above 20 (as mamba's), off by log1p(e^-x) < 2.1e-9 there
    assert y.dtype == torch.float64 and _rel(y.numpy(), y2) < 1e-9 and _rel(H.numpy(), H2) < 1e-9
    if not case.softplus:
        assert _rel(y.numpy(), y2) < 1e-12 and _rel(H.numpy(), H2) < 1e-12
    y1 = naive(t["x"].float(), t["dt"].float(), t["A"].float(), t["B"].float(), t["C"].float(), case.chunk_size)
    assert y1.dtype == torch.float32 and torch.is_tensor(y1)  # y only without return_final_states


def _small() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(1, 5, 4, 3, generator=g), "dt": torch.rand(1, 5, 4, generator=g) * 0.1,
            "A": -torch.rand(4, generator=g) - 0.5, "B": torch.randn(1, 5, 2, 2, generator=g),
            "C": torch.randn(1, 5, 2, 2, generator=g)}


def test_input_errors_name_the_argument() -> None:
    t = _small()
    bad = [({"x": t["x"][0]}, "'x'"), ({"dt": t["dt"][..., :3]}, "'dt'"), ({"A": t["A"][:3]}, "'A'"),
           ({"B": torch.zeros(1, 5, 3, 2)}, "'B'"), ({"C": torch.zeros(1, 5, 2, 3)}, "'C'"),
           ({"D": torch.zeros(4, 2)}, "'D'"), ({"z": torch.zeros(1, 5, 4, 2)}, "'z'"),
           ({"dt_bias": torch.zeros(3)}, "'dt_bias'"),
           ({"initial_states": torch.zeros(1, 4, 3, 3)}, "'initial_states'"),
           ({"dt": t["dt"].long()}, "'dt'")]
    for change, name in bad:
        args = {**t, **change}
        with pytest.raises(InputError, match=name):
            naive(args.pop("x"), args.pop("dt"), args.pop("A"), args.pop("B"), args.pop("C"), 2, **args)
        args = {k: v.numpy() if v.is_floating_point() else v for k, v in {**t, **change}.items()}
        with pytest.raises(InputError, match=name):
            mamba_chunk_scan64(args.pop("x"), args.pop("dt"), args.pop("A"), args.pop("B"), args.pop("C"), **args)
    for chunk in (0, True, 2.0):
        with pytest.raises(InputError, match="'chunk_size'"):
            naive(t["x"], t["dt"], t["A"], t["B"], t["C"], chunk)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'dt_softplus'"):
        naive(t["x"], t["dt"], t["A"], t["B"], t["C"], 2, dt_softplus=1)  # type: ignore[arg-type]
    a = {k: v.numpy() for k, v in t.items()}
    with pytest.raises(InputError, match="'A'"):  # A >= 0
        mamba_chunk_scan64(a["x"], a["dt"], -a["A"], a["B"], a["C"])
    with pytest.raises(InputError, match="'dt'"):  # dt + dt_bias < 0 without softplus
        mamba_chunk_scan64(a["x"], a["dt"], a["A"], a["B"], a["C"], dt_bias=-np.ones(4))
    mamba_chunk_scan64(a["x"], a["dt"], a["A"], a["B"], a["C"], dt_bias=-np.ones(4), dt_softplus=True)
    x = a["x"].copy()
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="'x'"):
        mamba_chunk_scan64(x, a["dt"], a["A"], a["B"], a["C"])
    with pytest.raises(InputError, match="'grad_y'"):
        mamba_chunk_scan64_vjp(a["x"], a["dt"], a["A"], a["B"], a["C"], a["x"][:, :4])
    with pytest.raises(InputError, match="'grad_final_state'"):
        mamba_chunk_scan64_vjp(a["x"], a["dt"], a["A"], a["B"], a["C"], a["x"], grad_final_state=np.zeros((1, 4, 3)))


def test_op_convention() -> None:
    spec = get_op("mamba_chunk_scan")
    assert spec.outputs == ("out", "final_state") and spec.wide_outputs == {"final_state"}
    assert spec.features == MAMBA_CHUNK_FEATURES
    r = veriformer.check(naive, op="mamba_chunk_scan", dtypes=("bfloat16",), cases=[spec.sweep(16, 0)], grad=True)
    assert r.passed, r.summary()

    def no_final(*args: Any, return_final_states: bool = False, **kw: Any) -> Any:
        return naive(*args, **kw)  # ignores return_final_states: the op must notice

    r = veriformer.check(no_final, op="mamba_chunk_scan", features={"return_final_states"}, max_examples=10)
    assert not r.passed and "tuple" in r.failure.message


def _row(name: str) -> Any:
    rows = [i for i in IMPLEMENTATIONS if i.op == "mamba_chunk_scan" and i.name == name]
    if not rows:
        pytest.skip(f"{name} is not registered here")
    return rows[0]


@pytest.mark.parametrize("name,n", [("naive_torch", 8), ("oracle_in_torch", 8), ("triton_chunk_scan", 4)])
def test_rows_pass_check(name: str, n: int) -> None:
    if name == "triton_chunk_scan" and not HAVE_TRITON:
        pytest.skip("triton is not installed")
    impl = _row(name)
    r = veriformer.check(impl.fn, op=impl.op, dtypes=("float16", "bfloat16", "float32"), features=impl.features,
                         grad=impl.grad, max_examples=n, seed=3, name=name)
    assert r.passed, r.summary()
    judged = {v.output for c in r.cases for v in c.verdicts}
    grads = {"d" + k for k in get_op("mamba_chunk_scan").differentiable}
    want = {"out", "final_state"} | (grads if impl.grad else set())
    assert want <= judged, want - judged  # every output and gradient, the optional ones too


def _fake_mamba_chunk_scan_combined(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                                    C: torch.Tensor, chunk_size: int, D: torch.Tensor | None = None,
                                    z: torch.Tensor | None = None, dt_bias: torch.Tensor | None = None,
                                    initial_states: torch.Tensor | None = None, seq_idx: Any = None,
                                    cu_seqlens: Any = None, dt_softplus: bool = False,
                                    dt_limit: tuple[float, float] = (0.0, float("inf")),
                                    return_final_states: bool = False, return_varlen_states: bool = False) -> Any:
    """mamba's signature (ssd_combined.py) over the naive baseline, final state in float32 as mamba returns it."""
    assert seq_idx is None and cu_seqlens is None and not return_varlen_states
    res = naive(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, dt_softplus, return_final_states)
    return (res[0], res[1].float()) if return_final_states else res


def test_native_mamba_row_is_the_identity_mapping() -> None:
    r = veriformer.check(tp.on_cuda(_fake_mamba_chunk_scan_combined), op="mamba_chunk_scan",
                         dtypes=("float16", "float32"), features=MAMBA_CHUNK_FEATURES, grad=True, max_examples=8,
                         name="native row with a fake kernel")
    assert r.passed, r.summary()


@pytest.mark.gpu
def test_native_mamba_row_on_cuda() -> None:
    pytest.importorskip("mamba_ssm")
    impl = _row("mamba.mamba_chunk_scan_combined[native]")
    r = veriformer.check(impl.fn, op=impl.op, dtypes=("float16", "bfloat16", "float32"), features=impl.features,
                         grad=impl.grad, device="cuda", name=impl.name)
    assert r.passed, r.summary()


@pytest.mark.gpu
def test_triton_chunk_scan_on_cuda() -> None:
    if not HAVE_TRITON:
        pytest.skip("triton is not installed")
    impl = _row("triton_chunk_scan")
    spec = get_op("mamba_chunk_scan")
    r = veriformer.check(impl.fn, op=impl.op, dtypes=("float16", "bfloat16", "float32"), features=impl.features,
                         grad=True, device="cuda", name=impl.name)
    assert r.passed, r.summary()
    r = veriformer.check(impl.fn, op=impl.op, dtypes=("bfloat16", "float32"), device="cuda", grad=True,
                         cases=[spec.sweep(n, 0) for n in (256, 1024)], name=impl.name)
    assert r.passed, r.summary()
