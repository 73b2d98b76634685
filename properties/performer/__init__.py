"""Performer FAVOR+: positive random features, unbiasedness and variance laws.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
