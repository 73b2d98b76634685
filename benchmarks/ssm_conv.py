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
  (``veriformer.fast.naive_ssm.s4d_kernel``, which materialises [H, N2, L]).  Rates: Gterm/s (H N2 L terms) and
  the fraction of the copy bandwidth that writing K alone reaches (small: the kernel is compute bound).

Columns: ``speedup of ours`` = peer ms / ours ms (> 1: we are faster), ``max|y-ours|`` (sanity: the peers compute
the same thing).  ``--smoke`` runs tiny CPU shapes (Triton interpreter) so tests can call it.  ``run(argv)`` returns
the printed text.
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
from _roofline import LEAD_COLUMNS, Ceilings, fmt_table, main_of, measure_ceilings, time_side_by_side

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


def _conv_rows(args: argparse.Namespace, device: str, ceil: Ceilings, warmup: int, reps: int) -> list[dict[str, Any]]:
    from veriformer.fast.ssm_conv import fft_conv, s4d_kernel

    rows: list[dict[str, Any]] = []
    gen = torch.Generator(device=device).manual_seed(0)
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for Cn in args.C:
            params = _s4d_params(Cn, args.N2, device)
            for L in args.L:
                with torch.no_grad():
                    K = s4d_kernel(*params, L).to(dtype)
                u = torch.randn(args.B, Cn, L, device=device, dtype=dtype, generator=gen)
                K = K.detach().requires_grad_(True)
                u.requires_grad_(True)
                dy = torch.randn(args.B, Cn, L, device=device, dtype=dtype, generator=gen)
                esize = u.element_size()
                shape = f"{dtype_name} B{args.B} C{Cn} L{L}"

                def extra(mode: str, ms: float, Cn: int = Cn, L: int = L, esize: int = esize) -> dict[str, float]:
                    fwd = (2 * args.B * Cn * L + Cn * L) * esize
                    nbytes = fwd if mode == "fwd" else fwd + (3 * args.B * Cn * L + 2 * Cn * L) * esize
                    gbps = nbytes / (ms * 1e-3) / 1e9
                    return {"gbps": gbps, "frac": gbps / ceil.copy_gbps}

                impls: dict[str, Callable[..., Any]] = {"fft_conv (ours)": fft_conv}
                if 2 * args.B * Cn * L * (2 * L - 1) / 1e9 <= args.conv1d_max_gflop:
                    impls["conv1d (dense, groups=C)"] = _conv1d
                else:
                    print(f"{shape}: conv1d skipped (> --conv1d-max-gflop {args.conv1d_max_gflop})")
                fwd_impls = dict(impls)
                if L <= args.recurrence_max_L:
                    fwd_impls["recurrence (S4D, torch)"] = _recurrence(*params)
                else:
                    print(f"{shape}: recurrence skipped (L > --recurrence-max-L {args.recurrence_max_L})")
                for mode in args.modes:
                    group = fwd_impls if mode == "fwd" else impls
                    rows += [{"shape": shape, **r} for r in time_side_by_side(
                        group, [mode], args=(u, K), wrt=(u, K), grads=dy, output=lambda y: y, device=device,
                        warmup=warmup, rep=reps, extra=extra)]
                del u, K, dy
                if device == "cuda":
                    torch.cuda.empty_cache()
    return rows


def _s4d_rows(args: argparse.Namespace, device: str, ceil: Ceilings, warmup: int, reps: int) -> list[dict[str, Any]]:
    from veriformer.fast.naive_ssm import s4d_kernel as naive
    from veriformer.fast.ssm_conv import s4d_kernel

    rows: list[dict[str, Any]] = []
    for H in args.H:
        for L in args.L:
            params = tuple(x.detach().requires_grad_(True) for x in _s4d_params(H, args.N2, device))
            dK = torch.randn(H, L, device=device)
            shape = f"float32 H{H} N2={args.N2} L{L}"

            def extra(mode: str, ms: float, H: int = H, L: int = L) -> dict[str, float]:
                gbps = H * L * 4 / (ms * 1e-3) / 1e9
                return {"gterms": H * args.N2 * L / (ms * 1e-3) / 1e9, "gbps": gbps, "frac": gbps / ceil.copy_gbps}

            impls = {"s4d_kernel (ours)": lambda *p, L=L: s4d_kernel(*p, L),
                     "naive complex64 torch": lambda *p, L=L: naive(*p, L)}
            rows += [{"shape": shape, **r} for r in time_side_by_side(
                impls, args.modes, args=params, wrt=params, grads=dK, output=lambda k: k, device=device,
                warmup=warmup, rep=reps, extra=extra)]
            del params, dK
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


def run(argv: list[str] | None = None) -> str:
    """Parse ``argv``, run both benchmarks, print the tables; returns the printed text."""
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
    args = ap.parse_args(argv)
    if args.smoke:
        device, warmup, reps = "cpu", 1, 1
        args.B, args.C, args.H, args.L, args.N2, args.dtypes = 1, [4], [2], [64], 4, ["float32"]
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, warmup, reps = "cuda", 5, 100
    ceil = measure_ceilings(device, smoke=args.smoke)
    out = [repr(ceil)]
    if args.only in (None, "conv"):
        rows = _conv_rows(args, device, ceil, warmup, reps)
        out += ["", "causal long convolution y = K * u (per channel)", fmt_table(rows, [
            *_COLUMNS, ("gbps", "GB/s", ".0f"), ("frac", "of copy", ".2f"), ("diff", "max|y-ours|", ".1e")])]
    if args.only in (None, "s4d"):
        rows = _s4d_rows(args, device, ceil, warmup, reps)
        out += ["", "S4D kernel generation (Vandermonde, ZOH)", fmt_table(rows, [
            *_COLUMNS, ("gterms", "Gterm/s", ".1f"), ("gbps", "K GB/s", ".1f"), ("frac", "of copy", ".3f"),
            ("diff", "max|K-ours|", ".1e")])]
    text = "\n".join(out)
    print(text)
    return text


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
