"""Benchmarks run from the command line (``o2c bench ...``)."""
