"""Benchmark: our Triton flash attention against torch SDPA backends and FlexAttention.

``python benchmarks/attention.py`` (GPU) prints, for B=4, H=16, D=128, causal, T = S in 1K, 4K, 8K, 16K,
forward and forward+backward: milliseconds, "speedup of ours" (the row's time over our default kernel's; > 1
means ours is faster), TFLOP/s and the fraction of the bf16 matmul rate measured in the same process.  Our kernel
runs twice: with its default pointer loads and with the TMA loads (``config_override(..., TMA=1)``; ``--no-tma``
skips it); ``--variants`` adds rows of it under other launch configurations (:data:`VARIANTS`: the two-kernel
backward, the tiles timed on 2026-12-04, FlexAttention's tiles, autotuning), for timing the backward's design.
``--smoke`` runs a tiny CPU shape (Triton interpreter, SDPA math) so tests can call it.

Rows stream as measured (``benchmarks/_roofline.py``: :class:`Bench`), implementation by implementation: ours
and the SDPA backends at every T first, FlexAttention (``torch.compile``, one static compilation per shape and
mode) last; the ``compile s`` column is each first call.  SDPA's MATH backend materialises the T x T scores: it
runs only up to ``--math-max-T`` (a row says it was skipped beyond).  ``--call-timeout`` bounds every first call
and timing, ``--budget`` the whole script.

FLOP count (FlashAttention convention): forward ``4 B H T S D`` times the visible fraction (about 1/2
causal), backward 2.5 times the forward.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers import Attn, sdpa_causal, triton_flash_causal
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings


def _flex() -> Attn:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    compiled = torch.compile(flex_attention, dynamic=False)
    masks: dict[tuple[int, int, str], Any] = {}

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        key = (q.shape[2], k.shape[2], str(q.device))
        if key not in masks:
            shift = k.shape[2] - q.shape[2]
            masks[key] = create_block_mask(lambda b, h, i, j: j <= i + shift, None, None, q.shape[2], k.shape[2],
                                           device=q.device)
        return compiled(q, k, v, block_mask=masks[key])

    return run


# Our kernel under other launch configurations (``--variants``), to time the backward's design choices side by side
# with the default: name -> (config_override keywords, environment variables set around each call, what it shows)
VARIANTS: dict[str, tuple[dict[str, dict[str, int]], dict[str, str], str]] = {
    "split": ({"bwd": {"FUSED": 0}}, {}, "the backward as two kernels (dK/dV, then dQ) at the default tiles"),
    "tiles-12-04": ({"bwd": {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 8, "num_stages": 2, "FUSED": 0}}, {},
                    "the two kernels at the tiles timed on 2026-12-04 (64 x 64, 8 warps, 2 stages)"),
    "flex-tiles": ({"bwd": {"BLOCK_M": 64, "BLOCK_N": 128, "num_warps": 8, "num_stages": 3},
                    "dq": {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3}}, {},
                   "FlexAttention's sm_90 backward tiles (our dK/dV spills 108 B per thread there at D = 128)"),
    "autotuned": ({}, {"VERIFORMER_AUTOTUNE": "1"},
                  "VERIFORMER_AUTOTUNE=1: each kernel's curated list timed on first use (the two-kernel backward)"),
}


def _variant(name: str) -> Attn:
    """Our causal kernel under :data:`VARIANTS` ``[name]`` (imported on first use: Triton is optional)."""
    from veriformer.fast.attention.flash import attention, config_override

    override, env, _ = VARIANTS[name]

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            with config_override(**override):
                return attention(q, k, v, causal=True)  # type: ignore[return-value]
        finally:
            for key, val in saved.items():
                if val is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = val

    return run


def _flops(B: int, H: int, T: int, S: int, D: int, mode: str) -> float:
    visible = sum(min(S, i + S - T + 1) for i in range(T)) / (T * S) if T <= 65536 else 0.5
    fwd = 4.0 * B * H * T * S * D * visible
    return fwd if mode == "fwd" else 3.5 * fwd


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[1024, 4096, 8192, 16384])
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--peers", nargs="*", default=None,
                    help="subset of: FLASH_ATTENTION CUDNN_ATTENTION EFFICIENT_ATTENTION MATH flex")
    ap.add_argument("--math-max-T", type=int, default=4096, help="longest T of the O(T^2)-memory MATH backend")
    ap.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS),
                    help="extra rows of our kernel under other launch configurations: "
                         + "; ".join(f"{k}: {v[2]}" for k, v in VARIANTS.items()))
    ap.add_argument("--no-tma", action="store_true", help="skip the row of our kernel with TMA loads")
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, reps = "cpu", [64], 1, 2, 64, 1
        peers = args.peers if args.peers is not None else ["MATH"]
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, reps = "cuda", args.T, args.B, args.H, args.D, 100
        peers = args.peers if args.peers is not None else ["FLASH_ATTENTION", "CUDNN_ATTENTION",
                                                           "EFFICIENT_ATTENTION", "flex"]
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="attention")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton_flash (ours)", triton_flash_causal())]
    if not args.no_tma:
        impls.append(Impl("triton_flash tma (ours)", triton_flash_causal(tma=True)))
    impls += [Impl(f"triton_flash {name} (ours)", _variant(name)) for name in args.variants]
    for p in sorted(peers, key=lambda p: p == "flex"):  # flex (torch.compile) last
        name = f"sdpa:{p}" if p != "flex" else "flex_attention"
        try:
            fn = _flex() if p == "flex" else sdpa_causal(p)
        except Exception as exc:  # a peer missing from this torch build
            impls.append(Impl(name, None, unavailable=f"unavailable: {type(exc).__name__}: {exc}"))
            continue
        cap = {"max_len": args.math_max_T,
               "skip_note": f"skipped: O(T^2) torch baseline beyond T={args.math_max_T}"} if p == "MATH" else {}
        impls.append(Impl(name, fn, **cap))  # type: ignore[arg-type]
    gen = torch.Generator(device=device).manual_seed(0)
    cases = []
    for T in Ts:
        q, k, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
                   for _ in range(3))
        do = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen)

        def extra(mode: str, ms: float, T: int = T) -> dict[str, float]:
            tf = _flops(B, H, T, T, D, mode) / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops}

        cases.append(Case(f"B{B} H{H} T{T} D{D}", (q, k, v), (q, k, v), do, extra, T))
    bench.table([*LEAD_COLUMNS, ("tflops", "TFLOP/s", ".1f"), ("frac", "of matmul", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, args.modes)


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
