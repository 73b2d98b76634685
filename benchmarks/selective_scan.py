"""Benchmark: our Triton selective scan (Mamba-1) against mamba_ssm's CUDA ``selective_scan_fn`` and the torch
``selective_scan_ref`` loop.

``python benchmarks/selective_scan.py`` (GPU) prints, for b=4, d=2048, n=16, L in 4K/16K (``--d``, ``--L``), bfloat16 u,
delta, z and variable B/C [b, n, L] with float32 A, D and delta_bias (Mamba's own dtypes, softplus on, as in
``mamba_inner_fn``), forward and forward+backward: milliseconds, the speed-up of ours over each peer, the bytes a
kernel must move over the copy bandwidth measured in the same process (the memory floor), and the fraction of that
floor reached.  mamba_ssm is imported if installed (a "not installed" row otherwise).  The torch reference loops
over L in Python (a few kernel launches per step) and materialises [b, d, L, n] float32 tensors: beyond
``--ref-max-L`` (default 1024) it is measured on the first ``--ref-max-L`` positions and its time extrapolated
linearly (the row's note says so; ``--ref-all``: measured at full length).  ``--smoke`` runs a tiny CPU shape
(Triton interpreter) so tests can call it.

Rows stream as measured (:class:`_roofline.Bench`): ours at every shape first, then mamba, then the reference;
first calls and timings are bounded by ``--call-timeout``, the script by ``--budget``.  (The 2026-12-04 H200 run
printed no row in 35 s at L = 4096: the table came at the end, after the full-length reference loop, whose
forward+backward holds 4096 steps of autograd graph and several GB of [b, d, L, n] tensors.)

Memory floor (bf16 = 2 bytes): forward reads u, delta, z and writes out (4 b d L) and reads B, C (2 b n L);
the backward reads u, delta, z, dout, writes du, ddelta, dz (7 b d L) and reads B, C, writes dB, dC (4 b n L).
Parameters (A, D, bias) are negligible.  A selective scan does ~10 flops per (b, d, n, L) element, far below the
matmul rate, so the copy bandwidth is the ceiling that matters.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings, prefix_case

Scan = Callable[..., torch.Tensor]


def _ours() -> Scan:
    from veriformer.fast.ssm.scan import selective_scan

    return lambda *a: selective_scan(*a, delta_softplus=True)  # type: ignore[return-value]


def _mamba() -> Scan:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return lambda *a: selective_scan_fn(*a, delta_softplus=True)


def _reference() -> Scan:
    from veriformer.fast.ssm.naive import selective_scan_ref

    return lambda *a: selective_scan_ref(*a, delta_softplus=True)  # type: ignore[return-value]


def _bytes(b: int, d: int, n: int, L: int, mode: str) -> float:
    fwd = 2.0 * (4 * b * d * L + 2 * b * n * L)
    bwd = 2.0 * (7 * b * d * L + 4 * b * n * L)
    return fwd if mode == "fwd" else fwd + bwd


def _inputs(b: int, d: int, n: int, L: int, device: str, dtype: torch.dtype,
            gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    def r(*shape: int, dt: torch.dtype = dtype) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=dt, generator=gen)

    u, z = r(b, d, L), r(b, d, L)
    delta = (r(b, d, L, dt=torch.float32) * 0.5 - 4.0).to(dtype)  # softplus(delta + bias) ~ 0.001..0.1
    A = -torch.exp(r(d, n, dt=torch.float32) * 0.5 + 1.0)
    B, C = r(b, n, L), r(b, n, L)
    D = r(d, dt=torch.float32)
    bias = torch.full((d,), 0.5, device=device, dtype=torch.float32) + 0.1 * r(d, dt=torch.float32)
    return tuple(t.requires_grad_() for t in (u, delta, A, B, C, D, z, bias))


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--b", type=int, default=4)
    ap.add_argument("--d", type=int, nargs="+", default=[2048])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--L", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--ref-max-L", type=int, default=1024, help="longest L the torch reference runs at in full")
    ap.add_argument("--ref-all", action="store_true", help="time the torch reference at full length (slow)")
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, shapes, reps, ref_max = "cpu", [(1, 4, 4, 32)], 1, 16
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, reps, ref_max = "cuda", 100, args.ref_max_L
        shapes = [(args.b, d, args.n, L) for d in args.d for L in args.L]
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="selective_scan")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton_selective_scan (ours)", _ours())]
    try:
        impls.append(Impl("mamba_ssm selective_scan_fn", _mamba()))
    except ImportError as exc:
        bench.out(f"mamba_ssm selective_scan_fn: not installed ({exc})")
        impls.append(Impl("mamba_ssm selective_scan_fn", None))
    impls.append(Impl("torch selective_scan_ref", _reference(), max_len=None if args.ref_all else ref_max,
                      extrapolate=True))
    gen = torch.Generator(device=device).manual_seed(0)
    cases = []
    for b, d, n, L in shapes:
        x = _inputs(b, d, n, L, device, dtype, gen)
        dout = torch.randn(b, d, L, device=device, dtype=dtype, generator=gen)

        def extra(mode: str, ms: float, b: int = b, d: int = d, n: int = n, L: int = L) -> dict[str, float]:
            floor = _bytes(b, d, n, L, mode) / (ceil.copy_gbps * 1e9) * 1e3
            return {"floor": floor, "frac": floor / ms}

        case = Case(f"b{b} d{d} n{n} L{L}", x, x, dout, extra, L, cut=lambda o, m: o[..., :m])
        case.prefix = prefix_case(case, lambda t: t.dim() - 1 if t.dim() >= 3 else None)
        cases.append(case)
    bench.table([*LEAD_COLUMNS, ("floor", "floor ms", ".3f"), ("frac", "of floor", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, args.modes)


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
