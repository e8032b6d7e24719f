"""Loading an aggregate is folding its events: ``evolve(state, event) -> state``, pure and total."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.registry import EventRegistry
from libs.store.errors import ConcurrencyError
from libs.store.store import EventStore

S = TypeVar("S")
T = TypeVar("T")


async def load(
    conn: AsyncConnection, store: EventStore, registry: EventRegistry, stream_id: str,
    initial: S, evolve: Callable[[S, DomainEvent], S],
) -> tuple[S, int]:
    """The state of a stream and its version (0: the stream does not exist)."""
    state, version = initial, 0
    for envelope in await store.load(stream_id, conn=conn):
        state = evolve(state, registry.decode(envelope))
        version = envelope.stream_version
    return state, version


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], tries: int = 5) -> T:
    """Run a whole command again (fresh transaction, fresh load) when its stream moved on."""
    for remaining in range(tries - 1, -1, -1):
        try:
            return await attempt()
        except ConcurrencyError:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")
