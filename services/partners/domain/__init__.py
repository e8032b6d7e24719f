"""Partner and API-key aggregates: pure state, ``evolve`` and ``decide_*`` rules, no I/O."""
