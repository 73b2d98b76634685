"""Benchmark: our Triton SSD chunked scan (``veriformer.fast.ssm.ssd.chunk_scan``) against mamba-ssm's
``mamba_chunk_scan_combined`` and a plain-torch sequential scan.

``python benchmarks/ssm.py`` (GPU) prints, for x [B=4, T, H=32, P=64] bfloat16, dt [B, T, H] float32 (softplus
of a normal, as in Mamba-2), A [H] float32, B/C [B, T, G=1, N=128] bfloat16, chunk 256, T in 4K and 16K, forward
and forward+backward (gradients of x, dt, A, B, C):

* ``triton_ssd (ours)``;
* ``mamba_chunk_scan_combined`` when ``mamba_ssm`` is importable, else a row marked "not installed";
* ``torch sequential scan``: ``H_t = e^{dt_t A} H_{t-1} + dt_t x_t B_t^T``, ``y_t = H_t C_t`` in float32, one
  step per token (a Python loop of batched torch ops).  It is *measured on the first --seq-T tokens only*
  (default 1024; its autograd graph keeps a [B, H, P, N] state per step) and its time *extrapolated linearly*
  to T (the loop is exactly linear in T); the row's note says so, and its ``max|y-ours|`` is on that
  prefix (causal, so our output's prefix is the same computation).

Floors from ``_roofline`` measured in the same process: the minimum bytes (forward: read x, dt, B, C, write y;
backward adds read dy, x, dt, B, C and write dx, ddt, dB, dC; states and every intermediate excluded) over the
copy bandwidth, and the minimum FLOPs over the bf16 matmul rate.  FLOPs (the SSD algorithm's, causal halves
counted once): per head and chunk of Q tokens ``Q^2 N / (H/G)`` (C B^T, shared by the group) ``+ Q^2 P``
(masked (C B^T) X) ``+ 4 Q P N`` (chunk state and state-to-output); backward counted as 2x the forward.
Columns: ``speedup of ours`` = peer ms / ours ms (> 1: we are faster), TFLOP/s and its fraction of the
matmul rate, ``x floor`` = ms / max(byte floor, FLOP floor).  ``--smoke`` runs a tiny CPU shape (Triton
interpreter) so tests can call it; ``run(argv)`` returns the rows.  After the scan table the script prints
``benchmarks/ssm_conv.py``'s tables (FFT long convolution vs the recurrence and a dense conv1d; S4D kernel
generation) from the same process; ``--no-conv`` skips them.

Rows stream as measured (:class:`_roofline.Bench`), ours at every T first, then mamba (its Triton kernels
autotune on their first call: the ``compile s`` column), then the sequential scan; the first calls and timings
are bounded by ``--call-timeout`` and the script by ``--budget``.  (The 2026-12-04 H200 run saw no SSD row in
75 s at T 4K + 16K: the table was printed only after every row, and the convolution tables ran after it.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Ceilings, Impl, add_bench_args, main_of, measure_ceilings, prefix_case

Scan = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_COLUMNS = [*LEAD_COLUMNS, ("tflops", "TFLOP/s", ".1f"), ("frac", "of matmul", ".2f"),
            ("floor_ms", "floor ms", ".3f"), ("x_floor", "x floor", ".1f"), ("diff", "max|y-ours|", ".1e")]


def _ours(chunk: int) -> Scan:
    from veriformer.fast.ssm.ssd import chunk_scan

    def run(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        return chunk_scan(x, dt, A, B, C, chunk)  # type: ignore[return-value]

    return run


def _mamba(chunk: int) -> Scan:
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined  # type: ignore[import-not-found]

    def run(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        return mamba_chunk_scan_combined(x, dt, A, B, C, chunk)

    return run


def sequential_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                    C: torch.Tensor) -> torch.Tensor:
    """The recurrence one token at a time in float32 (groups expanded): the plain-torch baseline."""
    b, T, H, P = x.shape
    rep = H // B.shape[2]
    Bh = B.float().repeat_interleave(rep, dim=2)
    Ch = C.float().repeat_interleave(rep, dim=2)
    xf, dtf = x.float(), dt.float()
    dec = torch.exp(dtf * A.float())  # [b, T, H]
    state = x.new_zeros((b, H, P, Bh.shape[-1]), dtype=torch.float32)
    ys = []
    for t in range(T):
        state = dec[:, t, :, None, None] * state + (dtf[:, t, :, None] * xf[:, t])[..., None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]))
    return torch.stack(ys, dim=1).to(x.dtype)


def _flops(b: int, T: int, H: int, G: int, P: int, N: int, Q: int, mode: str) -> float:
    nc = -(-T // Q)
    fwd = b * H * nc * (Q * Q * N / (H // G) + Q * Q * P + 4.0 * Q * P * N)
    return fwd if mode == "fwd" else 3.0 * fwd


def _bytes(b: int, T: int, H: int, G: int, P: int, N: int, esize: int, mode: str) -> float:
    fwd = b * T * (2 * H * P * esize + H * 4 + 2 * G * N * esize)  # x, y, dt (fp32), B, C
    bwd = b * T * (3 * H * P * esize + 2 * H * 4 + 4 * G * N * esize)  # dy, x, dx; dt, ddt; B, C, dB, dC
    return fwd if mode == "fwd" else fwd + bwd


def _inputs(b: int, T: int, H: int, G: int, P: int, N: int, dtype: torch.dtype, device: str,
            seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(b, T, H, P, generator=gen).to(device, dtype)
    dt = F.softplus(torch.randn(b, T, H, generator=gen) - 3.0).to(device)
    A = -torch.rand(H, generator=gen).mul(15.0).add(1.0).to(device)
    Bm = (torch.randn(b, T, G, N, generator=gen) / N**0.5).to(device, dtype)
    Cm = (torch.randn(b, T, G, N, generator=gen) / N**0.5).to(device, dtype)
    return tuple(t.requires_grad_() for t in (x, dt, A, Bm, Cm))


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--T", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=32)
    ap.add_argument("--P", type=int, default=64)
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--G", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16"])
    ap.add_argument("--seq-T", type=int, default=1024, help="tokens the sequential scan is measured on")
    ap.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ts, b, H, G, P, N, Q, reps, seq_T = "cpu", [24], 1, 2, 1, 16, 16, 16, 1, 8
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ts, b, H, G, P, N, Q, reps, seq_T = ("cuda", args.T, args.B, args.H, args.G, args.P, args.N,
                                                      args.chunk, 100, args.seq_T)
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="ssm")
    ceil: Ceilings = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton_ssd (ours)", _ours(Q))]
    try:
        impls.append(Impl("mamba_chunk_scan_combined", _mamba(Q)))
    except Exception as exc:  # mamba_ssm (or its CUDA build) absent
        bench.out(f"mamba_ssm unavailable: {type(exc).__name__}: {str(exc)[:80]}")
        impls.append(Impl("mamba_chunk_scan_combined", None))
    impls.append(Impl("torch sequential scan", sequential_scan, max_len=seq_T, extrapolate=True))
    esize = torch.finfo(dtype).bits // 8
    cases = []
    for T in Ts:
        inputs = _inputs(b, T, H, G, P, N, dtype, device)
        dy = torch.randn_like(inputs[0])

        def extra(mode: str, ms: float, T: int = T) -> dict[str, float]:
            fl = _flops(b, T, H, G, P, N, Q, mode)
            floor_ms = max(_bytes(b, T, H, G, P, N, esize, mode) / (ceil.copy_gbps * 1e9),
                           fl / (ceil.matmul_tflops * 1e12)) * 1e3
            tf = fl / (ms * 1e-3) / 1e12
            return {"tflops": tf, "frac": tf / ceil.matmul_tflops, "floor_ms": floor_ms, "x_floor": ms / floor_ms}

        case = Case(f"B{b} T{T} H{H} P{P} N{N} G{G} Q{Q}", inputs, inputs, dy, extra, T,
                    cut=lambda y, n: y[:, :n])
        case.prefix = prefix_case(case, lambda t: 1 if t.dim() > 1 else None)
        cases.append(case)
    bench.table(_COLUMNS, [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, args.modes)


def main(argv: list[str] | None = None) -> int:
    """The scan benchmark, then (unless ``--no-conv``) the FFT convolution / S4D kernel tables of
    ``benchmarks/ssm_conv.py`` in the same process (``--smoke``, ``--modes``, ``--call-timeout``, ``--deadline``
    apply to both; ``--budget`` counts from the process start)."""
    args = list(sys.argv[1:] if argv is None else argv)
    conv = "--no-conv" not in args
    args = [a for a in args if a != "--no-conv"]
    status = main_of(run)(args)
    if conv and status == 0:
        import ssm_conv

        shared = argparse.ArgumentParser(add_help=False)
        shared.add_argument("--smoke", action="store_true")
        shared.add_argument("--modes", nargs="+")
        add_bench_args(shared)
        known, _ = shared.parse_known_args(args)
        conv_args = ["--smoke"] * known.smoke + (["--modes", *known.modes] if known.modes else []) + [
            "--call-timeout", str(known.call_timeout), "--budget", str(known.budget), "--deadline", str(known.deadline)]
        print()
        status = ssm_conv.main(conv_args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
