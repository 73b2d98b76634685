"""The case constructors that failure messages and replay lines print, importable from one place:
``from veriformer.cases import *`` makes ``check(fn, op=..., cases=[AttentionCase(...)])`` work as printed.

Each case is a frozen dataclass with a seed; ``case.arrays()`` builds its float64 inputs deterministically.
"""

from __future__ import annotations

from .properties.linear_attention_strategies import LinearAttentionCase, VQCase
from .properties.mamba_chunk_scan_strategies import MambaChunkCase
from .properties.ssm_strategies import ConvCase, S4DCase, ScanCase, SSDCase
from .properties.strategies import AttentionCase, RopeCase

__all__ = ["AttentionCase", "ConvCase", "LinearAttentionCase", "MambaChunkCase", "RopeCase", "S4DCase", "SSDCase",
           "ScanCase", "VQCase", "parse_case"]


def parse_case(text: str) -> object:
    """The case printed as ``text`` (e.g. ``"AttentionCase(B=1, H=2, ...)"``), evaluated with only the case
    constructors in scope (no builtins)."""
    names = {n: globals()[n] for n in __all__ if n != "parse_case"}
    try:
        return eval(text, {"__builtins__": {}}, names)  # constructors only, no builtins
    except Exception as exc:
        raise ValueError(f"cannot read case {text!r}: {type(exc).__name__}: {exc}; expected one of "
                         f"{sorted(names)}(...) as printed by a failed check") from None
