"""Bad input gets a clear error naming the argument and what was expected; nothing is broadcast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import veriformer
from veriformer import InputError
from veriformer import reference as ref

rng = np.random.default_rng(0)
Q = rng.standard_normal((1, 4, 3, 8))
K = rng.standard_normal((1, 2, 5, 8))
V = rng.standard_normal((1, 2, 5, 8))


@pytest.mark.parametrize(("kwargs", "arg", "words"), [
    ({"q": Q[0]}, "q", "rank 4"),
    ({"k": rng.standard_normal((1, 3, 5, 8))}, "k", "dividing H=4"),
    ({"k": rng.standard_normal((1, 2, 5, 7))}, "k", "D=8"),
    ({"v": rng.standard_normal((1, 2, 4, 8))}, "v", "[B, Hkv, S, Dv]"),
    ({"q": np.full((1, 4, 3, 8), np.nan)}, "q", "finite"),
    ({"q": np.zeros((1, 4, 0, 8))}, "q", "non-empty"),
    ({"mask": np.ones((1, 4, 3, 4), bool)}, "mask", "[B or 1, H or 1, T, S]"),
    ({"mask": np.ones((2, 4, 3, 5), bool)}, "mask", "[B or 1, H or 1, T, S]"),
    ({"mask": np.full((1, 1, 3, 5), np.nan)}, "mask", "NaN"),
    ({"window": 0}, "window", "int >= 1"),
    ({"sinks": -1}, "sinks", "int >= 0"),
    ({"q": Q.astype(np.int64)}, "q", "floating"),
    ({"scale": float("inf")}, "scale", "finite"),
])
def test_attention_errors_name_the_argument(kwargs: dict, arg: str, words: str) -> None:
    args = {"q": Q, "k": K, "v": V, **kwargs}
    with pytest.raises(InputError) as e:
        ref.softmax_attention(args.pop("q"), args.pop("k"), args.pop("v"), **args)
    assert f"'{arg}'" in str(e.value) and words in str(e.value), str(e.value)


@pytest.mark.parametrize(("call", "arg"), [
    (lambda: ref.rope(np.zeros((2, 5))), "x"),  # D odd
    (lambda: ref.rope(np.zeros((2, 4)), layout="neox"), "layout"),
    (lambda: ref.rope(np.zeros((2, 4)), rotary_dim=3), "rotary_dim"),
    (lambda: ref.rope(np.zeros((2, 4)), rotary_dim=6), "rotary_dim"),
    (lambda: ref.rope(np.zeros((2, 4)), np.array([0.0, 1.0])), "positions"),
    (lambda: ref.rope(np.zeros((2, 4)), np.array([0, 1, 2])), "positions"),
    (lambda: ref.rope(np.zeros((2, 4)), base=1.0), "base"),
    (lambda: ref.rope(np.zeros(4)), "x"),
    (lambda: ref.rope(np.full((2, 4), np.inf)), "x"),
    (lambda: ref.softmax(np.array([1.0, np.nan])), "x"),
    (lambda: ref.softmax(np.array([1.0, np.inf])), "x"),
    (lambda: ref.online_softmax_attention(Q, K, V, block_size=0), "block_size"),
    (lambda: ref.softmax_attention_vjp(Q, K, V, np.zeros((1, 4, 3, 7))), "grad_o"),
])
def test_other_oracles_reject_bad_input(call: object, arg: str) -> None:
    with pytest.raises(InputError, match=f"'{arg}'"):
        call()  # type: ignore[operator]


def test_torch_inputs_of_any_float_dtype_are_converted_exactly() -> None:
    q = torch.tensor(Q, dtype=torch.bfloat16)
    exact = q.double().numpy()
    o1 = ref.softmax_attention(q, torch.tensor(K), torch.tensor(V))
    o2 = ref.softmax_attention(exact, K, V)
    np.testing.assert_array_equal(o1, o2)


def test_check_rejects_bad_arguments() -> None:
    f = veriformer.fast.naive.softmax_attention
    with pytest.raises(ValueError, match="'op'"):
        veriformer.check(f, op="flash")
    with pytest.raises(ValueError, match="'features'"):
        veriformer.check(f, op="softmax_attention", features={"alibi"})
    with pytest.raises(ValueError, match="'dtypes'"):
        veriformer.check(f, op="softmax_attention", dtypes=("float8",))
    with pytest.raises(ValueError, match="'layout'"):
        veriformer.check(f, op="rope", layout="neox")
    with pytest.raises(ValueError, match="unknown option"):
        veriformer.check(f, op="softmax_attention", layout="half")
    with pytest.raises(TypeError, match="'fn'"):
        veriformer.check(42, op="rope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'device'"):
        veriformer.check(f, op="rope", device="tpu")
