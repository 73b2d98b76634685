"""Optional dependencies, imported where they are used, with the extra to install when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["optional_module"]

_EXTRA = {"scipy": "scipy"}


def optional_module(name: str) -> ModuleType:
    """Import ``name`` (e.g. ``"scipy.linalg"``); an ImportError names the extra that provides it:
    ``pip install "veriformer[scipy]"``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra = _EXTRA.get(top, top)
        raise ImportError(f"{name} is needed here but not installed: pip install 'veriformer[{extra}]'") from exc
