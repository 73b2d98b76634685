"""NBCE (naive-Bayes context extension): merging the next-token predictions of several contexts with the
unconditional one, min-entropy pooling with stickiness, top-p truncation; laws and a pinned worked example.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
