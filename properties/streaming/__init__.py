"""StreamingLLM (Xiao et al. 2023, arXiv 2309.17453): rolling-cache decoding with attention sinks, its retained ids
and eviction order, original vs re-assigned positions, the off-by-one / learnable-sink softmax and O(1)-memory
decoding by recomputing K/V.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
