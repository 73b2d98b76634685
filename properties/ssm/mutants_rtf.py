"""Planted bugs in the RTF oracles (the laws in ``ssm_rtf_laws`` must catch each one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer import reference as ref
from veriformer.registry import mutant

FAMILY = "ssm"


@mutant("ssm.rtf_b_low_to_high", family=FAMILY, replaces="rtf_coefficients",
        caught_by=["ssm.rtf_rational_identity"])
def b_reversed(Ad: Any, Bd: Any, Ct: Any, **kw: Any) -> Any:
    """Numerator coefficients returned in the np.poly order reversed (b_d first)."""
    a, b = ref.rtf_coefficients(Ad, Bd, Ct, **kw)
    return a, np.asarray(b)[::-1].copy()


@mutant("ssm.rtf_det_sign", family=FAMILY, replaces="rtf_coefficients",
        caught_by=["ssm.rtf_kernel_equals_s4"])
def det_sign(Ad: Any, Bd: Any, Ct: Any, **kw: Any) -> Any:
    """b from det(lam I - Ad - Bd Ct) - det(lam I - Ad): the sign of the rank-1 update flipped."""
    a, b = ref.rtf_coefficients(Ad, Bd, Ct, **kw)
    return a, -np.asarray(b)


@mutant("ssm.rtf_poly_from_diagonal", family=FAMILY, replaces="rtf_coefficients",
        caught_by=["ssm.rtf_similarity_invariance"])
def poly_from_diag(Ad: Any, Bd: Any, Ct: Any, **kw: Any) -> Any:
    """Denominator from the diagonal entries (prod (lam - Ad_ii)): right for triangular Ad only."""
    _a, b = ref.rtf_coefficients(Ad, Bd, Ct, **kw)
    return np.poly(np.diag(np.asarray(Ad)))[1:], b


@mutant("ssm.rtf_kernel_denominator_without_1", family=FAMILY, replaces="rtf_kernel",
        caught_by=["ssm.rtf_companion_realisation"])
def kernel_no_one(a: Any, b: Any, L: int) -> Any:
    """Kernel with the denominator padded as (a_1, ..., a_d, 0...) shifted into slot 0 plus 1 added only at the
    end: a_pad = (1 + a_1, a_2, ...) (leading coefficient merged)."""
    a = np.asarray(a, np.float64).copy()
    a[0] = a[0] + 1.0
    ap = np.zeros(L)
    ap[:a.size] = a
    bp = np.zeros(L)
    bp[:a.size] = np.asarray(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.fft.ifft(np.fft.fft(bp) / np.fft.fft(ap)).real


@mutant("ssm.rtf_companion_unnegated", family=FAMILY, replaces="companion",
        caught_by=["ssm.rtf_montel_stability"])
def companion_plus(a: Any, b: Any) -> Any:
    """Companion first row +a instead of -a, and |a| scaled up by 1.5 (poles pushed outward)."""
    Ac, e1, bb = ref.companion(a, b)
    Ac[0] = 1.5 * np.abs(np.asarray(a))
    return Ac, e1, bb


@mutant("ssm.rtf_inference_c_column_solve", family=FAMILY, replaces="rtf_inference_c",
        caught_by=["ssm.rtf_companion_realisation"])
def inference_column(a: Any, b: Any, L: int, **kw: Any) -> Any:
    """C from the column solve (I - Ac^L) c = b (the transposition in ruke1ire/RTF rtf.py ``get_C``)."""
    Ac, _, bb = ref.companion(a, b)
    return np.linalg.solve(np.eye(Ac.shape[0]) - np.linalg.matrix_power(Ac, L), bb)


@mutant("ssm.rtf_char_poly_float32", family=FAMILY, replaces="char_poly", caught_by=["ssm.rtf_companion_realisation"])
def char_poly_f32(M: Any, *, backend: Any = ref.F64) -> Any:
    """Faddeev-LeVerrier in float32 (mpmath path untouched)."""
    if not backend.is_float64:
        return ref.char_poly(M, backend=backend)
    A = np.asarray(M, np.float32)
    d = A.shape[0]
    Mk, out = np.eye(d, dtype=np.float32), []
    for k in range(1, d + 1):
        AM = A @ Mk
        ck = -np.trace(AM) / np.float32(k)
        out.append(ck)
        Mk = AM + ck * np.eye(d, dtype=np.float32)
    return np.array(out, np.float64)


@mutant("ssm.rtf_coefficients_float32", family=FAMILY, replaces="rtf_coefficients",
        caught_by=["ssm.rtf_mpmath_certificate"])
def coefficients_f32(Ad: Any, Bd: Any, Ct: Any, *, backend: Any = ref.F64) -> Any:
    """(a, b) from float32 inputs (a float32 pipeline), mpmath path untouched."""
    if not backend.is_float64:
        return ref.rtf_coefficients(Ad, Bd, Ct, backend=backend)

    def r(x: Any) -> Any:
        return np.asarray(x, np.float32).astype(np.float64)

    a, b = ref.rtf_coefficients(r(Ad), r(Bd), r(Ct))
    return r(a), r(b)


@mutant("ssm.rtf_kernel_repo_delay", family=FAMILY, replaces="rtf_kernel",
        caught_by=["ssm.rtf_zero_init_is_fir"])
def kernel_delay(a: Any, b: Any, L: int) -> Any:
    """Numerator padded with a leading 0 (the RTF repo's delay convention, h_0 = 0) used for Su's/S4's kernel:
    every tap shifted one step late."""
    bb = np.asarray(b, np.float64)
    return ref.rtf_kernel(np.concatenate([a, [0.0]]), np.concatenate([[0.0], bb]), L) if L >= bb.size + 2 else \
        np.roll(ref.rtf_kernel(a, b, L), 1)
