"""Precision backends: one oracle implementation, two precisions.

Every oracle in ``veriformer.reference`` is written once against a tiny array namespace ``xp`` and runs
either in float64 NumPy (:data:`F64`) or in mpmath arbitrary precision (:func:`MP`, object arrays of
``mpmath.mpf``/``mpc``).  Running the *same code* under ``MP(50)`` certifies the float64 run: the two can
differ only by the rounding of float64 arithmetic, which the certificate laws bound explicitly.

Elementwise arithmetic (``+ - * /``, comparisons) uses the array operators directly; everything that
NumPy cannot do on object arrays goes through the namespace.  mpmath's working precision is global, so
an oracle body runs inside ``backend.context()`` (the :func:`oracle` decorator does this).

Source: design card "Precision backends"; mpmath documentation (``mp.workdps``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import mpmath
import numpy as np

__all__ = ["F64", "MP", "Backend", "oracle"]


@dataclass(frozen=True)
class Backend:
    """An array namespace for oracle code.

    ``name`` is ``"float64"`` or ``"mpmath<dps>"``; ``dps`` is the decimal precision (15.95 for float64,
    reported as 16).  ``eps`` is the unit roundoff of the backend (2**-53 for float64).
    """

    name: str
    dps: int
    exact_output: bool = False  # MP only: return mpf object arrays instead of rounding to float64

    # -- precision ------------------------------------------------------------------------------------
    @property
    def is_float64(self) -> bool:
        return self.name == "float64"

    @property
    def eps(self) -> float:
        """Unit roundoff u: a correctly rounded operation has relative error at most u."""
        if self.is_float64:
            return 2.0**-53
        return float(mpmath.mpf(10) ** (-self.dps))

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Context in which this backend's arithmetic runs at its precision."""
        if self.is_float64:
            return contextlib.nullcontext()
        return mpmath.workdps(self.dps)

    # -- conversion -----------------------------------------------------------------------------------
    def asarray(self, x: Any) -> np.ndarray:
        """Exact conversion of a float64 (or complex128) array-like into this backend's arrays."""
        a = np.asarray(x)
        if self.is_float64:
            return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64, copy=False)
        if a.dtype == object:
            return a
        if np.iscomplexobj(a):
            return _vectorize(lambda z: mpmath.mpc(z.real, z.imag))(a.astype(np.complex128))
        return _vectorize(mpmath.mpf)(a.astype(np.float64))

    def scalar(self, v: float | int) -> Any:
        """A scalar of this backend (exact conversion of a float or int)."""
        return float(v) if self.is_float64 else mpmath.mpf(v)

    def to_float64(self, x: Any) -> np.ndarray:
        """Round to float64 (complex128 for complex values) — the only rounding an oracle result sees."""
        a = np.asarray(x)
        if a.dtype != object:
            return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64, copy=False)
        if self.exact_output:
            return a
        if any(isinstance(e, mpmath.mpc) for e in a.flat):
            return _vectorize(complex, np.complex128)(a)
        return _vectorize(float, np.float64)(a)

    # -- constructors ---------------------------------------------------------------------------------
    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.full(shape, 0)

    def full(self, shape: tuple[int, ...], value: float) -> np.ndarray:
        if self.is_float64:
            return np.full(shape, float(value), dtype=np.float64)
        out = np.empty(shape, dtype=object)
        out.fill(mpmath.mpf(value))
        return out

    @property
    def neg_inf(self) -> Any:
        return -np.inf if self.is_float64 else mpmath.mpf("-inf")

    @property
    def pi(self) -> Any:
        return np.pi if self.is_float64 else +mpmath.pi

    # -- elementwise functions ------------------------------------------------------------------------
    def exp(self, x: Any) -> Any:
        return np.exp(x) if self.is_float64 else _apply(mpmath.exp, x)

    def log(self, x: Any) -> Any:
        if self.is_float64:
            with np.errstate(divide="ignore"):
                return np.log(x)
        return _apply(lambda t: mpmath.mpf("-inf") if t == 0 else mpmath.log(t), x)

    def sin(self, x: Any) -> Any:
        return np.sin(x) if self.is_float64 else _apply(mpmath.sin, x)

    def cos(self, x: Any) -> Any:
        return np.cos(x) if self.is_float64 else _apply(mpmath.cos, x)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x) if self.is_float64 else _apply(mpmath.sqrt, x)

    def power(self, base: Any, exponent: Any) -> Any:
        if self.is_float64:
            return np.power(base, exponent)
        return _apply(lambda e: mpmath.power(mpmath.mpf(base), e), exponent)

    def real(self, x: Any) -> Any:
        return np.real(x) if self.is_float64 else _apply(lambda z: mpmath.mpf(z.real), x)

    def imag(self, x: Any) -> Any:
        return np.imag(x) if self.is_float64 else _apply(lambda z: mpmath.mpf(z.imag), x)

    def expi(self, x: Any) -> Any:
        """exp(i x) for real x."""
        if self.is_float64:
            return np.exp(1j * np.asarray(x, dtype=np.float64))
        return _apply(lambda t: mpmath.expj(t), x)

    def complex(self, re: Any, im: Any) -> Any:
        if self.is_float64:
            return np.asarray(re) + 1j * np.asarray(im)
        return np.vectorize(lambda a, b: mpmath.mpc(a, b), otypes=[object])(re, im)

    # -- reductions and products ----------------------------------------------------------------------
    def matmul(self, a: Any, b: Any) -> Any:
        """Batched matrix product.  For mpmath the products and sums run at full working precision."""
        if self.is_float64:
            return np.matmul(a, b)
        return np.matmul(np.asarray(a, dtype=object), np.asarray(b, dtype=object))

    def sum(self, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        """Sum along ``axis``; mpmath uses ``fsum`` (exactly rounded at the working precision)."""
        if self.is_float64:
            return np.sum(x, axis=axis, keepdims=keepdims)
        x = np.asarray(x, dtype=object)
        flat = axis is None
        moved = x.reshape(-1) if flat else np.moveaxis(x, axis, -1)
        out = np.empty(moved.shape[:-1], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = mpmath.fsum(moved[idx])
        if keepdims:
            out = out.reshape((1,) * x.ndim) if flat else np.expand_dims(out, axis)
        return out if out.ndim else out.item()

    def max(self, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        """Maximum along ``axis``; -inf for an empty reduction (the identity of max)."""
        x = np.asarray(x)
        if x.size == 0 or (axis is not None and x.shape[axis] == 0):
            shape = np.sum(np.zeros(x.shape), axis=axis, keepdims=keepdims).shape
            return self.full(shape, float("-inf")) if shape else self.neg_inf
        return np.max(x, axis=axis, keepdims=keepdims)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        if self.is_float64:
            return np.where(cond, a, b)
        return np.where(cond, np.asarray(a, dtype=object), np.asarray(b, dtype=object))


def _vectorize(f: Callable[..., Any], otype: Any = object) -> Callable[[np.ndarray], np.ndarray]:
    vf = np.vectorize(f, otypes=[otype])

    def run(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        if a.size == 0:
            return np.empty(a.shape, dtype=otype)
        return vf(a)

    return run


def _apply(f: Callable[[Any], Any], x: Any) -> Any:
    a = np.asarray(x, dtype=object)
    if a.ndim == 0:
        return f(a.item())
    return _vectorize(f)(a)


F64 = Backend("float64", 16)
"""The float64 NumPy backend: vectorised, the gold answer of every check."""


@functools.cache
def MP(dps: int = 50, exact_output: bool = False) -> Backend:
    """The mpmath backend at ``dps`` decimal digits (>= 30 for a certificate).

    With ``exact_output=True`` oracles return mpf object arrays (no final rounding) and accept object
    arrays as inputs, so mpmath computations can be chained (e.g. central differences at 50 digits)."""
    if dps < 16:
        raise ValueError(f"MP: argument 'dps' must be >= 16 decimal digits, got {dps}")
    return Backend(f"mpmath{dps}", int(dps), exact_output)


F = TypeVar("F", bound=Callable[..., Any])


def oracle(fn: F) -> F:
    """Run an oracle body inside its backend's precision context (keyword ``backend``, default F64)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        backend: Backend = kwargs.get("backend", F64)
        if not isinstance(backend, Backend):
            raise TypeError(f"{fn.__name__}: argument 'backend' must be F64 or MP(dps), got {backend!r}")
        with backend.context():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
