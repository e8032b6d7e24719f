"""Pure rules of the projections: which service published what, causal order, receivables, sales."""
