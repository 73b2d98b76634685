"""Our Triton SSD (Mamba-2) chunked scan in the report and the catalogue: ``triton_ssd`` (op ``ssd_scan``).

Registered only when Triton is importable (an optional dependency).  Without CUDA the kernels run in Triton's
CPU interpreter (selected by :mod:`veriformer.fast._triton.env`) with the GPU's arithmetic emulated (operands
rounded to the input dtype, float32 accumulation and state passing); with CUDA on the tensors' device.
Source of the kernels: :mod:`veriformer.fast.ssm.ssd` (Dao & Gu 2024, SSD Listing 1; mamba's
``mamba_chunk_scan_combined`` layout).
"""

from __future__ import annotations

from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.implementations import Implementation, register_implementation

__all__: list[str] = []

if HAVE_TRITON:
    from veriformer.fast.ssm.ssd import ssd_scan as _ssd_scan

    register_implementation(Implementation(
        name="triton_ssd", op="ssd_scan", fn=_ssd_scan, features=frozenset({"initial_states"}), grad=True, triton=True,
        note="Triton SSD chunked scan, forward + backward (in-chunk cumsum in float64 so every decay exponent is "
             "rounded once; float32 states and state passing; stable direct da sums); final state float32 for "
             "half inputs; CPU interpreter without CUDA"))
