"""SSD (Mamba-2): scalar-decay SSM = 1-semiseparable masked linear attention = chunked scan (float64 / mpmath).

Layouts (mamba ``ssd_minimal_discrete``, called with X*dt and A*dt): X [b, l, h, p], A [b, l, h] (the per-step
log-decay a_t = dt_t A_h <= 0), B, C [b, l, h, n] (one B/C per head; groups expanded by the caller),
initial_states [b, h, p, n] or None; returns (Y [b, l, h, p], final_state [b, h, p, n]).

* Recurrence: ``H_t = e^{a_t} H_t-1 + x_t B_t^T`` (H [p, n] per head, H_-1 = initial state), ``y_t = H_t C_t``.
* Quadratic (attention) form: ``Y = (Lmask o (C B^T)) X + (C_t e^{cumsum_t a}) H_-1`` with the 1-semiseparable
  mask ``Lmask_ts = exp(sum_{k=s+1}^t a_k)`` for t >= s, 0 above the diagonal (``Lmask_tt = 1``):
  causal linear attention with Q = C, K = B, V = X.
* Chunked (block size Q dividing l): diagonal blocks quadratically, per-chunk end states, the inter-chunk
  recurrence via exp(segsum) over chunk totals, and state-to-output via e^{cumsum} (mamba's four steps).

``segsum`` is the *stable* segment sum: the masked cumulative sums are built directly (sum of a_{s+1..t}),
never as cs_t - cs_s (which loses |cs| u absolutely), and masked entries are -inf *before* exp, so steep decays
underflow to 0 without NaN.

Sources: Dao & Gu 2024 (Mamba-2, "Transformers are SSMs"), Listing 1;
mamba ``mamba_ssm/modules/ssd_minimal.py`` (``segsum``, ``ssd_minimal_discrete``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = ["segsum", "ssd_chunked", "ssd_mask", "ssd_quadratic", "ssd_recurrence"]


def _prepare(func: str, X: Any, A: Any, B: Any, C: Any, initial_states: Any) -> tuple[np.ndarray, ...]:
    x = as_float64(X, func, "X", ndim=4)
    b, l, h, p = x.shape
    a = as_float64(A, func, "A", ndim=3)
    require(a.shape == (b, l, h), func, "A", f"of shape [b, l, h] = ({b}, {l}, {h})", f"shape {a.shape}")
    bb = as_float64(B, func, "B", ndim=4)
    require(bb.shape[:3] == (b, l, h), func, "B", f"of shape [b, l, h, n] with (b, l, h) = ({b}, {l}, {h})",
            f"shape {bb.shape}")
    cc = as_float64(C, func, "C", ndim=4)
    require(cc.shape == bb.shape, func, "C", f"of the shape of B {bb.shape}", f"shape {cc.shape}")
    n = bb.shape[3]
    if initial_states is None:
        h0 = np.zeros((b, h, p, n))
    else:
        h0 = as_float64(initial_states, func, "initial_states", ndim=4)
        require(h0.shape == (b, h, p, n), func, "initial_states", f"of shape [b, h, p, n] = ({b}, {h}, {p}, {n})",
                f"shape {h0.shape}")
    for arr, name in ((x, "X"), (a, "A"), (bb, "B"), (cc, "C"), (h0, "initial_states")):
        require_finite(arr, func, name)
    require(bool(np.all(a <= 0)), func, "A", "<= 0 everywhere (a log-decay dt * A with A < 0)", "a positive entry")
    return x, a, bb, cc, h0


@oracle
def segsum(a: Any, *, backend: Backend = F64) -> np.ndarray:
    """Stable segment sum along the last axis: ``out[..., t, s] = sum_{k=s+1}^{t} a_k`` for t >= s (0 on the
    diagonal), -inf for t < s.  Built from masked cumulative sums (mamba ``segsum``), never cs_t - cs_s.
    Source: mamba ssd_minimal.py ``segsum``."""
    x = as_float64(a, "segsum", "a")
    require(x.ndim >= 1, "segsum", "a", "at least 1-dimensional", f"shape {x.shape}")
    require(not np.any(np.isnan(x)), "segsum", "a", "free of NaN", "NaN")
    xp = backend
    T = x.shape[-1]
    if xp.is_float64:
        low = np.tril(np.ones((T, T), dtype=bool), -1)
        rep = np.where(low, x[..., :, None], 0.0)  # [..., t, s] = a_t for t > s
        return np.where(np.tril(np.ones((T, T), dtype=bool)), np.cumsum(rep, axis=-2), -np.inf)
    X = xp.asarray(x)
    out = np.empty((*x.shape, T), dtype=object if not xp.is_float64 else np.float64)
    for s in range(T):
        acc = X[..., s] * 0
        out[..., s, s] = acc
        for t in range(s + 1, T):
            acc = acc + X[..., t]
            out[..., t, s] = acc
        for t in range(s):
            out[..., t, s] = xp.neg_inf
    return xp.to_float64(out)


def ssd_mask(A: Any) -> np.ndarray:
    """The 1-semiseparable mask ``Lmask [b, h, l, l] = exp(segsum(a))`` of A [b, l, h] (float64; 0 above the
    diagonal, 1 on it).  Source: Dao & Gu 2024 (arXiv 2405.21060)."""
    a = as_float64(A, "ssd_mask", "A", ndim=3)
    return np.exp(segsum(np.moveaxis(a, 1, 2)))


@oracle
def ssd_recurrence(X: Any, A: Any, B: Any, C: Any, initial_states: Any = None, *,
                   backend: Backend = F64) -> tuple[np.ndarray, np.ndarray]:
    """SSD by its recurrence ``H_t = e^{a_t} H_t-1 + x_t B_t^T``, ``y_t = H_t C_t`` (module layouts).
    Source: Dao & Gu 2024 (Mamba-2) eq. (SSM form)."""
    x, a, bb, cc, h0 = _prepare("ssd_recurrence", X, A, B, C, initial_states)
    xp = backend
    Xx, Bx, Cx = xp.asarray(x), xp.asarray(bb), xp.asarray(cc)
    dec = xp.exp(xp.asarray(a))  # [b, l, h]
    H = xp.asarray(h0)  # [b, h, p, n]
    ys = np.empty(x.shape, dtype=object if not xp.is_float64 else np.float64)
    for t in range(x.shape[1]):
        H = dec[:, t, :, None, None] * H + Xx[:, t, :, :, None] * Bx[:, t, :, None, :]
        ys[:, t] = xp.sum(H * Cx[:, t, :, None, :], axis=-1)
    return xp.to_float64(ys), xp.to_float64(H)


def ssd_quadratic(X: Any, A: Any, B: Any, C: Any, initial_states: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """SSD as masked linear attention: ``Y = (Lmask o C B^T) X + C_t e^{cumsum_t a} H_-1`` and the final state
    ``H = sum_s e^{sum_{k>s} a_k} x_s B_s^T + e^{sum a} H_-1`` (float64).  Source: Dao & Gu 2024 (duality)."""
    x, a, bb, cc, h0 = _prepare("ssd_quadratic", X, A, B, C, initial_states)
    Lm = ssd_mask(a)  # [b, h, t, s]
    M = Lm * np.einsum("bthn,bshn->bhts", cc, bb)
    Y = np.einsum("bhts,bshp->bthp", M, x)
    cs = np.cumsum(a, axis=1)  # [b, l, h]
    Y = Y + np.exp(cs)[..., None] * np.einsum("bthn,bhpn->bthp", cc, h0)
    tail = Lm[:, :, -1, :]  # e^{sum_{k>s} a_k} [b, h, s]
    Hf = np.einsum("bhs,bshp,bshn->bhpn", tail, x, bb) + np.exp(cs[:, -1])[..., None, None] * h0
    return Y, Hf


def ssd_chunked(X: Any, A: Any, B: Any, C: Any, chunk_size: int,
                initial_states: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Chunked SSD (mamba ``ssd_minimal_discrete`` with the stable segsum; float64): l must be a multiple of
    ``chunk_size`` (pad the sequence otherwise).  Returns (Y, final_state).  Source: Mamba-2 Listing 1."""
    func = "ssd_chunked"
    x, a, bb, cc, h0 = _prepare(func, X, A, B, C, initial_states)
    b, l, h, p = x.shape
    require(isinstance(chunk_size, int | np.integer) and chunk_size >= 1 and l % chunk_size == 0, func,
            "chunk_size", f"a positive int dividing l = {l}", repr(chunk_size))
    Q = int(chunk_size)
    c = l // Q
    xc, bc, cc_ = (v.reshape(b, c, Q, h, -1) for v in (x, bb, cc))
    ac = np.moveaxis(a.reshape(b, c, Q, h), 3, 1)  # [b, h, c, Q]
    a_cs = np.cumsum(ac, axis=-1)
    # 1. diagonal blocks
    Lm = np.exp(segsum(ac))  # [b, h, c, Q, Q]
    Y_diag = np.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", cc_, bc, Lm, xc)
    # 2. end state of every chunk (decay from step s to the chunk end: sum_{k>s} a_k, built stably)
    decay_states = np.exp(segsum(ac)[..., -1, :])  # [b, h, c, Q]
    states = np.einsum("bclhn,bhcl,bclhp->bchpn", bc, decay_states, xc)
    # 3. inter-chunk recurrence over chunk totals
    states = np.concatenate([h0[:, None], states], axis=1)  # [b, c+1, h, p, n]
    totals = np.concatenate([np.zeros((b, h, 1)), a_cs[..., -1]], axis=-1)  # [b, h, c+1]
    decay_chunk = np.exp(segsum(totals))  # [b, h, c+1, c+1]
    new_states = np.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final = new_states[:, :-1], new_states[:, -1]
    # 4. state -> output
    Y_off = np.einsum("bclhn,bchpn,bhcl->bclhp", cc_, states, np.exp(a_cs))
    return (Y_diag + Y_off).reshape(b, l, h, p), final
