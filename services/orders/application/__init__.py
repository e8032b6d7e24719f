"""Commands (load, decide, append, update documents in one transaction) and reactions to events."""
