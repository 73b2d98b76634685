"""Alternatives to softmax: sparsemax, 1.5-entmax and bisection entmax, Taylor softmax, top-k softmax, Gumbel-max
sampling and the stop-gradient loss; ops ``sparsemax`` and ``entmax15`` (``fn(z) -> p`` along the last axis).

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
