"""LoRA-GA oracles: bad input names the argument; the spec's worked example and repository defaults; the gradient
formulas against torch autograd; agreement with peft's LoRA merge (skipped when peft is absent); the laws and
mutants are registered (the catalogue runs them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import veriformer
from veriformer import InputError
from veriformer import reference as ref

rng = np.random.default_rng(0)
W0, G = rng.standard_normal((8, 6)), rng.standard_normal((8, 6))

ERRORS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: ref.lora_ga_init(W0, G, 4), "r", "2r <= min(out, in)"),
    (lambda: ref.lora_ga_init(W0, G[:, :5], 1), "grad", "shape of w0"),
    (lambda: ref.lora_ga_init(W0, G, 1, direction="BrA2r"), "direction", "one of"),
    (lambda: ref.lora_ga_init(W0, G, 1, scale="weightS"), "scale", "one of"),
    (lambda: ref.lora_ga_init(W0, G, 1, stable_gamma=0.0), "stable_gamma", "positive"),
    (lambda: ref.lora_scaling(8.0, 0), "r", "positive int"),
    (lambda: ref.lora_merge(W0, np.zeros((2, 5)), np.zeros((8, 2)), 1.0), "A", "[r, in]"),
    (lambda: ref.lora_forward(np.zeros((2, 5)), W0, np.zeros((2, 6)), np.zeros((8, 2)), 1.0), "x", "[..., 6]"),
    (lambda: ref.truncated_svd(np.full((2, 2), np.inf), 1), "g", "finite"),
]


@pytest.mark.parametrize(("call", "arg", "words"), ERRORS)
def test_errors_name_the_argument(call: Callable[[], Any], arg: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        call()
    assert f"'{arg}'" in str(e.value) and words in str(e.value), str(e.value)


def test_spec_toy_example() -> None:
    """Spec section 8: G = diag(5,4,3,2,1), r = 1, unit scale: B B^T G + G A^T A = diag(5,4,0,0,0), residual^2 = 14."""
    Gd = np.diag([5.0, 4, 3, 2, 1])
    A, B, W_res, s = ref.lora_ga_init(np.eye(5), Gd, 1, scale="unit")
    np.testing.assert_allclose(ref.lora_ga_projector(Gd, A, B), np.diag([5.0, 4, 0, 0, 0]), atol=1e-14)
    assert abs(np.sum((Gd - ref.lora_ga_projector(Gd, A, B)) ** 2) - 14) < 1e-12
    assert s == 8.0  # peft default lora_alpha = 8, r = 1
    np.testing.assert_allclose(ref.lora_merge(W_res, A, B, s), np.eye(5), atol=1e-14)


def test_gradients_match_autograd() -> None:
    A, B, W_res, s = ref.lora_ga_init(W0, G, 2)
    X, Y = rng.standard_normal((6, 4)), rng.standard_normal((8, 4))
    At, Bt = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)
    loss = 0.5 * (((torch.tensor(W_res) + s * Bt @ At) @ torch.tensor(X) - torch.tensor(Y)) ** 2).sum()
    loss.backward()
    Gw = (W0 @ X - Y) @ X.T  # W_eff = W0 at initialisation
    dA, dB = ref.lora_grads(Gw, A, B, s)
    np.testing.assert_allclose(At.grad.numpy(), dA, atol=1e-12)
    np.testing.assert_allclose(Bt.grad.numpy(), dB, atol=1e-12)


def test_gd_scale_first_step_is_minus_lr_g2r() -> None:
    A, B, W_res, s = ref.lora_ga_init(W0, G, 2, scale="gd", alpha=16.0)
    lr = 1e-9  # the second-order term is lr s^3 |G A^T B^T G| ~ 1e-7 here
    _, _, W1 = ref.lora_sgd_step(W_res, A, B, G, lr, s)
    first = (W1 - W0) / lr
    np.testing.assert_allclose(first, -ref.truncated_svd(G, 4), atol=1e-5)


def test_peft_merge_agrees() -> None:
    """peft's LoRA merge (W += B A * lora_alpha / r, through the public get_peft_model / merge_and_unload) equals
    lora_merge where the conventions coincide (scale alpha / r = 8 here)."""
    peft = pytest.importorskip("peft", reason="peft is not installed (docs/third_party.md)")

    model = torch.nn.Sequential(torch.nn.Linear(6, 8, bias=False, dtype=torch.float64))
    model[0].weight.data = torch.tensor(W0)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, lora_alpha=16, target_modules=["0"]))
    A, B = rng.standard_normal((2, 6)), rng.standard_normal((8, 2))
    layer = wrapped.base_model.model[0]
    layer.lora_A["default"].weight.data = torch.tensor(A)
    layer.lora_B["default"].weight.data = torch.tensor(B)
    merged = wrapped.merge_and_unload()
    np.testing.assert_allclose(merged[0].weight.data.numpy(), ref.lora_merge(W0, A, B, 8.0), atol=1e-12)


def test_laws_and_mutants_registered() -> None:
    laws = {n for n in veriformer.LAWS if n.startswith("lora_ga.")}
    assert len(laws) == 7, laws
    catchers = {t for m in veriformer.MUTANTS.values() for t in m.caught_by}
    assert laws <= catchers
