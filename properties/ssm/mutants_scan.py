"""Planted bugs in the selective-scan and SSD oracles (the laws in ``ssm_scan_laws`` must catch each one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "ssm"


@mutant("ssm.scan_combine_wrong_order", family=FAMILY, replaces="scan_combine",
        caught_by=["ssm.selective_scan_assoc_equals_sequential", "ssm.scan_combine_associative"])
def combine_swapped(left: tuple[Any, Any], right: tuple[Any, Any]) -> tuple[Any, Any]:
    """Combine with the operands swapped, (a, b) . (a', b') = (a a', a b' + b): the later step applied first."""
    return ref.scan_combine(right, left)


@mutant("ssm.scan_zoh_input_map", family=FAMILY, replaces="selective_scan",
        caught_by=["ssm.selective_scan_lti_is_convolution"])
def scan_zoh(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None, delta_bias: Any = None,
             delta_softplus: bool = False, return_last_state: bool = False, **kw: Any) -> Any:
    """Exact ZOH Bd = (e^{delta A} - 1)/A B in place of mamba's delta B (for a scalar-per-channel stand-in:
    the mean over the state of the ZOH factor scales u)."""
    d = np.asarray(delta, np.float64)
    if delta_bias is not None:
        d = d + np.asarray(delta_bias)[:, None]
    if delta_softplus:
        d = np.logaddexp(0.0, d)
    Aa = np.asarray(A)
    fac = np.mean(np.real((np.exp(d[..., None] * Aa[None, :, None, :]) - 1) / (d[..., None] * Aa[None, :, None, :])),
                  axis=-1)
    res = ref.selective_scan(np.asarray(u) * fac, delta, A, B, C, None, None, delta_bias, delta_softplus,
                             return_last_state, **kw)
    out = res[0] if return_last_state else res
    if D is not None:
        out = out + np.asarray(u) * np.asarray(D)[:, None]
    if z is not None:
        zz = np.asarray(z)
        out = out * zz / (1 + np.exp(-zz))
    return (out, res[1]) if return_last_state else out


@mutant("ssm.scan_bias_after_softplus_oracle", family=FAMILY, replaces="selective_scan",
        caught_by=["ssm.selective_scan_delta_preprocessing"])
def scan_bias_late(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                   delta_bias: Any = None, delta_softplus: bool = False, return_last_state: bool = False,
                   **kw: Any) -> Any:
    """softplus(delta) + bias instead of softplus(delta + bias)."""
    d = np.asarray(delta, np.float64)
    if delta_softplus:
        d = np.logaddexp(0.0, d)
    if delta_bias is not None:
        d = d + np.asarray(delta_bias)[:, None]
    return ref.selective_scan(u, d, A, B, C, D, z, None, False, return_last_state, **kw)


@mutant("ssm.scan_complex_missing_factor_2", family=FAMILY, replaces="selective_scan",
        caught_by=["ssm.selective_scan_complex_real_part"])
def scan_complex_half(u: Any, delta: Any, A: Any, B: Any, C: Any, *args: Any, **kw: Any) -> Any:
    """Complex A read out as Re(sum x C) without the factor 2 of the conjugate pair."""
    res = ref.selective_scan(u, delta, A, B, C, *args, **kw)
    if not np.iscomplexobj(np.asarray(A)):
        return res
    if isinstance(res, tuple):
        return res[0] / 2, res[1]
    return res / 2


@mutant("ssm.scan_float32_state", family=FAMILY, replaces="selective_scan",
        caught_by=["ssm.selective_scan_mpmath_certificate"])
def scan_f32(u: Any, delta: Any, A: Any, B: Any, C: Any, *args: Any, backend: Any = ref.F64, **kw: Any) -> Any:
    """The float64 oracle with inputs and output rounded through float32 (a float32 scan)."""
    if not backend.is_float64:
        return ref.selective_scan(u, delta, A, B, C, *args, backend=backend, **kw)

    def r(x: Any) -> Any:
        return None if x is None or isinstance(x, bool) else np.asarray(x, np.float32).astype(np.float64)

    args = tuple(r(x) if not isinstance(x, bool) else x for x in args)
    kw = {k: (r(v) if not isinstance(v, bool) else v) for k, v in kw.items()}
    res = ref.selective_scan(r(u), r(delta), r(A), r(B), r(C), *args, **kw)
    return np.asarray(res, np.float32).astype(np.float64)


@mutant("ssm.ssd_chunks_not_carried", family=FAMILY, replaces="ssd_chunked", caught_by=["ssm.ssd_duality"])
def ssd_no_carry(X: Any, A: Any, B: Any, C: Any, chunk_size: int, initial_states: Any = None) -> Any:
    """Inter-chunk recurrence skipped: every chunk starts from the initial state."""
    X, A, B, C = (np.asarray(v) for v in (X, A, B, C))
    Ys, H = [], None
    for s in range(0, X.shape[1], chunk_size):
        sl = slice(s, s + chunk_size)
        Y, H = ref.ssd_chunked(X[:, sl], A[:, sl], B[:, sl], C[:, sl], chunk_size, initial_states)
        Ys.append(Y)
    return np.concatenate(Ys, axis=1), H


@mutant("ssm.ssd_mask_diagonal_decayed", family=FAMILY, replaces="ssd_quadratic", caught_by=["ssm.ssd_duality"])
def ssd_diag_decay(X: Any, A: Any, B: Any, C: Any, initial_states: Any = None) -> Any:
    """Mask with L_tt = e^{a_t} (sum from k = s instead of s + 1): the current input decayed once."""
    A = np.asarray(A)
    return ref.ssd_quadratic(np.asarray(X) * np.exp(A)[..., None], A, B, C, initial_states)


@mutant("ssm.ssd_recurrence_no_initial_state", family=FAMILY, replaces="ssd_recurrence",
        caught_by=["ssm.ssd_duality"])
def ssd_rec_no_init(X: Any, A: Any, B: Any, C: Any, initial_states: Any = None, **kw: Any) -> Any:
    """Recurrence that ignores initial_states (starts from 0)."""
    return ref.ssd_recurrence(X, A, B, C, None, **kw)


@mutant("ssm.ssd_mask_not_semiseparable", family=FAMILY, replaces="ssd_mask", caught_by=["ssm.ssd_semiseparable_rank"])
def ssd_mask_powered(A: Any) -> Any:
    """Mask exp(-(segsum)^2)-style kernel (a Toeplitz decay in |t - s| that ignores the per-step a_k)."""
    Lm = ref.ssd_mask(A)
    T = Lm.shape[-1]
    t = np.arange(T)
    return np.where(t[:, None] >= t[None, :], np.exp(-0.1 * (t[:, None] - t[None, :]) ** 2), 0.0) * (Lm * 0 + 1)


@mutant("ssm.segsum_unstable", family=FAMILY, replaces="segsum", caught_by=["ssm.ssd_segsum_stable"])
def segsum_unstable(a: Any, *, backend: Any = ref.F64) -> Any:
    """mamba's ``segsum_unstable``: cs_t - cs_s (loses |cs| u on short late segments)."""
    if not backend.is_float64:
        return ref.segsum(a, backend=backend)
    x = np.asarray(a, np.float64)
    cs = np.cumsum(x, axis=-1)
    T = x.shape[-1]
    out = cs[..., :, None] - cs[..., None, :]
    return np.where(np.tril(np.ones((T, T), dtype=bool)), out, -np.inf)
