"""Benchmark: StreamingLLM attention (attention sinks + sliding window, Xiao et al. 2023, arXiv 2309.17453) with our
Triton flash attention (``veriformer.fast.attention(q, k, v, causal=True, window=r, sinks=s)``) against torch SDPA
with the explicit boolean sinks + window mask, and the decode step against SDPA on a gathered rolling cache.

What is measured.  With keys that keep their stream positions (``positions="original"`` in
``reference/streaming.py``), decoding a stream through a rolling cache of ``s`` sinks and ``r`` recent tokens equals
windowed attention with sinks on the full stream (law ``streaming.original_positions_equal_window_sinks``): query t
sees keys ``j < s`` and ``t - r < j <= t``.  q, k, v are random and taken as already rotated (RoPE at the stream
positions is the same work in every row).  Two tables, side by side in one process:

* prefill (the whole stream at once), q, k, v [B, H, T, D]: ours with ``window=r, sinks=s`` against
  ``scaled_dot_product_attention(q, k, v, attn_mask=M)`` with ``M = visibility_mask(T, T, causal=True, window=r,
  sinks=s)`` moved to the device (torch picks its backend: the flash backend takes no mask; ``--sdpa`` pins
  others); forward, and forward + backward (gradients of q, k, v) with ``--modes fwd fwd+bwd``.  TFLOP/s count
  only the visible (query, key) pairs (``4 D`` flops each forward, x 3.5 for fwd+bwd), against the bf16 matmul rate
  measured in the same process;
* decode (one query at stream position T - 1), forward only: ours with T = 1 against the full stream's keys
  (window/sinks select the ``s + r`` visible ones), against SDPA (and our kernel, no mask) on the rolling cache of
  the ``s + r`` keys gathered from the stream beforehand (``ids = [0..s-1] + [T-r..T-1]``, what a cache holds).
  GB/s count the K and V bytes of the ``s + r`` cached tokens (the minimum traffic), against the copy bandwidth.

``max|o-ours|`` is every row's largest difference from ours at the same shape (within each table).
Defaults (GPU): B 1, H 32, D 128, T in 4096 16384, s 4, r 1024, bfloat16.  ``--smoke`` runs tiny CPU shapes
(Triton interpreter, forward only) so tests can call it.  Rows stream as measured (:class:`_roofline.Bench`);
``--call-timeout`` bounds each first call and timing, ``--budget`` / ``--deadline`` the script, and a final
``## timing streaming:`` line says where the time went.
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

Att = Callable[..., torch.Tensor]
SDPA_CHOICES = ["auto", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"]


def _ours(window: int, sinks: int) -> Att:
    """``fast.attention(q, k, v, causal=True, window=window, sinks=sinks)`` (imported on first use: Triton is
    optional).  Query i sits at key position ``i + S - T`` (end-aligned), so T = 1 is the last stream token."""
    from veriformer.fast.attention.flash import attention

    return functools.partial(attention, causal=True, window=window, sinks=sinks)  # type: ignore[return-value]


def _ours_plain(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Our kernel without a mask: the decode query against the gathered rolling cache."""
    from veriformer.fast.attention.flash import attention

    return attention(q, k, v)  # type: ignore[return-value]


