"""Benchmark: our Triton MLA decode (``fast.mla.decode``: split-KV attention over the shared latent cache, W_UK
absorbed into the query and W_UV applied to the output) against torch SDPA on the materialised per-head K/V (the
MHA-form cache of the same layer) and the eager absorbed formula (``fast.mla.naive``).

``python benchmarks/mla.py`` (GPU) prints, for DeepSeek-V2 widths (H = 128 heads, d_c = 512, d_r = 64, d_nope = d_v =
128, scale 1/sqrt(192)), B = 8 sequences, T = 1 query token, at S = 1K, 4K, 16K cached tokens, forward only:
milliseconds, "speedup of ours" (the row's time over ours; > 1: we are faster), effective GB/s over the latent cache
(B S 576 elements read once: the minimum traffic of the absorbed form; SDPA reads H (192 + 128) = 40960 elements a
token) and the fraction of the copy bandwidth measured in the same process.  Every row returns the per-head output
o [B, H, T, d_v]; ``diff`` is its max difference from ours.  ``--smoke`` runs a tiny CPU shape (Triton interpreter)
so tests can call it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _roofline import LEAD_COLUMNS, Bench, Case, Impl, add_bench_args, main_of, measure_ceilings


def _ours(x: dict[str, Any]) -> torch.Tensor:
    from veriformer.fast.mla.decode import mla_decode

    q_hat = torch.cat([torch.einsum("bhtn,hcn->bthc", x["q_nope"], x["w_uk"]), x["q_rope"].transpose(1, 2)], -1)
    o_lat = mla_decode(q_hat, x["cache"], head_dim_v=x["d_c"], scale=x["scale"], causal=True, return_lse=False)
    return torch.einsum("bthc,hcv->bhtv", o_lat, x["w_uv"])


def _eager_absorbed(x: dict[str, Any]) -> torch.Tensor:
    from veriformer.fast.mla.naive import mla_decode

    q_hat = torch.cat([torch.einsum("bhtn,hcn->bthc", x["q_nope"], x["w_uk"]), x["q_rope"].transpose(1, 2)], -1)
    o_lat = mla_decode(q_hat, x["cache"], head_dim_v=x["d_c"], scale=x["scale"], causal=True)
    return torch.einsum("bthc,hcv->bhtv", o_lat, x["w_uv"])


def _sdpa(x: dict[str, Any]) -> torch.Tensor:
    q = torch.cat([x["q_nope"], x["q_rope"]], -1)
    return torch.nn.functional.scaled_dot_product_attention(q, x["k"], x["v"], attn_mask=x["mask"], scale=x["scale"])


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the benchmark, print the rows as they are measured; returns the rows."""
    from veriformer.fast.mla.naive import materialise_kv
    from veriformer.reference.attention import visibility_mask

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (Triton interpreter)")
    ap.add_argument("--S", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--T", type=int, default=1)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--d-c", type=int, default=512)
    ap.add_argument("--d-r", type=int, default=64)
    ap.add_argument("--d-nope", type=int, default=128)
    ap.add_argument("--d-v", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"])
    add_bench_args(ap)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.smoke:
        device, Ss, B, T, H, d_c, d_r, d_nope, d_v, reps = "cpu", [40], 1, 1, 4, 32, 16, 16, 16, 1
    else:
        if not torch.cuda.is_available():
            ap.error("needs a CUDA device (use --smoke for the CPU check)")
        device, Ss, B, T, H, reps = "cuda", args.S, args.B, args.T, args.H, 50
        d_c, d_r, d_nope, d_v = args.d_c, args.d_r, args.d_nope, args.d_v
    bench = Bench.from_args(args, device=device, warmup=1 if args.smoke else 5, rep=reps, name="mla")
    ceil = measure_ceilings(device, smoke=args.smoke)
    bench.out(repr(ceil))
    impls = [Impl("triton mla_decode (ours)", _ours), Impl("SDPA on materialised K/V", _sdpa),
             Impl("eager absorbed (naive)", _eager_absorbed)]
    gen = torch.Generator(device=device).manual_seed(0)
    cases = []
    for S in Ss:
        def rnd(*shape: int, s: float = 1.0) -> torch.Tensor:
            return (torch.randn(*shape, device=device, generator=gen) * s).to(dtype)

        c, k_rope = rnd(B, S, d_c), rnd(B, S, d_r)
        w_uk, w_uv = rnd(H, d_c, d_nope, s=d_c**-0.5), rnd(H, d_c, d_v, s=d_c**-0.5)
        k, v = materialise_kv(c, k_rope, w_uk, w_uv)
        vis = torch.from_numpy(visibility_mask(T, S, causal=True)).to(device)
        # the RoPE parts are taken as already rotated (the rotation is the same work in every row)
        x = {"q_nope": rnd(B, H, T, d_nope), "q_rope": rnd(B, H, T, d_r),
             "cache": torch.cat([c, k_rope], -1)[:, :, None], "w_uk": w_uk, "w_uv": w_uv, "k": k, "v": v,
             "mask": None if T == 1 else vis, "d_c": d_c,
             "scale": (d_nope + d_r) ** -0.5}
        nbytes = B * S * (d_c + d_r) * c.element_size()

        def extra(mode: str, ms: float, nbytes: int = nbytes) -> dict[str, float]:
            gbps = nbytes / (ms * 1e-3) / 1e9
            return {"gbps": gbps, "frac": gbps / ceil.copy_gbps}

        cases.append(Case(f"B{B} T{T} H{H} S{S} d_c{d_c}+{d_r}", (x,), (), None, extra, S))
    bench.table([*LEAD_COLUMNS, ("gbps", "latent GB/s", ".1f"), ("frac", "of copy", ".2f"),
                 ("diff", "max|o-ours|", ".1e")], [c.shape for c in cases], [i.name for i in impls])
    return bench.run(impls, cases, ["fwd"], output=lambda r: r)


main = main_of(run)


if __name__ == "__main__":
    raise SystemExit(main())
