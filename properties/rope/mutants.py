"""Planted bugs in RoPE: oracle mutants (laws must fail) and kernel mutants (check(op="rope") must fail)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from veriformer import reference as ref
from veriformer.fast.rope import naive
from veriformer.properties.rope.strategies import RopeCase
from veriformer.properties.wrong_answers import LONG, wrong_answer_mutants
from veriformer.registry import mutant

# -- oracle mutants ---------------------------------------------------------------------------------


@mutant("rope.reflection_not_rotation", family="rope", replaces="rope",
        caught_by=["rope.relativity", "rope.norm_preservation", "rope.forms_agree"])
def rope_reflection(x: Any, positions: Any = None, **kw: Any) -> np.ndarray:
    """Sign slip in the second output of each pair: y_b = -x_a sin + x_b cos (not a rotation)."""
    x = np.asarray(x, np.float64)
    layout, r = kw.get("layout", "half"), kw.get("rotary_dim") or x.shape[-1]
    y = ref.rope(x, positions, **kw)
    _ia, ib = ref.rope_pairs(r, layout)
    y2 = ref.rope(x, None if positions is None else -np.asarray(positions), **kw)
    y[..., ib] = y2[..., ib]  # x_a sin(-t) + x_b cos(-t) = -x_a sin t + x_b cos t
    return y


@mutant("rope.matrix_transposed", family="rope", replaces="rope_rotation_matrix",
        caught_by=["rope.forms_agree"])
def matrix_transposed(position: int, dim: int, **kw: Any) -> np.ndarray:
    """Rotation matrix built with the sines swapped (R_n^T = R_{-n} returned for R_n).  Composition
    alone cannot see this (it is a consistent convention); the forms law does."""
    return ref.rope_rotation_matrix(position, dim, **kw).T


@mutant("rope.table_wraps_at_4096", family="rope", replaces="rope_rotation_matrix",
        caught_by=["rope.composition"])
def table_wraps(position: int, dim: int, **kw: Any) -> np.ndarray:
    """A cos/sin cache of 4096 positions indexed modulo its length (R_n = R_{n mod 4096})."""
    return ref.rope_rotation_matrix(int(position) % 4096, dim, **kw)


@mutant("rope.half_layout_pairs_adjacent", family="rope", replaces="rope",
        caught_by=["rope.half_equals_permuted_interleaved"])
def half_pairs_adjacent(x: Any, positions: Any = None, *, layout: str = "half", **kw: Any) -> np.ndarray:
    """layout="half" silently rotates adjacent pairs (the interleaved layout): layouts mixed up."""
    return ref.rope(x, positions, layout="interleaved", **kw)


@mutant("rope.complex_conjugate", family="rope", replaces="rope_complex", caught_by=["rope.forms_agree"])
def complex_conjugate(x: Any, positions: Any = None, **kw: Any) -> np.ndarray:
    """Complex form multiplied by exp(-i n theta) (conjugated phase)."""
    T = np.shape(x)[-2]
    pos = np.arange(T) if positions is None else np.asarray(positions)
    return ref.rope_complex(x, -pos, **kw)


@mutant("rope.partial_uses_head_dim_frequencies", family="rope", replaces="rope",
        caught_by=["rope.partial_rotation"])
def partial_head_dim_freqs(x: Any, positions: Any = None, *, base: float = 10000.0,
                           rotary_dim: int | None = None, **kw: Any) -> np.ndarray:
    """Partial rotary with frequencies base^(-2i/D) (head dim) instead of base^(-2i/rotary_dim)."""
    D = np.shape(x)[-1]
    r = rotary_dim or D
    return ref.rope(x, positions, base=base ** (r / D), rotary_dim=rotary_dim, **kw)


@mutant("rope.vjp_rotates_forward", family="rope", replaces="rope_vjp",
        caught_by=["rope.vjp_is_inverse_rotation"])
def vjp_forward(grad_y: Any, positions: Any = None, **kw: Any) -> np.ndarray:
    """Backward applies R_n instead of R_n^T (forgets to negate the angle)."""
    return ref.rope(grad_y, positions, **kw)


@mutant("rope.float32_angles", family="rope", replaces="rope", caught_by=["rope.mpmath_certificate"])
def float32_angles(x: Any, positions: Any = None, *, backend: Any = ref.F64, **kw: Any) -> np.ndarray:
    """float64 oracle whose angles n theta are formed in float32 (the classic HF-style shortcut)."""
    if not backend.is_float64:
        return ref.rope(x, positions, backend=backend, **kw)
    xt = torch.from_numpy(np.asarray(x, np.float64)).float()
    T = xt.shape[-2]
    pos = torch.arange(T) if positions is None else torch.as_tensor(np.asarray(positions))
    y = naive.rope(xt, pos, **{k: v for k, v in kw.items() if k in ("base", "layout", "rotary_dim")})
    return y.double().numpy()


# -- kernel mutants (torch callables under check(op="rope")) -----------------------------------------


@mutant("rope.kernel_positions_off_by_one", family="rope", op="rope", caught_by=["op:rope"])
def kernel_positions_off_by_one(x: torch.Tensor, positions: torch.Tensor, *, base: float) -> torch.Tensor:
    """Rotates token t by position p_t + 1 (1-based positions)."""
    return naive.rope(x, positions + 1, base=base)


@mutant("rope.kernel_base_ignored", family="rope", op="rope", caught_by=["op:rope"])
def kernel_base_ignored(x: torch.Tensor, positions: torch.Tensor, *, base: float) -> torch.Tensor:
    """Always uses base 10000, whatever base is passed."""
    return naive.rope(x, positions, base=10000.0)


@mutant("rope.kernel_interleaved_for_half", family="rope", op="rope", caught_by=["op:rope"])
def kernel_mixed_layout(x: torch.Tensor, positions: torch.Tensor, *, base: float) -> torch.Tensor:
    """Kernel configured for layout "half" that pairs adjacent features (GPT-J pairing)."""
    return naive.rope(x, positions, base=base, layout="interleaved")


@mutant("rope.kernel_angles_in_input_dtype", family="rope", op="rope", caught_by=["op:rope"],
        dtypes=("bfloat16",))
def kernel_low_precision_angles(x: torch.Tensor, positions: torch.Tensor, *, base: float) -> torch.Tensor:
    """Angles n theta formed in the input dtype (bf16): position 1000 is already off by ~4 radians."""
    r = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, r, 2, dtype=x.dtype) / r))
    ang = positions.to(x.dtype)[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    h = r // 2
    xa, xb = x[..., :h], x[..., h:]
    return torch.cat([xa * cos - xb * sin, xa * sin + xb * cos], dim=-1)


@mutant("rope.kernel_float32_angles", family="rope", op="rope", caught_by=["op:rope"], dtypes=("float32",))
def kernel_float32_angles(x: torch.Tensor, positions: torch.Tensor, *, base: float) -> torch.Tensor:
    """The usual HF transformers code: angles n theta formed in float32 (off by up to 0.06 rad at position 1e6).
    It passed while the naive baseline was the same code; against the careful baseline (float64 angles) it fails."""
    return naive.rope(x, positions, base=base)


# -- wrong answers at LLM lengths (veriformer.properties.wrong_answers) --------------------------------------

wrong_answer_mutants("rope", family="rope", seq_axis=-2,
                     cases=[RopeCase(B=1, H=1, T=n, D=16, positions="arange", seed=n) for n in LONG])
