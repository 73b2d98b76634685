"""Benchmark: our Triton Monarch product (``fast.monarch.kernel.monarch_matmul``, both block products with the
shuffles fused) against the torch bmm Monarch (``fast.monarch.naive``, fly's two-bmm forward) and the dense
matmul ``x @ M^T`` of the same size.

``python benchmarks/monarch.py`` (GPU) prints, for x [tokens, n] with n = m^2 (m blocks of m x m, the square
Monarch) at n = 1024, 4096, 16384 and 16K tokens, forward and forward+backward: milliseconds, "speedup of ours"
(the row's time over ours; > 1: we are faster), the effective TFLOP/s of the Monarch work (2 n^1.5 flops per
token and factor, forward; 3x that with backward) and its fraction of the dense bf16 matmul rate measured in the
same process; the dense row's TFLOP/s counts its own 2 n^2 flops per token (3x with dx and d(dense)).
``--smoke`` runs a tiny CPU shape (Triton interpreter) so tests can call it.

Rows stream as measured (:class:`_roofline.Bench`); ``--call-timeout`` bounds each first call and timing,
``--budget`` the script.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings


def _ours() -> Any:
    from veriformer.fast.monarch.kernel import monarch_matmul

    return monarch_matmul


def _bmm() -> Any:
    from veriformer.fast.monarch.naive import monarch_matmul

    return monarch_matmul


def _dense(x: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """The dense layer of the same size: forward one n x n GEMM per token block, backward dx and d(dense)."""
    return x @ dense.t()


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--n", type=int, nargs="+", default=[1024, 4096, 16384], help="feature sizes (perfect squares)")
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--no-dense", action="store_true", help="skip the dense matmul row")
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, ns, N, reps = "cpu", [16], 8, 1
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, ns, N, reps = "cuda", args.n, args.tokens, 100
    for n in ns:
        if math.isqrt(n) ** 2 != n:
            ap.error(f"--n: {n} is not a perfect square")
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="monarch")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton monarch (ours)", lambda x, w1, w2: _ours()(x, w1, w2)),
             Impl("torch bmm monarch", lambda x, w1, w2: _bmm()(x, w1, w2))]
    dense_impls = [] if args.no_dense else [Impl("dense x @ M^T (torch)", _dense)]
    gen = torch.Generator(device=device).manual_seed(0)
    cases, dense_cases = [], []
    for n in ns:
        m = math.isqrt(n)
        x = torch.randn(N, n, device=device, dtype=dtype, generator=gen, requires_grad=True)
        w1 = (torch.randn(m, m, m, device=device, dtype=dtype, generator=gen) / m**0.5).requires_grad_(True)
        w2 = (torch.randn(m, m, m, device=device, dtype=dtype, generator=gen) / m**0.5).requires_grad_(True)
        with torch.no_grad():
            dense = _bmm()(torch.eye(n, device=device, dtype=dtype), w1, w2).t().contiguous()
        dense.requires_grad_(True)
        g = torch.randn(N, n, device=device, dtype=dtype, generator=gen)
        flops = 2 * 2 * N * n * m  # two block-diagonal products of 2 n m flops per token

        def extra(mode: str, ms: float, flops: int = flops) -> dict[str, float]:
            tf = flops * (1 if mode == "fwd" else 3) / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops}

        def extra_dense(mode: str, ms: float, flops: int = 2 * N * n * n) -> dict[str, float]:
            tf = flops * (1 if mode == "fwd" else 3) / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops}

        shape = f"tokens{N} n{n} (m={m})"
        cases.append(Case(shape, (x, w1, w2), (x, w1, w2), g, extra, N))
        dense_cases.append(Case(shape, (x, dense), (x, dense), g, extra_dense, N))
    bench.table([*LEAD_COLUMNS, ("tflops", "TFLOP/s", ".2f"), ("frac", "of matmul", ".3f"),
                 ("diff", "max|y-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls + dense_impls])
    rows = bench.run(impls, cases, args.modes)
    if dense_impls:
        rows += bench.run(dense_impls, dense_cases, args.modes)
    return rows


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
