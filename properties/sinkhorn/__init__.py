"""Entropic optimal transport (Sinkhorn-Knopp, op ``sinkhorn``) and the SeT layer's transport-plan pooling:
marginals, log vs scaling domain, duality, invariances, the eps -> 0 and eps -> infinity limits, the SeT weights.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
