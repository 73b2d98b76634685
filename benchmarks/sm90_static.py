"""Static Hopper (sm_90) resource report of every Triton kernel, at the launches our wrappers make on a GPU —
computed on a machine without one.  Not a timing: what each kernel needs per block and which instructions it uses.

Method: in compiled mode (``TRITON_INTERPRET=0``) each public wrapper runs forward and backward on CPU tensors of
a benchmark shape inside :func:`veriformer.fast._triton.env.recorded_launches`, which takes the GPU code path
(GPU tile sizes, ``EMULATE=False``) and records every launch instead of running it.  Each distinct launch is
compiled for sm_90 with the specialisation Triton's JIT gives those arguments
(:func:`veriformer.fast._triton.ptx.compile_launch`), and ``cuobjdump -res-usage`` (shipped with Triton) reads the
cubin (and ``ptxas -v`` the PTX, for the spill stores).  Columns: registers per thread, register spill stores and
the stack frame in bytes per thread (the stack also holds local scratch: libdevice's sin/cos keep 32 bytes for
their range reduction), shared memory per block, threads
per block, resident blocks per SM from the H100 limits (65536 registers in 256-register units per warp,
228 KiB shared memory of which 1 KiB is reserved per block, 2048 threads, 32 blocks), and the PTX instruction
families (wgmma / mma.sync tensor-core products, cp.async / TMA bulk copies: a tiled loop whose loads are neither
is not software-pipelined).

Run: ``TRITON_INTERPRET=0 python benchmarks/sm90_static.py [--only attention rope ...]`` (about 10 s of
compilation per kernel on one core).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ["TRITON_INTERPRET"] = "0"

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import fmt_table, main_of

from veriformer import fast
from veriformer.fast._triton.env import Launch, recorded_launches
from veriformer.fast._triton.ptx import compile_launch, resource_usage
from veriformer.fast.attention.flash import config_override

BF16 = torch.bfloat16
_DTYPE = [BF16]  # the benchmark shapes' dtype (``--dtype``)
_REGS_PER_SM, _SMEM_PER_SM, _SMEM_RESERVED, _THREADS_PER_SM, _BLOCKS_PER_SM = 65536, 228 * 1024, 1024, 2048, 32


def _rand(*shape: int, dtype: torch.dtype | None = None, grad: bool = True) -> torch.Tensor:
    t = torch.randn(*shape).to(dtype or _DTYPE[0])
    return t.requires_grad_() if grad else t


def _fwd_bwd(out: Any, wrt: list[torch.Tensor]) -> None:
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, torch.Tensor) and o.requires_grad]
    torch.autograd.grad(outs, wrt, [torch.ones_like(o) for o in outs], allow_unused=True)


def _attention(D: int, tma: bool = False) -> Callable[[], None]:
    def run() -> None:
        q, k, v = (_rand(1, 2, 4096, D) for _ in range(3))
        cfg = {"TMA": 1} if tma else None
        with config_override(fwd=cfg, bwd=cfg):
            out = fast.attention(q, k, v, causal=True)
        _fwd_bwd(out, [q, k, v])
    return run


def _rope() -> None:
    q, k = _rand(1, 4, 4096, 128), _rand(1, 2, 4096, 128)
    pos = torch.arange(4096)
    _fwd_bwd(fast.rope_qk(q, k, pos, base=10000.0), [q, k])


def _linear_attention() -> None:
    q, k, v = (_rand(1, 4096, 2, 128) for _ in range(3))
    g = (-0.1 * torch.rand(1, 4096, 2)).requires_grad_()
    s0 = _rand(1, 2, 128, 128, dtype=torch.float32)
    _fwd_bwd(fast.chunk_linear_attention(q, k, v, g=g, initial_state=s0, output_final_state=True), [q, k, v, g, s0])
    slope = torch.tensor([0.5, 0.25])
    _fwd_bwd(fast.lightning_attention(q, k, v, slope=slope), [q, k, v])


def _vq_attention() -> None:
    q, k, v = (_rand(1, 2, 4096, 128) for _ in range(3))
    codebook = _rand(2, 512, 128, grad=False)
    _fwd_bwd(fast.vq_attention.vq_attention(q, k, v, codebook, causal=True, block_size=256), [q, k, v])


def _selective_scan() -> None:
    d, n, L = 256, 16, 4096
    u, z, delta = _rand(1, d, L), _rand(1, d, L), _rand(1, d, L)
    A = (-torch.rand(d, n) - 0.5).requires_grad_()
    B, C = _rand(1, n, L), _rand(1, n, L)
    D, bias = _rand(d, dtype=torch.float32), _rand(d, dtype=torch.float32)
    _fwd_bwd(fast.selective_scan(u, delta, A, B, C, D, z, bias, delta_softplus=True), [u, delta, A, B, C, D, z, bias])


def _ssd() -> None:
    T, H, P, N = 4096, 4, 64, 128
    x, z = _rand(1, T, H, P), _rand(1, T, H, P)
    dt = torch.rand(1, T, H).requires_grad_()
    A = (-torch.rand(H) - 1.0).requires_grad_()
    B, C = _rand(1, T, 1, N), _rand(1, T, 1, N)
    D, b = _rand(H, dtype=torch.float32), _rand(H, dtype=torch.float32)
    out = fast.chunk_scan(x, dt, A, B, C, 256, D=D, z=z, dt_bias=b, dt_softplus=True)
    _fwd_bwd(out, [x, dt, A, B, C, D, z, b])


def _s4d() -> None:
    H, N2 = 256, 32
    log_dt = torch.full((H,), -4.0).requires_grad_()
    A, B, C = (torch.complex(-torch.rand(H, N2), torch.randn(H, N2)).requires_grad_() for _ in range(3))
    _fwd_bwd(fast.s4d_kernel(log_dt, A, B, C, 4096), [log_dt, A, B, C])


def _mla() -> None:
    from veriformer.fast.mla.decode import mla_decode

    q, kv = _rand(4, 1, 128, 576, grad=False), _rand(4, 8192, 1, 576, grad=False)
    mla_decode(q, kv, head_dim_v=512, scale=192 ** -0.5)


def _monarch() -> None:
    from veriformer.fast.monarch.kernel import monarch_matmul

    x, w1, w2 = _rand(4096, 4096), _rand(64, 64, 64), _rand(64, 64, 64)
    _fwd_bwd(monarch_matmul(x, w1, w2), [x, w1, w2])


def _rerope() -> None:
    from veriformer.fast.positions.rerope import rerope_attention

    q, k, v = (_rand(1, 2, 4096, 128) for _ in range(3))
    _fwd_bwd(rerope_attention(q, k, v, 512, leak=16.0), [q, k, v])


FAMILIES: dict[str, tuple[str, Callable[[], None]]] = {
    "attention": ("flash attention, B=1 H=2 T=S=4096 D=128, causal", _attention(128)),
    "attention_tma": ("the same with config_override TMA=1: looped tiles through TMA descriptors",
                      _attention(128, tma=True)),
    "attention_d64": ("flash attention, T=S=4096 D=64, causal", _attention(64)),
    "rope": ("rope_qk, Hq=4 Hk=2 T=4096 D=128", _rope),
    "linear_attention": ("chunk / lightning linear attention, T=4096 H=2 K=V=128", _linear_attention),
    "vq_attention": ("VQ attention, T=4096 D=128, codebook 512, W=256, causal", _vq_attention),
    "selective_scan": ("selective scan, d=256 n=16 L=4096, softplus, D, z", _selective_scan),
    "ssd": ("SSD chunk scan, T=4096 H=4 P=64 N=128 chunk 256, D, z", _ssd),
    "s4d": ("S4D kernel, H=256 N2=32 L=4096", _s4d),
    "mla": ("MLA decode, B=4 T=1 H=128, latent 512 + rope 64, S=8192", _mla),
    "monarch": ("Monarch product, 4096 tokens, n=4096 (64 blocks of 64)", _monarch),
    "rerope": ("Leaky ReRoPE attention (k=16), T=4096 D=128, window 512", _rerope),
}


def _constexprs(launch: Launch) -> tuple[str, str]:
    """("BM=128 BN=64 w8 s3", "CAUSAL INVERSE"): the tile sizes and launch options, and the constexpr flags set."""
    names = launch.kernel.arg_names
    cfg = " ".join(f"{k.replace('BLOCK_', 'B')}={v}" for k, v in launch.kwargs.items()
                   if k in names and k.startswith("BLOCK"))
    opts = " ".join(f"{k[4]}{launch.kwargs[k]}" for k in ("num_warps", "num_stages") if k in launch.kwargs)
    flags = " ".join(k for k, v in launch.kwargs.items() if k in names and v is True and k != "EMULATE")
    return f"{cfg} {opts}".strip(), flags or "-"


def _resident_blocks(u: dict[str, Any]) -> int:
    warps = u["threads"] // 32
    regs_per_warp = math.ceil(max(u["registers"], 1) * 32 / 256) * 256
    by_regs = _REGS_PER_SM // (regs_per_warp * warps)
    by_smem = _SMEM_PER_SM // (u["shared"] + _SMEM_RESERVED)
    return min(by_regs, by_smem, _THREADS_PER_SM // u["threads"], _BLOCKS_PER_SM)


def rows_for(family: str) -> list[dict[str, Any]]:
    """Record the family's launches, compile each distinct one for sm_90, return one row per kernel config."""
    _, run = FAMILIES[family]
    with recorded_launches() as launches:
        run()
    seen: dict[tuple[str, str], Launch] = {}
    for ln in launches:
        seen.setdefault((ln.kernel.fn.__name__, repr(sorted((k, repr(v)) for k, v in ln.kwargs.items()))), ln)
    rows = []
    for (name, _), ln in seen.items():
        config, flags = _constexprs(ln)
        row: dict[str, Any] = {"family": family, "kernel": name, "config": config, "flags": flags}
        try:
            u = resource_usage(compile_launch(ln))
        except Exception as e:  # a compiler failure is a finding: keep it in the table
            rows.append({**row, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"})
            continue
        rows.append({**row, **u, "smem_kib": u["shared"] / 1024, "blocks": _resident_blocks(u),
                     "copies": "TMA" if u["tma"] else ("cp.async" if u["cp_async"] else "-")})
    return rows


COLUMNS = [("family", "family", "s"), ("kernel", "kernel", "s"), ("config", "tiles, warps (w), stages (s)", "s"),
           ("flags", "flags", "s"),
           ("registers", "regs", "d"), ("spill", "spill B", "d"), ("stack", "stack B", "d"),
           ("smem_kib", "smem KiB", ".1f"),
           ("threads", "threads", "d"), ("blocks", "blocks/SM", "d"), ("mma", "mma", "s"), ("copies", "copies", "s"),
           ("loads_16b", "16 B loads", "d"), ("loads_narrow", "1-2 B loads", "d"),
           ("error", "compile error", "s")]


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, print the table (with the shapes, Triton version and date); returns the rows."""
    import triton

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(FAMILIES), default=None)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                    help="dtype of the benchmark shapes' inputs (float32: the IEEE FMA products)")
    args = ap.parse_args(argv)
    families = args.only or list(FAMILIES)
    _DTYPE[0] = getattr(torch, args.dtype)
    rows = [r for f in families for r in rows_for(f)]
    print(f"sm_90 static resources, {args.dtype} inputs, Triton {triton.__version__}, torch {torch.__version__}, "
          f"{datetime.date.today().isoformat()} (compiled without a GPU; not a timing)")
    for f in families:
        print(f"  {f}: {FAMILIES[f][0]}")
    print(fmt_table(rows, COLUMNS))
    return rows


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
