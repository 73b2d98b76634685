"""Transformer-VQ (op ``vq_attention``): quantiser, linear-time and block forms, local bias, straight-through
VJPs.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
