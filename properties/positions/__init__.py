"""Positions beyond plain RoPE: frequency scaling (PI, NTK, beta-base / mixed, dynamic; also op ``rope``'s
``scaling=`` option), log-n scaling of q, ReRoPE and Leaky ReRoPE, RoPE-2D, RoPE-Tie / RoPE-TV and M-RoPE
position assignment, the RoPE base lower bound (Men et al. 2024) and the RoFormer decay bound.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
