"""Third-party rows (properties/*/third_party.py): the adapters' mapping with our own torch kernels in the
kernels' place (always run), and fla / mamba-ssm themselves where installed (skipped otherwise; the CUDA-only
kernels are GPU-marked)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

import veriformer
from veriformer import reference as ref
from veriformer.fast.linear_attention import naive as naive_la
from veriformer.fast.ssm import naive as naive_ssm
from veriformer.implementations import IMPLEMENTATIONS
from veriformer.ops import get_op
from veriformer.properties import third_party as tp
from veriformer.properties.linear_attention import third_party as fla_tp
from veriformer.properties.ssm import third_party as mamba_tp
from veriformer.reference import InputError

_LA = frozenset({"gate", "initial_state"})
_SCAN_ALL = frozenset({"D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC", "grouped_BC"})
_HALF = ("float16", "bfloat16")


def _la_inputs(K: int = 3, V: int = 5, dtype: torch.dtype = torch.float64, T: int = 7, H: int = 2,
               seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {"q": (2, T, H, K), "k": (2, T, H, K), "v": (2, T, H, V), "initial_state": (2, H, K, V)}
    out = {n: torch.randn(*shape, generator=g, dtype=dtype) for n, shape in shapes.items()}
    out["g"] = -0.1 * torch.rand(2, T, H, generator=g, dtype=dtype)
    return out


# -- fla adapters with our kernels in fla's place ------------------------------------------------------------------


def test_simple_gla_adapter_is_the_identity_mapping() -> None:
    a = _la_inputs(dtype=torch.float32)
    got = fla_tp.simple_gla_as_linear_attention(naive_la.linear_attention, a["q"], a["k"], a["v"], g=a["g"], scale=0.3,
                                            initial_state=a["initial_state"], output_final_state=True)
    want = naive_la.linear_attention(a["q"], a["k"], a["v"], g=a["g"], scale=0.3, initial_state=a["initial_state"],
                                     output_final_state=True)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    o, S = fla_tp.simple_gla_as_linear_attention(naive_la.linear_attention, a["q"], a["k"], a["v"], scale=0.3)
    assert S is None and o.shape == a["v"].shape


def test_even_padding_is_exact_and_seen_by_the_kernel() -> None:
    a = _la_inputs(K=3, V=5)
    seen: list[tuple[int, int]] = []

    def kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: Any) -> Any:
        seen.append((q.shape[-1], v.shape[-1]))
        assert kw["initial_state"].shape[-2:] == (q.shape[-1], v.shape[-1])
        return naive_la.linear_attention_recurrent_fp32(q, k, v, **kw)

    o, S = fla_tp.simple_gla_as_linear_attention(kernel, a["q"], a["k"], a["v"], g=a["g"], scale=0.5,
                                             initial_state=a["initial_state"], output_final_state=True, pad_even=True)
    assert seen == [(4, 6)]
    o0, S0 = naive_la.linear_attention_recurrent_fp32(a["q"], a["k"], a["v"], g=a["g"], scale=0.5,
                                                      initial_state=a["initial_state"], output_final_state=True)
    assert o.shape == o0.shape and S.shape == S0.shape
    torch.testing.assert_close(o, o0, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(S, S0, rtol=1e-14, atol=1e-14)


def test_padded_adapter_passes_check_with_gradients() -> None:
    fn = functools.partial(fla_tp.simple_gla_as_linear_attention, naive_la.linear_attention_chunked, pad_even=True)
    r = veriformer.check(fn, op="linear_attention", dtypes=("bfloat16", "float32"), features=_LA, grad=True,
                         max_examples=3, name="padded naive chunked")
    assert r.passed, r.summary()


def _fake_lightning(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer_idx: int, num_layers: int,
                    scale: float | None = None, initial_state: torch.Tensor | None = None,
                    output_final_state: bool = False) -> Any:
    """fla's chunk_lightning_attn schedule (fla/ops/lightning_attn/chunk.py) over our naive simple GLA."""
    B, T, H, _ = q.shape
    g_gamma = -(8 / H * (1 - layer_idx / num_layers)) * torch.arange(H, dtype=torch.float)
    g = g_gamma.expand(B, T, H).to(q.dtype)
    return naive_la.linear_attention(q, k, v, g=g, scale=scale, initial_state=initial_state,
                                     output_final_state=output_final_state)


def test_lightning_adapter_gives_ungated_attention() -> None:
    a = _la_inputs(H=3)
    o, S = fla_tp.lightning_as_linear_attention(_fake_lightning, a["q"], a["k"], a["v"], scale=0.4,
                                            initial_state=a["initial_state"], output_final_state=True)
    o0, S0 = naive_la.linear_attention(a["q"], a["k"], a["v"], scale=0.4, initial_state=a["initial_state"],
                                       output_final_state=True)
    assert torch.equal(o, o0) and torch.equal(S, S0)
    # the schedule at another layer decays heads 1.. (so the test would see a wrong layer mapping)
    o1, _ = _fake_lightning(a["q"], a["k"], a["v"], 0, 1, scale=0.4, initial_state=a["initial_state"])
    assert not torch.allclose(o1, o0)
    with pytest.raises(InputError, match="'g'"):
        fla_tp.lightning_as_linear_attention(_fake_lightning, a["q"], a["k"], a["v"], g=a["g"], scale=0.4)
    r = veriformer.check(functools.partial(fla_tp.lightning_as_linear_attention, _fake_lightning, pad_even=True),
                         op="linear_attention", dtypes=("float16", "float32"), features={"initial_state"},
                         grad=True, max_examples=4, name="lightning adapter")
    assert r.passed, r.summary()


def test_fit_output_follows_the_ops_wide_outputs() -> None:
    like = torch.zeros(2, dtype=torch.bfloat16)
    s = torch.tensor([1.0 + 2.0**-12, 3.0])
    assert tp.fit_output(None, like, "linear_attention", "final_state") is None
    for op, out in (("linear_attention", "final_state"), ("selective_scan", "last_state"),
                    ("ssd_scan", "final_state")):
        got = tp.fit_output(s, like, op, out)
        assert got.dtype == (torch.float32 if out in get_op(op).wide_outputs else torch.bfloat16)
    assert tp.fit_output(s.double(), like, "linear_attention", "final_state").dtype == torch.bfloat16


def test_interpreter_driver_stand_in() -> None:
    d = tp._InterpreterDriver()
    calls: list[int] = []
    assert d.get_benchmarker()(lambda: calls.append(1), quantiles=(0.5, 0.2, 0.8)) == [0.0, 0.0, 0.0]
    assert calls == []  # nothing is run while "benchmarking"
    with pytest.raises(RuntimeError, match="no active Triton driver"):
        d.get_current_target()


def test_on_cuda_passes_through_without_cuda() -> None:
    seen: list[torch.device] = []

    def f(x: torch.Tensor, *, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        seen.append(x.device)
        return x + y, None

    x = torch.ones(3)
    out = tp.on_cuda(f)(x, y=x)
    assert torch.equal(out[0], 2 * x) and out[1] is None and out[0].device == x.device
    assert seen == [torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else x.device]


# -- mamba adapters with our kernels in mamba's place -------------------------------------------------------------


def _strict_selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                           D: Any = None, z: Any = None, delta_bias: Any = None, delta_softplus: bool = False,
                           return_last_state: bool = False) -> Any:
    """Our selective_scan_ref behind the dtype checks of mamba's selective_scan.cpp (weights float32, inputs
    and variable B/C in the input dtype), returning last_state in float32 as the CUDA kernel does."""
    f32 = torch.float32
    assert A.dtype == f32 and (D is None or D.dtype == f32) and (delta_bias is None or delta_bias.dtype == f32)
    for name, t in (("B", B), ("C", C)):
        assert t.dtype == (f32 if t.dim() == 2 else u.dtype), name
    assert delta.dtype == u.dtype and (z is None or z.dtype == u.dtype)
    res = naive_ssm.selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if return_last_state:
        return res[0], res[1].float()
    return res


