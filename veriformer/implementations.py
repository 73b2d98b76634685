"""The registry of implementations that ``veriformer report`` and the catalogue tests check: ours, the naive
baselines and third parties'.

Each entry names an op, a callable in that op's convention, the features it supports, and whether its
gradients are checked.  Families register theirs from ``properties/<family>/implementations*.py`` (third-party
adapters behind an import guard); :func:`veriformer.load_catalogue` imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IMPLEMENTATIONS", "Implementation", "register_implementation"]


@dataclass(frozen=True)
class Implementation:
    name: str
    op: str
    fn: Callable[..., Any]
    features: frozenset[str] = frozenset()
    grad: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    # launches our Triton kernels: counted by the compile bound (veriformer.compile_bound)
    triton: bool = False


IMPLEMENTATIONS: list[Implementation] = []


def register_implementation(impl: Implementation) -> Implementation:
    """Add an implementation to the report and the catalogue tests (families call this from
    ``properties/<family>/implementations*.py``)."""
    if any(i.name == impl.name and i.op == impl.op for i in IMPLEMENTATIONS):
        raise ValueError(f"implementation {impl.name!r} of op {impl.op!r} registered twice")
    IMPLEMENTATIONS.append(impl)
    return impl


_LOOKING: list[str] = []  # a lookup in progress: no second catalogue load from inside the first


def __getattr__(name: str) -> Any:
    """Adapters that lived here before the family layout (``torch_sdpa``, ``oracle_attention``, ...): found in the
    families' implementation modules, so the old import path keeps working."""
    import sys

    from veriformer import load_catalogue

    if name.startswith("_") or _LOOKING:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _LOOKING.append(name)
    try:
        load_catalogue()
    finally:
        _LOOKING.pop()
    for modname, module in sorted(sys.modules.items()):
        if (modname.startswith("veriformer.properties.") and ".implementations" in modname
                and name in getattr(module, "__all__", ())):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
