"""Laws of multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1; Su kexue.fm/archives/10091)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.fast.mla import naive
from veriformer.fast.rope import naive as naive_rope
from veriformer.properties.mla.strategies import (
    KvConfig,
    MlaCase,
    MlaDecodeCase,
    kv_configs,
    mla_cases,
    mla_decode_cases,
)
from veriformer.registry import law

SRC = "DeepSeek-AI 2024, DeepSeek-V2 (arXiv 2405.04434) section 2.1; Su kexue.fm/archives/10091"
# measured minima and maxima behind the stated bounds: /tmp/notes/mla.md (the lead's findings)
HEAD_ROPE_MIN = 1e-5  # RoPE on the per-head keys: smallest max|train - absorbed| over 400 cases 8.8e-4 (S >= 3)
LATENT_SHIFT_MIN = 1e-5  # RoPE on the latent: smallest max|o(pos + c) - o(pos)| over ~300 cases 5.7e-4
BF16_K = 4.0  # bf16 absorbed form: rel RMS error <= K 2^-8 (1 + L); largest measured ratio 1.11 over 500 cases


def _mla(case: MlaCase) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    a = case.arrays()
    args = {k: a[k] for k in ("c", "q_nope", "q_rope", "k_rope", "w_uk", "w_uv")}
    return a, {**args, "base": case.base}


def _terms(case: MlaCase) -> float:
    """Rounding budget: RoPE angles up to S (u S each), dot products of d_c + d_nope + d_r terms at logit size
    amp^2, softmax over S keys and the up-projections (d_c terms)."""
    return 8.0 * (case.d_c + case.d_nope + case.d_r + 4 * case.S) * max(1.0, case.amp**2)


@law("mla.kv_cache_elements", family="mla", source=SRC + " (Table 1); Ainslie et al. 2023 (GQA)")
def kv_cache_elements(ref: Any, cfg: KvConfig = kv_configs()) -> list[Agreement]:
    """KV-cache elements per token and layer: MHA h (d_k + d_v), MQA d_k + d_v, GQA g (d_k + d_v) (g = h is MHA, g = 1
    is MQA), MLA d_c + d_r whatever the head count; DeepSeek-V2 (h = 128, d_k = d_v = 128, d_c = 512, d_r = 64): MLA
    576 against MHA 32768, equal to GQA with 2.25 groups; Llama-2-7B (MHA 32 x 128) 8192; Llama-2-70B (GQA 8) 2048."""
    kw = {"heads": cfg.heads, "d_k": cfg.d_k, "d_v": cfg.d_v}
    w = cfg.d_k + cfg.d_v
    got = [ref.kv_cache_elements("mha", **kw), ref.kv_cache_elements("mqa", **kw),
           ref.kv_cache_elements("gqa", groups=cfg.groups, **kw), ref.kv_cache_elements("gqa", groups=cfg.heads, **kw),
           ref.kv_cache_elements("gqa", groups=1, **kw), ref.kv_cache_elements("mla", d_c=cfg.d_c, d_r=cfg.d_r, **kw)]
    want = [cfg.heads * w, w, cfg.groups * w, cfg.heads * w, w, cfg.d_c + cfg.d_r]
    ds = {"heads": 128, "d_k": 128, "d_v": 128}
    ds_got = [ref.kv_cache_elements("mla", d_c=512, d_r=64, **ds), ref.kv_cache_elements("mha", **ds),
              ref.kv_cache_elements("gqa", groups=2.25, **ds),
              ref.kv_cache_elements("mha", heads=32, d_k=128, d_v=128),
              ref.kv_cache_elements("gqa", groups=8, heads=64, d_k=128, d_v=128)]
    return [Agreement(np.array(got), np.array(want, float), "cache sizes per scheme", atol=0.0,
                      tolerance="law.defined"),
            Agreement(np.array(ds_got), np.array([576.0, 32768.0, 576.0, 8192.0, 2048.0]),
                      "DeepSeek-V2 576 / 32768 / GQA 2.25 groups; Llama-2 7B 8192, 70B 2048", atol=0.0,
                      tolerance="law.defined")]


@law("mla.train_equals_absorbed", family="mla", source=SRC + " (section 2.1.2, absorbed W_UK / W_UV)")
def train_equals_absorbed(ref: Any, case: MlaCase = mla_cases()) -> list[Agreement]:
    """The training form (per-head K/V up-projected from the latent, decoupled RoPE key shared by all heads, scale
    1/sqrt(d_nope + d_r)) equals the absorbed decode form (W_UK absorbed into the query, attention over the shared
    latent plus the RoPE key through mla_decode, W_UV applied to the output), also with W_O absorbed."""
    a, kw = _mla(case)
    t = _terms(case)
    train = ref.mla_train(**kw)
    # the absorbed inputs by hand, through the decode op's oracle (FlashMLA layouts)
    pk, pq = np.arange(case.S), np.arange(case.T) + case.S - case.T
    q_hat = np.concatenate([np.einsum("bhtn,hcn->bthc", a["q_nope"], a["w_uk"]),
                            np.swapaxes(ref.rope(a["q_rope"], pq, base=case.base), 1, 2)], axis=-1)
    kv = np.concatenate([a["c"], ref.rope(a["k_rope"], pk, base=case.base)], axis=-1)[:, :, None]
    o_lat = ref.mla_decode(q_hat, kv, head_dim_v=case.d_c, scale=(case.d_nope + case.d_r) ** -0.5)
    by_op = np.einsum("bthc,hcv->bhtv", o_lat, a["w_uv"])
    return [Agreement(ref.mla_absorbed(**kw), train, "absorbed == training form", terms=t),
            Agreement(by_op, train, "mla_decode(q W_UK^T | R q_r, [c | R k_r]) W_UV == training form", terms=t),
            Agreement(ref.mla_absorbed(**kw, w_o=a["w_o"]), ref.mla_train(**kw, w_o=a["w_o"]),
                      "absorbed (W_UV W_O merged) == training form @ W_O", terms=t * (1 + case.H))]


@law("mla.rope_on_latent_breaks_absorption", family="mla", source=SRC + " (section 2.1.3, decoupled RoPE)")
def rope_breaks_absorption(ref: Any, case: MlaCase = mla_cases(min_T=1).filter(lambda c: c.S >= 3),
                           shift: int = st.sampled_from((1, 7, 1000))) -> list[Any]:
    """Negative law: RoPE on the up-projected per-head keys (R_i c W_UK, the plain-RoPE design) cannot be absorbed:
    the absorbed form over the un-rotated latent differs from it (smallest max difference measured over 400 cases
    8.8e-4, claimed >= 1e-5); RoPE on the latent itself (R_i c before both up-projections) is absorbable but
    positional: shifting every position by the same amount changes the output (smallest measured 5.7e-4, claimed
    >= 1e-5), while the decoupled design is shift-invariant (to rounding)."""
    _, kw = _mla(case)
    head = ref.mla_train(**kw, nope_rope="head")
    d_head = float(np.abs(head - ref.mla_absorbed(**kw)).max())
    claims: list[Any] = [Bound(HEAD_ROPE_MIN, d_head, f"RoPE on the head keys: max|train - absorbed| = {d_head:.3g}")]
    if case.d_c % 2 == 0:
        lat0 = ref.mla_train(**kw, nope_rope="latent")
        d_lat = float(np.abs(ref.mla_train(**kw, nope_rope="latent", offset=shift) - lat0).max())
        claims.append(Bound(LATENT_SHIFT_MIN, d_lat, f"RoPE on the latent: max|o(pos + c) - o(pos)| = {d_lat:.3g}"))
    claims.append(Agreement(ref.mla_train(**kw, offset=shift), ref.mla_train(**kw), "decoupled RoPE: shift-invariant",
                            terms=_terms(case) + 8 * shift))
    return claims


def _bf16(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).to(torch.bfloat16)


@law("mla.absorbed_bf16_precision", family="mla", source=SRC + "; Su kexue.fm/archives/10091 (precision)")
def absorbed_bf16(ref: Any,
                  case: MlaCase = mla_cases().filter(lambda c: c.d_c >= 16 and c.d_v >= 4)) -> Agreement:
    """The absorbed form computed in bf16 as a plain-torch decode would (q_nope W_UK^T rounded to bf16, the RoPE parts
    rotated in bf16, logits and softmax in bf16, o W_UV in bf16) stays within a relative RMS error of
    4 * 2^-8 * (1 + L) of the float64 training form on the same bf16-rounded inputs (L = max |logit|: a logit of size
    L rounded to bf16 moves its weight by ~2^-8 L).  Measured: the ratio error / (2^-8 (1 + L)) is at most 1.11 over
    500 cases (median 0.19).  Tiny heads (d_c < 16 or d_v < 4) are left out: a 1-element output that cancels has an
    unbounded relative error (measured 0.098 at d_c = 2, d_v = 1)."""
    a, _ = _mla(case)
    r = {k: _bf16(v) for k, v in a.items()}
    gold_in = {k: v.double().numpy() for k, v in r.items() if k != "w_o"}
    gold = ref.mla_train(**gold_in, base=case.base)
    pk = torch.arange(case.S)
    pq = torch.arange(case.T) + case.S - case.T
    q_lat = torch.einsum("bhtn,hcn->bthc", r["q_nope"], r["w_uk"])
    q_r = naive_rope.rope(r["q_rope"], pq, base=case.base).transpose(1, 2)
    kv = torch.cat([r["c"], naive_rope.rope(r["k_rope"][:, None], pk, base=case.base)[:, 0]], dim=-1)[:, :, None]
    o_lat = naive.mla_decode(torch.cat([q_lat, q_r], -1), kv, head_dim_v=case.d_c,
                             scale=(case.d_nope + case.d_r) ** -0.5)
    o = torch.einsum("bthc,hcv->bhtv", o_lat, r["w_uv"]).double().numpy()
    err = float(np.sqrt(np.sum((o - gold) ** 2)))
    norm = float(np.sqrt(np.sum(gold**2)))
    s = np.einsum("bhtn,hcn,bsc->bhts", gold_in["q_nope"], gold_in["w_uk"], gold_in["c"])
    s_r = np.einsum("bhtr,bsr->bhts", gold_in["q_rope"], gold_in["k_rope"])
    L = float(np.abs(s).max() + np.abs(s_r).max()) * (case.d_nope + case.d_r) ** -0.5
    return Agreement(np.array([err]), np.array([0.0]), f"bf16 absorbed: ||o - gold|| / ||gold|| = {err / norm:.3g}",
                     atol=BF16_K * 2.0**-8 * (1 + L) * norm, tolerance="law.defined")


@law("mla.decode_split_kv_merge", family="mla", source="Milakov & Gimelshein 2018; Dao et al. 2023 (Flash-Decoding); "
     "deepseek-ai/FlashMLA (split-KV combine)")
def split_kv_merge(ref: Any, case: MlaDecodeCase = mla_decode_cases(max_S=40),
                   splits: int = st.integers(2, 5)) -> list[Agreement]:
    """mla_decode over the whole cache equals mla_decode on each of ``splits`` key ranges merged by their
    log-sum-exps (merge_attention_states, section 3 of the spec: M = max lse_i, weights exp(lse_i - M)), also with
    logits scaled to ~800, where exp(lse) overflows float64 without the max, and with ranges whose keys are all
    invisible to a causal query (lse -inf)."""
    a = case.arrays()
    out = []
    for boost in (1.0, None):
        q = a["q"]
        if boost is None:
            s = np.einsum("bthd,bsd->bhts", q, a["kv"][:, :, 0]) * case.scale
            q = q * (800.0 / max(float(np.abs(s).max()), 1e-300))
        o, lse = ref.mla_decode(q, a["kv"], head_dim_v=case.d_c, scale=case.scale, return_lse=True)
        bounds = np.linspace(0, case.S, splits + 1).round().astype(int)
        mo, ml = None, None
        for lo, hi in itertools.pairwise(bounds):
            if hi <= lo:
                continue
            # the part's keys keep their end-aligned positions: mask by hand (the part alone is not end-aligned)
            vis = np.arange(lo, hi)[None, :] <= (np.arange(case.T) + case.S - case.T)[:, None]
            part_q = np.swapaxes(q, 1, 2)
            k = np.swapaxes(a["kv"][:, lo:hi], 1, 2)
            po, pl = ref.softmax_attention(part_q, k, k[..., :case.d_c], scale=case.scale, mask=vis[None, None],
                                           return_lse=True)
            po = np.swapaxes(po, 1, 2)
            if mo is None:
                mo, ml = po, pl
            else:
                mo2, ml = ref.merge_attention_states(np.swapaxes(mo, 1, 2), ml, np.swapaxes(po, 1, 2), pl)
                mo = np.swapaxes(mo2, 1, 2)
        L = 800.0 if boost is None else float(np.abs(case.amp) ** 2 * 10 + 10)
        t = 8 * (case.S + case.d_c + case.d_r + splits * L)
        what = "logits ~800" if boost is None else "unit logits"
        out += [Agreement(mo, o, f"merged splits == whole cache ({what})", terms=t),
                Agreement(ml, lse, f"merged lse == lse ({what})", terms=t)]
    return out
