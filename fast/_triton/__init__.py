"""What the Triton kernels share: ``env`` (interpreter selection, bounded JIT, launch recording, dtype table,
``pow2``, compile counts; import it before triton), ``precision`` (bf16 rounding, tile loads, dot operands,
stores), ``trig`` (cos/sin of turns) and ``ptx`` (the static sm_90 report)."""

from veriformer.fast._triton import env  # noqa: F401  (first: sets TRITON_INTERPRET before triton loads)
