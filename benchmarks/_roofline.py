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

__all__ = ["Ceilings", "bench_ms", "fmt_table", "measure_ceilings"]


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
