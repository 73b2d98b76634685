"""Public Hypothesis strategies of every family, in one namespace for other projects' tests.

Each family's strategies live in ``veriformer.properties.<family>.strategies*``; this module re-exports every
name in their ``__all__`` (``AttentionCase``, ``attention_cases``, ``RopeCase``, ``rope_cases``,
``LinearAttentionCase``, ...).  A case is a small printable dataclass that builds its float64 arrays with
``case.arrays()``, so a failing example prints as a constructor call that replays it exactly.
"""

from __future__ import annotations

import importlib
import pkgutil

import veriformer.properties as _properties

__all__: list[str] = []

for _family in sorted(m.name for m in pkgutil.iter_modules(_properties.__path__) if m.ispkg):
    _pkg = importlib.import_module(f"{_properties.__name__}.{_family}")
    for _m in sorted(m.name for m in pkgutil.iter_modules(_pkg.__path__) if m.name.startswith("strategies")):
        _mod = importlib.import_module(f"{_pkg.__name__}.{_m}")
        for _name in _mod.__all__:
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
