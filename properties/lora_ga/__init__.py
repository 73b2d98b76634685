"""LoRA-GA (Wang, Yu, Li 2024, arXiv:2407.05000; Su kexue.fm/archives/10226; repo Outsider565/LoRA-GA):
initialisation, gradient formulas, the one-step expansion, the rank-2r projector identity, Eckart-Young, merge /
unmerge and the repository defaults.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
