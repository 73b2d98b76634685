"""Hypothesis strategies of the positions family: printable ``*Case`` dataclasses with ``.arrays()``.

They reach the edges the issue names: scaling factors 1 and large, gamma = 0 and 1, dynamic NTK below and above
the original length; ReRoPE windows 0, 1, beyond the sequence, leak 1, integer, huge and < 1 (inverse Leaky);
RoPE-2D in both layouts with negative and half-integer coordinates; images of one patch and non-square images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "ReropeCase",
    "Rope2DCase",
    "RopeScalingCase",
    "SegmentsCase",
    "rerope_cases",
    "rerope_op_cases",
    "rope2d_cases",
    "scaling_cases",
    "scaling_descriptions",
    "segments_cases",
]


@dataclass(frozen=True)
class RopeScalingCase:
    """x [B, H, T, D] at integer positions (``arange`` + offset) under ``scaling`` (a dict, see
    :mod:`veriformer.reference.positions`), as a tuple of items so the case stays hashable."""

    T: int
    D: int
    scaling: tuple[tuple[str, Any], ...]
    base: float = 10000.0
    offset: int = 0
    B: int = 1
    H: int = 1
    seed: int = 0

    @property
    def scaling_dict(self) -> dict[str, Any]:
        return dict(self.scaling)

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return {"x": rng.standard_normal((self.B, self.H, self.T, self.D)),
                "positions": (np.arange(self.T) + self.offset).astype(np.int64)}


@st.composite
def scaling_descriptions(draw: Any, types: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A ``scaling=`` dict of any type (or of ``types``): factor 1, small, 4, 8, 12, 16, 64; gamma 0, 0.625, 0.75,
    1 or drawn; dynamic with original lengths below and above the positions used."""
    t = draw(st.sampled_from(types or ("linear", "ntk", "ntk_base", "ntk_fixed", "mixed", "dynamic")))
    k = draw(st.sampled_from((1.0, 1.5, 4.0, 8.0, 12.0, 16.0, 64.0)))
    sc: dict[str, Any] = {"type": t, "factor": k}
    if t == "mixed":
        sc["gamma"] = draw(st.one_of(st.sampled_from((0.0, 0.625, 0.75, 1.0)), st.floats(0.0, 1.0)))
    if t == "dynamic":
        sc["original_max_position"] = draw(st.sampled_from((1, 8, 64, 4096)))
    return sc


