"""Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1): KV-cache sizes of MHA/MQA/GQA/MLA, the
training form against the absorbed decode form, why RoPE on the latent breaks absorption, bf16 precision, and the
decode op ``mla_decode`` (FlashMLA convention) with its Triton split-KV kernel.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
