"""Benchmark: our Triton chunked linear attention against fla's ``chunk_simple_gla`` / ``chunk_lightning_attn``,
our plain-torch chunked form and SDPA flash causal softmax attention.

``python benchmarks/linear_attention.py`` (GPU) prints, for q, k, v [B=4, T, H=16, D=128] bfloat16 at T = 4K and
16K (``--T``), forward and forward+backward, two groups:

* ``gate``: per-token log-gates g [B, T, H] (float32): ``chunk_linear_attention`` (ours) vs fla
  ``chunk_simple_gla``, ``naive_linear_attention.linear_attention_chunked`` (ours, plain torch, chunk 64) and
  SDPA flash causal (a different op, the softmax cost it replaces; its ``max|o-ours|`` is not a check);
* ``lightning``: per-head decay: ``lightning_attention`` (ours) vs fla ``chunk_lightning_attn`` (layer 0 of 2,
  whose slopes are the ALiBi slopes times 1 + 1e-5; ours gets the same slopes).

Columns: milliseconds, ``speedup of ours`` (the row's time over ours: > 1 means ours is faster), effective
GB/s over the minimum traffic and its fraction of the copy bandwidth measured in the same process
(:mod:`_roofline`), ``compile s`` (the first call: compilation and autotuning).  Minimum traffic: forward reads
q, k, v and writes o (4 tensors of B T H D); forward + backward adds reading q, k, v, dO and writing dq, dk, dv
(11 tensors in all); gates and states are ignored.  fla is imported only if installed (``pip install
flash-linear-attention``; package ``fla``); otherwise its rows say "not installed".

Order and bounds (the 2026-12-04 H200 run printed no row in 75 s: every row waited for the end of the script,
behind the compilation of both groups' kernels and fla's autotuning): rows stream as measured, in the order
ours (gate), SDPA flash, the torch chunked form, fla ``chunk_simple_gla``, ours (lightning), fla
``chunk_lightning_attn``, each at every T before the next; every first call and timing is bounded by
``--call-timeout`` (a ``timeout`` row, that peer is then skipped in that mode) and the script by ``--budget``.
fla refuses ``chunk_simple_gla`` forward+backward on Hopper with Triton >= 3.4, < 3.7.1 (its gated
``chunk_bwd_dqkwg``, fla #640; the GPU image has Triton 3.6): there it runs forward only and the
forward+backward row says so.  ``--smoke`` runs a tiny float32 CPU shape (Triton interpreter).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers import sdpa_causal
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings

Fn = Callable[..., torch.Tensor]


def _ours_gate() -> Fn:
    from veriformer.fast.linear_attention.chunked import chunk_linear_attention

    return lambda q, k, v, g: chunk_linear_attention(q, k, v, g=g)[0]


def _ours_lightning(slope: torch.Tensor) -> Fn:
    from veriformer.fast.linear_attention.chunked import lightning_attention

    return lambda q, k, v, g: lightning_attention(q, k, v, slope=slope)[0]


def _torch_chunked() -> Fn:
    from veriformer.fast.linear_attention.naive import linear_attention_chunked

    return lambda q, k, v, g: linear_attention_chunked(q, k, v, g=g, chunk_size=64)[0]


class _TouchGate(torch.autograd.Function):
    """Identity on o that hands g a zero gradient, so the softmax peer runs under the same ``autograd.grad``
    call (w.r.t. q, k, v, g) as the gated kernels; costs one [B, T, H] zero fill."""

    @staticmethod
    def forward(ctx: Any, o: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        ctx.g_meta = (g.shape, g.dtype, g.device)
        return o.view_as(o)

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape, dtype, device = ctx.g_meta
        return do, torch.zeros(shape, dtype=dtype, device=device)


def _sdpa_flash(device: str) -> Fn:
    sdpa = sdpa_causal("FLASH_ATTENTION" if device == "cuda" else None)

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        qh, kh, vh = (x.transpose(1, 2) for x in (q, k, v))  # [B, H, T, D] views
        return _TouchGate.apply(sdpa(qh, kh, vh).transpose(1, 2), g)

    return run


def _fla_gate() -> Fn:
    from fla.ops.simple_gla import chunk_simple_gla

    return lambda q, k, v, g: chunk_simple_gla(q, k, v, g=g)[0]


def _fla_lightning() -> Fn:
    from fla.ops.lightning_attn import chunk_lightning_attn

    return lambda q, k, v, g: chunk_lightning_attn(q, k, v, layer_idx=0, num_layers=2)[0]


def fla_gated_backward_refused() -> str | None:
    """The note for fla ``chunk_simple_gla``'s forward+backward where fla refuses it (its own condition: a Hopper
    GPU, Triton >= 3.4.0 and < 3.7.1, no tilelang backend), else None."""
    try:
        from fla import utils as fu
    except ImportError:
        return None
    hopper = bool(getattr(fu, "IS_NVIDIA_HOPPER", False))
    bad_triton = bool(getattr(fu, "TRITON_ABOVE_3_4_0", False)) and not getattr(fu, "TRITON_ABOVE_3_7_1", True)
    if hopper and bad_triton and importlib.util.find_spec("tilelang") is None:
        return ("forward only: fla refuses chunk_simple_gla fwd+bwd on Hopper with Triton >= 3.4, < 3.7.1 "
                "(gated chunk_bwd_dqkwg, fla #640)")
    return None


def _lightning_slopes(H: int, device: str) -> torch.Tensor:
    """fla chunk_lightning_attn's decay rates at layer 0 of 2: ALiBi slopes 2^(-8(h+1)/H) x (1 + 1e-5)."""
    h = torch.arange(H, dtype=torch.float64)
    return (torch.pow(2.0, -8.0 * (h + 1) / H) * (1 + 1e-5)).to(device, torch.float32)


