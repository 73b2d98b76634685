"""Test configuration: the veriformer pytest plugin (entry point) loads the Hypothesis profile."""
