"""GAU / FLASH mixed-chunk attention: quadratic local plus linear global parts.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
