"""Rebate commands and reactions: load, decide, append and update documents in one transaction."""
