"""Performer read as soft vector quantisation (Transformer-VQ's connection to random features).

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
