"""What the handlers of one consumer transaction share: state kept for the batch, writes
done once before it commits.

A consumer applies a batch of events in one transaction (``libs.messaging.consumer``).
A handler that folds into something many events of the batch touch (a read model
document, say) need not read and write it once per event: it keeps its unit of work
in ``BatchWork.shared`` under a key of its own and registers the final write with
``before_commit``. The consumer runs those writes after the last handler of the
batch and before the inbox rows, heads and commit, so they land in the same
transaction as everything else: a batch that fails anywhere leaves none of them.

``envelopes`` are the batch's events whose handlers will run, in order, and
``events`` the same decoded once before the first handler runs, so a handler may
read ahead, or write ahead, in one statement what the whole batch needs: the
consumer decides every event of the batch against its order guard before the
first handler (a repeat or an event held is not among them), and a handler that
fails rolls the whole transaction back, ahead-writes included (the batch is then
split and applied again, each part with a ``BatchWork`` of its own).

A handler given no ``BatchWork`` (a test calling it directly) works on its own and
writes at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope

T = TypeVar("T")


class BatchWork:
    """Per-transaction scratch of a consumer batch (or of one event applied alone)."""

    def __init__(self, decoded: Mapping[uuid.UUID, DomainEvent] | None = None,
                 envelopes: Sequence[Envelope] = ()) -> None:
        self._decoded = dict(decoded or {})
        self._envelopes = tuple(envelopes)
        self._shared: dict[Any, Any] = {}
        self._flushes: list[Callable[[], Awaitable[object]]] = []

    @property
    def events(self) -> list[DomainEvent]:
        """The batch's events whose handlers will run, in order (decoded once, before any
        handler; one that fails to decode is left out: its handler fails on it)."""
        return list(self._decoded.values())

    @property
    def envelopes(self) -> tuple[Envelope, ...]:
        """The envelopes of the batch's events whose handlers will run, in order."""
        return self._envelopes

    def decoded(self, event_id: uuid.UUID) -> DomainEvent | None:
        return self._decoded.get(event_id)

    def shared(self, key: Any, make: Callable[[], T], *,
               flush: Callable[[T], Awaitable[object]] | None = None) -> T:
        """The batch's one ``make()`` under ``key``; ``flush(it)`` runs before the commit."""
        if key in self._shared:
            kept: T = self._shared[key]
            return kept
        value = self._shared[key] = make()
        if flush is not None:
            self._flushes.append(lambda: flush(value))
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._shared

    async def finish(self) -> None:
        """Run the registered writes, in the order they were registered (once)."""
        flushes, self._flushes = self._flushes, []
        for write in flushes:
            await write()
