"""Benchmark: our linear-time Transformer-VQ attention against dense causal attention (SDPA flash, our Triton
flash attention) over the same quantised keys.

``python benchmarks/vq_attention.py`` (GPU) prints, for bf16, B=4, H=16, D=128, a codebook of 512 codes,
causal, T in 2K..32K, forward and forward+backward: milliseconds, the speed-up of ours over each peer
(peer ms / our ms, > 1 means ours is faster), TFLOP/s and the fraction of the bf16 matmul rate measured in
the same process (``benchmarks/_roofline.py``), both for the dense-equivalent FLOP count (the work dense
attention does, as in ``benchmarks/attention.py``: comparable across rows) and, on our rows, for the FLOPs
our kernels actually perform.  ``--smoke`` runs a tiny CPU shape (Triton interpreter, SDPA math).  Rows stream as
measured (:class:`_roofline.Bench`: ours at every T first, with a ``compile s`` column for each first call);
``--call-timeout`` bounds each first call and timing, ``--budget`` the script.

Inputs: the keys are exact codebook rows (``k = C[z]``), so ``k_hat = k`` and the peers, run on (q, k, v),
compute the same output as ours (the ``max|o-ours|`` column checks it); ours still quantises them (timed).

FLOP counts: dense causal forward ``4 B H T^2 D / 2`` (FlashAttention convention), backward 2.5x (total
3.5x).  Ours, forward: quantise ``2 T C D``, cache build ``2 T C Dv``, cache read ``2 T C (D + Dv)``, local
part ``2 T (W + 1) / 2 (D + Dv)`` (per batch*head); the backward is the flash backward at k_hat (2.5x the
dense forward).
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


def _ours(codebook: torch.Tensor, block_size: int) -> Attn:
    from veriformer.fast.vq.linear_time import vq_attention

    return lambda q, k, v: vq_attention(q, k, v, codebook, causal=True, block_size=block_size)


def dense_flops(B: int, H: int, T: int, D: int, mode: str) -> float:
    """Dense causal attention FLOPs (T = S, visible fraction (T + 1) / 2T)."""
    fwd = 4.0 * B * H * T * T * D * (T + 1) / (2 * T)
    return fwd if mode == "fwd" else 3.5 * fwd


def our_flops(B: int, H: int, T: int, D: int, C: int, W: int, mode: str) -> float:
    """FLOPs our kernels perform (module docstring); the backward is the dense one (flash backward)."""
    W = min(W, T)
    fwd = 2.0 * B * H * T * (C * D + C * D + C * (D + D) + (W + 1) / 2 * (D + D))
    return fwd if mode == "fwd" else fwd + 2.5 * dense_flops(B, H, T, D, "fwd")


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[2048, 4096, 8192, 16384, 32768])
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--C", type=int, default=512, help="codebook size")
    ap.add_argument("--block-size", type=int, default=256, help="our block length W")
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--peers", nargs="*", default=None, help="subset of: FLASH_ATTENTION triton_flash MATH")
    ap.add_argument("--math-max-T", type=int, default=4096, help="longest T of the O(T^2)-memory MATH backend")
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, C, W, reps = "cpu", [40], 1, 2, 32, 16, 16, 1
        peers = args.peers if args.peers is not None else ["MATH", "triton_flash"]
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, C, W, reps = "cuda", args.T, args.B, args.H, args.D, args.C, args.block_size, 100
        peers = args.peers if args.peers is not None else ["FLASH_ATTENTION", "triton_flash"]
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="vq_attention")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    gen = torch.Generator(device=device).manual_seed(0)
    codebook = torch.randn(H, C, D, device=device, dtype=dtype, generator=gen)
    def own(mode: str, ms: float, T: int) -> dict[str, float]:  # the FLOP rate of the work our kernels do
        tf = our_flops(B, H, T, D, C, W, mode) / (ms * 1e-3) / 1e12
        return {"own_tflops": tf, "own_frac": tf / ceil.matmul_tflops}

    impls = [Impl(f"vq_attention W={W} (ours)", _ours(codebook, W), extra=own)]
    for p in peers:
        name = "triton_flash" if p == "triton_flash" else f"sdpa:{p}"
        try:
            fn = triton_flash_causal() if p == "triton_flash" else sdpa_causal(p)
        except Exception as exc:  # a peer missing from this torch build
            impls.append(Impl(name, None, unavailable=f"unavailable: {type(exc).__name__}: {exc}"))
            continue
        cap = {"max_len": args.math_max_T,
               "skip_note": f"skipped: O(T^2) torch baseline beyond T={args.math_max_T}"} if p == "MATH" else {}
        impls.append(Impl(name, fn, **cap))  # type: ignore[arg-type]
    cases = []
    for T in Ts:
        z = torch.randint(0, C, (B, H, T), device=device, generator=gen)
        k = codebook[torch.arange(H, device=device)[None, :, None], z].detach().requires_grad_(True)
        q, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
                for _ in range(2))
        do = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen)

        def extra(mode: str, ms: float, T: int = T) -> dict[str, float]:
            tf = dense_flops(B, H, T, D, mode) / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops}

        cases.append(Case(f"B{B} H{H} T{T} D{D} C{C}", (q, k, v), (q, k, v), do, extra, T))
    bench.table([*LEAD_COLUMNS, ("tflops", "dense-eq TFLOP/s", ".1f"), ("frac", "of matmul", ".2f"),
                 ("own_tflops", "own TFLOP/s", ".1f"), ("own_frac", "own of matmul", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, args.modes)


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
