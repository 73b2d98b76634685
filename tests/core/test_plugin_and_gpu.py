"""The pytest plugin's fixtures as another project would use them, and the GPU-marked checks."""

from __future__ import annotations

import pytest
import torch

from veriformer.implementations import IMPLEMENTATIONS, oracle_rope, torch_sdpa


def test_plugin_fixtures(veriformer_check: object, veriformer_profile: str) -> None:
    assert veriformer_profile in ("ci", "deep")
    r = veriformer_check(oracle_rope, op="rope", max_examples=3)  # type: ignore[operator]
    assert r.passed and r.profile == veriformer_profile


@pytest.mark.gpu
def test_sdpa_on_cuda_all_dtypes_with_gradients() -> None:
    assert torch.cuda.is_available()
    import veriformer

    r = veriformer.check(
        torch_sdpa, op="softmax_attention", dtypes=("float16", "bfloat16", "float32"), device="cuda",
        features={"causal", "gqa", "mask"}, grad=True)
    assert r.passed, r.summary()


@pytest.mark.gpu
@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=lambda i: f"{i.op}:{i.name}")
def test_every_implementation_on_cuda(impl: object) -> None:
    import veriformer

    r = veriformer.check(impl.fn, op=impl.op, dtypes=("float16", "bfloat16", "float32"), device="cuda",  # type: ignore[attr-defined]
                         features=impl.features, grad=impl.grad, name=impl.name, **impl.options)  # type: ignore[attr-defined]
    assert r.passed, r.summary()
