"""Edge regions of each op's input space, and explicit corner cases that reach them in every campaign.

A :class:`Regions` names predicates on cases (with the features each needs); ``check()`` records the regions
each case lies in, the summary's coverage line lists the regions hit and missed, and the op's corner cases
(run before the drawn ones, in every profile) make sure a ci campaign reaches every region whatever Hypothesis
draws.  ``tests/test_reach.py`` proves it: every reachable region is hit at least once per ci campaign.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .linear_attention_strategies import LinearAttentionCase, VQCase
from .mamba_chunk_scan_strategies import MambaChunkCase
from .ssm_strategies import ConvCase, S4DCase, ScanCase, SSDCase
from .strategies import MAX_LOGIT, AttentionCase, RopeCase

__all__ = [
    "ATTENTION_REGIONS",
    "CONV_REGIONS",
    "LINEAR_ATTENTION_REGIONS",
    "MAMBA_CHUNK_REGIONS",
    "ROPE_REGIONS",
    "S4D_REGIONS",
    "SCAN_REGIONS",
    "SSD_REGIONS",
    "VQ_REGIONS",
    "Regions",
    "attention_corners",
    "conv_corners",
    "linear_attention_corners",
    "mamba_chunk_corners",
    "rope_corners",
    "s4d_corners",
    "scan_corners",
    "ssd_corners",
    "vq_corners",
]


@dataclass(frozen=True)
class Regions:
    """Named predicates ``name -> (features needed, predicate(case))``; calling it gives a case's regions."""

    table: dict[str, tuple[frozenset[str], Callable[[Any], bool]]]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.table)

    def reachable(self, features: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
        """The regions whose features are all drawn."""
        f = frozenset(features)
        return frozenset(n for n, (need, _) in self.table.items() if need <= f)

    def __call__(self, case: Any) -> frozenset[str]:
        return frozenset(n for n, (_, pred) in self.table.items() if pred(case))


def _r(*features: str) -> frozenset[str]:
    return frozenset(features)


ATTENTION_REGIONS = Regions({
    "T=1": (_r(), lambda c: c.T == 1),
    "S=1": (_r(), lambda c: c.S == 1),
    "T<S": (_r(), lambda c: c.T < c.S),
    "T=S": (_r(), lambda c: c.T == c.S),
    "causal T<S": (_r("causal"), lambda c: c.causal and 1 < c.T < c.S),
    "gqa": (_r("gqa"), lambda c: c.H > c.Hkv),
    "window>=S": (_r("window"), lambda c: c.window is not None and c.window >= c.S),
    "window=1": (_r("window"), lambda c: c.window == 1),
    "sinks with causal": (_r("sinks", "window", "causal"), lambda c: c.sinks > 0 and c.causal),
    "fully masked rows": (_r("mask"), lambda c: c.mask is not None),
    "additive mask": (_r("mask"), lambda c: c.mask == "additive"),
    "huge logits": (_r(), lambda c: c.amp >= 100),
    "non-default scale": (_r(), lambda c: c.scale is not None),
})


def attention_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[AttentionCase]:
    """Four cases that together reach every region their features allow."""
    causal = "causal" in features
    hkv = 1 if "gqa" in features else 2
    win = "window" in features
    sinks = 2 if "sinks" in features and win else 0
    amp = min(1e4, MAX_LOGIT[dtype])
    return [
        AttentionCase(B=1, H=2, Hkv=hkv, T=5, S=11, D=8, Dv=8, causal=causal, window=3 if win else None,
                      sinks=sinks, seed=101),
        AttentionCase(B=1, H=2, Hkv=2, T=6, S=6, D=16, Dv=8, causal=causal, window=9 if win else None,
                      mask="bool" if "mask" in features else None, scale=0.3, seed=102),
        AttentionCase(B=2, H=2, Hkv=hkv, T=1, S=1, D=4, Dv=4, window=1 if win else None, amp=amp, seed=103),
        AttentionCase(B=1, H=2, Hkv=2, T=3, S=9, D=8, Dv=8, causal=causal,
                      mask="additive" if "mask" in features else None, amp=8.0, seed=104),
    ]


LINEAR_ATTENTION_REGIONS = Regions({
    "T=1": (_r(), lambda c: c.T == 1),
    "several chunks plus a partial one": (_r(), lambda c: c.T > 64 and c.T % 64 != 0),
    "no gate": (_r(), lambda c: c.gate is None),
    "mild decay": (_r("gate"), lambda c: c.gate is not None and c.gate <= 0.1),
    "strong decay": (_r("gate"), lambda c: c.gate is not None and c.gate >= 5.0),
    "initial state": (_r("initial_state"), lambda c: c.initial_state),
    "final state": (_r(), lambda c: c.output_final_state),
    "non-default scale": (_r(), lambda c: c.scale is not None),
})


def linear_attention_corners(features: frozenset[str], dtype: str,
                             opts: dict[str, Any]) -> list[LinearAttentionCase]:
    gate = "gate" in features
    init = "initial_state" in features
    return [
        LinearAttentionCase(B=1, T=130, H=1, K=4, V=4, gate=0.05 if gate else None, initial_state=init,
                            output_final_state=True, scale=0.5, seed=201),
        LinearAttentionCase(B=2, T=1, H=2, K=8, V=4, initial_state=init, seed=202),
        LinearAttentionCase(B=1, T=20, H=2, K=4, V=8, gate=5.0 if gate else None, output_final_state=True,
                            seed=203),
    ]


SCAN_REGIONS = Regions({
    "L=1": (_r(), lambda c: c.L == 1),
    "D": (_r("D"), lambda c: c.use_D),
    "z gate": (_r("z"), lambda c: c.use_z),
    "delta bias": (_r("delta_bias"), lambda c: c.use_bias),
    "softplus": (_r("delta_softplus"), lambda c: c.softplus),
    "last state": (_r("return_last_state"), lambda c: c.last_state),
    "variable B/C": (_r("variable_BC"), lambda c: c.bc == "variable"),
    "grouped B/C": (_r("grouped_BC"), lambda c: c.bc == "grouped"),
    "complex A": (_r("complex_A"), lambda c: c.complex_A),
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


ROPE_REGIONS = Regions({
    "T=1": (_r(), lambda c: c.T == 1),
    "positions >= 65536": (_r(), lambda c: (c.positions == "offset" and c.offset >= 65536)
                           or (c.positions in ("random", "signed") and c.max_position >= 65536)),
    "negative positions": (_r(), lambda c: c.positions == "signed"),
    "decode offset": (_r(), lambda c: c.positions == "offset"),
    "large amplitude": (_r(), lambda c: c.amp >= 100),
})


def rope_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[RopeCase]:
    rd = opts.get("rotary_dim")
    D = max(16, rd or 0)
    return [RopeCase(B=1, H=1, T=1, D=D, positions="offset", offset=10**6, rotary_dim=rd, seed=401,
                     layout=opts.get("layout", "half")),
            RopeCase(B=1, H=2, T=6, D=D, positions="signed", max_position=10**6, amp=300.0, rotary_dim=rd,
                     seed=402, layout=opts.get("layout", "half"))]


SSD_REGIONS = Regions({
    "one chunk": (_r(), lambda c: c.chunks == 1),
    "several chunks": (_r(), lambda c: c.chunks > 1),
    "chunk size 1": (_r(), lambda c: c.chunk_size == 1),
    "mild decay": (_r(), lambda c: c.decay == "mild"),
    "zero decay": (_r(), lambda c: c.decay == "zero"),
    "steep decay": (_r(), lambda c: c.decay == "steep"),
    "initial states": (_r("initial_states"), lambda c: c.initial),
})


def ssd_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[SSDCase]:
    init = "initial_states" in features
    return [SSDCase(b=1, h=1, p=3, n=4, chunks=3, chunk_size=4, decay="steep", initial=init, seed=501),
            SSDCase(b=1, h=2, p=1, n=1, chunks=1, chunk_size=1, decay="zero", seed=502),
            SSDCase(b=2, h=1, p=2, n=4, chunks=2, chunk_size=8, decay="mild", seed=503)]


MAMBA_CHUNK_REGIONS = Regions({
    "l=1": (_r(), lambda c: c.l == 1),
    "several chunks plus a partial one": (_r(), lambda c: c.l > c.chunk_size and c.l % c.chunk_size != 0),
    "mild decay": (_r(), lambda c: c.decay == "mild"),
    "steep decay": (_r(), lambda c: c.decay == "steep"),
    "grouped B/C": (_r("grouped"), lambda c: c.g < c.h),
    "D per head": (_r("D"), lambda c: c.D == "h"),
    "D per head and channel": (_r("D"), lambda c: c.D == "hp"),
    "z gate": (_r("z"), lambda c: c.z),
    "dt bias": (_r("dt_bias"), lambda c: c.bias),
    "softplus": (_r("dt_softplus"), lambda c: c.softplus),
    "initial states": (_r("initial_states"), lambda c: c.initial),
    "final states": (_r("return_final_states"), lambda c: c.final),
})


def mamba_chunk_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[MambaChunkCase]:
    f = features
    return [MambaChunkCase(b=1, l=11, h=4, g=2 if "grouped" in f else 4, p=3, n=4, chunk_size=4, decay="steep",
                           D="hp" if "D" in f else "none", z="z" in f, bias="dt_bias" in f,
                           softplus="dt_softplus" in f, initial="initial_states" in f,
                           final="return_final_states" in f, seed=601),
            MambaChunkCase(b=1, l=1, h=2, g=2, p=2, n=2, chunk_size=4, D="h" if "D" in f else "none", seed=602)]


VQ_REGIONS = Regions({
    "T=1": (_r(), lambda c: c.T == 1),
    "causal": (_r(), lambda c: c.causal),
    "one code for every key": (_r(), lambda c: c.one_code),
    "shared codebook": (_r(), lambda c: c.shared_codebook),
    "codebook of 1": (_r(), lambda c: c.C == 1),
    "non-default scale": (_r(), lambda c: c.scale is not None),
})


def vq_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[VQCase]:
    return [VQCase(B=1, H=2, T=9, D=8, Dv=3, C=5, shared_codebook=True, causal=True, scale=1.0, seed=701),
            VQCase(B=1, H=1, T=1, D=4, Dv=8, C=1, one_code=True, seed=702)]


CONV_REGIONS = Regions({
    "L=1": (_r(), lambda c: c.L == 1),
    "long kernel (L >= 100)": (_r(), lambda c: c.L >= 100),
    "decaying kernel": (_r(), lambda c: c.kernel == "decay"),
    "flat kernel": (_r(), lambda c: c.kernel == "flat"),
    "impulse kernel": (_r(), lambda c: c.kernel == "impulse"),
    "tiny or large amplitude": (_r(), lambda c: c.amp != 1.0),
})


def conv_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[ConvCase]:
    return [ConvCase(B=1, C=2, L=1, kernel="impulse", amp=1.0, seed=801),
            ConvCase(B=1, C=1, L=257, kernel="flat", amp=30.0, seed=802)]


S4D_REGIONS = Regions({
    "L=1": (_r(), lambda c: c.L == 1),
    "one eigenvalue": (_r(), lambda c: c.N2 == 1),
    "S4D-Lin init": (_r(), lambda c: c.init == "lin"),
    "random init": (_r(), lambda c: c.init == "random"),
    "long kernel (L >= 128)": (_r(), lambda c: c.L >= 128),
})


def s4d_corners(features: frozenset[str], dtype: str, opts: dict[str, Any]) -> list[S4DCase]:
    return [S4DCase(H=1, N2=1, L=1, init="lin", random_B=False, seed=901),
            S4DCase(H=2, N2=16, L=200, init="random", random_B=True, seed=902)]
