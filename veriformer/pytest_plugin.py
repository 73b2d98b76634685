"""pytest plugin (entry point ``veriformer``): Hypothesis profiles, a ``gpu`` marker that skips without
CUDA, and fixtures for other projects:

* ``veriformer_check`` — :func:`veriformer.check` with the session's profile;
* ``veriformer_profile`` — the active profile name (``--veriformer-profile`` or VERIFORMER_PROFILE).

Strategies are public in :mod:`veriformer.properties.strategies`.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--veriformer-profile", default=None, choices=["ci", "deep"],
                     help="veriformer campaign size (default: VERIFORMER_PROFILE or ci)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one")
    prof = config.getoption("--veriformer-profile")
    if prof:
        os.environ["VERIFORMER_PROFILE"] = prof
    from hypothesis import settings

    from veriformer.profiles import active_profile, register_profiles

    register_profiles()
    settings.load_profile(active_profile())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def veriformer_profile() -> str:
    from veriformer.profiles import active_profile

    return active_profile()


@pytest.fixture
def veriformer_check(veriformer_profile: str) -> Any:
    import veriformer

    return functools.partial(veriformer.check, profile=veriformer_profile)
