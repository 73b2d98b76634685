"""Benchmark: our FFT long convolution and our Triton S4D kernel against plain-torch peers.

``python benchmarks/ssm_conv.py`` (GPU) prints two tables.

* Long convolution ``y = K * u`` (causal, per channel), u [B, C, L], kernel [C, L], C in 1024, 4096 and
  L in 1K, 4K, 16K, bfloat16 and float32, forward and forward+backward: ``fft_conv`` (ours: rfft padded to 2L over
  all channels) against a dense depthwise ``torch.nn.functional.conv1d`` (groups=C, kernel length L, padding L-1;
  O(L^2), skipped above ``--conv1d-max-gflop``) and, forward only, the S4D recurrence in torch
  (``x_k = Ad x_{k-1} + Bd u_k``, ``y_k = 2 Re C x_k``, a Python loop over L with a complex64 state [B, C, N2];
  skipped above ``--recurrence-max-L``) whose parameters generate the kernel.  Roofline: effective GB/s of the
  minimal traffic (forward: read u and K, write y; backward adds read dy, u, K and write du, dK) and its fraction
  of the copy bandwidth measured in the same process (an FFT convolution is memory bound at these sizes).
* S4D kernel generation ``K = 2 Re sum_n W_n exp(l dt A_n)``, H channels, N2 = 32 (N = 64), float32 parameters,
  forward and forward+backward: ``s4d_kernel`` (ours, Triton) against the naive complex64 torch Vandermonde
  (``veriformer.fast.ssm.naive.s4d_kernel``, which materialises [H, N2, L]).  Rates: Gterm/s (H N2 L terms) and
  the fraction of the copy bandwidth that writing K alone reaches (small: the kernel is compute bound).

Columns: ``speedup of ours`` = peer ms / ours ms (> 1: we are faster), ``max|y-ours|`` (sanity: the peers compute
the same thing).  ``--smoke`` runs tiny CPU shapes (Triton interpreter) so tests can call it.  ``run(argv)`` returns
the printed text.

Rows stream as measured (:class:`_roofline.Bench`), ours over every shape first, then each peer; the dense conv1d
rows beyond ``--conv1d-max-gflop`` say they were skipped (O(L^2)), and the torch recurrence (a Python loop over
L, forward only) is measured on the first ``--recurrence-max-L`` positions beyond that length and its time
extrapolated linearly (the row's note says so).  ``--call-timeout`` bounds each first call and timing,
``--budget`` the script.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Ceilings, Impl, add_bench_args, main_of, measure_ceilings, prefix_case

_COLUMNS = LEAD_COLUMNS


def _s4d_params(H: int, N2: int, device: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """S4D-Lin parameters: A = -1/2 + i pi n, B = 1, C complex normal, log_dt ~ U[log 1e-3, log 1e-1]."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = torch.arange(N2, dtype=torch.float32)
    A = torch.complex(torch.full((H, N2), -0.5), math.pi * n.expand(H, N2).contiguous())
    B = torch.ones(H, N2, dtype=torch.complex64)
    C = torch.complex(torch.randn(H, N2, generator=gen), torch.randn(H, N2, generator=gen)) * math.sqrt(0.5)
    log_dt = torch.rand(H, generator=gen) * (math.log(1e-1) - math.log(1e-3)) + math.log(1e-3)
    return tuple(x.to(device) for x in (log_dt, A, B, C))


