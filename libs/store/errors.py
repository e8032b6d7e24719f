"""Store errors. HTTP maps ``ConcurrencyError`` to 409."""

from __future__ import annotations


class StoreError(Exception):
    """Base of event store errors."""


class ConcurrencyError(StoreError):
    """The stream moved on since it was read: the expected version no longer holds.

    Retry the whole command: load again, decide again, append again.
    """

    def __init__(self, stream_id: str, expected: int | None, detail: str = "") -> None:
        self.stream_id = stream_id
        self.expected = expected
        super().__init__(
            f"stream {stream_id!r} is not at version {expected}" + (f": {detail}" if detail else "")
        )


class IdempotencyConflict(StoreError):
    """Some, but not all, of the event ids of an append are already stored."""
