"""The number of Triton compilations a GPU campaign triggers, proved without a GPU.

A GPU compiles one binary per distinct *specialisation* of a kernel launch (constexpr values, launch options,
argument types and Triton's integer/pointer classes: equal to 1, divisible by 16, neither).  On the H200 the ci
``pytest -m gpu`` sat in compilation because every random size of a ``check()`` campaign made new ones (1313 in
one ci campaign of our kernels, counted as below before :func:`veriformer.fast._triton.env.bounded_jit`).  These
tests record the launches of the same campaigns in compiled mode (``TRITON_INTERPRET=0`` in a subprocess; nothing
runs) and count the distinct specialisation keys exactly as Triton's JIT computes them
(``native_specialize_impl``), via :func:`veriformer.compile_bound.campaign_specialisations`.

Budgets (ci profile, seed 0, float16 + bfloat16 + float32, gradients): per kernel the product of what the campaign
really varies — dtype (3) x feature flags drawn (causal / window, gate / initial state, D / z / bias / softplus...)
x head-dim bucket (a launch under 64K elements runs the generic binary with coarse buckets: >= 64 for attention
head dims and RoPE, pointer loads instead of TMA, every causal mask as a window) — never a length; measured 338 in
total (flash attention 60, shared by the pointer and TMA checks), with the campaigns' strategies of 2026-12-04
(corner cases first).  Compiling those 338 for sm_90 (Triton 3.9's ptxas, 3 sampled per kernel) is estimated at
207 s on the 2-core development machine, after small attention launches got 16 x 16 tiles (before: ~1000 s under
load, 70 % of it flash attention's float32 / wide-head backward, which spilled).  Budgets
are the structural product for attention and those figures plus about 40 % elsewhere: a change that makes a length,
a stride or a raw size reach a specialisation again breaks them (and :func:`test_at_most_two_binaries_per_signature`,
which holds whatever the strategies draw); a strategy that draws new feature combinations may need them raised
(say why in the commit).
"""

from __future__ import annotations

import json
import os

import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON  # isort: skip

from tests._helpers import compile_in_subprocess

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="needs the optional dependency triton")

# kernel -> most compilations in one ci campaign of every implementation that uses it (measured value in comments)
BUDGET: dict[str, int] = {
    # flash attention: 3 dtypes x 2 masks (none; causal or windowed, run as a window) x 3 small-launch head-dim
    # buckets (64, 128, 256) = 18, plus large launches (4 masks x 5 buckets x pointer/TMA at most; the campaigns
    # draw few).  The backward is one fused launch (measured 15); the two-kernel backward runs only for TMA loads
    # and autotuning (never in a campaign: small launches load through pointers, untuned) and for VQ attention's
    # dK/dV (measured 6) (2026-12-05)
    "_attn_fwd": 42, "_attn_bwd_fused": 42, "_attn_bwd_dkdv": 48, "_attn_bwd_delta": 12,
    # the others: measured with the strategies of 2026-12-04 (in comments) plus about 40 %
    "_rope_kernel": 59,  # 42: 3 layouts x forward/inverse x tail copy x rotary buckets x dtypes
    "_fwd_h": 34, "_fwd_o": 9, "_bwd_dh": 17, "_bwd_dqk": 9, "_bwd_dv": 9, "_bwd_dg": 5,  # 24, 6, 12, 6, 6, 3
    "_vq_quantize": 5, "_vq_cache": 9, "_vq_fwd": 9, "_vq_bwd_dq": 9,  # 3, 6, 6, 6
    "_scan_fwd": 42, "_scan_bwd": 42,  # 30, 30: D / z / bias / softplus / B, C kinds drawn per case
    "_cumsum_kernel": 17, "_chunk_state_kernel": 13, "_state_pass_kernel": 7, "_scan_fwd_kernel": 30,  # 12 9 5 21
    "_gate_bwd_kernel": 21, "_bwd_dc_kernel": 9, "_bwd_dxdb_kernel": 17, "_da_finish_kernel": 17,  # 15 6 12 12
    "_s4d_fwd": 5, "_s4d_bwd": 5,  # 3, 3
    # families added on 2026-12-04 (measured that day in comments): MLA decode, Monarch, ReRoPE attention
    "_mla_split": 18, "_mla_merge": 9,  # 13, 6
    "_block_product": 9, "_weight_grad": 7,  # 6, 5
    "_rerope_fwd": 30, "_rerope_bwd_dkdv": 30, "_rerope_bwd_dq": 30,  # 21, 21, 21
}
TOTAL_BUDGET = 560  # measured 413 on 2026-12-05 (431 before the fused attention backward; 356-374 before MLA,
# Monarch and ReRoPE)

