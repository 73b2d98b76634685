"""Laws of GAU / FLASH (Hua et al. 2022, arXiv 2202.10447; Su post 8934): the chunked mixed-chunk attention equals
the direct n x n formula, and relu^2 attention's scaling identities."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.gau.strategies import FlashCase, flash_cases
from veriformer.registry import law

FAMILY = "gau"
SRC = "Hua et al. 2022 (Transformer Quality in Linear Time); Su kexue.fm/archives/8934, 9052"


def _flash_scale(case: FlashCase, a: dict[str, np.ndarray], N: np.ndarray) -> float:
    """Sum of |summands| of an output: relu^2 terms <= |q||k|^2/(cs), linear terms |q||k|/min N, times n max|v|."""
    qn = max(float(np.linalg.norm(a[x], axis=-1).max()) for x in ("q_quad", "k_quad", "q_lin", "k_lin"))
    return case.n * float(np.abs(a["v"]).max()) * (qn**4 / (case.chunk * case.s) + qn**2 / float(N.min()))


@law("gau.flash_chunked_equals_direct", family=FAMILY, source=SRC + " ('Direct equivalent')")
def flash_chunked(ref: Any, case: FlashCase = flash_cases(), custom_n: bool = st.booleans()) -> Agreement:
    """FLASH chunked (quadratic within chunks + linear across chunks; causal with an exclusive prefix over
    earlier chunks and normaliser N_g) equals the direct n x n formula, for any chunk size (c = 1, c = n,
    c not dividing n) and any positive N_g (drawn, or the default)."""
    a = case.arrays()
    G = -(-case.n // case.chunk)
    N = np.random.default_rng(case.seed).uniform(0.5, 3.0, G) if custom_n else \
        ref.flash_default_normaliser(case.n, case.chunk, case.causal)
    args = (a["q_quad"], a["k_quad"], a["q_lin"], a["k_lin"], a["v"])
    kw = {"chunk": case.chunk, "causal": case.causal, "lin_normaliser": N}
    return Agreement(ref.flash_attention_chunked(*args, **kw), ref.flash_attention_direct(*args, **kw),
                     f"chunked == direct (c={case.chunk}, {'causal' if case.causal else 'non-causal'})",
                     terms=case.n + case.s + 16, scale=_flash_scale(case, a, N))


@law("gau.relu2_scaling", family=FAMILY, source=SRC + " (relu^2 is 2-homogeneous)")
def relu2_scaling(ref: Any, case: FlashCase = flash_cases(), c: float = st.sampled_from((0.5, 2.0, 3.0)),
                  visible: bool = st.booleans()) -> list[Agreement]:
    """relu^2(QK^T/sqrt(s))/n equals relu^2(QK^T)/(ns) written here from the definition, and scaling q by
    c > 0 scales the output by c^2 (so the relu^2-normalised distribution is invariant to positive scaling:
    relu^2 cannot be tempered)."""
    a = case.arrays()
    q, k, v = a["q_quad"], a["k_quad"], a["v"]
    norm = "visible" if visible else "n"
    o = ref.relu2_attention(q, k, v, causal=case.causal, normaliser=norm)
    A = np.maximum(q @ np.swapaxes(k, -1, -2), 0.0) ** 2 / case.s
    vis = np.tril(np.ones((case.n, case.n))) if case.causal else np.ones((case.n, case.n))
    cnt = vis.sum(-1, keepdims=True) if visible else case.n
    want = (A * vis) @ v / cnt
    scale = float((np.abs(q @ np.swapaxes(k, -1, -2)) ** 2 / case.s @ np.abs(v)).max()) + 1e-300
    oc = ref.relu2_attention(c * q, k, v, causal=case.causal, normaliser=norm)
    return [Agreement(o, want, "relu2 attention == relu^2(QK^T)/(ns) V", terms=case.s + case.n + 8, scale=scale),
            Agreement(oc, c * c * o, "relu2(c q) == c^2 relu2(q)", terms=case.s + case.n + 8, scale=c * c * scale)]
