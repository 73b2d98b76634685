"""State-space kernels: ``conv`` (S4D Vandermonde kernel and FFT long convolution; ops ``s4d_kernel`` and
``ssm_convolution``), ``scan`` (selective scan; op ``selective_scan``), ``ssd`` (SSD chunked scan; ops ``ssd_scan``
and ``mamba_chunk_scan``) and the torch baselines ``naive`` and ``naive_chunk_scan``.

Gu et al. 2022 (S4, arXiv:2111.00396; S4D, arXiv:2206.11893); Gu & Dao 2023 (Mamba, arXiv:2312.00752);
Dao & Gu 2024 (Mamba-2 / SSD, arXiv:2405.21060).
"""
