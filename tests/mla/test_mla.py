"""MLA: the Triton split-KV decode kernel against the float64 oracle (interpreter at small sizes, GPU sizes marked
``gpu``), the oracle's DeepSeek-V2 numbers, input errors, and the benchmark's CPU smoke mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON, interpreting  # isort: skip

from _helpers import load_benchmark

from veriformer import reference as ref
from veriformer.fast.mla import naive
from veriformer.reference import InputError

DEV = "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"
needs_triton = pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")
U = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


def _inputs(B: int, T: int, H: int, S: int, d_c: int, d_r: int, dtype: torch.dtype, amp: float = 1.0,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, d_c + d_r, generator=g, dtype=torch.float64) * amp
    kv = torch.randn(B, S, 1, d_c + d_r, generator=g, dtype=torch.float64)
    return q.to(DEV, dtype), kv.to(DEV, dtype)


def _compare(q: torch.Tensor, kv: torch.Tensor, d_c: int, scale: float, **kw: object) -> None:
    from veriformer.fast.mla.decode import mla_decode

    o, lse = mla_decode(q, kv, head_dim_v=d_c, scale=scale, **kw)
    assert o.shape == (q.shape[0], q.shape[1], q.shape[2], d_c) and o.dtype == q.dtype
    assert lse.shape == (q.shape[0], q.shape[2], q.shape[1]) and lse.dtype == torch.float32
    og, lg = ref.mla_decode(q, kv, head_dim_v=d_c, scale=scale, return_lse=True)
    on = naive.mla_decode(q, kv, head_dim_v=d_c, scale=scale).double().cpu().numpy()
    err = np.abs(o.double().cpu().numpy() - og).max()
    # within twice the naive same-dtype error plus a few ulps of the output and u L of the values (a logit of size L
    # rounded once moves its weight by u L: the conditioning of op mla_decode)
    k = np.swapaxes(kv.double().cpu().numpy(), 1, 2)
    logits = ref.attention_logits(np.swapaxes(q.double().cpu().numpy(), 1, 2), k, scale=scale, causal=True)
    L = float(np.abs(logits[np.isfinite(logits)]).max(initial=0.0))
    u = U[q.dtype] if q.dtype == torch.float32 else 2.0**-24
    assert err <= 2 * np.abs(on - og).max() + 4 * U[q.dtype] * np.abs(og).max() + 4 * u * L * np.abs(k).max(), err
    lc = lse.double().cpu().numpy()
    assert np.array_equal(np.isinf(lc), np.isinf(lg))
    fin = np.isfinite(lg)
    assert np.abs(lc[fin] - lg[fin]).max(initial=0.0) <= 1e-5 * (1 + np.abs(lg[fin]).max(initial=0.0))


@needs_triton
@pytest.mark.parametrize(("B", "T", "H", "S", "d_c", "d_r", "dtype", "splits"), [
    (1, 1, 16, 70, 512, 64, torch.bfloat16, None),  # DeepSeek-V2 widths, default splits
    (2, 2, 5, 45, 32, 16, torch.float32, 3),  # several splits, rows of two queries
    (1, 4, 3, 3, 16, 8, torch.float16, 2),  # T > S: a query with no visible key; an empty split
    (1, 1, 2, 50, 64, 8, torch.float32, 5),  # more splits than key tiles: splits on tile boundaries
])
def test_kernel_matches_oracle(B: int, T: int, H: int, S: int, d_c: int, d_r: int, dtype: torch.dtype,
                               splits: int | None) -> None:
    q, kv = _inputs(B, T, H, S, d_c, d_r, dtype, seed=S)
    _compare(q, kv, d_c, (128 + d_r) ** -0.5, num_splits=splits, block_sizes=(16, 16))


@needs_triton
def test_kernel_large_logits_and_split_invariance() -> None:
    """Logits ~100: the split merge must subtract the max; 1 split and 4 splits agree to float32 rounding."""
    from veriformer.fast.mla.decode import mla_decode

    q, kv = _inputs(1, 1, 4, 64, 32, 16, torch.float32, amp=10.0, seed=3)
    _compare(q, kv, 32, 0.5, num_splits=4, block_sizes=(16, 16))
    a, la = mla_decode(q, kv, head_dim_v=32, scale=0.5, num_splits=1, block_sizes=(16, 16))
    b, lb = mla_decode(q, kv, head_dim_v=32, scale=0.5, num_splits=4, block_sizes=(16, 16))
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-5) and torch.allclose(la, lb, atol=1e-4, rtol=1e-6)


@needs_triton
def test_kernel_input_errors_name_the_argument() -> None:
    from veriformer.fast.mla.decode import mla_decode

    q, kv = _inputs(1, 1, 2, 8, 16, 8, torch.float32)
    with pytest.raises(InputError, match="'kv_cache'"):
        mla_decode(q, kv[..., :8], head_dim_v=16, scale=0.1)
    with pytest.raises(InputError, match="'head_dim_v'"):
        mla_decode(q, kv, head_dim_v=30, scale=0.1)
    with pytest.raises(InputError, match="'kv_cache'"):
        mla_decode(q, kv.half(), head_dim_v=16, scale=0.1)
    with pytest.raises(InputError, match="'num_splits'"):
        mla_decode(q, kv, head_dim_v=16, scale=0.1, num_splits=0)


def test_oracle_deepseek_v2_cache_sizes_and_errors() -> None:
    """DeepSeek-V2 Table 1 / section 2.1: MLA caches d_c + d_r = 576 elements a token and layer, MHA 2 x 128 x 128 =
    32768, the same as GQA with 2.25 groups."""
    assert ref.kv_cache_elements("mla", d_c=512, d_r=64) == 576
    assert ref.kv_cache_elements("mha", heads=128, d_k=128, d_v=128) == 32768
    assert ref.kv_cache_elements("gqa", groups=2.25, d_k=128, d_v=128) == 576
    with pytest.raises(InputError, match="'scheme'"):
        ref.kv_cache_elements("mqa2", d_k=1, d_v=1)
    with pytest.raises(InputError, match="'head_dim_v'"):
        ref.mla_decode(np.zeros((1, 1, 1, 4)), np.zeros((1, 2, 1, 4)), head_dim_v=5, scale=1.0)
    with pytest.raises(InputError, match="'w_uk'"):
        ref.mla_train(np.zeros((1, 3, 4)), np.zeros((1, 2, 1, 2)), np.zeros((1, 2, 1, 2)), np.zeros((1, 3, 2)),
                      np.zeros((2, 4, 3)), np.zeros((2, 4, 2)))


def test_mpmath_certificate_of_decode_oracle() -> None:
    """The float64 decode oracle agrees with the same code at 30 digits."""
    rng = np.random.default_rng(0)
    q, kv = rng.standard_normal((1, 2, 2, 6)), rng.standard_normal((1, 3, 1, 6))
    o = ref.mla_decode(q, kv, head_dim_v=4, scale=0.4)
    om = ref.mla_decode(q, kv, head_dim_v=4, scale=0.4, backend=ref.MP(30))
    assert np.abs(o - om).max() <= 1e-14


@needs_triton
def test_benchmark_smoke() -> None:
    rows = load_benchmark("mla").run(["--smoke"])
    timed = [r for r in rows if "ms" in r]
    assert len(timed) == 3 and all(r.get("diff", 0.0) < 0.05 for r in timed)


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("S", [1, 777, 8192])
def test_kernel_gpu_sizes(S: int) -> None:
    q, kv = _inputs(4, 1, 128, S, 512, 64, torch.bfloat16, seed=S)
    _compare(q, kv, 512, 192**-0.5)


_COMPILE_SCRIPT = r"""
import torch
from veriformer.fast._triton.env import recorded_launches
from veriformer.fast._triton.ptx import compile_launch, resource_usage
from veriformer.fast.mla.decode import mla_decode
out = []
for dt in (torch.bfloat16, torch.float32):
    q, kv = torch.zeros(4, 1, 128, 576, dtype=dt), torch.zeros(4, 8192, 1, 576, dtype=dt)
    with recorded_launches() as rec:
        mla_decode(q, kv, head_dim_v=512, scale=192 ** -0.5)
    for launch in rec:
        c = compile_launch(launch)
        u = resource_usage(c)
        out.append(f"{launch.kernel.fn.__name__}:{str(dt)[6:]}:spill={u['spill']}:mma={u['mma']}:"
                   f"tf32={int('tf32' in c.asm['ptx'])}")
print(" ".join(out))
"""


@needs_triton
def test_kernel_compiles_for_sm90_without_spills() -> None:
    """Compiled for sm_90 with the interpreter off (no GPU needed): at DeepSeek-V2 widths (H 128, d_c 512, d_r 64) the
    bf16 split kernel uses tensor cores and spills nothing, the merge spills nothing, float32 never uses TF32."""
    from _helpers import compile_in_subprocess

    got = dict(x.rsplit(":spill=", 1) for x in compile_in_subprocess(_COMPILE_SCRIPT).split()[-4:])
    assert got["_mla_split:bfloat16"].startswith("0:mma=mma") or got["_mla_split:bfloat16"].startswith("0:mma=wgmma")
    assert got["_mla_merge:bfloat16"].startswith("0:")
    assert got["_mla_split:float32"].endswith("tf32=0") and got["_mla_merge:float32"].startswith("0:")
