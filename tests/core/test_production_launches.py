"""The launches a GPU gets at benchmark shapes take the specialised binaries (proved without a GPU or a compile).

:func:`veriformer.fast._triton.env.bounded_jit` runs a kernel's specialised binary only when every argument it
specialises is in its canonical class (unit strides equal to 1, other strides and head dims divisible by 16, 16-byte
aligned pointers); any other launch runs ``kernel.generic``, which knows nothing about alignment and reads its tiles
element by element (``ld.global.b16`` for bfloat16: eight times the load instructions, no ``cp.async``).  That is
right for odd layouts and tiny ``check()`` cases, and wrong at production shapes: a count that is not a multiple of 16
left unfree (ReRoPE's head count), or strides that differ per layout (Monarch's four block products) sent every
benchmark launch to the generic binary, and head dims left unspecialised (``free``) made the flash dK/dV, VQ and MLA
kernels load element by element even on the fast path (the sm_90 static report's "1-2 B loads" column; its
deep-profile test compiles them all).

This test records, in compiled mode (nothing runs), the forward and backward launches of every family of
``benchmarks/sm90_static.py`` at its benchmark shape, and requires every launch that is not small (a tensor of
64K elements or more; small launches are latency-bound and share the generic binary by design, e.g. the SSD cumsum
over dt [1, 4096, 4]) to take the specialised binary.
"""

from __future__ import annotations

import json

import pytest

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON  # isort: skip

from tests._helpers import compile_in_subprocess

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="needs the optional dependency triton")

_SCRIPT = r"""
import json, sys
sys.path.insert(0, "benchmarks")
import sm90_static
import torch
from veriformer.fast._triton.env import recorded_launches, small_launch
out = {}
for family, (_, run) in sm90_static.FAMILIES.items():
    with recorded_launches() as rec:
        run()
    big = [r for r in rec
           if not small_launch(*(a for a in (*r.args, *r.kwargs.values()) if isinstance(a, torch.Tensor)))]
    out[family] = sorted({(r.kernel.fn.__name__, r.generic) for r in big})
print("JSON" + json.dumps(out))
"""


def test_benchmark_shapes_launch_the_specialised_binaries() -> None:
    res = json.loads(compile_in_subprocess(_SCRIPT, timeout=300).split("JSON", 1)[1])
    assert {"attention", "vq_attention", "mla", "monarch", "rerope", "ssd", "selective_scan"} <= set(res)
    assert all(res.values()), res  # every family launched something
    generic = [(family, name) for family, launches in res.items() for name, is_generic in launches if is_generic]
    assert not generic, generic
