"""Rotary position embedding (op ``rope``): relativity, layouts, partial rotation, large positions.

The family's modules register themselves when :func:`veriformer.load_catalogue` imports the folder.
"""
