"""Service runtime shared by every service: settings, HTTP, auth, idempotency, read models, host."""
