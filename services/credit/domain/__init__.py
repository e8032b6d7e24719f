"""The credit domain: the account aggregate and its pure decisions (no I/O)."""
