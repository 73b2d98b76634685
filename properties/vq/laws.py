"""Laws of Transformer-VQ attention (Lingle 2023, arXiv 2309.16354): the linear-time and block forms
equal dense softmax over the quantised keys, nearest-code assignment with the first index on ties,
codebook-permutation invariance, unused codes, all keys on one code."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.vq.strategies import VQCase, vq_cases
from veriformer.registry import law

FAMILY = "vq"
SRC = "Lingle 2023 (Transformer-VQ); Su kexue.fm/archives/9844"


def vq_terms(case: VQCase, a: dict[str, np.ndarray]) -> float:
    """Rounding budget: T-term sums, D-term logits and 4 |logit| for the exp arguments (a logit rounded
    by u |s| moves its weight by a relative u |s|); logits are bounded via the codebook norms."""
    L = abs(case.scale_value) * float(np.linalg.norm(a["q"], axis=-1).max()) * \
        float(np.linalg.norm(a["codebook"], axis=-1).max())
    return case.T + case.D + case.C + 4 * L + 16


def _o(f: Any, a: dict[str, np.ndarray], **kw: Any) -> np.ndarray:
    return f(a["q"], a["k"], a["v"], a["codebook"], **kw)


@law("vq.linear_form_equals_dense", family=FAMILY, source=SRC + " (key lemma exp(QK_hat^T) = exp(QC^T) Delta^T)")
def linear_equals_dense(ref: Any, case: VQCase = vq_cases()) -> Agreement:
    """softmax(Q K_hat^T) V equals [exp(QC^T)(Delta^T V)] / [exp(QC^T)(Delta^T 1)] (non-causal, one shared
    maximum) and, causally, the token recurrence U_i = U_{i-1} + Delta_i^T v_i over per-code sums and counts."""
    a = case.arrays()
    kw = {"causal": case.causal, "scale": case.scale}
    return Agreement(_o(ref.vq_attention_linear, a, **kw), _o(ref.vq_attention, a, **kw),
                     f"linear form == dense ({'causal' if case.causal else 'non-causal'})", terms=vq_terms(case, a),
                     scale=float(np.abs(a["v"]).max()))


@law("vq.block_form_equals_dense_causal", family=FAMILY, source=SRC + " (block recurrence, compressed cache)")
def block_equals_dense(ref: Any, case: VQCase = vq_cases(), block: int = st.integers(1, 24)) -> Agreement:
    """The causal block form (in-block dense attention to quantised keys + exp(Q C^T) U_{t-1} from the cache
    of earlier blocks) equals dense causal VQ attention for every block length, dividing T or not."""
    a = case.arrays()
    return Agreement(_o(ref.vq_attention_blocks, a, block_size=block, scale=case.scale),
                     _o(ref.vq_attention, a, causal=True, scale=case.scale), f"block form (l={block}) == dense causal",
                     terms=vq_terms(case, a), scale=float(np.abs(a["v"]).max()))


@law("vq.assignment_is_nearest_first_on_ties", family=FAMILY, kind="defined",
     source=SRC + "; numpy.argmin (first occurrence)")
def assignment_nearest(ref: Any, case: VQCase = vq_cases()) -> list[Any]:
    """z_j minimises ||k_j - c_s||^2 (distances from differences, evaluated here independently), and among
    equal distances it is the smallest index; k_hat = C[z] exactly.  Ties are drawn on purpose
    (keys 0 with codes c and -c)."""
    a = case.arrays()
    z, k_hat = ref.vq_quantize(a["k"], a["codebook"])
    cb = np.broadcast_to(a["codebook"], (case.H, case.C, case.D))
    d = ((a["k"][..., None, :] - cb[None, :, None]) ** 2).sum(-1)  # [B, H, T, C]
    dz = np.take_along_axis(d, z[..., None], -1)
    first = np.argmax(d == d.min(-1, keepdims=True), axis=-1)
    rows = cb[np.arange(case.H)[None, :, None], z]
    return [Bound(dz, d.min(-1, keepdims=True), "||k - c_z||^2 <= min_s ||k - c_s||^2"),
            Agreement(z.astype(np.float64), first.astype(np.float64), "z == first index of the minimum", atol=0.0,
                      tolerance="law.defined"),
            Agreement(k_hat, rows, "k_hat == C[z] bitwise", atol=0.0, tolerance="law.defined")]


@law("vq.codebook_permutation_invariance", family=FAMILY, source=SRC + " (checkable properties)")
def permutation_invariance(ref: Any, case: VQCase = vq_cases(ties=False),
                           perm_seed: int = st.integers(0, 2**31)) -> list[Agreement]:
    """Permuting the codebook rows (Delta permuted consistently) leaves the dense and the linear-time
    outputs unchanged."""
    a = case.arrays()
    perm = np.random.default_rng(perm_seed).permutation(case.C)
    b = {**a, "codebook": a["codebook"][:, perm]}
    kw = {"causal": case.causal, "scale": case.scale}
    t, s = vq_terms(case, a), float(np.abs(a["v"]).max())
    return [Agreement(_o(ref.vq_attention, b, **kw), _o(ref.vq_attention, a, **kw), "dense(permuted C) == dense",
                      terms=t, scale=s),
            Agreement(_o(ref.vq_attention_linear, b, **kw), _o(ref.vq_attention_linear, a, **kw),
                      "linear(permuted C) == linear", terms=t, scale=s)]


@law("vq.unused_codes_contribute_zero", family=FAMILY, source=SRC + " (codes no key uses contribute exactly 0)")
def unused_codes(ref: Any, case: VQCase = vq_cases(ties=False), far: float = st.sampled_from((30.0, 1e3)),
                 block: int = st.integers(1, 8)) -> list[Agreement]:
    """Appending codes that no key is nearest to (far away, with logits up to ~1e3 |q| that would dominate a
    maximum taken over all codes) changes neither the linear-time nor the block form."""
    a = case.arrays()
    rng = np.random.default_rng(case.seed + 7)
    extra = rng.standard_normal((a["codebook"].shape[0], 3, case.D))
    extra = far * extra / np.linalg.norm(extra, axis=-1, keepdims=True) * max(1.0, case.amp)
    b = {**a, "codebook": np.concatenate([a["codebook"], a["codebook"][:, :1] + extra], axis=1)}
    kw = {"causal": case.causal, "scale": case.scale}
    t, s = vq_terms(case, a), float(np.abs(a["v"]).max())
    return [Agreement(_o(ref.vq_attention_linear, b, **kw), _o(ref.vq_attention_linear, a, **kw),
                      "linear form with unused far codes == without", terms=t, scale=s),
            Agreement(_o(ref.vq_attention_blocks, b, block_size=block, scale=case.scale),
                      _o(ref.vq_attention_blocks, a, block_size=block, scale=case.scale),
                      "block form with unused far codes == without", terms=t, scale=s)]


@law("vq.single_code_is_running_mean", family=FAMILY, source=SRC + " (edge case: all keys on one code)")
def single_code(ref: Any, case: VQCase = vq_cases(ties=False), block: int = st.integers(1, 8)) -> list[Agreement]:
    """When every key is nearest to the same code all logits of a query are equal, so every form returns
    the mean of the visible values: the running mean (causal) or the global mean (non-causal)."""
    case = dataclasses.replace(case, one_code=True, noise=min(case.noise, 0.2))
    a = case.arrays()
    cb = a["codebook"].copy()
    if case.C > 1:  # push the other codes far from code 0 so that every key stays on code 0
        cb[:, 1:] = cb[:, :1] + 50.0 * case.amp * (1 + np.abs(cb[:, 1:]))
    a = {**a, "codebook": cb}
    n = np.arange(1, case.T + 1)[:, None]
    want = np.cumsum(a["v"], axis=2) / n if case.causal else np.broadcast_to(a["v"].mean(2, keepdims=True),
                                                                            a["v"].shape)
    kw = {"causal": case.causal, "scale": case.scale}
    t, s = vq_terms(case, a), float(np.abs(a["v"]).max())
    out = [Agreement(_o(ref.vq_attention, a, **kw), want, "dense == mean of visible values", terms=t, scale=s),
           Agreement(_o(ref.vq_attention_linear, a, **kw), want, "linear == mean of visible values", terms=t, scale=s)]
    if case.causal:
        out.append(Agreement(_o(ref.vq_attention_blocks, a, block_size=block, scale=case.scale), want,
                             "blocks == running mean", terms=t, scale=s))
    return out


@law("vq.mean_logcount_cache_equals_sums", family=FAMILY,
     source=SRC + "; official transformer_vq attn.py (per-code means, log-count logits)")
def mean_cache(ref: Any, case: VQCase = vq_cases(), block: int = st.integers(1, 8)) -> list[Agreement]:
    """The official code's stable cache (per-code mean values updated by Ubar <- (L_old/L_new) Ubar + sum v /
    L_new, logits q.c_s + log L_s, empty codes excluded) gives the same block-form output as the per-code sums
    cache, and both equal dense causal attention: exp(q.c_s + log L_s) Ubar_s = exp(q.c_s) U_s."""
    a = case.arrays()
    means = _o(ref.vq_attention_blocks, a, block_size=block, scale=case.scale, cache="means")
    sums = _o(ref.vq_attention_blocks, a, block_size=block, scale=case.scale, cache="sums")
    t, s = vq_terms(case, a) + 2 * case.T, float(np.abs(a["v"]).max())
    return [Agreement(means, sums, "means + log-count cache == sums cache", terms=t, scale=s),
            Agreement(means, _o(ref.vq_attention, a, causal=True, scale=case.scale), "means cache == dense causal",
                      terms=t, scale=s)]
