"""The credit HTTP API."""
