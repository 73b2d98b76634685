"""Entropy-invariant softmax: the log-n scaling of attention logits and its invariance laws.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
