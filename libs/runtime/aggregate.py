"""Loading an aggregate is folding its events: ``evolve(state, event) -> state``, pure and total.

With a ``SnapshotPolicy`` (``libs.store.snapshots``) a load starts from the
state remembered in the process or stored as a snapshot, and folds only the
events after it, so its cost does not grow with the stream's history. Without
one, or when neither is usable, it folds the stream from its first event: the
answer is the same either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry
from libs.runtime.outages import is_rolled_back_to_retry
from libs.store.errors import ConcurrencyError
from libs.store.snapshots import SnapshotPolicy, latest
from libs.store.store import EventStore, Head

S = TypeVar("S")
T = TypeVar("T")


async def load(
    conn: AsyncConnection, store: EventStore, registry: EventRegistry, stream_id: str,
    initial: S, evolve: Callable[[S, DomainEvent], S], *,
    snapshots: SnapshotPolicy[S] | None = None,
) -> tuple[S, int]:
    """The state of a stream and its version (0: the stream does not exist)."""
    state, version, _ = await load_head(conn, store, registry, stream_id, initial, evolve,
                                        snapshots=snapshots)
    return state, version


async def load_head(
    conn: AsyncConnection, store: EventStore, registry: EventRegistry, stream_id: str,
    initial: S, evolve: Callable[[S, DomainEvent], S], *,
    snapshots: SnapshotPolicy[S] | None = None, document: tuple[str, str] | None = None,
) -> tuple[S, int, Head | None]:
    """``load``, with the head its read ended at (``Head``: an append after it in the same
    transaction need not read the head again); None when it read no event. With
    ``document=(kind, id)`` the read of the events also reads that document (``Head.document``).

    ``evolve`` must not copy what it does not change (see ``libs.runtime.persistent``),
    or folding the tail costs as much as the state is large.

    The events are read as a rebuild reads them (``EventRegistry.decode_stored``): this
    store holds only events its service built and validated before appending them, so
    validating each again on every load (every command and reaction of every service)
    would only cost. The wire's events are still validated (``EventRegistry.decode``).
    """
    state, version, tail, head = initial, 0, None, None
    if snapshots is not None:
        state, version, tail, head = await _start(conn, store, stream_id, initial, snapshots, document)
    if tail is None:
        tail, head = await store.load_tail(conn, stream_id, after_version=version, document=document)
    if not tail:
        return state, version, head
    for envelope in tail:  # the service's own events, validated before they were stored
        state = evolve(state, registry.decode_stored(envelope.event_type, envelope.schema_version,
                                                     envelope.data))
    last = tail[-1]
    if snapshots is not None and last.stream_hash is not None:
        snapshots.remember(stream_id, last.stream_version, last.stream_hash, state)
    return state, last.stream_version, head


async def _start(conn: AsyncConnection, store: EventStore, stream_id: str, initial: S,
                 policy: SnapshotPolicy[S], document: tuple[str, str] | None
                 ) -> tuple[S, int, list[Envelope] | None, Head | None]:
    """Where a load starts: a remembered state, else the stored snapshot, else ``initial``.

    Each is used only when the event at its version is still in the stream (for a
    remembered state, with the same ``stream_hash``); the events after it come back
    as the tail, with the head the read ended at, so the start costs no extra query.
    """
    remembered = policy.remembered(stream_id)
    if remembered is not None:
        tail, head = await store.load_tail(conn, stream_id, after_version=remembered.version - 1,
                                           document=document)
        if tail and tail[0].stream_version == remembered.version \
                and tail[0].stream_hash == remembered.stream_hash:
            store.snapshot_starts["remembered"] += 1
            return remembered.state, remembered.version, tail[1:], head
    snapshot = await latest(conn, stream_id, policy)
    if snapshot is not None:
        version, state = snapshot
        tail, head = await store.load_tail(conn, stream_id, after_version=version - 1, document=document)
        if tail and tail[0].stream_version == version:
            if len(tail) == 1 and tail[0].stream_hash is not None:  # nothing after it
                policy.remember(stream_id, version, tail[0].stream_hash, state)
            store.snapshot_starts["stored"] += 1
            return state, version, tail[1:], head
    store.snapshot_starts["initial"] += 1
    return initial, 0, None, None


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], tries: int = 5) -> T:
    """Run a whole command again (fresh transaction, fresh load) when its stream moved on, or
    when PostgreSQL rolled its transaction back to break a deadlock (``is_rolled_back_to_retry``).

    Two transactions can deadlock on rows of one table when they lock them in different
    orders: a sale's dispatch moves its skus' stock rows in one statement, in sku order, while
    a receipt that serves the backorder queue moves them in several statements
    (``services.delivery.application.ledger``). PostgreSQL then ends one of them after
    ``deadlock_timeout``; the command runs again instead of failing."""
    for remaining in range(tries - 1, -1, -1):
        try:
            return await attempt()
        except ConcurrencyError:
            if remaining == 0:
                raise
        except Exception as error:
            if remaining == 0 or not is_rolled_back_to_retry(error):
                raise
    raise AssertionError("unreachable")
