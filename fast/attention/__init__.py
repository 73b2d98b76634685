"""Softmax attention kernels, layout [B, H, T, D]: ``flash`` (Triton flash attention, forward and backward; op
``softmax_attention``) and ``naive`` (the plain-torch baseline of the tolerance policy).

Dao et al. 2022, "FlashAttention" (arXiv:2205.14135); Dao 2023, "FlashAttention-2" (arXiv:2307.08691).
"""
