"""Transformer-VQ kernels, layout [B, H, T, D]: ``linear_time`` (Triton, linear in T, forward and backward; op
``vq_attention``) and ``naive`` (the torch baseline: quantise, then masked softmax attention).

Lingle 2023, "Transformer-VQ: Linear-Time Transformers via Vector Quantization" (arXiv:2309.16354).
"""