_CAMPAIGN = r"""
import json, os
os.environ["VERIFORMER_AUTOTUNE"] = "1"  # autotuning on: recorded (and small) launches must still use one config
from veriformer.compile_bound import campaign_specialisations
print("JSON" + json.dumps(campaign_specialisations()))
"""


@pytest.fixture(scope="module")
def campaign() -> dict[str, object]:
    out = compile_in_subprocess(_CAMPAIGN, timeout=300)
    return json.loads(out.split("JSON", 1)[1])


def test_every_implementation_launches_kernels(campaign: dict[str, object]) -> None:
    from veriformer.compile_bound import our_implementations

    per_impl = campaign["per_implementation"]
    assert isinstance(per_impl, dict)
    assert sorted(per_impl) == sorted(f"{op}:{name}" for op, name in our_implementations())
    assert len(our_implementations()) == 19
    assert all(n > 0 for n in per_impl.values()), per_impl
    assert int(campaign["launches"]) > 1000  # type: ignore[call-overload]


def test_at_most_two_binaries_per_signature(campaign: dict[str, object]) -> None:
    """Whatever cases a strategy draws: per kernel, at most two specialisations (the canonical one and the generic
    one) per signature (constexprs, argument types, launch options), so sizes and strides never multiply them."""
    per_kernel, signatures = campaign["per_kernel"], campaign["signatures"]
    assert isinstance(per_kernel, dict) and isinstance(signatures, dict) and set(per_kernel) == set(signatures)
    over = {k: (n, signatures[k]) for k, n in per_kernel.items() if n > 2 * signatures[k]}
    assert not over, over


def test_ci_campaign_compilations_within_budget(campaign: dict[str, object]) -> None:
    per_kernel = campaign["per_kernel"]
    assert isinstance(per_kernel, dict)
    assert set(per_kernel) == set(BUDGET), sorted(set(per_kernel) ^ set(BUDGET))
    over = {k: (n, BUDGET[k]) for k, n in per_kernel.items() if n > BUDGET[k]}
    assert not over, f"kernels over their compile budget (count, budget): {over}"
    assert campaign["total"] == sum(per_kernel.values()) <= TOTAL_BUDGET, campaign["total"]


_LENGTHS = r"""
import json, torch
from veriformer import fast
from veriformer.fast._triton.env import recorded_launches, specialisations, specialisation_key

def rand(*s, dtype=torch.bfloat16):
    return torch.randn(*s).to(dtype).requires_grad_()

def fwd_bwd(out, wrt):
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, torch.Tensor) and o.requires_grad]
    torch.autograd.grad(outs, wrt, [torch.ones_like(o) for o in outs], allow_unused=True)

res = {}
for name in ("attention", "linear", "selective", "ssd", "rope"):
    per_t, union = [], set()
    for T in (1000, 1024, 1537, 2048, 4096):
        with recorded_launches() as rec:
            if name == "attention":
                q, k, v = (rand(1, 2, T, 64) for _ in range(3))
                fwd_bwd(fast.attention(q, k, v, causal=True), [q, k, v])
            elif name == "linear":
                q, k, v = (rand(1, T, 2, 64) for _ in range(3))
                g = (-0.1 * torch.rand(1, T, 2)).requires_grad_()
                fwd_bwd(fast.chunk_linear_attention(q, k, v, g=g), [q, k, v, g])
            elif name == "selective":
                u, dl = rand(1, 128, T), rand(1, 128, T)  # >= 64K elements: not a small launch
                A = (-torch.rand(128, 16) - 0.5).requires_grad_()
                B, C = rand(1, 16, T), rand(1, 16, T)
                fwd_bwd(fast.selective_scan(u, dl, A, B, C, delta_softplus=True), [u, dl, A, B, C])
            elif name == "ssd":
                x = rand(1, T, 2, 64)
                dt = torch.rand(1, T, 2).requires_grad_()
                A = (-torch.rand(2) - 1.0).requires_grad_()
                B, C = rand(1, T, 1, 64), rand(1, T, 1, 64)
                fwd_bwd(fast.chunk_scan(x, dt, A, B, C, 64), [x, dt, A, B, C])
            else:
                q, k = rand(1, 4, T, 128), rand(1, 2, T, 128)
                fwd_bwd(fast.rope_qk(q, k, torch.arange(T), base=10000.0), [q, k])
        keys = {specialisation_key(r) for r in rec}
        per_t.append(len(keys))
        union |= keys
    res[name] = [per_t, len(union), specialisations([r for r in rec])]
print("JSON" + json.dumps(res))
"""


