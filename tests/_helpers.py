"""Helpers shared by the kernel tests: load a benchmark script as a module, run a compile script (which
uses ``veriformer.fast._triton.ptx.compile_ptx``) in a subprocess with the Triton interpreter off, the device the
kernels run on here, seeded random inputs and float64 NumPy copies of results."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

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


def kernel_device() -> str:
    """``"cuda"`` when a GPU runs the compiled kernels, else ``"cpu"`` (Triton's interpreter)."""
    import torch

    from veriformer.fast._triton.env import interpreting

    return "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"


def seeded_randn(*shape: int, dtype: Any = None, seed: int = 0, grad: bool = False, device: str = "cpu") -> Any:
    """Standard normal [shape] drawn in float64 from ``seed``, then cast to ``dtype`` (default float32)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype or torch.float32)
    return x.requires_grad_(grad)


def as_numpy(t: Any) -> Any:
    """A float64 NumPy copy of tensor ``t`` (detached, on the CPU)."""
    return t.detach().cpu().double().numpy()