def test_selective_scan_cuda_adapter_widens_weights_exactly() -> None:
    fn = functools.partial(mamba_tp.selective_scan_via_cuda_kernel, _strict_selective_scan)
    for feats in (_SCAN_ALL - {"variable_BC", "grouped_BC"}, _SCAN_ALL):
        r = veriformer.check(fn, op="selective_scan", dtypes=("float16", "bfloat16", "float32"), features=feats,
                             max_examples=5, name="cuda adapter")
        assert r.passed, r.summary()
    with pytest.raises(AssertionError):  # the strict fake rejects unwidened weights
        _strict_selective_scan(*(torch.ones(1, 2, 3, dtype=torch.float16) for _ in range(2)),
                               torch.ones(2, 4, dtype=torch.float16), torch.ones(2, 4), torch.ones(2, 4))


def test_ssd_minimal_adapter_adds_the_chunk_axis() -> None:
    def fake(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, block_len: int,
             initial_states: torch.Tensor | None = None) -> Any:
        if initial_states is not None:
            assert initial_states.dim() == 5 and initial_states.shape[1] == 1
            initial_states = initial_states[:, 0]
        return naive_ssm.ssd_minimal(X, A, B, C, block_len, initial_states)

    r = veriformer.check(functools.partial(mamba_tp.ssd_via_minimal_discrete, fake), op="ssd_scan",
                         dtypes=("float16", "float32"), features={"initial_states"}, max_examples=4, name="adapter")
    assert r.passed, r.summary()


def _fake_chunk_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                     chunk_size: int, initial_states: torch.Tensor | None = None,
                     return_final_states: bool = False) -> Any:
    """mamba_chunk_scan_combined's semantics in float64 (``h_t = exp(dt_t A_h) h_{t-1} + dt_t B_t x_t^T``,
    ngroups = nheads), out in x's dtype and the final state in float32, as mamba returns them."""
    assert dt.dtype == torch.float32 and A.dtype == torch.float32 and A.dim() == 1
    dt64, A64 = dt.double(), A.double()
    Y, H = ref.ssd_recurrence((dt64[..., None] * x.double()).numpy(), (dt64 * A64).numpy(), B.double().numpy(),
                              C.double().numpy(), None if initial_states is None else initial_states.double().numpy())
    out = torch.from_numpy(Y).to(x.dtype)
    return (out, torch.from_numpy(H).float()) if return_final_states else out


def test_chunk_scan_adapter_maps_the_decay_exactly() -> None:
    seen: dict[str, torch.Tensor] = {}

    def spy(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, *args: Any, **kw: Any) -> Any:
        seen.update(x=x, dt=dt, A=A)
        return _fake_chunk_scan(x, dt, A, *args, **kw)

    g = torch.Generator().manual_seed(3)
    b, l, h, p, n = 2, 8, 3, 4, 5
    X = torch.randn(b, l, h, p, generator=g).half()
    A = -(0.3 * torch.rand(b, l, h, generator=g)).half()
    A[..., 1] = 0.0  # a head with no decay
    A[0, 0, 2] = -1e-7  # a float16 subnormal next to O(1) inputs: x = X/dt must not overflow
    B, C = (torch.randn(b, l, h, n, generator=g).half() for _ in range(2))
    mamba_tp.ssd_via_chunk_scan(spy, X, A, B, C, 4)
    assert torch.equal(seen["dt"].double() * seen["A"].double(), A.double())  # dt A_h = a, exactly
    assert torch.isfinite(seen["x"]).all() and seen["x"].abs().max() <= 2.0**13
    assert torch.equal(seen["x"][..., 1, :], X[..., 1, :]) and bool((seen["A"][1] == 0).all())
    dt = seen["dt"].double()[..., None]
    # one float16 rounding of x = X/dt: half an ulp relative, or half the smallest subnormal 2^-24 absolute
    err = (dt * seen["x"].double() - X.double()).abs()
    assert bool((err <= 2.0**-11 * X.double().abs() + dt * 2.0**-25).all())
    assert err.max() > 0  # (the rounding is real: the mapping is not bit-exact)
    A[1, 3, 0] = 0.0
    with pytest.raises(InputError, match="heads \\[0\\]"):
        mamba_tp.ssd_via_chunk_scan(_fake_chunk_scan, X, A, B, C, 4)


