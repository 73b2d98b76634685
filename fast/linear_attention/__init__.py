"""Linear attention kernels, flash-linear-attention layout [B, T, H, D]: ``chunked`` (Triton chunked / Lightning-2
forward and backward with decays, gates and states; op ``linear_attention``) and ``naive`` (the torch baselines:
quadratic, float32 recurrent and chunked).

Katharopoulos et al. 2020 (arXiv:2006.16236); Qin et al. 2024, "Lightning Attention-2" (arXiv:2401.04658).
"""
