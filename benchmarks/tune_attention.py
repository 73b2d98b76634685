"""Tuning sweep for our Triton flash attention on a GPU: launch configurations side by side with SDPA's flash backend.

``python benchmarks/tune_attention.py`` (GPU) times, for B=4, H=16, D=128, causal bf16 at each T, the forward
over every forward configuration (BLOCK_M x BLOCK_N x warps x stages x loads by pointers or by TMA), then
forward+backward over every dK/dV configuration and over every dQ configuration (the same axes; each sweep keeps
the earlier winners), through :func:`veriformer.fast.attention.flash.config_override`, the backward as its two
kernels (``FUSED=0``) so that each sweep times one kernel's tiles.
It prints the rows fastest first, with the default configuration marked, the speed-up over the default and over
SDPA's flash backend measured in the same process; configurations that do not fit (Triton's OutOfResources) are
listed as such.  The winners are candidates for ``_fwd_config`` / ``_bwd_config`` / ``_dq_config``; each sweep
checks its output (o, dk or dq) against the default configuration's (max abs difference), so a config that
breaks the kernel shows.
``--smoke`` runs one or two configurations of each kernel on a tiny CPU shape (Triton interpreter) so tests can call it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers import sdpa_causal
from _roofline import bench_ms, fmt_table, main_of, mode_caller

from veriformer.fast.attention import flash as fa

GRIDS = {
    "fwd": {"BLOCK_M": [64, 128], "BLOCK_N": [64, 128], "num_warps": [4, 8], "num_stages": [2, 3, 4], "TMA": [0, 1]},
    "dkdv": {"BLOCK_M": [16, 32, 64], "BLOCK_N": [64, 128], "num_warps": [4, 8], "num_stages": [2, 3], "TMA": [0, 1]},
    "dq": {"BLOCK_M": [64, 128], "BLOCK_N": [32, 64], "num_warps": [4, 8], "num_stages": [2, 3], "TMA": [0, 1]},
}
SMOKE = {
    "fwd": [{"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1, "TMA": 0},
            {"BLOCK_M": 32, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1, "TMA": 1}],
    "dkdv": [{"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1, "TMA": 0},
             {"BLOCK_M": 16, "BLOCK_N": 32, "num_warps": 4, "num_stages": 1, "TMA": 1}],
    "dq": [{"BLOCK_M": 32, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1, "TMA": 1}],
}
_MODE = {"fwd": "fwd", "dkdv": "fwd+bwd", "dq": "fwd+bwd"}


def _configs(grid: dict[str, list[int]]) -> list[dict[str, int]]:
    return [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())]


def _label(cfg: dict[str, int]) -> str:
    tma = " tma" if cfg.get("TMA") else ""
    return f"{cfg['BLOCK_M']}x{cfg['BLOCK_N']} w{cfg['num_warps']} s{cfg['num_stages']}{tma}"


def _sweep(kernel: str, configs: list[dict[str, int]], fixed: dict[str, dict[str, int]], inputs: tuple[Any, ...],
           do: torch.Tensor, device: str, warmup: int, rep: int) -> list[dict[str, Any]]:
    """Time ``kernel``'s mode under each of its configurations, the other kernels' configurations ``fixed``;
    rows with ms (or a note), fastest first, the default (``fixed[kernel]``) marked."""
    q, k, v = inputs
    mode = _MODE[kernel]

    def call() -> Any:
        return fa.attention(q, k, v, causal=True)

    def under(cfg: dict[str, int]) -> tuple[float, torch.Tensor]:
        cfgs = {**fixed, kernel: cfg}
        # the two-kernel backward: each sweep times one kernel's tiles (the one-launch form, whose dK/dV and dQ
        # programs share warps and stages, is timed against it by attention.py --variants split)
        with fa.config_override(fwd=cfgs["fwd"], bwd={**cfgs["dkdv"], "FUSED": 0}, dq=cfgs["dq"]):
            fn = mode_caller(call, mode, (), (q, k, v), do)
            out = fn()
            ms = bench_ms(fn, device=device, warmup=warmup, rep=rep)
        first = out if isinstance(out, torch.Tensor) else out[0 if kernel != "dkdv" else 1]
        return ms, first.detach().float()

    default = fixed[kernel]
    ref_ms, ref_out = under(default)
    rows = []
    for cfg in configs:
        row: dict[str, Any] = {"kernel": kernel, "mode": mode, "config": _label(cfg),
                               "default": "*" if cfg == default else ""}
        try:
            ms, out = (ref_ms, ref_out) if cfg == default else under(cfg)
        except Exception as e:  # OutOfResources and compile failures: the config does not fit
            row["note"] = type(e).__name__
            rows.append(row)
            continue
        row.update(ms=ms, vs_default=ref_ms / ms, diff=float((out - ref_out).abs().max()))
        rows.append(row)
    if not any(r["default"] for r in rows):
        rows.append({"kernel": kernel, "mode": mode, "config": _label(default), "default": "*", "ms": ref_ms,
                     "vs_default": 1.0, "diff": 0.0})
    return sorted(rows, key=lambda r: r.get("ms", float("inf")))


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the sweeps, print one table per T; returns all rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16"])
    ap.add_argument("--kernels", nargs="+", default=["fwd", "dkdv", "dq"], choices=["fwd", "dkdv", "dq"],
                    help="which kernels to sweep, in order (each later sweep keeps the earlier winners)")
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, warmup, rep = "cpu", [40], 1, 1, 32, 0, 1
        configs, peer = SMOKE, sdpa_causal(None)
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, warmup, rep = "cuda", args.T, args.B, args.H, args.D, 5, 50
        configs, peer = {k: _configs(g) for k, g in GRIDS.items()}, sdpa_causal("FLASH_ATTENTION")
        print(torch.cuda.get_device_name(), "torch", torch.__version__)
    all_rows: list[dict[str, Any]] = []
    gen = torch.Generator(device=device).manual_seed(0)
    for T in Ts:
        q, k, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
                   for _ in range(3))
        do = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen)
        g = fa._Geometry(q, k, v, True, D**-0.5, None, 0, None)
        fixed = {"fwd": g.config("fwd", dtype), "dkdv": g.config("bwd", dtype), "dq": g.config("dq", dtype)}
        rows: list[dict[str, Any]] = []
        for kernel in args.kernels:
            swept = _sweep(kernel, configs[kernel], {n: c for n, c in fixed.items()}, (q, k, v), do, device,
                           warmup, rep)
            rows += swept
            fixed[kernel] = next((_parse(r["config"]) for r in swept if "ms" in r), fixed[kernel])
        for mode in sorted({_MODE[kn] for kn in args.kernels}):
            peer_ms = bench_ms(mode_caller(peer, mode, (q, k, v), (q, k, v), do), device=device, warmup=warmup,
                               rep=rep)
            for r in rows:
                if r["mode"] == mode and "ms" in r:
                    r["vs_sdpa"] = peer_ms / r["ms"]
            rows.append({"kernel": "-", "mode": mode, "config": "sdpa flash backend" if not args.smoke else "sdpa",
                         "ms": peer_ms, "vs_sdpa": 1.0})
        for r in rows:
            r["shape"] = f"T={T}"
        print(f"\nB={B} H={H} T={T} D={D} {args.dtype} causal; winners: "
              + ", ".join(f"{kn} {_label(c)}" for kn, c in fixed.items()))
        print(fmt_table(rows, [("kernel", "kernel", "s"), ("mode", "mode", "s"), ("config", "config", "s"),
                               ("default", "default", "s"), ("ms", "ms", ".3f"),
                               ("vs_default", "speedup vs default", ".2f"), ("vs_sdpa", "speedup vs sdpa", ".2f"),
                               ("diff", "max|out-default|", ".1e"), ("note", "note", "s")]))
        all_rows += rows
    return all_rows


def _parse(label: str) -> dict[str, int]:
    """Inverse of :func:`_label`."""
    tiles, w, s, *tma = label.split()
    bm, bn = tiles.split("x")
    return {"BLOCK_M": int(bm), "BLOCK_N": int(bn), "num_warps": int(w[1:]), "num_stages": int(s[1:]),
            "TMA": int(bool(tma))}


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
