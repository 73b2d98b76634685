"""Helpers shared by the kernel tests: load a benchmark script as a module, and run a compile script (which
uses ``veriformer.fast._triton.ptx.compile_ptx``) in a subprocess with the Triton interpreter off."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (its ``run(argv)`` is what the smoke tests call)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", os.path.join(ROOT, "benchmarks", f"{name}.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compile_in_subprocess(script: str, timeout: int = 600) -> str:
    """Run ``script`` with ``TRITON_INTERPRET=0`` (compiled mode, no GPU needed to compile); returns stdout and
    fails the test with the end of stderr if it exits non-zero."""
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout
