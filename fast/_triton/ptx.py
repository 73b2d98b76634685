"""Compile a Triton kernel to PTX for a Hopper GPU (sm_90) on a machine without one.

``compile_ptx(kernel, types, constexprs, **options)`` builds the signature from the kernel's parameter names:
a name in ``constexprs`` becomes a compile-time constant, a name in ``types`` gets that Triton type (``"*bf16"``
for a pointer, ``"fp32"`` for a scalar...), every other name ``default`` (``"i32"``).  It must run with the
interpreter off (``TRITON_INTERPRET=0``, e.g. in a subprocess), because it returns what the GPU would run: the
tests use it to catch compiled-mode-only errors and to assert instruction choices (tensor-core ``mma`` for bf16
dots, no TF32 in float32 products, no ``cos.approx``, round-to-nearest bf16 stores).

``compile_launch(launch)`` compiles one launch recorded by
:func:`veriformer.fast._triton.env.recorded_launches` with the
specialisation Triton's JIT would give those very arguments (Triton's own ``native_specialize_impl``: integers
equal to 1 become constants, integers and pointers divisible by 16 get ``tt.divisibility``), and
``resource_usage(compiled)`` reads what the binary needs per block (registers, stack, shared memory) with the
``cuobjdump`` that ships with Triton, the spill stores from Triton's own ``ptxas -v`` log, and which
instructions the PTX uses (wgmma / mma.sync, cp.async, TMA bulk copies).

Source: Triton's ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` ahead-of-time path.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["compile_launch", "compile_ptx", "resource_usage"]


def compile_ptx(kernel: Any, types: Mapping[str, str], constexprs: Mapping[str, Any], *, default: str = "i32",
                arch: int = 90, ones: Iterable[str] = (), divisible: Iterable[str] = (), align_pointers: bool = False,
                **options: Any) -> str:
    """PTX of the ``@triton.jit`` ``kernel`` for ``sm_<arch>`` (signature from ``types`` / ``constexprs``;
    ``options`` such as ``num_warps``, ``num_stages``).

    Launch specialisation, as Triton's JIT does it for the actual arguments: names in ``ones`` are integer
    arguments equal to 1 (compiled as the constant 1, e.g. unit strides), names in ``divisible`` are integers
    divisible by 16 (``tt.divisibility = 16``), and ``align_pointers`` marks every pointer 16-byte aligned.
    Without them the compile is pessimistic: unknown contiguity stops vectorised and asynchronous loads."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig: dict[str, str] = {}
    cst: dict[tuple[int, ...], Any] = {}
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    ones, divisible = set(ones), set(divisible)
    for i, (name, param) in enumerate(inspect.signature(kernel.fn).parameters.items()):
        if name in constexprs:
            sig[name], cst[(i,)] = "constexpr", constexprs[name]
        elif kernel.params[i].is_constexpr and param.default is not inspect.Parameter.empty:
            sig[name], cst[(i,)] = "constexpr", param.default  # a constexpr left at its default
        elif name in ones:
            sig[name], cst[(i,)] = "constexpr", 1
        else:
            sig[name] = types.get(name, default)
            if name in divisible or (align_pointers and sig[name].startswith("*")):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=kernel, signature=sig, constexprs=cst, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options).asm["ptx"]


