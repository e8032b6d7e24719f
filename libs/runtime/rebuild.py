"""Rebuild a service's read models from its own event store: fold each stream, write its documents.

A service's documents are derived data. A rebuild forgets the kinds of
document its streams determine, reads the store a page at a time in
``(stream_id, version)`` order (a keyset cursor on the unique index), folds each
stream with the service's own ``evolve`` and writes the documents of its final
state with the service's own body functions, through a ``documents.batch``
unit of work flushed once per page. Only the stream being folded is kept from
one page to the next, so memory does not grow with the store. The events were
validated when they were appended: they are decoded without validating them
again (``EventRegistry.decode_stored``).

All of it is one transaction: readers see the old documents until the rebuild
commits, then the new ones. On PostgreSQL it first takes a SHARE lock on the
event store, so the service's commands (which append) wait for the rebuild
instead of writing documents it is rewriting; reads are not blocked. SQLite
has one writer at a time anyway.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry
from libs.runtime.documents import Documents
from libs.store.database import Database
from libs.store.schema import documents, events
from libs.store.store import envelope_from_row

S = TypeVar("S")

PAGE = 5000
_ENVELOPE = (
    events.c.event_id, events.c.event_type, events.c.schema_version, events.c.stream_id,
    events.c.stream_type, events.c.version, events.c.occurred_at, events.c.correlation_id,
    events.c.causation_id, events.c.actor, events.c.data, events.c.position, events.c.stream_hash,
)
"""Columns in the order ``envelope_from_row`` takes them."""


@dataclass(frozen=True)
class StreamReadModels(Generic[S]):
    """The documents one type of stream determines."""

    stream_type: str
    initial: Callable[[str], S]
    """The state before a stream's first event, given the stream id."""
    fold: Callable[[S, Envelope, DomainEvent], S]
    """The service's ``evolve`` (the envelope is there for timestamps)."""
    write: Callable[[Documents, S, int], Any]
    """Put the documents of a stream's final state at its version (may be async)."""


def _nothing(events: int) -> None:
    return None


def _collect_young() -> None:
    gc.collect(0)


@contextmanager
def collecting_between_pages() -> Iterator[Callable[[], None]]:
    """Python's cycle collector, paused for a rebuild; it yields what to call between pages.

    A rebuild makes and drops a few containers per event (rows, events, folded
    documents). The collector, started by allocation counts, walked them over and
    over: 40 % of the CPU of the projections' rebuild of 100,000 events, though the
    rebuild makes next to no cycles (130 objects found after those 100,000 events):
    reference counting frees a page as soon as it is folded. Between pages, the
    young generation alone is collected (what the page left, a few thousand
    objects), so a cycle a fold might make cannot pile up with the events. The
    collector runs as before once the rebuild ends.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield _collect_young
    finally:
        if paused:
            gc.enable()


async def keep_writers_out(conn: AsyncConnection) -> None:
    """Until this transaction ends, nothing is appended to the store (PostgreSQL; reads go on)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("LOCK TABLE events IN SHARE MODE"))


class _Stream:
    """The stream being folded."""

    def __init__(self, model: StreamReadModels[Any], stream_id: str) -> None:
        self.model, self.stream_id = model, stream_id
        self.state, self.version = model.initial(stream_id), 0

    async def write(self, docs: Documents) -> None:
        written = self.model.write(docs, self.state, self.version)
        if inspect.isawaitable(written):
            await written


async def rebuild(
    db: Database, registry: EventRegistry, kinds: Collection[str], models: Sequence[StreamReadModels[Any]],
    *, progress: Callable[[int], None] = _nothing, total: Callable[[int], None] = _nothing,
) -> int:
    """Forget the documents of ``kinds``, then write them again from the streams; events folded."""
    by_type = {model.stream_type: model for model in models}
    of_these = events.c.stream_type.in_(list(by_type))
    count = 0
    async with db.transaction() as conn:
        await keep_writers_out(conn)
        total(int((await conn.execute(select(func.count()).select_from(events).where(of_these)))
                  .scalar_one()))
        await conn.execute(delete(documents).where(documents.c.kind.in_(list(kinds))))
        docs = Documents(conn, lock=False)
        stream: _Stream | None = None
        query = select(*_ENVELOPE).where(of_these).order_by(events.c.stream_id, events.c.version).limit(PAGE)
        rows: Sequence[Any] = (await conn.execute(query)).all()
        with collecting_between_pages() as between_pages:
            while rows:
                for envelope in map(envelope_from_row, rows):
                    if stream is None or stream.stream_id != envelope.stream_id:
                        if stream is not None:
                            await stream.write(docs)
                        stream = _Stream(by_type[envelope.stream_type], envelope.stream_id)
                    event = registry.decode_stored(envelope.event_type, envelope.schema_version,
                                                   envelope.data)
                    stream.state = stream.model.fold(stream.state, envelope, event)
                    stream.version = envelope.stream_version
                count += len(rows)
                last = rows[-1]
                following = (await conn.execute(query.where(tuple_(events.c.stream_id, events.c.version)
                                                            > tuple_(last.stream_id, last.version)))).all()
                if not following and stream is not None:
                    await stream.write(docs)
                await docs.flush()
                docs.forget()
                progress(len(rows))
                rows = following
                between_pages()
    return count


class Rebuild(Protocol):
    """A service's read-model rebuild, as ``o2c replay`` runs it."""

    async def __call__(self, db: Database, registry: EventRegistry, *,
                       progress: Callable[[int], None] = ...,
                       total: Callable[[int], None] = ...) -> int: ...


def rebuilder(kinds: Collection[str], models: Sequence[StreamReadModels[Any]]) -> Rebuild:
    """The rebuild of a service whose ``kinds`` of document its ``models`` determine."""

    async def rebuild_read_models(db: Database, registry: EventRegistry, *,
                                  progress: Callable[[int], None] = _nothing,
                                  total: Callable[[int], None] = _nothing) -> int:
        return await rebuild(db, registry, kinds, models, progress=progress, total=total)

    return rebuild_read_models
