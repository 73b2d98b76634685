"""Re-export the oracles of a layer's family modules and packages (plain pkgutil: no core import)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any

__all__ = ["export_submodules"]


def export_submodules(package: str, path: Iterable[str], namespace: dict[str, Any],
                      skip: Iterable[str] = ()) -> list[str]:
    """Import every public submodule of ``package`` (sorted by name, names starting with ``_`` and ``skip``
    left out), copy the names in each one's ``__all__`` into ``namespace`` and return them all."""
    names: list[str] = []
    skip = set(skip)
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in skip:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name in module.__all__:
            namespace[name] = getattr(module, name)
        names += list(module.__all__)
    return names
