"""Strict JSON for veriformer's results: NaN and infinities as the strings "nan", "inf", "-inf" (bare ``NaN`` /
``Infinity`` are not JSON, and strict parsers such as jq or a browser's JSON.parse reject them), and back."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["dumps", "from_jsonable", "jsonable", "load"]

_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def jsonable(x: Any) -> Any:
    """``x`` with every value strict JSON can hold: NaN and infinities become the strings ``"nan"``, ``"inf"``,
    ``"-inf"``; numpy scalars and arrays become Python numbers and lists; tuples and sets lists; dataclasses
    dicts; anything else its ``str``."""
    if isinstance(x, float) or type(x).__name__ in ("float16", "float32", "float64"):
        f = float(x)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted((jsonable(v) for v in x), key=str)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"type": type(x).__name__, **jsonable(dataclasses.asdict(x))}
    if hasattr(x, "tolist"):  # numpy scalar or array
        return jsonable(x.tolist())
    return str(x)


def from_jsonable(x: Any) -> Any:
    """Undo :func:`jsonable` for floats: the strings "nan", "inf" and "-inf" become floats again."""
    if isinstance(x, str):
        return _SPECIAL.get(x, x)
    if isinstance(x, dict):
        return {k: from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_jsonable(v) for v in x]
    return x


def dumps(x: Any, **kw: Any) -> str:
    """Strict JSON text of ``x`` (``allow_nan=False`` after :func:`jsonable`)."""
    return json.dumps(jsonable(x), allow_nan=False, **kw)


def load(path: str | Path) -> Any:
    """A file written by :func:`dumps`, with the non-finite floats restored."""
    return from_jsonable(json.loads(Path(path).read_text()))
