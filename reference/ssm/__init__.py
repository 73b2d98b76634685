"""State-space oracles (float64 NumPy, each also runnable in mpmath through ``backend=MP(dps)``).

``discretization`` (ZOH, bilinear, ... of continuous systems), ``hippo`` (HiPPO-LegS/LegT matrices, NPLR forms),
``hippo_online`` (online LegS/LegT projections and time-varying schemes), ``s4`` (S4/S4D convolution kernels:
powers, generating function, DPLR Cauchy + Woodbury, FFT), ``rtf`` (rational transfer functions),
``selective_scan`` (Mamba), ``ssd`` (Mamba-2 state-space duality), ``mamba_chunk_scan`` (mamba's
``mamba_chunk_scan_combined`` convention) and ``vjp`` (float64 VJPs of the SSM ops).  Every name in each
module's ``__all__`` is re-exported here and by ``veriformer.reference``.
"""

from veriformer.reference._families import export_submodules

__all__ = export_submodules(__name__, __path__, globals())
