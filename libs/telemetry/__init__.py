"""Observability with no domain in it: the request's context, structured logs, metrics, traces."""
