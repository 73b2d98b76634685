"""Rotary position embedding (RoPE) oracles: elementwise, rotation-matrix and complex forms.

Layout: x [..., T, D] (e.g. [B, H, T, D]), positions int [T] (default ``0..T-1``, any integers allowed).
Only the first ``r = rotary_dim`` (default D, even) features rotate; the rest pass through unchanged.

Frequencies ``theta_i = base^(-2i/r)`` for ``i = 0..r/2-1``.  Pair i of a token at position n is rotated
by the angle ``n * theta_i``:  ``(a, b) -> (a cos - b sin, a sin + b cos)``.  The pairing is

* ``layout="interleaved"`` (GPT-J / RoFormer): pair i = features (2i, 2i+1);
* ``layout="half"`` (GPT-NeoX / HF Llama "rotate_half"): pair i = features (i, i + r/2).

The two are related by the fixed permutation P with ``(Px)_{2i} = x_i``, ``(Px)_{2i+1} = x_{i+r/2}``:
``half(x) = P^T interleaved(P x)``.  In the column convention ``rope(x, n) = R_n x`` with R_n
orthogonal, ``R_m^T R_n = R_{n-m}`` (relativity).

``scaling=`` (optional, every function): a frequency-scaling description such as ``{"type": "linear", "factor": 4}``
(position interpolation), ``{"type": "ntk", "factor": k}``, ``"ntk_base"``, ``"ntk_fixed"``, ``{"type": "mixed",
"factor": k, "gamma": g}`` or ``{"type": "dynamic", "factor": k, "original_max_position": L}``; the frequencies are
then :func:`veriformer.reference.positions.scaled_frequencies` (formulas and sources there).  ``None`` (default)
is plain RoPE, bit for bit as before.

Sources: Su et al. 2021 (RoFormer, arXiv 2104.09864); Su kexue.fm/archives/8265; GPT-NeoX rotary_pct for partial
rotation (frequencies use rotary_dim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veriformer.reference._validate import as_float64, as_positions, require, require_finite
from veriformer.reference.backends import F64, Backend, oracle

__all__ = [
    "LAYOUTS",
    "rope",
    "rope_complex",
    "rope_frequencies",
    "rope_layout_permutation",
    "rope_pairs",
    "rope_rotation_matrix",
    "rope_vjp",
]

LAYOUTS = ("half", "interleaved")


def _check_scaling(func: str, scaling: Any, positions: np.ndarray) -> Any:
    """Validate ``scaling``; a dynamic one without ``seq_len`` gets the positions' max + 1 frozen in (so the VJP,
    which negates the positions, uses the forward's frequencies)."""
    if scaling is None:
        return None
    from veriformer.reference.positions import validate_scaling

    sc = validate_scaling(scaling, func)
    if sc is not None and sc["type"] == "dynamic" and "seq_len" not in sc:
        sc["seq_len"] = max(int(np.max(positions)) + 1, 1) if positions.size else int(sc["original_max_position"])
    return sc


def _check_config(func: str, D: int, base: float, layout: str, rotary_dim: int | None) -> int:
    require(layout in LAYOUTS, func, "layout", "'half' or 'interleaved'", repr(layout))
    require(isinstance(base, float | int | np.floating) and np.isfinite(base) and base > 1, func, "base",
            "a finite float > 1", repr(base))
    r = D if rotary_dim is None else rotary_dim
    if rotary_dim is None:
        require(D % 2 == 0 and D >= 2, func, "x", "of even head dim D >= 2 (RoPE rotates pairs)",
                f"D={D}")
    else:
        require(isinstance(r, int | np.integer) and 2 <= r <= D and r % 2 == 0, func, "rotary_dim",
                f"an even int in [2, D={D}]", repr(rotary_dim))
    return int(r)


