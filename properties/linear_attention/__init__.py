"""Linear attention (op ``linear_attention``, fla's simple-GLA convention): quadratic, recurrent and
chunked forms with decays, gates and states; peers from flash-linear-attention.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