@st.composite
def scaling_cases(draw: Any, types: tuple[str, ...] | None = None, max_T: int = 16) -> RopeScalingCase:
    sc = draw(scaling_descriptions(types))
    return RopeScalingCase(T=draw(st.integers(1, max_T)), D=2 * draw(st.sampled_from((1, 2, 4, 8, 32, 64))),
                           scaling=tuple(sorted(sc.items())), base=draw(st.sampled_from((10000.0, 500000.0, 10.5))),
                           offset=draw(st.sampled_from((0, 7, 4096, 10**5))), seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class ReropeCase:
    """q [B, H, T, D], k [B, H, S, D] (queries end-aligned at S-T..S-1, keys 0..S-1), window w, leak k
    (``math.inf``: ReRoPE; 1: RoPE; < 1: inverse Leaky ReRoPE)."""

    T: int
    S: int
    D: int
    window: int
    leak: float = math.inf
    base: float = 10000.0
    layout: str = "half"
    B: int = 1
    H: int = 2
    seed: int = 0
    Hkv: int | None = None  # kv heads (GQA when it divides H; None: H)

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        hk = self.H if self.Hkv is None else self.Hkv
        return {"q": rng.standard_normal((self.B, self.H, self.T, self.D)),
                "k": rng.standard_normal((self.B, hk, self.S, self.D)),
                "v": rng.standard_normal((self.B, hk, self.S, self.D))}


@st.composite
def rerope_cases(draw: Any, leaks: tuple[float, ...] = (math.inf, 1.0, 2.0, 16.0, 0.25, 0.5, 3.5),
                 max_S: int = 24) -> ReropeCase:
    S = draw(st.integers(1, max_S))
    T = draw(st.one_of(st.just(S), st.integers(1, S)))
    return ReropeCase(T=T, S=S, D=2 * draw(st.sampled_from((1, 2, 4, 8, 16))),
                      window=draw(st.one_of(st.sampled_from((0, 1, 2, S - 1, S, S + 5)), st.integers(0, max_S))),
                      leak=draw(st.sampled_from(leaks)), base=draw(st.sampled_from((10000.0, 10.0, 500000.0))),
                      layout=draw(st.sampled_from(("half", "interleaved"))), seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class Rope2DCase:
    """x [B, H, T, D] at 2-D (or 3-D) coordinates [T, axes] drawn in +-max_coord (halves allowed)."""

    T: int
    D: int
    layout: str = "interleaved"
    pairing: str = "interleaved"
    axes: int = 2
    max_coord: int = 64
    halves: bool = False
    seed: int = 0

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        c = rng.integers(-self.max_coord, self.max_coord + 1, (self.T, self.axes)).astype(np.float64)
        if self.halves:
            c = c / 2
        return {"x": rng.standard_normal((1, 2, self.T, self.D)), "coords": c}


@st.composite
def rope2d_cases(draw: Any, axes: int = 2) -> Rope2DCase:
    return Rope2DCase(T=draw(st.integers(1, 12)), D=4 * draw(st.sampled_from((1, 2, 4, 8, 16, 32))),
                      layout=draw(st.sampled_from(("interleaved", "split"))),
                      pairing=draw(st.sampled_from(("half", "interleaved"))), axes=axes,
                      max_coord=draw(st.sampled_from((1, 64, 4096))), halves=draw(st.booleans()),
                      seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class SegmentsCase:
    """A token sequence as segments ``("text", n)`` and ``("image", h, w)`` (``("image", t, h, w)`` for M-RoPE,
    with t = 1 unless ``video``)."""

    segments: tuple[tuple[Any, ...], ...]

    def for_mrope(self, t: int = 1) -> list[tuple[Any, ...]]:
        return [s if s[0] == "text" else ("image", t, s[1], s[2]) for s in self.segments]


@st.composite
def segments_cases(draw: Any) -> SegmentsCase:
    n = draw(st.integers(1, 5))
    segs: list[tuple[Any, ...]] = []
    for _ in range(n):
        if draw(st.booleans()):
            segs.append(("text", draw(st.integers(1, 6))))
        else:
            segs.append(("image", draw(st.integers(1, 5)), draw(st.integers(1, 5))))
    return SegmentsCase(tuple(segs))


@st.composite
def rerope_op_cases(draw: Any, max_S: int = 48, features: frozenset[str] = frozenset()) -> ReropeCase:
    """Cases of op ``rerope_attention``: leaks that a table/linear-scaling kernel supports (ReRoPE, RoPE, integer
    Leaky k), windows 0, 1, inside, at and beyond the sequence; T = 1 decodes included; with feature ``gqa``, kv
    head counts dividing H (one kv head included)."""
    S = draw(st.integers(1, max_S))
    T = draw(st.one_of(st.just(1), st.just(S), st.integers(1, S)))
    H = draw(st.sampled_from((1, 2, 3, 4, 6)) if "gqa" in features else st.integers(1, 3))
    Hkv = draw(st.sampled_from([d for d in range(1, H + 1) if H % d == 0])) if "gqa" in features else None
    return ReropeCase(T=T, S=S, D=2 * draw(st.sampled_from((1, 2, 4, 8, 16, 32))),
                      window=draw(st.one_of(st.sampled_from((0, 1, S - 1, S, S + 5)), st.integers(0, max_S))),
                      leak=draw(st.sampled_from((math.inf, 1.0, 2.0, 16.0))),
                      base=draw(st.sampled_from((10000.0, 10.0, 500000.0))), B=draw(st.integers(1, 2)),
                      H=H, Hkv=Hkv, seed=draw(st.integers(0, 2**32 - 1)))
