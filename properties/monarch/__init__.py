"""Monarch matrices (Dao et al. 2022, arXiv:2204.00595; Su kexue.fm/archives/10249): the perfect shuffle, the
four-index identity, the fast product, the per-slab rank-1 projection and the DFT as a Monarch product; op
``monarch_matmul`` (fly layout) with a naive torch baseline and a Triton kernel.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
