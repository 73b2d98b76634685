"""Benchmark: our Triton ``rope_qk`` against the eager torch formula (HF style, ``fast.naive.rope``) and
its ``torch.compile`` version.

``python benchmarks/rope.py`` (GPU) prints, for q and k of shape [B=4, H=16, T, D=128] at T = 1K, 4K, 8K,
16K, layout "half", forward (rotate q and k) and forward+backward: milliseconds, "speedup of ours" (the row's
time over ours; > 1: we are faster), effective GB/s (bytes of q and k read and written once: the minimum
traffic) and the fraction of the copy bandwidth measured in the same process.  ``--smoke`` runs a tiny CPU shape
(Triton interpreter) so tests can call it.

Rows stream as measured (:class:`_roofline.Bench`), ours at every T first and the ``torch.compile`` peer last
(one static compilation per shape and mode: the ``compile s`` column); ``--call-timeout`` bounds each first
call and timing, ``--budget`` the script.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings

QK = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _ours(layout: str) -> QK:
    from veriformer.fast.rope.fused import rope_qk

    return functools.partial(rope_qk, layout=layout)  # type: ignore[return-value]


def _eager(layout: str) -> QK:
    from veriformer.fast.rope.naive import rope

    def run(q: torch.Tensor, k: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rope(q, pos, layout=layout), rope(k, pos, layout=layout)

    return run


def _hf_style(layout: str) -> QK:
    """The usual model-code formula (``x * cos + rotate_half(x) * sin`` with [T, D] tables), half only."""

    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def run(q: torch.Tensor, k: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        D = q.shape[-1]
        inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2, device=q.device, dtype=torch.float32) / D))
        ang = pos.to(torch.float32)[:, None] * inv[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos().to(q.dtype), emb.sin().to(q.dtype)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    return run


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[1024, 4096, 8192, 16384])
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--layout", default="half", choices=["half", "interleaved"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile peer")
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, reps = "cpu", [32], 1, 2, 64, 1
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, reps = "cuda", args.T, args.B, args.H, args.D, 100
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="rope")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton rope_qk (ours)", _ours(args.layout)), Impl("eager naive.rope", _eager(args.layout))]
    if args.layout == "half":
        impls.append(Impl("eager HF rotate_half", _hf_style(args.layout)))
        if not args.smoke and not args.no_compile:
            impls.append(Impl("compiled HF rotate_half", torch.compile(_hf_style(args.layout), dynamic=False)))
    gen = torch.Generator(device=device).manual_seed(0)
    cases = []
    for T in Ts:
        q = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
        k = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
        gq, gk = torch.randn_like(q), torch.randn_like(k)
        pos = torch.arange(T, device=device)
        nbytes = 2 * (q.numel() + k.numel()) * q.element_size()  # read + write once

        def extra(mode: str, ms: float, nbytes: int = nbytes) -> dict[str, float]:
            gbps = nbytes * (1 if mode == "fwd" else 2) / (ms * 1e-3) / 1e9
            return {"gbps": gbps, "frac": gbps / ceil.copy_gbps}

        cases.append(Case(f"B{B} H{H}+{H} T{T} D{D}", (q, k, pos), (q, k), (gq, gk), extra, T))
    bench.table([*LEAD_COLUMNS, ("gbps", "GB/s", ".1f"), ("frac", "of copy", ".2f"), ("diff", "max|q-ours|", ".1e")],
                [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, args.modes, output=lambda r: r[0])


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
