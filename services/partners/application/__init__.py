"""Commands (one transaction each), read models and reactions of the partners service."""
