"""Position kernels, layout [B, H, T, D]: ``naive`` (plain-torch ReRoPE / Leaky ReRoPE as ``bojone/rerope`` writes
it: two score matrices merged by the window mask at prefill, re-rotated keys at decode).

Su, kexue.fm/archives/9708; ``bojone/rerope`` rerope_patch.py, leaky_rerope_patch.py.
"""
