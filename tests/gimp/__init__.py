"""Batch scripts and helpers that drive real GIMP 3 for tests/test_gimp_e2e.py."""
