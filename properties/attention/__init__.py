"""Softmax attention (op ``softmax_attention``): direct, online, RNN and split-KV forms, VJP; causal, window,
sinks, masks, GQA; wrong answers at LLM lengths.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
