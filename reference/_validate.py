"""Input validation shared by every layer: clear errors that name the argument and what was expected.

Oracles accept NumPy arrays, anything ``np.asarray`` accepts, and torch tensors (any float dtype, any
device; converted exactly to float64 without importing torch).  Nothing is broadcast silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["InputError", "as_float64", "as_positions", "require", "require_finite", "require_shape"]


class InputError(ValueError):
    """Bad input to a veriformer function; the message names the function, the argument, and what was
    expected."""


def require(cond: bool, func: str, arg: str, expected: str, got: Any) -> None:
    """Raise :class:`InputError` ``"{func}: argument '{arg}' must be {expected}; got {got}"`` unless cond."""
    if not cond:
        raise InputError(f"{func}: argument '{arg}' must be {expected}; got {got}")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def as_float64(x: Any, func: str, arg: str, *, ndim: int | Sequence[int] | None = None,
               allow_complex: bool = False) -> np.ndarray:
    """Exact float64 (or complex128) view of an array argument, checking its rank.

    Integer and boolean arrays are rejected: an oracle input is a real (or complex) tensor.
    """
    if x is None:
        raise InputError(f"{func}: argument '{arg}' must be an array; got None")
    if _is_torch(x):
        t = x.detach().cpu()
        if t.is_complex():
            require(allow_complex, func, arg, "a real floating tensor", f"complex dtype {t.dtype}")
            a = t.to(dtype=_torch_attr(t, "complex128")).numpy()
        else:
            require(t.is_floating_point(), func, arg, "a floating tensor", f"dtype {t.dtype}")
            a = t.to(dtype=_torch_attr(t, "float64")).numpy()
    else:
        a = np.asarray(x)
        if a.dtype == object:  # mpmath values (MP backend with exact_output): kept as they are
            require(all(type(e).__module__.startswith("mpmath") for e in a.flat), func, arg,
                    "a float array or an array of mpmath numbers", "an object array of other values")
        elif np.iscomplexobj(a):
            require(allow_complex, func, arg, "a real floating array", f"complex dtype {a.dtype}")
            a = a.astype(np.complex128)
        else:
            require(a.dtype.kind == "f", func, arg, "a floating array", f"dtype {a.dtype}")
            a = a.astype(np.float64)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        require(a.ndim in allowed, func, arg, f"a tensor of rank {' or '.join(map(str, allowed))}",
                f"rank {a.ndim} with shape {tuple(a.shape)}")
    return a


def _torch_attr(t: Any, name: str) -> Any:
    import sys

    return getattr(sys.modules[type(t).__module__.split(".")[0]], name)


def require_finite(a: np.ndarray, func: str, arg: str) -> None:
    """Reject NaN and +-inf (inputs where non-finite values have no defined meaning)."""
    if a.dtype == object:
        import mpmath

        fin = np.vectorize(lambda e: bool(mpmath.isfinite(e)), otypes=[bool])(a) if a.size else a
    else:
        fin = np.isfinite(a)
    if not np.all(fin):
        bad = np.argwhere(~fin)[0]
        raise InputError(f"{func}: argument '{arg}' must be finite; got {a[tuple(bad)]} at index "
                         f"{tuple(int(i) for i in bad)}")


def require_shape(a: np.ndarray, func: str, arg: str, expected: Sequence[int | None], names: str) -> None:
    """Check ``a.shape`` against ``expected`` (None = any size); ``names`` spells the layout, e.g.
    ``"[B, Hkv, S, D]"``."""
    ok = a.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, a.shape, strict=False))
    want = ", ".join("*" if e is None else str(e) for e in expected)
    require(ok, func, arg, f"of shape {names} = ({want})", f"shape {tuple(a.shape)}")


def as_positions(positions: Any, length: int, func: str, arg: str = "positions") -> np.ndarray:
    """Integer positions of shape [length] (default ``arange(length)``)."""
    if positions is None:
        return np.arange(length, dtype=np.int64)
    if _is_torch(positions):
        positions = positions.detach().cpu().numpy()
    p = np.asarray(positions)
    require(p.dtype.kind in "iu", func, arg, "an integer array", f"dtype {p.dtype}")
    require(p.shape == (length,), func, arg, f"of shape [T] = ({length},)", f"shape {tuple(p.shape)}")
    return p.astype(np.int64)