def test_sequence_lengths_share_one_compilation_per_kernel() -> None:
    """Forward + backward at T = 1000, 1024, 1537, 2048, 4096 (bf16, GPU-sized): the kernels of attention, chunked
    linear attention, selective scan, SSD and RoPE compile for the first length and never again (lengths are never
    specialised, tiles do not follow the raw length, strides that scale with T stay divisible by 16; every launch
    here has >= 64K elements, so none takes the small-launch generic binary); at most two
    binaries per kernel (chunked linear attention's state kernel runs with and without the final state)."""
    res = json.loads(compile_in_subprocess(_LENGTHS, timeout=300).split("JSON", 1)[1])
    assert set(res) == {"attention", "linear", "selective", "ssd", "rope"}
    for family, (per_t, union, per_kernel) in res.items():
        assert per_t[0] > 0 and union == per_t[0], (family, per_t, union)
        assert all(n <= 2 for n in per_kernel.values()), (family, per_kernel)


_VARIANTS = r"""
import torch
from veriformer.fast.attention import flash as fa
from veriformer.fast._triton.env import recorded_launches, specialisation_key
with recorded_launches() as rec:
    for D in (64, 72, 64):  # 72: rows not 16-element aligned -> the generic binary; 64 again -> the first one
        q, k, v = (torch.randn(1, 2, 1024, D).bfloat16() for _ in range(3))
        fa.attention(q, k, v, causal=True)
    q, k, v = (torch.randn(1, 1, 8, 64).bfloat16() for _ in range(3))  # small launch -> generic
    fa.attention(q, k, v, causal=True)
gen = [r.kernel is fa._attn_fwd.generic for r in rec]
keys = [specialisation_key(r) for r in rec]
print("GEN", gen, keys[0] == keys[2], keys[1] == keys[0])
"""


def test_canonical_and_generic_variants() -> None:
    """A launch whose strides are all divisible by 16 takes the specialised binary; a head dim of 72 (row stride
    not a multiple of 16) and a small launch take the unspecialised ``generic`` one; equal classes share a key."""
    out = compile_in_subprocess(_VARIANTS, timeout=300)
    assert out.split("GEN", 1)[1].split() == ["[False,", "True,", "False,", "True]", "True", "False"], out


# ------------------------------------------------------------------------------------------------ autotuning

def test_autotune_is_off_under_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    from veriformer.fast._triton.env import autotune_enabled, interpreting

    monkeypatch.setenv("VERIFORMER_AUTOTUNE", "1")
    assert autotune_enabled() is (not interpreting())
    monkeypatch.setenv("VERIFORMER_AUTOTUNE", "0")
    assert autotune_enabled() is False


def test_length_bucket() -> None:
    from veriformer.fast._triton.env import length_bucket

    assert [length_bucket(n) for n in (1, 1000, 1025, 4096, 5000, 16384, 10**6)] == [
        1024, 1024, 2048, 4096, 8192, 16384, 65536]


def test_tune_keeps_the_fastest_config_skips_failures_and_logs_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The tuner's selection, with a stand-in timer (no GPU here): every configuration is timed once, one that
    raises is skipped, the fastest is kept, the cost is printed once and logged."""
    from veriformer.fast._triton import env

    configs = [{"BV": 64, "num_warps": 4}, {"BV": 32, "num_warps": 4}, {"BV": 128, "num_warps": 8}]
    timed: list[int] = []

    def bench(fn: object) -> float:
        i = len(timed)
        timed.append(i)
        if i == 2:
            raise RuntimeError("out of resources")
        return [1.0, 0.5][i]

    before = len(env.AUTOTUNE_LOG)
    best = env._tune(lambda: None, lambda c: (1,), configs, ("k", 1024), (), {}, bench)
    assert best == configs[1] and timed == [0, 1, 2]
    row = env.AUTOTUNE_LOG[before]
    assert len(env.AUTOTUNE_LOG) == before + 1 and row["best"] == configs[1] and row["seconds"] >= 0
    assert row["ms"][2] == float("inf")
    assert "veriformer autotune" in capsys.readouterr().err


def test_linear_attention_configs_default_first() -> None:
    """The curated lists start with the hand-set default, and only the default exists under the interpreter or
    with a caller's head tiles."""
    from veriformer.fast._triton.env import interpreting
    from veriformer.fast.linear_attention import chunked as la

    q, v = torch.zeros(1, 64, 2, 128), torch.zeros(1, 64, 2, 128)
    geo = la._Geometry(q, v, 1, 1.0, 64, False, None)
    assert geo.o_configs()[0]["BV"] == geo.bv_o and geo.state_configs()[0]["BK"] == geo.bk_state
    if interpreting():
        assert len(geo.o_configs()) == len(geo.state_configs()) == 1
    fixed = la._Geometry(q, v, 1, 1.0, 64, False, (32, 32))
    assert len(fixed.o_configs()) == len(fixed.state_configs()) == 1


