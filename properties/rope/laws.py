"""Laws of rotary position embedding (Su et al. 2021, arXiv 2104.09864)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.rope.strategies import RopeCase, rope_cases
from veriformer.reference import MP
from veriformer.registry import law

U = 2.0**-53
SRC = "Su et al. 2021 (RoFormer); Su kexue.fm/archives/8265, 10040"


def _kw(case: RopeCase) -> dict[str, Any]:
    return {"base": case.base, "layout": case.layout}


def _angle_terms(pos: np.ndarray) -> float:
    """Rounding budget of rotations: the angle n theta carries error ~ u |n| (theta_0 = 1)."""
    return 8 + 4 * float(np.abs(pos).max())


@law("rope.relativity", family="rope", source=SRC)
def relativity(ref: Any, case: RopeCase = rope_cases(max_position=10**4),
               shift: int = st.integers(-5000, 5000)) -> Agreement:
    """Shifting every position by the same c leaves all scores <R_m q, R_n k> unchanged: they depend
    on n - m only."""
    a = case.arrays()
    x, pos = a["x"], a["positions"]
    q, k = x, np.roll(x, 1, axis=-2)

    def scores(p: np.ndarray) -> np.ndarray:
        return ref.rope(q, p, **_kw(case)) @ np.swapaxes(ref.rope(k, p, **_kw(case)), -1, -2)

    s0 = scores(pos)
    return Agreement(scores(pos + shift), s0, "scores(pos + c) == scores(pos)",
                     terms=case.D + 2 * _angle_terms(pos) + 2 * _angle_terms(pos + shift),
                     scale=float(np.linalg.norm(x, axis=-1).max() ** 2))


@law("rope.norm_preservation", family="rope", source=SRC)
def norm_preservation(ref: Any, case: RopeCase = rope_cases()) -> Agreement:
    """R_n is orthogonal: every token keeps its Euclidean norm."""
    a = case.arrays()
    y = ref.rope(a["x"], a["positions"], **_kw(case))
    return Agreement(np.linalg.norm(y, axis=-1), np.linalg.norm(a["x"], axis=-1), "||R_n x|| == ||x||",
                     terms=case.D + 8)


@law("rope.composition", family="rope", source=SRC)
def composition(ref: Any, m: int = st.integers(-10**4, 10**4), n: int = st.integers(-10**4, 10**4),
                dim: int = st.sampled_from((2, 4, 6, 16, 64)),
                layout: str = st.sampled_from(("half", "interleaved")),
                base: float = st.sampled_from((10000.0, 10.0, 5e5))) -> Agreement:
    """R_m^T R_n = R_{n-m} (column convention), in either layout."""
    Rm = ref.rope_rotation_matrix(m, dim, base=base, layout=layout)
    Rn = ref.rope_rotation_matrix(n, dim, base=base, layout=layout)
    Rd = ref.rope_rotation_matrix(n - m, dim, base=base, layout=layout)
    return Agreement(Rm.T @ Rn, Rd, "R_m^T R_n == R_(n-m)", terms=8 + 4 * (abs(m) + abs(n)), scale=1.0)


@law("rope.half_equals_permuted_interleaved", family="rope", source=SRC + "; GPT-NeoX rotate_half")
def half_vs_interleaved(ref: Any, case: RopeCase = rope_cases(layout="half")) -> Agreement:
    """half(x) = P^T interleaved(P x) with (Px)_{2i} = x_i, (Px)_{2i+1} = x_{i+D/2}: the two layouts
    agree after the fixed permutation (and only after it)."""
    a = case.arrays()
    P = ref.rope_layout_permutation(case.D)
    inv = np.argsort(P)
    y = ref.rope(a["x"], a["positions"], base=case.base, layout="half")
    yi = ref.rope(a["x"][..., P], a["positions"], base=case.base, layout="interleaved")[..., inv]
    return Agreement(y, yi, "half == P^T interleaved P", terms=4, scale=np.abs(a["x"]).max())


@law("rope.forms_agree", family="rope", source=SRC + " (eq. 13-16: matrix and complex forms)")
def forms_agree(ref: Any, case: RopeCase = rope_cases(max_T=8, max_D=64)) -> list[Agreement]:
    """The elementwise form, the complex form z e^{i n theta}, and the rotation matrix R_n x agree."""
    a = case.arrays()
    x, pos = a["x"], a["positions"]
    y = ref.rope(x, pos, **_kw(case))
    yc = ref.rope_complex(x, pos, **_kw(case))
    ym = np.stack([x[..., t, :] @ ref.rope_rotation_matrix(int(p), case.D, **_kw(case)).T
                   for t, p in enumerate(pos)], axis=-2)
    t = _angle_terms(pos) + case.D
    sc = float(np.abs(x).max())
    return [Agreement(yc, y, "complex == elementwise", terms=t, scale=sc),
            Agreement(ym, y, "matrix == elementwise", terms=t, scale=sc)]


@law("rope.partial_rotation", family="rope", source=SRC + "; GPT-NeoX rotary_pct (partial rotary)")
def partial_rotation(ref: Any, case: RopeCase = rope_cases(), frac: float = st.floats(0.0, 1.0)) -> list[Any]:
    """With rotary_dim r < D the features >= r are untouched and the first r equal full RoPE of the
    r-dimensional sub-vector (frequencies base^(-2i/r))."""
    r = 2 * max(1, round(frac * case.D / 2))
    a = case.arrays()
    y = ref.rope(a["x"], a["positions"], rotary_dim=r, **_kw(case))
    head = ref.rope(a["x"][..., :r], a["positions"], **_kw(case))
    return [Agreement(y[..., r:], a["x"][..., r:], "features >= r unchanged", atol=0.0, tolerance="law.defined"),
            Agreement(y[..., :r], head, "first r == RoPE of the sub-vector", terms=4,
                      scale=np.abs(a["x"]).max())]


@law("rope.vjp_is_inverse_rotation", family="rope", source=SRC + " (orthogonality)")
def vjp_inverse(ref: Any, case: RopeCase = rope_cases()) -> list[Agreement]:
    """The VJP is the transpose R_n^T: <R_n x, g> = <x, R_n^T g>, and R_n^T R_n x = x."""
    a = case.arrays()
    x, pos = a["x"], a["positions"]
    g = np.random.default_rng(case.seed + 1).standard_normal(x.shape)
    y = ref.rope(x, pos, **_kw(case))
    gx = ref.rope_vjp(g, pos, **_kw(case))
    t = _angle_terms(pos) + case.D
    return [Agreement(np.sum(y * g, -1), np.sum(x * gx, -1), "<R x, g> == <x, R^T g>", terms=t,
                      scale=float(np.max(np.sum(np.abs(x), -1) * np.abs(g).max()))),
            Agreement(ref.rope_vjp(y, pos, **_kw(case)), x, "R^T R x == x", terms=t, scale=np.abs(x).max())]


@law("rope.mpmath_certificate", family="rope", kind="certificate", max_examples=15,
     source="mpmath at 40 digits; Higham 2002 ch. 2 (rounding of sin/cos arguments)")
def mpmath_certificate(ref: Any, case: RopeCase = rope_cases(max_T=4, max_D=8)) -> Agreement:
    """The float64 RoPE oracle agrees with the same code in mpmath (40 digits) within
    4 u max|x| (4 + 2 max|n theta|): theta_i = base^(-2i/r) and n theta carry a relative error of a few u,
    i.e. an absolute angle error ~ u |n theta| that a rotation passes on at |x| scale."""
    case = dataclasses.replace(case, B=1, H=1)
    a = case.arrays()
    y = ref.rope(a["x"], a["positions"], **_kw(case))
    ym = ref.rope(a["x"], a["positions"], backend=MP(40), **_kw(case))
    bound = 4 * U * float(np.abs(a["x"]).max()) * (4 + 2 * float(np.abs(a["positions"]).max()))
    return Agreement(y, ym, "float64 rope == mpmath rope", atol=bound, tolerance="law.certificate")
