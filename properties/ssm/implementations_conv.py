"""Our fast state-space kernels in the report and the catalogue: ``fast_s4d_kernel`` (op ``s4d_kernel``: Triton
Vandermonde with the rotation angle reduced in float64) and ``fast_fft_conv`` (op ``ssm_convolution``: rfft
padded to 2L over all channels, FFT-correlation backward).  See :mod:`veriformer.fast.ssm.conv`.

Registered only when Triton is importable (the S4D kernel needs it; without CUDA it runs in Triton's CPU
interpreter).
"""

from __future__ import annotations

from veriformer.fast._triton.env import HAVE_TRITON
from veriformer.implementations import Implementation, register_implementation
from veriformer.ops import OPS

__all__: list[str] = []

if HAVE_TRITON:
    from veriformer.fast.ssm.conv import fft_conv as _fft_conv
    from veriformer.fast.ssm.conv import s4d_kernel as _s4d_kernel

    # gradients are checked only where op s4d_kernel has a gold VJP (differentiable inputs declared)
    _S4D_GRAD = bool(OPS["s4d_kernel"].differentiable) if "s4d_kernel" in OPS else False

    register_implementation(Implementation(
        name="fast_s4d_kernel", op="s4d_kernel", fn=_s4d_kernel, grad=_S4D_GRAD, triton=True,
        note="Triton S4D Vandermonde: float32 (re, im) arithmetic, angle l dt Im A reduced in float64 before "
             "float32 cos/sin; backward = Triton transposed-Vandermonde sums + complex128 chain rule; "
             "CPU interpreter without CUDA"))
    register_implementation(Implementation(
        name="fast_fft_conv", op="ssm_convolution", fn=_fft_conv, grad=True,
        note="rfft padded to 2L batched over channels (float32 FFT for half inputs), FFT-correlation backward"))