def _recurrence(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> Callable[..., Any]:
    """The S4D recurrence (ZOH) in torch, complex64 state [B, C, N2]; the kernel argument is ignored (the
    parameters imply it)."""
    dt = torch.exp(log_dt)[:, None]
    Ad = torch.exp(A * dt)
    Bd = (Ad - 1) / A * B

    def run(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        uw = u.float()
        x = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=torch.complex64, device=u.device)
        ys = []
        for k in range(u.shape[-1]):
            x = Ad * x + Bd * uw[..., k, None]
            ys.append(2 * (x * C).real.sum(-1))
        return torch.stack(ys, dim=-1).to(u.dtype)

    return run


def _conv1d(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Dense depthwise causal convolution: conv1d is a correlation, so the kernel is flipped; padding L-1 and the
    first L outputs give ``y_k = sum_{j<=k} K_j u_{k-j}``."""
    L = u.shape[-1]
    return torch.nn.functional.conv1d(u, kernel.flip(-1)[:, None, :], padding=L - 1, groups=u.shape[1])[..., :L]


def _conv_rows(args: argparse.Namespace, device: str, ceil: Ceilings, bench: Bench) -> list[dict[str, Any]]:
    from veriformer.fast.ssm.conv import fft_conv, s4d_kernel

    gen = torch.Generator(device=device).manual_seed(0)
    recurrences: dict[int, Callable[..., Any]] = {}
    cases = []
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for Cn in args.C:
            params = _s4d_params(Cn, args.N2, device)
            recurrences.setdefault(Cn, _recurrence(*params))
            for L in args.L:
                with torch.no_grad():
                    K = s4d_kernel(*params, L).to(dtype)
                u = torch.randn(args.B, Cn, L, device=device, dtype=dtype, generator=gen).requires_grad_(True)
                K = K.detach().requires_grad_(True)
                dy = torch.randn(args.B, Cn, L, device=device, dtype=dtype, generator=gen)
                esize = u.element_size()

                def extra(mode: str, ms: float, Cn: int = Cn, L: int = L, esize: int = esize) -> dict[str, float]:
                    fwd = (2 * args.B * Cn * L + Cn * L) * esize
                    nbytes = fwd if mode == "fwd" else fwd + (3 * args.B * Cn * L + 2 * Cn * L) * esize
                    gbps = nbytes / (ms * 1e-3) / 1e9
                    return {"gbps": gbps, "frac": gbps / ceil.copy_gbps}

                case = Case(f"{dtype_name} B{args.B} C{Cn} L{L}", (u, K), (u, K), dy, extra, L,
                            cut=lambda y, n: y[..., :n])
                case.prefix = prefix_case(case, lambda t: t.dim() - 1)
                cases.append(case)

    def too_big(case: Case) -> str | None:
        u = case.args[0]
        gflop = 2 * u.shape[0] * u.shape[1] * case.length * (2 * case.length - 1) / 1e9
        return (f"skipped: O(L^2) dense conv1d, {gflop:.0f} GFLOP > --conv1d-max-gflop {args.conv1d_max_gflop:g}"
                if gflop > args.conv1d_max_gflop else None)

    impls = [Impl("fft_conv (ours)", fft_conv), Impl("conv1d (dense, groups=C)", _conv1d, skip_if=too_big),
             Impl("recurrence (S4D, torch)", lambda u, k: recurrences[u.shape[1]](u, k), modes=["fwd"],
                  mode_note="forward only (the recurrence is the forward's baseline)", max_len=args.recurrence_max_L,
                  extrapolate=True)]
    bench.table([*_COLUMNS, ("gbps", "GB/s", ".0f"), ("frac", "of copy", ".2f"), ("diff", "max|y-ours|", ".1e")],
                [c.shape for c in cases], [i.name for i in impls],
                title="causal long convolution y = K * u (per channel)")
    return bench.run(impls, cases, args.modes, group="conv")


def _s4d_rows(args: argparse.Namespace, device: str, ceil: Ceilings, bench: Bench) -> list[dict[str, Any]]:
    from veriformer.fast.ssm.conv import s4d_kernel
    from veriformer.fast.ssm.naive import s4d_kernel as naive

    cases = []
    for H in args.H:
        params = tuple(x.detach().requires_grad_(True) for x in _s4d_params(H, args.N2, device))
        for L in args.L:
            dK = torch.randn(H, L, device=device)

            def extra(mode: str, ms: float, H: int = H, L: int = L) -> dict[str, float]:
                gbps = H * L * 4 / (ms * 1e-3) / 1e9
                return {"gterms": H * args.N2 * L / (ms * 1e-3) / 1e9, "gbps": gbps, "frac": gbps / ceil.copy_gbps}

            cases.append(Case(f"float32 H{H} N2={args.N2} L{L}", (*params, L), params, dK, extra, L))
    impls = [Impl("s4d_kernel (ours)", s4d_kernel), Impl("naive complex64 torch", naive)]
    bench.table([*_COLUMNS, ("gterms", "Gterm/s", ".1f"), ("gbps", "K GB/s", ".1f"), ("frac", "of copy", ".3f"),
                 ("diff", "max|K-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls],
                title="S4D kernel generation (Vandermonde, ZOH)")
    return bench.run(impls, cases, args.modes, group="s4d")


def run(argv: list[str] | None = None) -> str:
    """Parse ``argv``, run both benchmarks, print the tables row by row; returns the printed text."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--C", type=int, nargs="+", default=[1024, 4096], help="channels of the convolution")
    ap.add_argument("--H", type=int, nargs="+", default=[1024, 4096], help="channels of the S4D kernel")
    ap.add_argument("--L", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--N2", type=int, default=32, help="kept eigenvalues per channel (N = 2 N2)")
    ap.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--conv1d-max-gflop", type=float, default=2000.0)
    ap.add_argument("--recurrence-max-L", type=int, default=4096)
    ap.add_argument("--only", choices=["conv", "s4d"], default=None)
    add_bench_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:
        device, warmup, reps = "cpu", 1, 1
        args.B, args.C, args.H, args.L, args.N2, args.dtypes = 1, [4], [2], [64], 4, ["float32"]
        args.recurrence_max_L = min(args.recurrence_max_L, 32)
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, warmup, reps = "cuda", 5, 100
    bench = Bench.from_args(args, device=device, warmup=warmup, rep=reps, name="ssm_conv")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    if args.only in (None, "conv"):
        _conv_rows(args, device, ceil, bench)
    if args.only in (None, "s4d"):
        _s4d_rows(args, device, ceil, bench)
    return "\n".join(bench.lines)


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
