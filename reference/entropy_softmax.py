"""Entropy-invariant ("log-n scaled") softmax attention, its attention distributions and their entropies.

Formula (bert4keras ``softmax_plus``): ``P = softmax(a * log(max(l, clamp)) / log(base))`` with
``a = scale * Q K^T`` (scale = 1/sqrt(D) by default) and ``l`` the number of unmasked (visible) keys of each
query; output ``O = P V``.  At ``l = base`` (default 512) the factor ``log_base(l)`` is exactly 1, so the layer is
standard scaled attention there; below ``l = clamp`` (default 16) the factor is the constant
``log(clamp) / log(base)``.  The factor keeps the attention entropy roughly constant in the length n
(Laplace approximation ``H ~ log n - 0.24 lambda d``, post 8823; mean field ``H ~ log n - lambda (s_max - s_mean)``,
post 9034), whereas a power map such as relu^2, normalised over the keys, cannot be tempered at all: a positive
scale of the logits cancels in the normalisation.

Layout: q [B, H, T, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv] (GQA when Hkv divides H), o [B, H, T, Dv]; optional
boolean ``mask`` [B|1, H|1, T, S] (True = attend); ``causal`` uses the end-aligned convention of
:func:`veriformer.reference.softmax_attention` (query i sits at key position i + S - T).  A query with no visible
key gets all-zero weights, output 0 and entropy 0.

Sources: Su, kexue.fm posts 8823 (entropy invariance, log n scaling), 9034 (mean-field entropy), 8934/9019
(relu^2 and the length normaliser); bert4keras ``softmax_plus`` (``log(max(l, 16)) / log(512)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import require
from veriformer.reference.attention import _attention_inputs, _Inputs, _is_bool
from veriformer.reference.backends import F64, Backend, oracle
from veriformer.reference.softmax import stable_terms

__all__ = ["ATTENTION_KINDS", "attention_entropy", "attention_probabilities", "entropy_invariant_attention"]

ATTENTION_KINDS = ("entropy_invariant", "standard", "relu2")


def _inputs(func: str, q: Any, k: Any, v: Any, *, scale: float | None, causal: bool, mask: Any, clamp: Any,
            base: Any) -> _Inputs:
    require(mask is None or _is_bool(mask), func, "mask", "None or a boolean [B|1, H|1, T, S] tensor "
            "(True = attend)", f"dtype {getattr(mask, 'dtype', type(mask).__name__)}")
    for name, val, low in (("clamp", clamp, 1.0), ("base", base, 1.0)):
        ok = isinstance(val, int | float | np.integer | np.floating) and not isinstance(val, bool) \
            and bool(np.isfinite(val))
        strict = name == "base"
        require(ok and (val > low if strict else val >= low), func, name,
                f"a finite number {'>' if strict else '>='} 1", repr(val))
    return _attention_inputs(func, q, k, v, scale, causal, None, 0, mask)


def _weights(xp: Backend, a: _Inputs, kind: str, clamp: float, base: float) -> Any:
    """Attention weights [B, H, T, S] of ``kind`` (module docstring); invisible keys and empty rows get 0."""
    D = a.q.shape[-1]
    scale = xp.scalar(1.0) / xp.sqrt(xp.scalar(D)) if a.scale is None else xp.scalar(a.scale)
    kt = np.ascontiguousarray(np.swapaxes(a.k, -1, -2))  # contiguous: NumPy's strided batched matmul is slow
    s = xp.matmul(xp.asarray(a.q), xp.asarray(kt)) * scale  # scale * q k^T, as softmax_attention; no -inf yet
    if kind == "relu2":
        r = xp.where(a.visible & np.asarray(s > 0, dtype=bool), s * s, 0.0)
        tot = xp.sum(r, axis=-1, keepdims=True)
        return xp.where(tot > 0, r / xp.where(tot > 0, tot, 1.0), 0.0)
    if kind == "entropy_invariant":
        n = np.maximum(a.visible.sum(axis=-1, keepdims=True).astype(np.float64), float(clamp))
        s = s * (xp.log(xp.asarray(n)) / xp.log(xp.scalar(base)))
    _, e, tot = stable_terms(xp, xp.where(a.visible, s, xp.neg_inf), axis=-1)
    return xp.where(tot > 0, e / xp.where(tot > 0, tot, 1.0), 0.0)


def _kind(func: str, kind: Any) -> str:
    require(kind in ATTENTION_KINDS, func, "kind", f"one of {ATTENTION_KINDS}", repr(kind))
    return str(kind)


@oracle
def entropy_invariant_attention(q: Any, k: Any, v: Any, *, causal: bool = False, clamp: float = 16,
                                base: float = 512, mask: Any = None, scale: float | None = None,
                                backend: Backend = F64) -> np.ndarray:
    """Entropy-invariant attention ``softmax(a * log(max(l, clamp)) / log(base)) V`` with ``a = QK^T/sqrt(D)``
    (or ``scale * QK^T``) and l = visible keys per query; q [B, H, T, D], k/v [B, Hkv, S, D|Dv] -> [B, H, T, Dv].
    Source: bert4keras softmax_plus; Su kexue.fm/archives/8823."""
    func = "entropy_invariant_attention"
    a = _inputs(func, q, k, v, scale=scale, causal=causal, mask=mask, clamp=clamp, base=base)
    xp = backend
    return xp.to_float64(xp.matmul(_weights(xp, a, "entropy_invariant", clamp, base), xp.asarray(a.v)))


@oracle
def attention_probabilities(q: Any, k: Any, *, kind: str = "entropy_invariant", causal: bool = False,
                            clamp: float = 16, base: float = 512, mask: Any = None, scale: float | None = None,
                            backend: Backend = F64) -> np.ndarray:
    """Attention distribution P [B, H, T, S] per query: ``entropy_invariant`` softmax(a log_base max(l, clamp)),
    ``standard`` softmax(a), or ``relu2`` relu(a)^2 / sum_j relu(a_j)^2 (all-zero row if no a_j > 0), over the
    visible keys, a = QK^T/sqrt(D).  q [B, H, T, D], k [B, Hkv, S, D].  Source: Su posts 8823, 9019."""
    func = "attention_probabilities"
    a = _inputs(func, q, k, k, scale=scale, causal=causal, mask=mask, clamp=clamp, base=base)
    xp = backend
    return xp.to_float64(_weights(xp, a, _kind(func, kind), clamp, base))


@oracle
def attention_entropy(q: Any, k: Any, *, kind: str = "entropy_invariant", causal: bool = False, clamp: float = 16,
                      base: float = 512, mask: Any = None, scale: float | None = None,
                      backend: Backend = F64) -> np.ndarray:
    """Per-query entropy (nats) ``H_i = -sum_j P_ij log P_ij`` (0 log 0 = 0) of :func:`attention_probabilities`;
    [B, H, T].  ``0 <= H_i <= log l_i``, with equality on the right for uniform weights.
    Source: Su kexue.fm/archives/8823, 9034 (entropy of attention)."""
    func = "attention_entropy"
    a = _inputs(func, q, k, k, scale=scale, causal=causal, mask=mask, clamp=clamp, base=base)
    xp = backend
    p = _weights(xp, a, _kind(func, kind), clamp, base)
    pos = np.asarray(p > 0, dtype=bool)
    terms = xp.where(pos, p * xp.log(xp.where(pos, p, 1.0)), 0.0)
    return xp.to_float64(-xp.sum(terms, axis=-1))