def _sdpa(backend_name: str) -> Att:
    """``scaled_dot_product_attention(q, k, v, attn_mask=mask)`` under ``sdpa_kernel(SDPBackend.<name>)``, or
    torch's own choice (``"auto"``); ``mask`` None: no mask (the gathered cache is all visible)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = None if backend_name == "auto" else getattr(SDPBackend, backend_name)

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if backend is None:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    return run


def visible_pairs(T: int, window: int, sinks: int) -> int:
    """Number of visible (query, key) pairs of causal attention over T tokens with a window of ``window`` keys (the
    current one included) and ``sinks`` sink keys: ``sum_i min(i + 1, r) + min(s, max(0, i - r + 1))``."""
    total = 0
    for i in range(T):
        total += min(i + 1, window) + min(sinks, max(0, i - window + 1))
    return total


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    from veriformer.reference.attention import visibility_mask

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter, forward only)")
    ap.add_argument("--T", type=int, nargs="+", default=[4096, 16384], help="stream lengths")
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--H", type=int, default=32)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--sinks", "-s", type=int, default=4, help="attention sinks s (the first tokens, always kept)")
    ap.add_argument("--recent", "-r", type=int, default=1024, help="window r (recent tokens, the current included)")
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16"])
    ap.add_argument("--modes", nargs="+", default=None, choices=["fwd", "fwd+bwd"],
                    help="prefill modes (default: fwd fwd+bwd on the GPU, fwd with --smoke); decode is fwd only")
    ap.add_argument("--sdpa", nargs="+", default=["auto"], choices=SDPA_CHOICES,
                    help="SDPA backends of the masked peer (auto: torch's choice)")
    ap.add_argument("--math-max-T", type=int, default=8192, help="longest T of the O(T^2)-memory MATH backend")
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, B, H, D, s, r, reps = "cpu", [64], 1, 2, 32, 2, 16, 1
        modes = args.modes or ["fwd"]
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, B, H, D, s, r, reps = "cuda", args.T, args.B, args.H, args.D, args.sinks, args.recent, 100
        modes = args.modes or ["fwd", "fwd+bwd"]
    if s < 0 or r < 1:
        ap.error(f"--sinks must be >= 0 and --recent >= 1 (got s={s}, r={r})")
    if any(T < s + r for T in Ts):
        ap.error(f"every --T must be >= sinks + recent = {s + r} (the cache must have evicted): got {Ts}")
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="streaming")
    ceil = measure_ceilings(device, dtype=dtype, smoke=args.smoke)
    bench.out(repr(ceil))
    gen = torch.Generator(device=device).manual_seed(0)
    ours = _ours(r, s)

    # -- prefill: the whole stream, window + sinks
    impls = [Impl("triton window+sinks (ours)", lambda q, k, v, mask: ours(q, k, v))]  # the mask is for SDPA
    for name in args.sdpa:
        label = "sdpa + sinks/window mask" if name == "auto" else f"sdpa:{name} + mask"
        try:
            fn = _sdpa(name)
        except Exception as exc:  # a backend missing from this torch build
            impls.append(Impl(label, None, unavailable=f"unavailable: {type(exc).__name__}: {exc}"))
            continue
        cap = {"max_len": args.math_max_T,
               "skip_note": f"skipped: O(T^2) torch baseline beyond T={args.math_max_T}"} if name == "MATH" else {}
        impls.append(Impl(label, fn, **cap))  # type: ignore[arg-type]
    cases, dec_cases = [], []
    for T in Ts:
        q, k, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen, requires_grad=True)
                   for _ in range(3))
        do = torch.randn(B, H, T, D, device=device, dtype=dtype, generator=gen)
        mask = torch.from_numpy(visibility_mask(T, T, causal=True, window=r, sinks=s)).to(device)
        pairs = visible_pairs(T, r, s)

        def extra(mode: str, ms: float, pairs: int = pairs) -> dict[str, float]:
            flops = 4.0 * B * H * D * pairs * (1.0 if mode == "fwd" else 3.5)
            tf = flops / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops}

        cases.append(Case(f"B{B} H{H} T{T} D{D} s{s} r{r}", (q, k, v, mask), (q, k, v), do, extra, T))

        # -- decode: the last token's query; the rolling cache gathered from the stream once, outside the timing
        ids = torch.cat([torch.arange(s), torch.arange(T - r, T)]).to(device)
        q1 = q.detach()[:, :, -1:].contiguous()
        kf, vf = k.detach(), v.detach()
        kc, vc = kf.index_select(2, ids).contiguous(), vf.index_select(2, ids).contiguous()
        nbytes = 2 * B * H * (s + r) * D * kc.element_size()

        def dec_extra(mode: str, ms: float, nbytes: int = nbytes) -> dict[str, float]:
            gbps = nbytes / (ms * 1e-3) / 1e9
            return {"gbps": gbps, "frac": gbps / ceil.copy_gbps}

        dec_cases.append(({"full": (q1, kf, vf), "cache": (q1, kc, vc)},
                          f"B{B} H{H} T1 S{T} D{D} s{s} r{r}", dec_extra, T))

    bench.table([*LEAD_COLUMNS, ("tflops", "TFLOP/s", ".1f"), ("frac", "of matmul", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls],
                title=f"## prefill: causal, window r={r} + sinks s={s} on the full stream (visible pairs only)")
    rows = bench.run(impls, cases, modes)

    # each decode row reads its own inputs: ours the full stream, the peers the gathered cache
    def on(key: str, fn: Att) -> Att:
        return lambda x: fn(*x[key])

    sdpa_plain = _sdpa("auto")
    dec_impls = [Impl("triton T=1 window+sinks (ours)", on("full", ours)),
                 Impl("sdpa on rolling cache", on("cache", sdpa_plain)),
                 Impl("triton on rolling cache", on("cache", _ours_plain))]
    dcases = [Case(shape, (x,), (), None, ex, T) for x, shape, ex, T in dec_cases]
    bench.table([*LEAD_COLUMNS, ("gbps", "cache GB/s", ".1f"), ("frac", "of copy", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in dcases], [i.name for i in dec_impls],
                title=f"## decode: one query at position T-1 against s+r={s + r} cached keys (K+V bytes of the cache)")
    rows += bench.run(dec_impls, dcases, ["fwd"], group="decode")
    return rows


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
