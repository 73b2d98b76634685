"""pytest plugin (entry point ``veriformer``: this top-level module, so that pytest's start-up does not import
the ``veriformer`` package; loaded in every pytest run of an environment where veriformer is
installed; ``-p no:veriformer`` turns it off).

It changes nothing outside veriformer's own checks:

* no Hypothesis profile is loaded: :func:`veriformer.check`, :func:`veriformer.run_law` and
  :func:`veriformer.run_mutant` pass their settings explicitly (``profiles.hypothesis_settings(...)`` in
  :mod:`veriformer.campaign`, never a registered profile looked up by name), so a project's own ``@given``
  tests keep the profile its conftest loads or ``--hypothesis-profile`` names (veriformer's own test-suite
  loads its profile in ``tests/conftest.py``);
* nothing heavy is imported while pytest starts or collects: torch only when a ``gpu``-marked test is
  collected, veriformer (and its catalogue) only when a test requests one of the fixtures below.

Option:

* ``--veriformer-profile {ci,deep}`` — size of veriformer's campaigns (default: the VERIFORMER_PROFILE
  environment variable, else ``ci``); when given it also sets VERIFORMER_PROFILE for the run.

Markers (registered, so ``--strict-markers`` accepts them):

* ``gpu`` — the test needs a CUDA device; skipped when torch is absent or ``torch.cuda.is_available()`` is
  False;
* ``slow`` — a long run; veriformer's own suite runs these under the deep profile only.

Fixtures:

* ``veriformer_profile`` (session scope) -> ``str``: the active profile name, ``"ci"`` or ``"deep"``
  (``--veriformer-profile``, else VERIFORMER_PROFILE, else ``"ci"``);
* ``veriformer_check`` (function scope) -> callable: :func:`veriformer.check` with ``profile=`` bound to
  ``veriformer_profile``; call it like ``check``::

      def test_my_rope(veriformer_check):
          r = veriformer_check(my_rope, op="rope", dtypes=("bfloat16", "float32"), layout="half")
          assert r.passed, r.summary()

Strategies are public in :mod:`veriformer.properties.attention.strategies`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["PROFILE_NAMES", "veriformer_check", "veriformer_profile"]

# the profiles of veriformer.profiles.PROFILES, spelt out so that pytest's start-up imports nothing of veriformer
# (a test checks the two agree)
PROFILE_NAMES = ("ci", "deep")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--veriformer-profile``."""
    parser.addoption("--veriformer-profile", default=None, choices=list(PROFILE_NAMES),
                     help="veriformer campaign size (default: VERIFORMER_PROFILE or ci)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``gpu`` and ``slow`` markers; export ``--veriformer-profile`` as VERIFORMER_PROFILE.
    Loads no Hypothesis profile and imports nothing heavy."""
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one (veriformer plugin)")
    config.addinivalue_line("markers", "slow: long run; veriformer's own suite runs it under the deep profile")
    prof = config.getoption("--veriformer-profile")
    if prof:
        os.environ["VERIFORMER_PROFILE"] = prof


def _cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (imports torch: call only when it matters)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked items without a CUDA device; torch is imported only if there is such an item."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def veriformer_profile(pytestconfig: pytest.Config) -> str:
    """The active veriformer profile: ``--veriformer-profile``, else VERIFORMER_PROFILE, else ``"ci"``."""
    prof = pytestconfig.getoption("--veriformer-profile", default=None)
    if prof:
        return str(prof)
    from veriformer.profiles import active_profile

    return active_profile()


@pytest.fixture
def veriformer_check(veriformer_profile: str) -> Callable[..., Any]:
    """:func:`veriformer.check` with ``profile=veriformer_profile`` bound (other arguments as ``check``)."""
    import functools

    import veriformer

    return functools.partial(veriformer.check, profile=veriformer_profile)
