"""The case constructors that failure messages and replay lines print, importable from one place:
``from veriformer.cases import *`` makes ``check(fn, op=..., cases=[AttentionCase(...)])`` work as printed.

Each case is a frozen dataclass with a seed; ``case.arrays()`` builds its float64 inputs deterministically.  They
are discovered, not listed: every dataclass named ``*Case`` in a ``properties/*strategies`` module of a family.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

__all__ = ["case_classes", "parse_case"]


def case_classes() -> dict[str, type]:
    """Every family's case dataclasses by name (``AttentionCase``, ``RopeCase``, ...): the dataclasses named
    ``*Case`` defined in a ``strategies*`` module of a family folder (``veriformer.discovery``)."""
    from veriformer.discovery import PROPERTIES, family_names

    out: dict[str, type] = {}
    for family in family_names():
        pkg = importlib.import_module(f"{PROPERTIES}.{family}")
        for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not m.name.startswith("strategies"):
                continue
            mod = importlib.import_module(f"{pkg.__name__}.{m.name}")
            for name, obj in vars(mod).items():
                if (isinstance(obj, type) and dataclasses.is_dataclass(obj) and name.endswith("Case")
                        and obj.__module__ == mod.__name__):
                    out[name] = obj
    return out


def parse_case(text: str) -> Any:
    """The case printed as ``text`` (e.g. ``"AttentionCase(B=1, H=2, ...)"``), evaluated with only the case
    constructors in scope (no builtins)."""
    names = case_classes()
    try:
        return eval(text, {"__builtins__": {}}, dict(names))  # constructors only, no builtins
    except Exception as exc:
        raise ValueError(f"cannot read case {text!r}: {type(exc).__name__}: {exc}; expected one of "
                         f"{sorted(names)}(...) as printed by a failed check") from None


globals().update(case_classes())
__all__ += sorted(case_classes())
