"""Flash attention chooses its own launch configuration (issue 13): curated lists for the forward, dK/dV and dQ
kernels (default first), used only where nothing else fixes the tiles, timed only with ``VERIFORMER_AUTOTUNE=1``
on a GPU; the deep profile compiles every curated configuration for sm_90 and requires tensor-core dots and no
register spill."""

from __future__ import annotations

import json
import os

import pytest

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON  # isort: skip

from tests._helpers import compile_in_subprocess

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="triton not installed")

_CONFIGS = r"""
import json, torch
from veriformer.fast.attention import flash as fa
def geo(dtype=torch.bfloat16, D=128, blocks=None):
    q = torch.zeros(1, 8, 4096, D, dtype=dtype)
    return fa._Geometry(q, q, q, True, D ** -0.5, None, 0, blocks)
g = geo()
out = {"small": g.small, "emulate": g.emulate,
       "n": {k: len(g.configs(k, torch.bfloat16)) for k in ("fwd", "bwd", "dq")},
       "first": {k: g.configs(k, torch.bfloat16)[0] == g.config(k, torch.bfloat16) for k in ("fwd", "bwd", "dq")},
       "blocks": len(geo(blocks=(32, 32)).configs("fwd", torch.bfloat16)),
       "fp32": len(geo(torch.float32).configs("fwd", torch.float32)),
       "key": list(g.tune_key("fwd", torch.bfloat16))}
with fa.config_override(fwd={"BLOCK_M": 64}):
    out["override"] = len(geo().configs("fwd", torch.bfloat16))
print("JSON" + json.dumps(out))
"""


def test_curated_configs_default_first_and_only_where_tiles_are_free() -> None:
    res = json.loads(compile_in_subprocess(_CONFIGS, timeout=300).split("JSON", 1)[1])
    assert not res["small"] and not res["emulate"]
    assert res["n"] == {"fwd": 3, "bwd": 4, "dq": 4}, res["n"]
    assert all(res["first"].values())
    assert res["blocks"] == 1 and res["override"] == 1  # block_sizes= and config_override fix the tiles
    assert res["fp32"] == 1  # float32 and head dims above 128: the default only
    assert res["key"][-2:] == [4096, 4096]


def test_interpreter_keeps_one_configuration() -> None:
    import torch

    from veriformer.fast._triton.env import interpreting
    from veriformer.fast.attention import flash as fa

    if not interpreting():
        pytest.skip("a GPU machine: the interpreter case does not apply")
    q = torch.zeros(1, 2, 64, 32)
    g = fa._Geometry(q, q, q, True, 32 ** -0.5, None, 0, None)
    assert all(len(g.configs(k, torch.float32)) == 1 for k in ("fwd", "bwd", "dq"))


_SM90 = r"""
import json, torch
from veriformer import fast
from veriformer.fast.attention import flash as fa
from veriformer.fast._triton.env import Launch, recorded_launches
from veriformer.fast._triton.ptx import compile_launch, resource_usage
bad, n = [], 0
q, k, v = (torch.randn(1, 8, 4096, 128).bfloat16().requires_grad_() for _ in range(3))
with recorded_launches() as rec, fa.config_override(bwd={"FUSED": 0}):  # the two kernels the tuner times
    o = fast.attention(q, k, v, causal=True)
    torch.autograd.grad(o, (q, k, v), torch.ones_like(o))
g = fa._Geometry(q, k, v, True, 128 ** -0.5, None, 0, None)
kinds = {"_attn_fwd": "fwd", "_attn_bwd_dkdv": "bwd", "_attn_bwd_dq": "dq"}
for r in rec:
    kind = kinds.get(r.kernel.fn.__name__)
    if kind is None:
        continue
    for c in fa._no_tma(g.configs(kind, torch.bfloat16)):
        kw = {a: b for a, b in r.kwargs.items() if a not in c and a not in ("num_warps", "num_stages")}
        kw.update(c)
        u = resource_usage(compile_launch(Launch(r.kernel, r.grid, r.args, kw)))
        n += 1
        if u["spill"] != 0 or u["mma"] == "none" or u["loads_narrow"] != 0:
            bad.append([kind, c, u["spill"], u["mma"], u["loads_narrow"]])
print("JSON" + json.dumps({"n": n, "bad": bad}))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VERIFORMER_PROFILE", "ci") != "deep",
                    reason="slow (11 compilations): runs under VERIFORMER_PROFILE=deep")
def test_curated_attention_configs_compile_for_sm90_without_spills() -> None:
    """Every curated configuration of the three flash kernels (bf16, D = 128, causal, T = 4096) compiles for sm_90
    as Triton's JIT would launch it, with tensor-core dots, no register spill and 16-byte vector loads (no element-by-
    element tile loads)."""
    res = json.loads(compile_in_subprocess(_SM90, timeout=1200).split("JSON", 1)[1])
    assert res["n"] == 11 and not res["bad"], res
