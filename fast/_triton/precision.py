"""Precision helpers every Triton kernel shares: tile loads, dot operands and stores that round exactly as the
GPU does, also under the CPU interpreter (``TRITON_INTERPRET=1``), whose bfloat16 cast truncates and whose dots
run in float32.

* ``rne_bf16(x)``: float32 -> nearest bfloat16 value (ties to even), kept in float32;
* ``load_tile(ptrs, mask, EMULATE)``: masked load (zeros outside); under the interpreter upcast to float32;
* ``to_operand(x, DTYPE, EMULATE)``: a float32 tile as a dot operand of ``DTYPE`` (interpreter: rounded onto
  ``DTYPE``'s grid, still float32, so products equal the tensor cores' and the accumulation is float32);
* ``to_store(x, DTYPE, EMULATE)``: float32 -> ``DTYPE`` rounded to nearest even.

Source: IEEE 754-2019 round-to-nearest-even; the bfloat16 format (Kalamkar et al. 2019, arXiv:1905.12322).
"""

from __future__ import annotations

from veriformer.fast._triton.env import HAVE_TRITON, device_function, tl

__all__ = ["load_tile", "rne_bf16", "to_operand", "to_store"]

if HAVE_TRITON:

    @device_function
    def rne_bf16(x):
        """float32 -> the nearest bfloat16 value (ties to even), still held in float32 (finite x)."""
        b = x.to(tl.uint32, bitcast=True)
        b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
        return b.to(tl.float32, bitcast=True)

    @device_function
    def load_tile(ptrs, mask, EMULATE: tl.constexpr):
        """Load a tile (zeros where masked); in the interpreter upcast to float32 at once."""
        x = tl.load(ptrs, mask=mask, other=0.0)
        if EMULATE:
            x = x.to(tl.float32)
        return x

    @device_function
    def to_operand(x, DTYPE: tl.constexpr, EMULATE: tl.constexpr):
        """A float32 tile as a dot operand of DTYPE (GPU: a cast; interpreter: rounded onto DTYPE's grid but
        kept in float32, so products are the same as the tensor cores' and the accumulation float32)."""
        if EMULATE:
            if DTYPE == tl.bfloat16:
                y = rne_bf16(x)
            elif DTYPE == tl.float16:
                y = x.to(tl.float16).to(tl.float32)
            else:
                y = x
        else:
            y = x.to(DTYPE)
        return y

    @device_function
    def to_store(x, DTYPE: tl.constexpr, EMULATE: tl.constexpr):
        """float32 -> DTYPE rounded to nearest even (the interpreter's bf16 cast truncates: round first)."""
        if EMULATE:
            if DTYPE == tl.bfloat16:
                x = rne_bf16(x)
        return x.to(DTYPE)
