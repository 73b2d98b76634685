"""Edge regions of the ssm ops' input spaces and the corner cases that reach them in every campaign (see
``veriformer.properties.regions``)."""

from __future__ import annotations

from typing import Any

from veriformer.properties.regions import Regions, needs
from veriformer.properties.ssm.strategies import ConvCase, S4DCase, ScanCase, SSDCase
from veriformer.properties.ssm.strategies_chunk_scan import MambaChunkCase

__all__ = [
    "CONV_REGIONS",
    "MAMBA_CHUNK_REGIONS",
    "S4D_REGIONS",
    "SCAN_REGIONS",
    "SSD_REGIONS",
    "conv_corners",
    "mamba_chunk_corners",
    "s4d_corners",
    "scan_corners",
    "ssd_corners",
]


SCAN_REGIONS = Regions({
    "L=1": (needs(), lambda c: c.L == 1),
    "D": (needs("D"), lambda c: c.use_D),
    "z gate": (needs("z"), lambda c: c.use_z),
    "delta bias": (needs("delta_bias"), lambda c: c.use_bias),
    "softplus": (needs("delta_softplus"), lambda c: c.softplus),
    "last state": (needs("return_last_state"), lambda c: c.last_state),
    "variable B/C": (needs("variable_BC"), lambda c: c.bc == "variable"),
    "grouped B/C": (needs("grouped_BC"), lambda c: c.bc == "grouped"),
    "complex A": (needs("complex_A"), lambda c: c.complex_A),
})


def scan_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[ScanCase]:
    f = features
    bc = "variable" if "variable_BC" in f else "constant"
    return [
        ScanCase(b=1, d=2, n=4, L=70, bc="grouped" if "grouped_BC" in f else bc, groups=2 if "grouped_BC" in f else 1,
                 use_D="D" in f, use_z="z" in f, use_bias="delta_bias" in f, softplus="delta_softplus" in f,
                 last_state="return_last_state" in f, seed=301),
        ScanCase(b=2, d=2, n=2, L=1, bc=bc, seed=302),
        *([ScanCase(b=1, d=2, n=4, L=9, bc="constant", use_D="D" in f, complex_A=True, seed=303)]
          if "complex_A" in f else []),
    ]


SSD_REGIONS = Regions({
    "one chunk": (needs(), lambda c: c.chunks == 1),
    "several chunks": (needs(), lambda c: c.chunks > 1),
    "chunk size 1": (needs(), lambda c: c.chunk_size == 1),
    "mild decay": (needs(), lambda c: c.decay == "mild"),
    "zero decay": (needs(), lambda c: c.decay == "zero"),
    "steep decay": (needs(), lambda c: c.decay == "steep"),
    "initial states": (needs("initial_states"), lambda c: c.initial),
})


def ssd_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[SSDCase]:
    init = "initial_states" in features
    return [SSDCase(b=1, h=1, p=3, n=4, chunks=3, chunk_size=4, decay="steep", initial=init, seed=501),
            SSDCase(b=1, h=2, p=1, n=1, chunks=1, chunk_size=1, decay="zero", seed=502),
            SSDCase(b=2, h=1, p=2, n=4, chunks=2, chunk_size=8, decay="mild", seed=503)]


MAMBA_CHUNK_REGIONS = Regions({
    "l=1": (needs(), lambda c: c.l == 1),
    "several chunks plus a partial one": (needs(), lambda c: c.l > c.chunk_size and c.l % c.chunk_size != 0),
    "mild decay": (needs(), lambda c: c.decay == "mild"),
    "steep decay": (needs(), lambda c: c.decay == "steep"),
    "grouped B/C": (needs("grouped"), lambda c: c.g < c.h),
    "D per head": (needs("D"), lambda c: c.D == "h"),
    "D per head and channel": (needs("D"), lambda c: c.D == "hp"),
    "z gate": (needs("z"), lambda c: c.z),
    "dt bias": (needs("dt_bias"), lambda c: c.bias),
    "softplus": (needs("dt_softplus"), lambda c: c.softplus),
    "initial states": (needs("initial_states"), lambda c: c.initial),
    "final states": (needs("return_final_states"), lambda c: c.final),
})


def mamba_chunk_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[MambaChunkCase]:
    f = features
    return [MambaChunkCase(b=1, l=11, h=4, g=2 if "grouped" in f else 4, p=3, n=4, chunk_size=4, decay="steep",
                           D="hp" if "D" in f else "none", z="z" in f, bias="dt_bias" in f,
                           softplus="dt_softplus" in f, initial="initial_states" in f,
                           final="return_final_states" in f, seed=601),
            MambaChunkCase(b=1, l=1, h=2, g=2, p=2, n=2, chunk_size=4, D="h" if "D" in f else "none", seed=602)]


CONV_REGIONS = Regions({
    "L=1": (needs(), lambda c: c.L == 1),
    "long kernel (L >= 100)": (needs(), lambda c: c.L >= 100),
    "decaying kernel": (needs(), lambda c: c.kernel == "decay"),
    "flat kernel": (needs(), lambda c: c.kernel == "flat"),
    "impulse kernel": (needs(), lambda c: c.kernel == "impulse"),
    "tiny or large amplitude": (needs(), lambda c: c.amp != 1.0),
})


def conv_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[ConvCase]:
    return [ConvCase(B=1, C=2, L=1, kernel="impulse", amp=1.0, seed=801),
            ConvCase(B=1, C=1, L=257, kernel="flat", amp=30.0, seed=802)]


S4D_REGIONS = Regions({
    "L=1": (needs(), lambda c: c.L == 1),
    "one eigenvalue": (needs(), lambda c: c.N2 == 1),
    "S4D-Lin init": (needs(), lambda c: c.init == "lin"),
    "random init": (needs(), lambda c: c.init == "random"),
    "long kernel (L >= 128)": (needs(), lambda c: c.L >= 128),
})


def s4d_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[S4DCase]:
    return [S4DCase(H=1, N2=1, L=1, init="lin", random_B=False, seed=901),
            S4DCase(H=2, N2=16, L=200, init="random", random_B=True, seed=902)]
