"""Benchmark: our Triton (Leaky) ReRoPE attention against the two-pass eager torch code of ``bojone/rerope``
(``fast.positions.naive``) and, as the cost floor, plain causal RoPE attention through torch SDPA.

``python benchmarks/rerope.py`` (GPU) prints, for q, k, v of shape [B=1, H=16, T, D=128] at T = 1K, 4K, 8K, causal
prefill with the repository's window 512 and leak 16 (Leaky ReRoPE; ``--leak inf`` for ReRoPE), forward only:
milliseconds, "speedup of ours", the attention TFLOP/s counted as causal attention (``2 T^2 D``: QK^T once and PV
once, halved by causality; ReRoPE itself does QK^T twice; x 2.5 for fwd+bwd) and the fraction of the bf16 matmul
rate measured in the same process.  Modes: ``fwd`` and ``fwd+bwd`` (gradients of q, k, v).  ``--smoke`` runs a
tiny CPU shape (Triton interpreter) so tests can call it.

Rows stream as measured (:class:`_roofline.Bench`); ``--call-timeout`` bounds each first call and timing,
``--budget`` the script.  The eager baseline materialises two T x T score matrices: skipped above ``--max-eager``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings

Att = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _ours(window: int, leak: float) -> Att:
    from veriformer.fast.positions.rerope import rerope_attention

    return functools.partial(rerope_attention, window=window, leak=leak)


def _eager(window: int, leak: float) -> Att:
    from veriformer.fast.positions.naive import rerope_attention

    return functools.partial(rerope_attention, window=window, leak=leak)


def _sdpa_rope() -> Att:
    """Plain RoPE (Triton rope_qk) + causal torch SDPA: what the same layer costs without the rectification."""
    from veriformer.fast.rope.fused import rope_qk

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        qr, kr = rope_qk(q, k)
        return torch.nn.functional.scaled_dot_product_attention(qr, kr, v, is_causal=True)

    return run


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[1024, 4096, 8192])
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--leak", type=float, default=16.0, help="Leaky ReRoPE k (inf: ReRoPE)")
    ap.add_argument("--max-eager", type=int, default=8192, help="longest T for the eager two-matrix baseline")
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, reps, window = "cpu", [32], 1, 2, 16, 1, 8
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, reps, window = "cuda", args.T, args.B, args.H, args.D, 50, args.window
    leak = math.inf if math.isinf(args.leak) else args.leak
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="rerope")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton rerope (ours)", _ours(window, leak)),
             Impl("eager two-pass (bojone/rerope)", _eager(window, leak),
                  skip_if=lambda c: "T x T scores over --max-eager" if c.length > args.max_eager else None),
             Impl("RoPE + causal SDPA (no rectification)", _sdpa_rope())]
    gen = torch.Generator(device=device).manual_seed(0)
    cases = []
    for T in Ts:
        q, k, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
                   for _ in range(3))
        go = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen)
        flops = 2 * B * H * T * T * D  # causal: (QK^T + PV) halved

        def extra(mode: str, ms: float, flops: int = flops) -> dict[str, float]:
            tf = flops * (1 if mode == "fwd" else 2.5) / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops}

        cases.append(Case(f"B{B} H{H} T{T} D{D} w{window} k{leak}", (q, k, v), (q, k, v), go, extra, T))
    bench.table([*LEAD_COLUMNS, ("tflops", "TFLOP/s", ".1f"), ("frac", "of matmul", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, args.modes, output=lambda r: r if isinstance(r, torch.Tensor) else r[0])


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
