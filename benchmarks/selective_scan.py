"""Benchmark: our Triton selective scan (Mamba-1) against mamba_ssm's CUDA ``selective_scan_fn`` and the torch
``selective_scan_ref`` loop.

``python benchmarks/selective_scan.py`` (GPU) prints, for b=4, d in 2048/4096, n=16, L in 2K/4K/8K, bfloat16 u,
delta, z and variable B/C [b, n, L] with float32 A, D and delta_bias (Mamba's own dtypes, softplus on, as in
``mamba_inner_fn``), forward and forward+backward: milliseconds, the speed-up of ours over each peer, the bytes a
kernel must move over the copy bandwidth measured in the same process (the memory floor), and the fraction of that
floor reached.  mamba_ssm is imported if installed (a "not installed" row otherwise); the torch reference loops
over L in Python, so it runs at the smallest shapes only unless ``--ref-all``.  ``--smoke`` runs a tiny CPU
shape (Triton interpreter) so tests can call it.

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
from _roofline import LEAD_COLUMNS, fmt_table, main_of, measure_ceilings, time_side_by_side

Scan = Callable[..., torch.Tensor]


def _ours() -> Scan:
    from veriformer.fast.triton_selective_scan import selective_scan

    return lambda *a: selective_scan(*a, delta_softplus=True)  # type: ignore[return-value]


def _mamba() -> Scan:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return lambda *a: selective_scan_fn(*a, delta_softplus=True)


def _reference() -> Scan:
    from veriformer.fast.naive_ssm import selective_scan_ref

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
    """Parse ``argv``, run the benchmark, print the table; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--b", type=int, default=4)
    ap.add_argument("--d", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--L", type=int, nargs="+", default=[2048, 4096, 8192])
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--ref-all", action="store_true", help="time the torch reference at every shape (slow)")
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, shapes, reps = "cpu", [(1, 4, 4, 32)], 1
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, reps = "cuda", 100
        shapes = [(args.b, d, args.n, L) for d in args.d for L in args.L]
    ceil = measure_ceilings(device, smoke=args.smoke)
    print(ceil)
    peers: dict[str, Scan] = {}
    missing: list[str] = []
    try:
        peers["mamba_ssm selective_scan_fn"] = _mamba()
    except ImportError as exc:
        print(f"mamba_ssm selective_scan_fn: not installed ({exc})")
        missing.append("mamba_ssm selective_scan_fn")
    rows: list[dict[str, Any]] = []
    gen = torch.Generator(device=device).manual_seed(0)
    for i, (b, d, n, L) in enumerate(shapes):
        impls: dict[str, Scan] = {"triton_selective_scan (ours)": _ours(), **peers}
        if args.smoke or args.ref_all or i == 0:
            impls["torch selective_scan_ref"] = _reference()
        shape = f"b{b} d{d} n{n} L{L}"
        x = _inputs(b, d, n, L, device, dtype, gen)
        dout = torch.randn(b, d, L, device=device, dtype=dtype, generator=gen)

        def extra(mode: str, ms: float, b: int = b, d: int = d, n: int = n, L: int = L) -> dict[str, float]:
            floor = _bytes(b, d, n, L, mode) / (ceil.copy_gbps * 1e9) * 1e3
            return {"floor": floor, "frac": floor / ms}

        rows += [{"shape": shape, **r} for r in time_side_by_side(
            impls, args.modes, args=x, wrt=x, grads=dout, output=lambda o: o, device=device,
            warmup=1 if args.smoke else 5, rep=reps, extra=extra)]
        rows += [{"shape": shape, "impl": m, "note": "not installed"} for m in missing]
    print(fmt_table(rows, [*LEAD_COLUMNS, ("floor", "floor ms", ".3f"),
                           ("frac", "of floor", ".2f"), ("diff", "max|o-ours|", ".1e"), ("note", "note", "s")]))
    return rows


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
