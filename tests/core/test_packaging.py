"""Packaging: the package imports with only its declared dependencies (scipy is an extra)."""

from __future__ import annotations

import subprocess
import sys

_BLOCK_SCIPY = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError("scipy is not installed (blocked by the test)")
sys.meta_path.insert(0, Block())
"""


def test_every_public_module_imports_without_scipy_and_scipy_laws_name_the_extra() -> None:
    code = _BLOCK_SCIPY + """
import veriformer, veriformer.reference, veriformer.fast, veriformer.properties, veriformer.cases
import veriformer.cli, veriformer.report, veriformer_pytest
r = veriformer.run_law("ssm.zoh_block_expm", max_examples=1)
assert not r.passed and "pip install 'veriformer[scipy]'" in r.failure.message, r.failure.message
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_import_is_light_and_check_stays_the_function() -> None:
    """``import veriformer`` and ``from veriformer import reference`` load neither torch, Triton, Hypothesis nor
    scipy; ``veriformer.check`` is the function even after the submodule ``veriformer.check`` is imported."""
    code = """
import sys
import veriformer
from veriformer import reference
heavy = [m for m in ("torch", "triton", "hypothesis", "scipy") if m in sys.modules]
assert not heavy, heavy
import veriformer.cli, veriformer.check
assert callable(veriformer.check) and veriformer.check.__name__ == "check", veriformer.check
from veriformer.check import CheckResult
assert len(veriformer.LAWS) > 50 and len(veriformer.MUTANTS) > 50
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
