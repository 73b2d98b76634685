"""MLA decode kernels: ``decode.py`` (Triton split-KV decode over the shared latent, FlashMLA convention) and
``naive.py`` (plain-torch baselines)."""
