"""Rotary position embedding kernels, layout [B, H, T, D]: ``fused`` (Triton RoPE, in place or not, with its
backward; op ``rope``) and ``naive`` (the plain-torch baselines: the usual float32-angle one and the careful
float64-angle one).

Su et al. 2021, "RoFormer" (arXiv:2104.09864), eq. 34.
"""
