"""Delivery's aggregates and rules: pure state, ``evolve`` and ``decide_*`` functions, no I/O."""
