"""Implementations of op ``rope`` under its ``scaling=`` option that the report and the catalogue check: the careful
torch baseline and (with Triton) ``triton_rope`` for NTK, mixed base (ntk_patch.py's k = 12, gamma = 0.75),
position interpolation and dynamic NTK; and op ``rerope_attention``: the naive torch two-pass code and the Triton
kernel."""

from __future__ import annotations

import functools

from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.fast.positions import naive as pnaive
from veriformer.fast.rope import naive
from veriformer.implementations import Implementation, register_implementation

SCALINGS = {
    "linear4": {"type": "linear", "factor": 4.0},
    "ntk8": {"type": "ntk", "factor": 8.0},
    "mixed12": {"type": "mixed", "factor": 12.0, "gamma": 0.75},
    "dynamic4": {"type": "dynamic", "factor": 4.0, "original_max_position": 64},
    "yarn8": {"type": "yarn", "factor": 8.0, "original_max_position": 64},
}

for _label, _sc in SCALINGS.items():
    register_implementation(Implementation(
        f"careful_torch[half, scaling={_label}]", "rope",
        functools.partial(naive.rope_careful, layout="half", scaling=_sc), grad=True,
        options={"layout": "half", "scaling": _sc}, note="float64 angles of the scaled frequencies, cast once"))

if HAVE_TRITON:
    from veriformer.fast.rope.fused import rope as _rope

    for _label in ("ntk8", "mixed12", "dynamic4", "yarn8"):
        _sc = SCALINGS[_label]
        register_implementation(Implementation(
            f"triton_rope[half, scaling={_label}]", "rope", functools.partial(_rope, layout="half", scaling=_sc),
            grad=True, triton=True, options={"layout": "half", "scaling": _sc},
            note="Triton RoPE fed the float64 scaled frequencies; CPU interpreter without CUDA"))

register_implementation(Implementation(
    "naive_torch_rerope", "rerope_attention", pnaive.rerope_attention, grad=True, features=frozenset({"gqa"}),
    note="bojone/rerope's two-pass code in plain torch (float32 softmax)"))
if HAVE_TRITON:
    from veriformer.fast.positions.rerope import rerope_attention as _rerope

    register_implementation(Implementation(
        "triton_rerope", "rerope_attention", _rerope, grad=True, triton=True, features=frozenset({"gqa"}),
        note="Triton: rotated operands by the Triton RoPE kernel, two score tiles merged by the window mask in an "
             "online softmax; flash-style backward; CPU interpreter without CUDA"))
