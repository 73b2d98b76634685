"""Our Triton selective scan in the report and the catalogue: ``triton_selective_scan`` (op ``selective_scan``,
every feature of the op, gradients included).

Registered only when Triton is importable (an optional dependency).  Without CUDA the kernels run in Triton's
CPU interpreter (selected by :mod:`veriformer.fast._triton.env`) with the GPU's arithmetic (float32 state and
accumulation, outputs rounded to nearest even in the input dtype); with CUDA on the tensors' device.
"""

from __future__ import annotations

from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.implementations import Implementation, register_implementation
from veriformer.properties.ssm.strategies import SCAN_FEATURES

__all__: list[str] = []

if HAVE_TRITON:
    from veriformer.fast.ssm.scan import selective_scan as _selective_scan

    register_implementation(Implementation(
        name="triton_selective_scan", op="selective_scan", fn=_selective_scan, triton=True,
        features=SCAN_FEATURES - {"complex_A"}, grad=True,
        note="Triton selective scan (Mamba-1): state [channel block, n] in float32 registers stepped through the "
             "sequence; backward = reverse-time adjoint scan from chunk checkpoints, no atomics (per-block dB/dC "
             "partials summed on the host); last state float32 for half inputs; CPU interpreter without CUDA"))
