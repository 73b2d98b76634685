"""Softmax and log-sum-exp: stability, online merge and masking laws.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