def compile_launch(launch: Any, *, arch: int = 90) -> Any:
    """Compile a recorded :class:`veriformer.fast._triton.env.Launch` for ``sm_<arch>`` as Triton's JIT would for
    its arguments
    (see the module docstring); returns Triton's ``CompiledKernel`` (``.asm["ptx"]``, ``.asm["cubin"]``,
    ``.metadata.shared``)."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton.compiler import ASTSource

    kernel = launch.kernel
    names = list(inspect.signature(kernel.fn).parameters)
    bound = dict(zip(names, launch.args, strict=False))
    bound.update({k: v for k, v in launch.kwargs.items() if k in names})
    options = {k: v for k, v in launch.kwargs.items() if k not in names}
    sig: dict[str, str] = {}
    cst: dict[tuple[int, ...], Any] = {}
    attrs: dict[tuple[int, ...], Any] = {}
    for i, (name, param) in enumerate(zip(names, kernel.params, strict=True)):
        value = bound.get(name, param.default)
        if param.is_constexpr:
            sig[name], cst[(i,)] = "constexpr", value
            continue
        ty, spec = native_specialize_impl(BaseBackend, value, False, not param.do_not_specialize,
                                          not param.do_not_specialize_on_alignment)
        sig[name] = ty
        if ty == "constexpr":
            cst[(i,)] = value
        elif spec:
            attrs[(i,)] = BaseBackend.parse_attr(spec)
    src = ASTSource(fn=kernel, signature=sig, constexprs=cst, attrs=attrs)
    return _compile_with_ptxas_log(src, GPUTarget("cuda", arch, 32), options)


def _compile_with_ptxas_log(src: Any, target: Any, options: dict[str, Any]) -> Any:
    """``triton.compile`` bypassing Triton's cache, with the log of Triton's own ``ptxas -v`` run (its exact binary
    and flags) kept as ``compiled.ptxas_log``."""
    import contextlib
    import io

    import triton
    from triton import knobs

    buf = io.StringIO()
    saved = knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile
    knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = True, True
    try:
        with contextlib.redirect_stdout(buf):
            compiled = triton.compile(src, target=target, options=options)
    finally:
        knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = saved
    compiled.ptxas_log = buf.getvalue()
    return compiled


def resource_usage(compiled: Any) -> dict[str, Any]:
    """Per-block needs of a kernel compiled by :func:`compile_launch`: ``registers`` (per thread); ``spill``
    (bytes per thread of register spill stores, from the log of Triton's own ``ptxas -v`` run; -1 when no log was
    kept); ``stack`` (the stack frame, bytes per thread: spills plus local scratch such as libdevice's
    trigonometric range reduction); ``shared`` (bytes: Triton's dynamic shared memory plus the static part);
    ``threads``; and the PTX instruction families used: ``mma`` ("wgmma", "mma.sync" or "none"), ``cp_async``,
    ``tma`` (bulk tensor copies).  Registers, stack and shared memory come from ``cuobjdump -res-usage``."""
    import triton

    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(compiled.asm["cubin"])
        text = subprocess.run([tool, "-res-usage", path], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", text))
    spill = re.search(r"(\d+) bytes spill stores", getattr(compiled, "ptxas_log", ""))
    ptx = compiled.asm["ptx"]
    mma = "wgmma" if "wgmma" in ptx else ("mma.sync" if "mma.sync" in ptx else "none")
    return {"registers": int(fields.get("REG", 0)), "spill": int(spill.group(1)) if spill else -1,
            "stack": int(fields.get("STACK", 0)) + int(fields.get("LOCAL", 0)),
            "shared": int(compiled.metadata.shared) + int(fields.get("SHARED", 0)),
            "threads": 32 * int(compiled.metadata.num_warps), "mma": mma,
            "cp_async": "cp.async" in ptx.replace("cp.async.bulk", ""), "tma": "cp.async.bulk.tensor" in ptx,
            **global_load_widths(ptx)}


_LD_GLOBAL = re.compile(r"\bld\.global(?:\.[A-Za-z0-9_:]+?)*?(?:\.v(\d))?\.[bsuf](\d+)\s")
_CP_ASYNC = re.compile(r"\bcp\.async\.c[ag]\.shared\.global(?:\.[a-zA-Z0-9_:]+)*\s*"
                       r"\[[^]]*\],\s*\[[^]]*\],\s*(0x[0-9a-f]+|\d+)")


def global_load_widths(ptx: str) -> dict[str, int]:
    """How the PTX reads global memory, per instruction in the (unrolled) kernel text: ``loads_16b`` (loads and
    ``cp.async`` copies that move 16 bytes per thread: ``ld.global.v4.b32``, ``cp.async ... 0x10``), ``loads_narrow``
    (those that move 1 or 2 bytes: one 8- or 16-bit element each) and ``loads_other`` (4 or 8 bytes).  A tile of a
    16-bit dtype read element by element (``ld.global.b16``) costs eight times the instructions of vector loads and
    cannot go through ``cp.async`` (4 bytes at least): the sign of an address or mask whose alignment Triton could
    not prove (e.g. a head dim passed unspecialised)."""
    widths = [int(v or 1) * int(bits) // 8 for v, bits in _LD_GLOBAL.findall(ptx)]
    widths += [int(n, 0) for n in _CP_ASYNC.findall(ptx)]
    return {"loads_16b": sum(w >= 16 for w in widths), "loads_narrow": sum(w <= 2 for w in widths),
            "loads_other": sum(2 < w < 16 for w in widths)}