def _make(name: str, make: Callable[[], Fn], **kw: Any) -> Impl:
    try:
        return Impl(name, make(), **kw)
    except ImportError as exc:  # fla not installed
        print(f"{name}: not installed ({exc})", flush=True)
        return Impl(name, None)


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16"])
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    ap.add_argument("--groups", nargs="+", default=["gate", "lightning"], choices=["gate", "lightning"])
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, reps = "cpu", [32], 1, 2, 16, 1
        dtype = torch.float32  # the max|o-ours| sanity column then checks to float32 rounding
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, reps = "cuda", args.T, args.B, args.H, args.D, 100
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="linear_attention")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    slope = _lightning_slopes(H, device)
    refused = fla_gated_backward_refused() if device == "cuda" else None
    groups = {
        "gate": [Impl("triton chunk (ours)", _ours_gate()),
                 Impl("sdpa flash causal" if device == "cuda" else "sdpa causal (cpu)", _sdpa_flash(device)),
                 Impl("torch chunked (ours, C=64)", _torch_chunked()),
                 _make("fla chunk_simple_gla", _fla_gate, **({"modes": ["fwd"], "mode_note": refused}
                                                            if refused else {}))],
        "lightning": [Impl("triton lightning (ours)", _ours_lightning(slope)),
                      _make("fla chunk_lightning_attn", _fla_lightning)],
    }
    gen = torch.Generator(device=device).manual_seed(0)
    cases: dict[str, list[Case]] = {"gate": [], "lightning": []}
    for T in Ts:
        shape = f"B{B} T{T} H{H} D{D}"
        q, k, v = (torch.randn(B, T, H, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
                   for _ in range(3))
        g = (-0.1 * torch.rand(B, T, H, device=device, generator=gen)).requires_grad_(True)
        do = torch.randn(B, T, H, D, device=device, dtype=dtype, generator=gen)
        elt = q.element_size()

        def extra(mode: str, ms: float, T: int = T, elt: int = elt) -> dict[str, float]:
            nbytes = (4 if mode == "fwd" else 11) * B * T * H * D * elt
            gbps = nbytes / (ms * 1e-3) / 1e9
            return {"gbps": gbps, "frac": gbps / ceil.copy_gbps}

        cases["gate"].append(Case(shape, (q, k, v, g), (q, k, v, g), do, extra, T))
        cases["lightning"].append(Case(shape, (q, k, v, g), (q, k, v), do, extra, T))
    bench.table([LEAD_COLUMNS[0], ("group", "group", "s"), *LEAD_COLUMNS[1:], ("gbps", "GB/s", ".1f"),
                 ("frac", "of copy", ".3f"), ("diff", "max|o-ours|", ".1e")],
                [c.shape for c in cases["gate"]], [i.name for grp in groups.values() for i in grp])
    rows: list[dict[str, Any]] = []
    # ours and the cheap peers of the gated group, then fla's (autotuned) kernel; then the lightning group
    for grp in [g for g in ("gate", "lightning") if g in args.groups]:
        rows += bench.run(groups[grp], cases[grp], args.modes, base={"group": grp}, group=grp)
    return rows


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
