"""State-space models: discretisation, HiPPO, S4/S4D kernels, RTF, selective scan, SSD and mamba's chunked
scan (ops ``ssm_convolution``, ``s4d_kernel``, ``selective_scan``, ``ssd_scan``, ``mamba_chunk_scan``); peers
from mamba-ssm.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
