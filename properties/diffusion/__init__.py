"""Diffusion identities: SNR under s x s pooling and the shifted schedules (Hoogeboom et al. 2023, arXiv:2301.11093;
Chen 2023, arXiv:2301.10972; Su kexue.fm/archives/10047), variance preservation, the pinned value 1/sqrt(65), and
the SiD conditional-score identity with its Stein form (Zhou et al. 2024; Su kexue.fm/archives/10085).

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
