"""Shared benchmark helpers: timing, and the two roofline ceilings measured in the same process.

* copy bandwidth: ``dst.copy_(src)`` of a large buffer, bytes read + written per second (what a
  memory-bound kernel such as RoPE can reach at best);
* matmul rate: ``a @ b`` of square bfloat16 (or the given dtype) matrices, ``2 n^3`` flops per second
  (the ceiling that attention's two GEMMs per tile are compared with).

On CUDA, times come from ``triton.testing.do_bench`` when Triton is importable (median of CUDA-event
timings with the L2 cache flushed), else from CUDA events; on the CPU (``--smoke`` runs) from
``time.perf_counter``.  Numbers are only comparable within one process on one device.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["LEAD_COLUMNS", "Ceilings", "bench_ms", "fmt_table", "main_of", "measure_ceilings", "mode_caller",
           "time_side_by_side"]


def bench_ms(fn: Callable[[], Any], *, device: torch.device | str, warmup: int = 3, rep: int = 10) -> float:
    """Median milliseconds of ``fn()`` on ``device`` (see module docstring for the method)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            from triton.testing import do_bench

            return float(do_bench(fn, warmup=max(warmup, 25), rep=max(rep, 100), return_mode="median"))
        except ImportError:
            pass
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize(dev)
        times = []
        for _ in range(rep):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(dev)
            times.append(start.elapsed_time(end))
        return statistics.median(times)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rep):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


class Ceilings:
    """Measured ``copy_gbps`` (GB/s, read + write) and ``matmul_tflops`` (of ``dtype``) on ``device``."""

    def __init__(self, device: str, copy_gbps: float, matmul_tflops: float, dtype: torch.dtype) -> None:
        self.device, self.copy_gbps, self.matmul_tflops, self.dtype = device, copy_gbps, matmul_tflops, dtype

    def __repr__(self) -> str:
        return (f"Ceilings(device={self.device!r}, copy {self.copy_gbps:.0f} GB/s, "
                f"{str(self.dtype).replace('torch.', '')} matmul {self.matmul_tflops:.1f} TFLOP/s)")


def measure_ceilings(device: torch.device | str, *, copy_mib: int = 1024, matmul_n: int = 8192,
                     dtype: torch.dtype = torch.bfloat16, smoke: bool = False) -> Ceilings:
    """Measure copy bandwidth and the ``dtype`` matmul rate on ``device`` (small sizes when ``smoke``)."""
    dev = torch.device(device)
    if smoke:
        copy_mib, matmul_n = 4, 256
    n_el = copy_mib * 2**20 // 4
    src = torch.empty(n_el, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    ms = bench_ms(lambda: dst.copy_(src), device=dev)
    copy_gbps = 2 * src.numel() * src.element_size() / (ms * 1e-3) / 1e9
    mm_dtype = dtype if (dev.type == "cuda" or dtype != torch.bfloat16) else torch.float32
    a = torch.randn(matmul_n, matmul_n, dtype=mm_dtype, device=dev)
    b = torch.randn(matmul_n, matmul_n, dtype=mm_dtype, device=dev)
    ms = bench_ms(lambda: a @ b, device=dev)
    tflops = 2 * matmul_n**3 / (ms * 1e-3) / 1e12
    return Ceilings(str(dev), copy_gbps, tflops, mm_dtype)


LEAD_COLUMNS: list[tuple[str, str, str]] = [
    ("shape", "shape", "s"), ("mode", "mode", "s"), ("impl", "impl", "s"), ("ms", "ms", ".3f"),
    ("ratio", "speedup of ours", ".2f")]
"""The first columns of every side-by-side table (rows from :func:`time_side_by_side` plus a ``shape``)."""


def fmt_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """Plain-text table: ``columns`` = [(key, header, format spec)]; missing values print as '-'."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        line = []
        for key, _, spec in columns:
            v = r.get(key)
            line.append("-" if v is None else format(v, spec))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c[i].rjust(widths[i]) for i in range(len(columns))) for c in cells)


def mode_caller(fn: Callable[..., Any], mode: str, args: tuple[Any, ...], wrt: tuple[torch.Tensor, ...],
                grads: Any) -> Callable[[], Any]:
    """``fn(*args)`` without autograd ("fwd"), or forward plus ``autograd.grad`` w.r.t. ``wrt`` ("fwd+bwd")."""
    if mode == "fwd":
        def call() -> Any:
            with torch.no_grad():
                return fn(*args)
    else:
        def call() -> Any:
            return torch.autograd.grad(fn(*args), wrt, grads)
    return call


def time_side_by_side(impls: dict[str, Callable[..., Any]], modes: list[str], *, args: tuple[Any, ...],
                      wrt: tuple[torch.Tensor, ...], grads: Any, output: Callable[[Any], torch.Tensor],
                      device: torch.device | str, warmup: int, rep: int,
                      extra: Callable[[str, float], dict[str, float]]) -> list[dict[str, Any]]:
    """Time every implementation in each mode, ours (the first entry) first, in one process.

    Row: mode, impl, ms, ratio (this ms / ours ms: our speed-up over it, > 1 means ours is faster), diff (max |output -
    ours|, a sanity check that the peer computes the same thing), plus ``extra(mode, ms)`` (rates, roofline
    fractions).  A peer that fails is reported and skipped."""
    first = next(iter(impls.values()))
    with torch.no_grad():
        ref = output(first(*args)).float()
    rows: list[dict[str, Any]] = []
    for mode in modes:
        ours_ms = None
        for name, fn in impls.items():
            try:
                with torch.no_grad():
                    diff = float((output(fn(*args)).float() - ref).abs().max())
                ms = bench_ms(mode_caller(fn, mode, args, wrt, grads), device=device, warmup=warmup, rep=rep)
            except Exception as exc:  # a peer missing or failing on this build
                print(f"{name} {mode}: failed: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if ours_ms is None:
                ours_ms = ms
            rows.append({"mode": mode, "impl": name, "ms": ms, "ratio": ms / ours_ms, "diff": diff,
                         **extra(mode, ms)})
    return rows


def main_of(run: Callable[[list[str] | None], Any]) -> Callable[[list[str] | None], int]:
    """The ``main(argv)`` of a benchmark script whose ``run(argv)`` parses, measures and prints: exit status 0."""
    def main(argv: list[str] | None = None) -> int:
        run(argv)
        return 0
    return main
