"""Laws of NBCE, naive-Bayes context extension (Su kexue.fm/archives/9617 and 9632; bojone/NBCE test.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.nbce.strategies import NbceCase, nbce_cases
from veriformer.registry import law

FAMILY = "nbce"
U = 2.0**-53
POST = "Su kexue.fm/archives/9617"
CODE = "github.com/bojone/NBCE test.py (head commit 2362c6c)"


def _logp(ref: Any, case: NbceCase, top_p: float | None = None) -> np.ndarray:
    lp = ref.nbce_log_softmax(case.arrays()["logits"])
    return lp if top_p is None else ref.nbce_top_p(lp, top_p)


def _terms(lp: np.ndarray, n: int, case: NbceCase) -> float:
    """Rounding budget: n + V terms at the size of the log-probabilities and of the logits they came from (the
    log-softmax of logits ~ 1e4 carries an absolute error ~ u 1e4)."""
    f = lp[np.isfinite(lp)]
    big = float(np.abs(case.arrays()["logits"]).max())
    return 8 * (n + lp.shape[-1]) * (1 + big + (float(np.abs(f).max()) if f.size else 0.0))


@law("nbce.average_pooling_is_naive_bayes", family=FAMILY, source=f"{POST}, eq. (2)-(3)")
def average_pooling_is_naive_bayes(ref: Any, case: NbceCase = nbce_cases()) -> list[Agreement]:
    """With beta = n - 1 and average pooling the NBCE merge is the naive-Bayes posterior
    ``sum_k log p(T|S_k) - (n - 1) log p(T)``, before and after normalisation (log-probabilities above -100, so
    the truncation fallback is not involved: scores of amplitude <= 3)."""
    case = dataclasses.replace(case, amp=min(case.amp, 3.0))
    lp = _logp(ref, case)
    c, u = lp[1:], lp[0]
    n = c.shape[0]
    terms = _terms(lp, n, case) * n
    raw = ref.nbce_merge(c, u, beta=float(n - 1), pooling="average", normalize=False)
    return [Agreement(raw, c.sum(0) - (n - 1) * u, "(beta + 1) mean - beta u == sum - (n - 1) u", terms=terms),
            Agreement(ref.nbce_merge(c, u, beta=float(n - 1), pooling="average"), ref.nbce_naive_bayes(c, u),
                      "normalised merge == naive-Bayes posterior", terms=terms)]


@law("nbce.min_entropy_selects_lowest", family=FAMILY, source=f"Su kexue.fm/archives/9632; {CODE}")
def min_entropy_selects_lowest(ref: Any, case: NbceCase = nbce_cases(),
                               top_p: float | None = st.sampled_from((None, 0.9, 0.95)),
                               seed: int = st.integers(0, 2**16)) -> list[Any]:
    """Min-entropy pooling picks the context whose (truncated) prediction has the lowest entropy
    ``-sum p log p`` (the clipped form of the code differs by < V e^-100), moves with the contexts when they are
    permuted, and takes the first of equal minima (a duplicated row)."""
    lp = _logp(ref, case, top_p)
    c = lp[1:]
    n = c.shape[0]
    fin = np.isfinite(c)
    h = -np.sum(np.where(fin, np.exp(np.where(fin, c, 0.0)) * np.where(fin, c, 0.0), 0.0), axis=-1)
    k = ref.nbce_select(c, eta=0.0)
    perm = np.random.default_rng(seed).permutation(n)
    kp = ref.nbce_select(c[perm], eta=0.0)
    atol = 64 * U * _terms(lp, n, case)
    dup = ref.nbce_select(np.concatenate([c[k:k + 1], c]), eta=0.0)
    return [Agreement(ref.nbce_entropy(c), h, "clipped entropy == -sum p log p", atol=atol + c.shape[-1] * 1e-40),
            Agreement(h[k], h.min(), "entropy of the chosen context == min entropy", atol=atol),
            Agreement(h[perm][kp], h.min(), "after a permutation: still a minimum", atol=atol),
            Agreement(float(dup), 0.0, "equal minima: the first is chosen", atol=0.0)]


@law("nbce.top_p_keeps_merge_finite", family=FAMILY, source=f"Su kexue.fm/archives/9632; {CODE}")
def top_p_keeps_merge_finite(ref: Any, case: NbceCase = nbce_cases(),
                             top_p: float = st.sampled_from((0.5, 0.9, 0.95, 0.99)),
                             beta: float = st.sampled_from((0.25, 1.0, 3.0))) -> list[Any]:
    """Top-p truncation keeps the smallest prefix of each row (descending) whose mass reaches top_p; after it, the
    min-entropy merge has no NaN and no +inf, is finite exactly where the chosen context is, and its normalised
    probabilities sum to 1 (the code's fallback to the pooled row where log p(T) <= -100 avoids inf - inf)."""
    lp0 = _logp(ref, case)
    lp = ref.nbce_top_p(lp0, top_p)
    c, u = lp[1:], lp[0]
    V = c.shape[1]
    k = ref.nbce_select(c, eta=0.0)
    merged = ref.nbce_merge(c, u, beta=beta, pooling="min_entropy")
    q = np.exp(lp0)
    kept = np.isfinite(lp)
    mass = np.sum(np.where(kept, q, 0.0), -1)
    smallest = np.min(np.where(kept, q, np.inf), -1)
    several = kept.sum(-1) > 1
    slack = 8 * V * U
    out = [Bound(np.isnan(merged).astype(float), 0.0, "no NaN"),
           Bound(np.isposinf(merged).astype(float), 0.0, "no +inf"),
           Agreement(np.isfinite(merged).astype(float), np.isfinite(c[k]).astype(float),
                     "finite exactly where the chosen context is", atol=0.0),
           Agreement(np.sum(np.exp(merged)), 1.0, "exp(merged) sums to 1", terms=4 * V, scale=1.0),
           Bound(top_p - mass, 0.0, "kept mass >= top_p", slack=slack),
           Agreement(lp[kept], lp0[kept], "kept entries keep their values", atol=0.0)]
    if several.any():
        out.append(Bound((mass - smallest)[several], top_p, "minimal: without its smallest entry < top_p",
                         slack=slack))
    return out


@law("nbce.beta_limits", family=FAMILY, source=f"{POST} (beta = 0, beta >= -1, n = 1)")
def beta_limits(ref: Any, case: NbceCase = nbce_cases(), beta: float = st.sampled_from((0.25, 1.0, 4.0)),
                pooling: str = st.sampled_from(("min_entropy", "average", "max"))) -> list[Agreement]:
    """Limits of beta: beta = 0 gives the pooled prediction, beta = -1 the unconditional one, n = 1 with any beta
    gives ``(beta + 1) log p(T|S_1) - beta log p(T)`` (normalised), and as beta -> infinity the merged distribution
    concentrates on argmax (pooled - log p(T)) (checked at beta = 1e8 when that argmax is unique)."""
    case = dataclasses.replace(case, amp=min(case.amp, 3.0))
    lp = _logp(ref, case)
    c, u = lp[1:], lp[0]
    n = c.shape[0]
    terms = _terms(lp, n, case) * (1 + beta)
    pooled = {"min_entropy": c[ref.nbce_select(c, eta=0.0)], "average": c.mean(0), "max": c.max(0)}[pooling]
    out = [Agreement(ref.nbce_merge(c, u, beta=0.0, pooling=pooling), ref.nbce_log_softmax(pooled),
                     "beta = 0: the pooled prediction", terms=terms),
           Agreement(ref.nbce_merge(c, u, beta=-1.0, pooling=pooling), u, "beta = -1: the unconditional prediction",
                     terms=terms)]
    if n == 1:
        out.append(Agreement(ref.nbce_merge(c, u, beta=beta, pooling=pooling),
                             ref.nbce_log_softmax((beta + 1) * c[0] - beta * u), "n = 1: (beta + 1) l_1 - beta l_0",
                             terms=terms))
    pmi = pooled - u
    top2 = np.sort(pmi)[-2:] if pmi.size > 1 else np.array([-np.inf, pmi[0]])
    if top2[1] - top2[0] > 1e-6:
        out.append(Agreement(float(np.argmax(ref.nbce_merge(c, u, beta=1e8, pooling=pooling))),
                             float(np.argmax(pmi)), "beta -> inf: argmax of pooled - unconditional", atol=0.0))
    return out


@law("nbce.stickiness", family=FAMILY, source=f"{CODE} (commit 1a4c178 '添加转移概率': entropy[k] -= eta)")
def stickiness(ref: Any, case: NbceCase = nbce_cases(min_n=2), previous: int = st.integers(0, 63),
               eta: float = st.sampled_from((0.0, 0.1, 0.5, 5.0))) -> list[Any]:
    """Stickiness: lowering the previous choice's entropy by eta means the choice moves away from the previous
    context only to a context with ``H_k <= H_prev - eta`` (strictly lower, or equal with a lower index: argmin
    takes the first), and then to the lowest-entropy one; it stays exactly when no context is below
    ``H_prev - eta``; eta = 0 is the plain argmin."""
    lp = _logp(ref, case, 0.95)
    c = lp[1:]
    n = c.shape[0]
    prev = previous % n
    h = ref.nbce_entropy(c)
    k = ref.nbce_select(c, previous=prev, eta=eta)
    below = np.delete(h, prev) < h[prev] - eta
    out: list[Any] = [Agreement(float(ref.nbce_select(c, previous=prev, eta=0.0)), float(np.argmin(h)),
                                "eta = 0: the plain argmin", atol=0.0)]
    if k != prev:
        out += [Bound(h[k], h[prev] - eta, "a switch needs H_k <= H_prev - eta"),
                Agreement(h[k], np.delete(h, prev).min(), "a switch goes to the lowest entropy", atol=0.0)]
    else:
        out.append(Agreement(float(below.sum()), 0.0, "staying: no context below H_prev - eta", atol=0.0))
    return out


# The worked example (beta = 0.25, eta = 0.1, top-p 0.95, the code's defaults): a 6-token vocabulary, row 0 the
# unconditional prediction, three contexts, two decoding steps.  Pinned values: an independent mpmath computation at
# 40 digits (plain loops over the formulas of the code; the script is quoted in the family's findings note).
WORKED_UNCOND = [2.0, 1.5, 1.0, 0.5, 0.0, -3.0]
WORKED_STEP1 = [WORKED_UNCOND, [0.0, 3.0, 0.5, 0.2, -1.0, 0.1], [0.3, -0.2, 4.0, 0.1, -0.4, 1.5], [1.0] * 6]
WORKED_STEP2 = [WORKED_UNCOND, [0.0, 2.0, 0.5, 0.2, -1.0, 0.1], [0.3, -0.2, 3.0, 0.1, -0.4, 1.5],
                [0.0, 2.6, 0.2, -0.3, 0.1, -1.0]]
WORKED_P1 = [0.0071946856745147746, 0.0, 0.94231786383757989, 0.0, 0.0, 0.050487450487905337]
WORKED_P2 = [0.021729938612556748, 0.013179874002189071, 0.81540993071131622, 0.024623246324055778, 0.0,
             0.12505701034988218]
WORKED_H1 = [0.77306505358461639, 0.39463156333490185, 1.791759469228055]
WORKED_H2 = [1.2173301230570119, 0.90998300222223367, 0.86231447199134216]


def _worked_step(ref: Any, logits: list[list[float]], previous: int | None) -> tuple[np.ndarray, int, np.ndarray]:
    """One step of the reference code composed from the family's oracles: (merged probabilities, chosen row in
    1..n, entropies of the truncated contexts)."""
    lp = ref.nbce_top_p(ref.nbce_log_softmax(np.array(logits)), 0.95)
    prev = None if previous is None else previous - 1
    k = ref.nbce_select(lp[1:], previous=prev, eta=0.1) + 1
    merged = ref.nbce_merge(lp[1:], lp[0], beta=0.25, pooling="min_entropy", previous=prev, eta=0.1)
    return np.exp(merged), k, ref.nbce_entropy(lp[1:])


@law("nbce.worked_example", family=FAMILY, kind="defined", source=f"{CODE} (beta, eta = 0.25, 0.1; top-p 0.95)")
def worked_example(ref: Any, _: int = st.just(0)) -> list[Agreement]:
    """The code's defaults on a 6-token example: step 1 picks context 2 (entropies 0.7731, 0.3946, 1.7918), the
    unconditional row's last token is truncated (the merge falls back to context 2 there) and p = [0.00719, 0,
    0.94232, 0, 0, 0.05049]; at step 2 context 3's entropy (0.8623) is below context 2's (0.9100) by less than
    eta = 0.1, so the choice stays at 2 (without stickiness it moves to 3) and p = [0.02173, 0.01318, 0.81541,
    0.02462, 0, 0.12506]."""
    p1, k1, h1 = _worked_step(ref, WORKED_STEP1, None)
    p2, k2, h2 = _worked_step(ref, WORKED_STEP2, k1)
    _, k2_free, _ = _worked_step(ref, WORKED_STEP2, None)
    m1, s1 = ref.nbce_step(np.array(WORKED_STEP1))
    m2, s2 = ref.nbce_step(np.array(WORKED_STEP2), previous=s1)
    terms = 64.0
    return [Agreement(float(k1), 2.0, "step 1 chooses context 2", atol=0.0),
            Agreement(h1, np.array(WORKED_H1), "step 1 entropies", terms=terms, scale=2.0),
            Agreement(p1, np.array(WORKED_P1), "step 1 merged probabilities", terms=terms, scale=1.0),
            Agreement(float(k2), 2.0, "step 2 stays at context 2 (stickiness)", atol=0.0),
            Agreement(float(k2_free), 3.0, "step 2 without stickiness moves to context 3", atol=0.0),
            Agreement(h2, np.array(WORKED_H2), "step 2 entropies", terms=terms, scale=2.0),
            Agreement(p2, np.array(WORKED_P2), "step 2 merged probabilities", terms=terms, scale=1.0),
            Agreement(np.array([float(s1), float(s2)]), np.array([2.0, 2.0]), "nbce_step chooses 2 twice", atol=0.0),
            Agreement(np.exp(np.stack([m1, m2])), np.array([WORKED_P1, WORKED_P2]), "nbce_step probabilities",
                      terms=terms, scale=1.0)]
