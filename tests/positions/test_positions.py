"""Positions family: scaling option of op rope, ReRoPE baselines, base bound values, worked examples, input errors,
and the Hugging Face transformers RoPE initialisers as a peer (skipped when transformers is absent)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from veriformer import reference as ref
from veriformer.fast.positions import naive as pnaive
from veriformer.fast.rope import naive as rnaive
from veriformer.reference import InputError

ROOT = Path(__file__).resolve().parents[2]
SCALINGS = [None, {"type": "linear", "factor": 4}, {"type": "ntk", "factor": 8}, {"type": "ntk_base", "factor": 8},
            {"type": "ntk_fixed", "factor": 8}, {"type": "mixed", "factor": 12, "gamma": 0.75},
            {"type": "mixed", "factor": 8, "gamma": 0.625},
            {"type": "dynamic", "factor": 4, "original_max_position": 16},
            {"type": "yarn", "factor": 4, "original_max_position": 64}]


def test_rope_without_scaling_is_unchanged() -> None:
    x = np.random.default_rng(0).standard_normal((2, 9, 16))
    pos = np.arange(9) * 1000 - 3000
    th = 10000.0 ** (-2.0 * np.arange(8) / 16)
    ang = pos[:, None] * th
    want = x.copy()
    want[..., :8] = x[..., :8] * np.cos(ang) - x[..., 8:] * np.sin(ang)
    want[..., 8:] = x[..., :8] * np.sin(ang) + x[..., 8:] * np.cos(ang)
    y = ref.rope(x, pos)
    assert np.array_equal(y, ref.rope(x, pos, scaling=None))
    assert np.array_equal(y, want)
    assert np.array_equal(ref.rope_frequencies(16), th)


@pytest.mark.parametrize("sc", SCALINGS, ids=lambda s: "none" if s is None else f"{s['type']}{s['factor']}")
def test_naive_baselines_match_oracle(sc: dict | None) -> None:
    x = torch.randn(1, 2, 7, 16, dtype=torch.float64)
    pos = torch.arange(7) + 300
    y = ref.rope(x, pos.numpy(), scaling=sc)
    assert np.abs(rnaive.rope_careful(x, pos, scaling=sc).numpy() - y).max() < 1e-12
    assert np.abs(rnaive.rope(x, pos, scaling=sc).numpy() - y).max() < 1e-12
    g = ref.rope_vjp(y, pos.numpy(), scaling=sc)
    assert np.abs(g - x.numpy()).max() < 1e-13


@pytest.mark.parametrize("sc", SCALINGS[1:], ids=lambda s: f"{s['type']}{s['factor']}")
def test_triton_rope_with_scaling(sc: dict) -> None:
    fused = pytest.importorskip("veriformer.fast.rope.fused")
    if not fused.HAVE_TRITON:
        pytest.skip("triton absent")
    x = torch.randn(1, 2, 6, 16, requires_grad=True)
    pos = torch.arange(6) + 10**5
    y = fused.rope(x, pos, scaling=sc)
    want = ref.rope(x.detach(), pos.numpy(), scaling=sc)
    assert np.abs(y.detach().double().numpy() - want).max() < 2e-6
    g = torch.randn_like(y)
    y.backward(g)
    gw = ref.rope_vjp(g, pos.numpy(), scaling=sc)
    assert np.abs(x.grad.double().numpy() - gw).max() < 2e-6
    _q, k = fused.rope_qk(x.detach(), x.detach()[:, :1], pos, scaling=sc)
    assert np.abs(k.double().numpy() - want[:, :1]).max() < 2e-6


def test_check_rope_with_scaling_and_kernel_mutants() -> None:
    import veriformer.properties.positions.mutants  # registers the kernel mutants
    import veriformer.properties.rope.op  # noqa: F401
    from veriformer.check import check
    from veriformer.laws import run_mutant

    sc = {"type": "mixed", "factor": 12.0, "gamma": 0.75}
    r = check(functools.partial(rnaive.rope_careful, scaling=sc), op="rope", dtypes=("float32",), grad=False,
              profile="ci", scaling=sc)
    assert r.passed, r.summary()
    for name in ("positions.kernel_ignores_scaling", "positions.kernel_ntk_base_times_k",
                 "positions.kernel_dynamic_reads_length_not_positions"):
        assert all(run_mutant(name, profile="ci").caught.values()), name
    with pytest.raises(ValueError, match="scaling"):
        check(rnaive.rope_careful, op="rope", scaling={"type": "yarn", "factor": 4})


def test_dynamic_scaling_with_negative_positions() -> None:
    """Dynamic NTK at negative positions (seq_len = max position + 1 <= 0) is plain RoPE, in every layer."""
    sc = {"type": "dynamic", "factor": 2.0, "original_max_position": 16}
    x = np.random.default_rng(1).standard_normal((1, 1, 2, 8))
    pos = np.array([-7, -3])
    want = ref.rope(x, pos)
    assert np.abs(ref.rope(x, pos, scaling=sc) - want).max() == 0.0
    assert np.abs(ref.rope_vjp(want, pos, scaling=sc) - x).max() < 1e-15
    y = rnaive.rope_careful(torch.from_numpy(x), torch.from_numpy(pos), scaling=sc).numpy()
    assert np.abs(y - want).max() < 1e-15


def test_scaling_input_errors() -> None:
    for bad, arg in [({"type": "bogus", "factor": 2}, "scaling"), ({"type": "ntk", "factor": 0.5}, "factor"),
                     ({"type": "mixed", "factor": 2, "gamma": 1.5}, "gamma"), ({"type": "mixed", "factor": 2}, "gamma"),
                     ({"type": "linear", "factor": 2, "beta": 1}, "scaling"),
                     ({"type": "dynamic", "factor": 2}, "original_max_position"), ("ntk", "scaling")]:
        with pytest.raises(InputError, match=arg):
            ref.rope(np.zeros((2, 4)), scaling=bad)
    with pytest.raises(InputError, match="leak"):
        ref.rerope_scores(np.zeros((2, 4)), np.zeros((2, 4)), 1, leak=0)
    with pytest.raises(InputError, match="window"):
        ref.rerope_scores(np.zeros((2, 4)), np.zeros((2, 4)), -1)
    with pytest.raises(InputError, match="'x'"):
        ref.rope_2d(np.zeros((2, 6)), np.zeros((2, 2)), layout="split")
    with pytest.raises(InputError, match="segments"):
        ref.rope_tie_positions([("video", 2, 2)])
    with pytest.raises(InputError, match="sections"):
        ref.mrope(np.zeros((1, 8)), np.zeros((1, 3)), sections=(1, 1, 1))
    with pytest.raises(InputError, match="leak"):
        ref.rerope_decode_scores_table(np.zeros((1, 4)), np.zeros((3, 4)), 1, leak=2.5)


@pytest.mark.parametrize("leak", [math.inf, 16.0, 0.5, 1.0])
@pytest.mark.parametrize("window", [0, 1, 3, 20])
def test_rerope_naive_matches_oracle(leak: float, window: int) -> None:
    g = torch.Generator().manual_seed(window)
    q, k, v = (torch.randn(1, 2, n, 8, dtype=torch.float64, generator=g) for n in (5, 9, 9))
    a, b = pnaive.rerope_scores(q, k, window, leak=leak).numpy(), ref.rerope_scores(q, k, window, leak=leak)
    assert np.array_equal(np.isinf(a), np.isinf(b))
    assert np.abs(a[np.isfinite(b)] - b[np.isfinite(b)]).max() < 1e-13
    o = pnaive.rerope_attention(q, k, v, window, leak=leak).numpy()
    assert np.abs(o - ref.rerope_attention(q, k, v, window, leak=leak)).max() < 1e-6  # float32 softmax (as the repo)
    d = pnaive.rerope_decode_scores(q[..., -1:, :], k, window, leak=leak).numpy()
    assert np.abs(d - ref.rerope_decode_scores(q[..., -1:, :], k, window, leak=leak)).max() < 1e-13


def test_rerope_logn_scales_both_passes() -> None:
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    s = ref.logn_scale(np.arange(6), 2)
    a = ref.rerope_scores(q * s[:, None], k, 2, leak=4.0)
    b = ref.rerope_scores(q, k, 2, leak=4.0) * s[:, None]
    f = np.isfinite(b)
    assert np.abs(a[f] - b[f]).max() < 1e-13


def test_base_bound_values() -> None:
    """Our minima at 1000 and 1024 (the paper's 1k is 4.3e3 = 4293 rounded, i.e. L = 1024), and the spec's
    first violations of 2.3e5 and 3.0e5 at 16k."""
    r = ref.rope_base_lower_bound(1000)
    assert abs(r.base - 4206.02) < 0.01 and r.margin >= 0
    assert abs(ref.rope_base_lower_bound(1024).base - 4293.44) < 0.01
    assert ref.rope_base_lower_bound(1000, method="grid").base == 6020.0  # jumped over [4207, 4331)
    f, _ = ref.rope_base_first_violation([2.3e5, 3.0e5], 16000)
    assert f.tolist() == [12865, 10797]


def test_base_bound_doc_is_current() -> None:
    doc = (ROOT / "docs" / "rope_base_bound.md").read_text()
    row = ref.rope_base_table([1000], float32=False).splitlines()[-1].split("|")
    assert f"| 1000 | 4.3e3 | 4.3e3 | {row[4].strip()} |" in doc


def test_worked_examples() -> None:
    """ntk_patch.py (k = 12, gamma = 0.75) written as the repository writes it (float32 torch) agrees with the
    oracle; the post's gamma = 0.625 and the repository's example recorded as per-digit factors."""
    dim, k, b = 128, 12, 0.75
    a = np.log(k) / (dim / 2) ** b
    inv = 10000 ** (-torch.arange(0, dim, 2).float() / dim)
    inv *= (-a * torch.arange(1, dim // 2 + 1).float() ** b).exp()
    ours = ref.scaled_frequencies(dim, 10000.0, {"type": "mixed", "factor": 12, "gamma": 0.75})
    assert np.abs(inv.double().numpy() / ours - 1).max() < 2e-6
    lam = ref.mixed_base_factors(12, 0.75, 64)
    assert abs(lam[0] - 1.11608) < 1e-5 and abs(lam[-1] - 1.02961) < 1e-5 and abs(np.prod(lam) - 12) < 1e-12
    lam = ref.mixed_base_factors(8, 0.625, 64)
    assert abs(lam[0] - 1.16714) < 1e-5 and abs(lam[-1] - 1.02058) < 1e-5


def test_yarn_attention_factor() -> None:
    assert ref.yarn_attention_factor(1.0) == 1.0
    assert ref.yarn_attention_factor(4.0) == pytest.approx(0.1 * math.log(4.0) + 1.0)
    assert ref.yarn_attention_factor(40.0, 0.707, 0.707) == 1.0  # DeepSeek-V3's mscale = mscale_all_dim


def test_decay_indicator_published() -> None:
    v = ref.rope_decay_indicator(np.array([0, 10, 100, 256]))
    assert np.round(v, 2).tolist() == [32.5, 17.95, 10.23, 6.54]


def test_positions_examples() -> None:
    tie = ref.rope_tie_positions([("text", 3), ("image", 2, 3), ("text", 1)])
    assert tie[3].tolist() == [2 + 4, 2 + 3] and tie[-1].tolist() == [2 + 4 * 3] * 2
    tv = ref.rope_tv_positions([("text", 1), ("image", 2, 3), ("text", 1)])
    assert tv[1].tolist() == [0 + 2 + 1, 0 + 1.5 + 1] and tv[-1].tolist() == [7.0, 7.0]
    m = ref.mrope_positions([("text", 2), ("image", 1, 2, 2), ("text", 1)])
    assert m[2].tolist() == [2, 2, 2] and m[5].tolist() == [2, 3, 3] and m[6].tolist() == [4, 4, 4]


# -- Hugging Face transformers as a peer ------------------------------------------------------------------------------

def _hf_config(rope_scaling: dict | None) -> object:
    transformers = pytest.importorskip("transformers", reason="transformers not installed (peer check skipped)")
    return transformers.LlamaConfig(hidden_size=256, num_attention_heads=2, max_position_embeddings=64,
                                    rope_theta=10000.0, rope_scaling=rope_scaling)


@pytest.mark.parametrize("hf,ours", [
    (None, None),
    ({"rope_type": "linear", "factor": 4.0}, {"type": "linear", "factor": 4.0}),
    ({"rope_type": "dynamic", "factor": 4.0}, {"type": "dynamic", "factor": 4.0, "original_max_position": 64,
                                               "seq_len": 200}),
    ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
     {"type": "yarn", "factor": 4.0, "original_max_position": 64}),
])
def test_transformers_rope_init_functions(hf: dict | None, ours: dict | None) -> None:
    cfg = _hf_config(hf)
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    kind = "default" if hf is None else hf["rope_type"]
    if kind not in ROPE_INIT_FUNCTIONS:  # transformers >= 5 computes the default inside the rotary module
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        emb = LlamaRotaryEmbedding(config=cfg)
        inv, attn = emb.inv_freq, emb.attention_scaling
    elif kind == "dynamic":
        inv, attn = ROPE_INIT_FUNCTIONS[kind](cfg, "cpu", seq_len=200)
    else:
        inv, attn = ROPE_INIT_FUNCTIONS[kind](cfg, "cpu")
    want = ref.scaled_frequencies(128, 10000.0, ours)
    assert attn == pytest.approx(ref.yarn_attention_factor(4.0) if kind == "yarn" else 1.0)
    assert np.abs(inv.double().numpy() / want - 1).max() < 1e-6  # HF forms inv_freq in float32
