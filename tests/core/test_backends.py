"""The precision backends: exact conversion, mpmath precision, chained exact outputs."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from veriformer import reference as ref
from veriformer.reference import F64, MP


def test_conversion_is_exact_and_round_trips() -> None:
    x = np.array([0.1, -1e-300, 3.0, 1e300])
    mp = MP(40)
    with mp.context():
        a = mp.asarray(x)
        assert all(isinstance(e, mpmath.mpf) for e in a)
        np.testing.assert_array_equal(mp.to_float64(a), x)


def test_mp_precision_is_used_inside_oracles() -> None:
    # exp(1e-20) - 1 is lost in float64 but not at 50 digits: softmax([0, 1e-20]) differs from 1/2
    p64 = ref.softmax(np.array([0.0, 1e-20]))
    assert p64[0] == p64[1] == 0.5
    mp = MP(50, exact_output=True)
    p = ref.softmax(np.array([0.0, 1e-20]), backend=mp)
    with mp.context():
        assert p[1] - p[0] > 0 and abs(float((p[1] - p[0]) * 4e20) - 2.0) < 1e-12


def test_backend_errors() -> None:
    with pytest.raises(ValueError, match="'dps'"):
        MP(10)
    with pytest.raises(TypeError, match="'backend'"):
        ref.softmax(np.zeros(3), backend="mpmath")  # type: ignore[arg-type]
    assert F64.eps == 2.0**-53 and MP(30).eps == pytest.approx(1e-30)