def test_chunk_scan_adapter_passes_check() -> None:
    r = veriformer.check(functools.partial(mamba_tp.ssd_via_chunk_scan, _fake_chunk_scan), op="ssd_scan",
                         dtypes=("float16", "bfloat16", "float32"), features={"initial_states"}, max_examples=4,
                         name="chunk-scan adapter")
    assert r.passed, r.summary()


# -- the packages themselves ---------------------------------------------------------------------------------------


def _row(name: str) -> Any:
    rows = [i for i in IMPLEMENTATIONS if i.name == name]
    if not rows:
        pytest.skip(f"{name} is not registered here (package or CUDA missing)")
    return rows[0]


def _check_row(name: str, dtypes: tuple[str, ...], max_examples: int | None = None, grad: bool | None = None,
               device: str = "cpu") -> None:
    impl = _row(name)
    r = veriformer.check(impl.fn, op=impl.op, dtypes=dtypes, features=impl.features,
                         grad=impl.grad if grad is None else grad, max_examples=max_examples, name=impl.name,
                         device=device)
    assert r.passed, r.summary()


def test_fla_fused_recurrent_runs_here() -> None:
    """Forward in two dtypes and the backward in float32, on CPU through the Triton interpreter (driver
    stand-in) or on CUDA."""
    pytest.importorskip("fla")
    _check_row("fla.fused_recurrent_simple_gla", ("bfloat16", "float32"), max_examples=4)
    _check_row("fla.fused_recurrent_simple_gla", ("float32",), max_examples=3, grad=True)


def _require_mamba() -> None:
    """Skip unless mamba_ssm is installed (found, not imported: without its compiled extension it imports only
    through the stand-in of properties/ssm/third_party.py)."""
    from veriformer.properties.ssm import third_party as mamba_rows

    if not mamba_rows.HAVE_MAMBA:
        pytest.skip("mamba_ssm is not installed (docs/third_party.md)")


def test_mamba_references_run_here() -> None:
    _require_mamba()
    _check_row("mamba.selective_scan_ref", ("float16", "bfloat16", "float32"), max_examples=5)
    _check_row("mamba.ssd_minimal_discrete", ("float16", "bfloat16", "float32"), max_examples=5)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["fla.chunk_simple_gla", "fla.chunk_lightning_attn",
                                  "fla.fused_recurrent_simple_gla"])
def test_fla_rows_on_cuda(name: str) -> None:
    pytest.importorskip("fla")
    _check_row(name, ("float16", "bfloat16", "float32"), device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["mamba.mamba_chunk_scan_combined", "mamba.selective_scan_fn",
                                  "mamba.selective_scan_ref", "mamba.ssd_minimal_discrete"])
def test_mamba_rows_on_cuda(name: str) -> None:
    _require_mamba()
    _check_row(name, ("float16", "bfloat16", "float32"), device="cuda")


@pytest.mark.gpu
def test_chunk_simple_gla_long_sequence_on_cuda() -> None:
    """Several 64-token chunks (the op strategy stays below one chunk): the op's sweep shapes."""
    pytest.importorskip("fla")
    impl = _row("fla.chunk_simple_gla")
    spec = get_op("linear_attention")
    cases = [spec.sweep(n, s) for n in (64, 256) for s in range(2)]
    r = veriformer.check(impl.fn, op=impl.op, dtypes=("bfloat16", "float32"), device="cuda", cases=cases,
                         name=impl.name)
    assert r.passed, r.summary()
