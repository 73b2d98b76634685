"""Compile a Triton kernel to PTX for a Hopper GPU (sm_90) on a machine without one.

``compile_ptx(kernel, types, constexprs, **options)`` builds the signature from the kernel's parameter names:
a name in ``constexprs`` becomes a compile-time constant, a name in ``types`` gets that Triton type (``"*bf16"``
for a pointer, ``"fp32"`` for a scalar...), every other name ``default`` (``"i32"``).  It must run with the
interpreter off (``TRITON_INTERPRET=0``, e.g. in a subprocess), because it returns what the GPU would run: the
tests use it to catch compiled-mode-only errors and to assert instruction choices (tensor-core ``mma`` for bf16
dots, no TF32 in float32 products, no ``cos.approx``, round-to-nearest bf16 stores).
Source: Triton's ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` ahead-of-time path.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["compile_ptx"]


def compile_ptx(kernel: Any, types: Mapping[str, str], constexprs: Mapping[str, Any], *, default: str = "i32",
                arch: int = 90, **options: Any) -> str:
    """PTX of the ``@triton.jit`` ``kernel`` for ``sm_<arch>`` (signature from ``types`` / ``constexprs``;
    ``options`` such as ``num_warps``, ``num_stages``)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig: dict[str, str] = {}
    cst: dict[tuple[int, ...], Any] = {}
    for i, name in enumerate(inspect.signature(kernel.fn).parameters):
        if name in constexprs:
            sig[name], cst[(i,)] = "constexpr", constexprs[name]
        else:
            sig[name] = types.get(name, default)
    src = ASTSource(fn=kernel, signature=sig, constexprs=cst)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options).asm["ptx"]