def rope_pairs(rotary_dim: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices (a, b) of the r/2 rotated pairs: a_i, b_i for pair i with frequency theta_i."""
    half = rotary_dim // 2
    if layout == "interleaved":
        return np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2)
    return np.arange(half), np.arange(half, rotary_dim)


def rope_layout_permutation(dim: int) -> np.ndarray:
    """Index array P (as ``x[P]``) mapping the half layout onto the interleaved one:
    ``(Px)_{2i} = x_i``, ``(Px)_{2i+1} = x_{i+dim/2}``.  Derived here (GPT-NeoX vs GPT-J layouts)."""
    require(dim % 2 == 0 and dim >= 2, "rope_layout_permutation", "dim", "an even int >= 2", dim)
    return np.stack([np.arange(dim // 2), np.arange(dim // 2, dim)], axis=1).reshape(-1)


@oracle
def rope_frequencies(rotary_dim: int, base: float = 10000.0, *, scaling: Any = None, positions: Any = None,
                     backend: Backend = F64) -> Any:
    """``theta_i = base^(-2i/rotary_dim)``, i = 0..rotary_dim/2-1, in backend precision (float64 result
    for F64, mpf objects for MP); with ``scaling`` the scaled frequencies of
    :func:`veriformer.reference.positions.scaled_frequencies` (``positions`` only for the dynamic type)."""
    if scaling is not None:
        from veriformer.reference.positions import scaled_frequencies

        return scaled_frequencies(rotary_dim, base, scaling, positions=positions, backend=backend)
    xp = backend
    i = np.arange(rotary_dim // 2)
    if xp.is_float64:
        return np.power(float(base), -2.0 * i / rotary_dim)
    return xp.power(xp.scalar(base), np.array([xp.scalar(-2 * int(t)) / rotary_dim for t in i],
                                              dtype=object))


def _angles(xp: Backend, positions: np.ndarray, rotary_dim: int, base: float, scaling: Any = None) -> Any:
    """[T, r/2] angles ``n * theta_i`` in backend precision (exact integer positions)."""
    theta = rope_frequencies(rotary_dim, base, scaling=scaling, positions=positions, backend=xp)
    return xp.asarray(positions.astype(np.float64))[:, None] * np.asarray(theta)[None, :]


@oracle
def rope(x: Any, positions: Any = None, *, base: float = 10000.0, layout: str = "half",
         rotary_dim: int | None = None, scaling: Any = None, backend: Backend = F64) -> np.ndarray:
    """Rotate x [..., T, D] by RoPE at integer ``positions`` [T]; returns float64 [..., T, D].

    ``y_a = x_a cos(n theta_i) - x_b sin(n theta_i)``, ``y_b = x_a sin(n theta_i) + x_b cos(n theta_i)``
    for each pair (a, b) of the layout; features ``>= rotary_dim`` are copied.  Angles are formed in the
    backend's precision (float64 or mpmath), never rounded lower.  ``scaling``: module docstring.
    Source: see module docstring.
    """
    func = "rope"
    a = as_float64(x, func, "x")
    require(a.ndim >= 2, func, "x", "of shape [..., T, D] (rank >= 2)", f"shape {a.shape}")
    require_finite(a, func, "x")
    T, D = a.shape[-2:]
    require(T >= 1, func, "x", "a non-empty sequence (T >= 1)", f"shape {a.shape}")
    r = _check_config(func, D, base, layout, rotary_dim)
    pos = as_positions(positions, T, func)
    sc = _check_scaling(func, scaling, pos)
    xp = backend
    ang = _angles(xp, pos, r, base, sc)
    cos, sin = xp.cos(ang), xp.sin(ang)
    ia, ib = rope_pairs(r, layout)
    xa, xb = xp.asarray(a[..., ia]), xp.asarray(a[..., ib])
    out = xp.asarray(a).copy()
    out[..., ia] = xa * cos - xb * sin
    out[..., ib] = xa * sin + xb * cos
    return xp.to_float64(out)


def rope_vjp(grad_y: Any, positions: Any = None, *, base: float = 10000.0, layout: str = "half",
             rotary_dim: int | None = None, scaling: Any = None, backend: Backend = F64) -> np.ndarray:
    """VJP of :func:`rope` with respect to x: ``R_n^T g = R_{-n} g`` (the inverse rotation), layout
    [..., T, D]; the same (scaled) frequencies as the forward.  Source: orthogonality of R_n (Su et al. 2021)."""
    T = np.shape(grad_y)[-2] if np.ndim(grad_y) >= 2 else 0
    pos = as_positions(positions, T, "rope_vjp")
    sc = _check_scaling("rope_vjp", scaling, pos)
    return rope(grad_y, -pos, base=base, layout=layout, rotary_dim=rotary_dim, scaling=sc, backend=backend)


@oracle
def rope_rotation_matrix(position: int, dim: int, *, base: float = 10000.0, layout: str = "half",
                         rotary_dim: int | None = None, scaling: Any = None, backend: Backend = F64) -> np.ndarray:
    """The [dim, dim] orthogonal matrix R_n with ``rope(x, n) = R_n x`` (column convention).

    Block-diagonal 2x2 rotations ``[[cos, -sin], [sin, cos]]`` on each pair (a_i, b_i); identity on the
    features >= rotary_dim.  Source: Su et al. 2021, eq. (15).
    """
    func = "rope_rotation_matrix"
    require(isinstance(position, int | np.integer), func, "position", "an int", repr(position))
    r = _check_config(func, dim, base, layout, rotary_dim)
    sc = _check_scaling(func, scaling, np.array([position]))
    xp = backend
    ang = _angles(xp, np.array([position]), r, base, sc)[0]
    cos, sin = xp.cos(ang), xp.sin(ang)
    R = xp.zeros((dim, dim))
    for t in range(r, dim):
        R[t, t] = xp.scalar(1.0)
    for i, (ia, ib) in enumerate(zip(*rope_pairs(r, layout), strict=True)):
        R[ia, ia], R[ia, ib] = cos[i], -sin[i]
        R[ib, ia], R[ib, ib] = sin[i], cos[i]
    return xp.to_float64(R)


@oracle
def rope_complex(x: Any, positions: Any = None, *, base: float = 10000.0, layout: str = "half",
                 rotary_dim: int | None = None, scaling: Any = None, backend: Backend = F64) -> np.ndarray:
    """RoPE as complex multiplication: ``z_i = x_a + i x_b``, ``z_i <- z_i exp(i n theta_i)``, then back to
    the real pairs.  Layout [..., T, D] as :func:`rope`.  Source: Su et al. 2021 section 3.2."""
    func = "rope_complex"
    a = as_float64(x, func, "x")
    require(a.ndim >= 2, func, "x", "of shape [..., T, D] (rank >= 2)", f"shape {a.shape}")
    require_finite(a, func, "x")
    T, D = a.shape[-2:]
    r = _check_config(func, D, base, layout, rotary_dim)
    pos = as_positions(positions, T, func)
    sc = _check_scaling(func, scaling, pos)
    xp = backend
    ia, ib = rope_pairs(r, layout)
    z = xp.complex(xp.asarray(a[..., ia]), xp.asarray(a[..., ib])) * xp.expi(_angles(xp, pos, r, base, sc))
    out = xp.asarray(a).copy()
    out[..., ia] = xp.real(z)
    out[..., ib] = xp.imag(z)
    return xp.to_float64(out)
