"""The pytest plugin lives in the top-level module :mod:`veriformer_pytest` (entry point ``veriformer``), so that
pytest's start-up does not import the ``veriformer`` package (torch, the catalogue); this module re-exports it
for code that imported it from here."""

from __future__ import annotations

from veriformer_pytest import *  # noqa: F403
from veriformer_pytest import __all__  # noqa: F401