_AUTOTUNE_SM90 = r"""
import json, torch
from veriformer import fast
from veriformer.fast.linear_attention import chunked as la
from veriformer.fast._triton.env import Launch, recorded_launches
from veriformer.fast._triton.ptx import compile_launch, resource_usage
bad, n = [], 0
for K in (64, 128):
    q, k, v = (torch.randn(1, 4096, 2, K).bfloat16().requires_grad_() for _ in range(3))
    g = (-0.1 * torch.rand(1, 4096, 2)).requires_grad_()
    with recorded_launches() as rec:
        o, _ = fast.chunk_linear_attention(q, k, v, g=g)
        torch.autograd.grad(o, (q, k, v, g), torch.ones_like(o))
    geo = la._Geometry(q, v, 1, K ** -0.5, 64, False, None)
    done = set()
    for r in rec:
        name = r.kernel.fn.__name__
        if name not in ("_fwd_o", "_bwd_dv", "_fwd_h", "_bwd_dh") or name in done:
            continue
        done.add(name)
        for c in (geo.o_configs() if name in ("_fwd_o", "_bwd_dv") else geo.state_configs()):
            kw = {a: b for a, b in r.kwargs.items() if a not in ("BV", "num_warps", "num_stages") and a not in c}
            kw.update(c)
            u = resource_usage(compile_launch(Launch(r.kernel, r.grid, r.args, kw)))
            n += 1
            if u["spill"] != 0 or u["mma"] == "none":
                bad.append([K, name, c, u["spill"], u["mma"]])
from veriformer.fast.ssm import ssd
T, H, P, N = 4096, 4, 64, 128
x = torch.randn(1, T, H, P).bfloat16().requires_grad_()
dt = torch.rand(1, T, H).requires_grad_()
A = (-torch.rand(H) - 1.0).requires_grad_()
B, C = (torch.randn(1, T, 1, N).bfloat16().requires_grad_() for _ in range(2))
with recorded_launches() as rec:
    y = fast.chunk_scan(x, dt, A, B, C, 256)
    torch.autograd.grad(y, (x, dt, A, B, C), torch.ones_like(y))
geo = ssd._Geometry(x, B, 256, dt_path=True, softplus=False, has_bias=False, D=None, has_z=False, has_h0=False)
for r in rec:
    if r.kernel.fn.__name__ != "_chunk_state_kernel":
        continue
    for c in geo.state_configs():
        kw = {a: b for a, b in r.kwargs.items() if a not in ("num_warps", "num_stages") and a not in c}
        kw.update(c)
        u = resource_usage(compile_launch(Launch(r.kernel, r.grid, r.args, kw)))
        n += 1
        if u["spill"] != 0 or u["mma"] == "none":
            bad.append(["ssd", r.kwargs.get("REVERSE"), c, u["spill"], u["mma"]])
print("JSON" + json.dumps({"n": n, "bad": bad}))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (~40 compilations): runs under VERIFORMER_PROFILE=deep")
def test_autotune_configs_compile_for_sm90_without_spills() -> None:
    """Every curated configuration of the tuned kernels -- linear attention (K = V = 64 and 128, bf16, T = 4096) and
    the SSD chunk-state kernel (forward and reverse, the benchmark's shape) -- compiles for sm_90 as Triton's JIT
    would launch it, with tensor-core dots and no register spill."""
    res = json.loads(compile_in_subprocess(_AUTOTUNE_SM90, timeout=900).split("JSON", 1)[1])
    assert res["n"] >= 40 and not res["bad"], res


_STATS = r"""
import time, types
from triton import knobs
from veriformer.fast.attention import flash as fa
from veriformer.fast._triton.env import compile_stats
before = knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook
with compile_stats() as st:
    for key in ("a", "b"):
        assert knobs.runtime.jit_cache_hook(key=key, fn=None) is None  # None: Triton goes on compiling
        time.sleep(0.02)
        knobs.runtime.jit_post_compile_hook(key=key, fn=types.SimpleNamespace(jit_function=fa._attn_fwd))
after = knobs.runtime.jit_cache_hook, knobs.runtime.jit_post_compile_hook
print("STATS", st.count, st.seconds >= 0.04, sorted(st.per_kernel), st.per_kernel["_attn_fwd"][0], before == after)
"""


def test_compile_stats_counts_and_times_through_triton_hooks() -> None:
    """``compile_stats()`` (for ``veriformer report --device cuda``) counts and times compilations through Triton's
    ``jit_cache_hook`` / ``jit_post_compile_hook`` (called here as Triton calls them), lets Triton compile, and
    restores the hooks it found."""
    out = compile_in_subprocess(_STATS, timeout=300)
    assert out.split("STATS", 1)[1].split() == ["2", "True", "['_attn_fwd']", "2", "True"], out
