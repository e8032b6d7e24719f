"""The event store: append with optimistic concurrency, load streams, read in commit-safe order.

Ordering on PostgreSQL
----------------------
Positions come from a sequence, so two writers can commit them out of order:
position 11 may be visible while 10 is still in flight. A reader that follows
positions would skip 10 for ever. Instead of locking the table (which makes
every writer queue), each row records the writing transaction's id (``tx_id``)
and readers take only rows whose transaction is older than the oldest one still
running (``pg_snapshot_xmin``), in ``(tx_id, position)`` order. No row can ever
appear behind that horizon, so a checkpoint ``(tx_id, position)`` never skips.

That order must also keep each stream's order. A transaction's id is assigned
at its first write, so an append that writes something else before reading the
stream head could hold an id older than the head's. ``append`` refuses that case
with a ``ConcurrencyError`` (the caller retries with a fresh transaction), so
within a stream ``tx_id`` always grows with the version.

On SQLite writers are serialised by the database lock; ``tx_id`` is 0 and the
order is the position order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.events.envelope import GENESIS_HASH, Envelope
from libs.store.database import Database
from libs.store.errors import ConcurrencyError, IdempotencyConflict
from libs.store.schema import events

ANY_VERSION: None = None
"""Pass as ``expected_version`` to append whatever the stream's version."""


class Checkpoint(NamedTuple):
    """A place in the commit-safe order: everything at or before it has been read."""

    tx_id: int
    position: int


ORIGIN = Checkpoint(0, 0)


@dataclass(frozen=True, slots=True)
class Page:
    events: list[Envelope]
    checkpoints: list[Checkpoint]

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None


_COLUMNS = (
    events.c.event_id, events.c.event_type, events.c.schema_version, events.c.stream_id,
    events.c.stream_type, events.c.version, events.c.occurred_at, events.c.correlation_id,
    events.c.causation_id, events.c.actor, events.c.data, events.c.position,
    events.c.stream_hash,
)


def envelope_from_row(row: Row[Any] | Sequence[Any]) -> Envelope:
    return Envelope(*row[:13])


class EventStore:
    """Append-only store of one service; also its outbox (see ``libs.messaging.relay``)."""

    def __init__(self, db: Database, *, clock: Callable[[], Any] = utc_now) -> None:
        self.db = db
        self._clock = clock
        insert = pg_insert if db.is_postgres else sqlite_insert
        self._insert = (
            insert(events).on_conflict_do_nothing().returning(events.c.position, events.c.event_id)
        )
        if db.is_postgres:
            self._horizon = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            self._head_extra: tuple[Any, ...] = (
                text("pg_current_xact_id_if_assigned()::text::bigint AS current_tx"),
            )
        else:
            self._horizon = None
            self._head_extra = ()

    # -- writing -----------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int | None,
        new_events: Sequence[DomainEvent],
        meta: EventMetadata,
        *,
        conn: AsyncConnection | None = None,
        event_ids: Sequence[uuid.UUID] | None = None,
    ) -> list[Envelope]:
        """Append ``new_events`` to a stream at ``expected_version`` (``None``: any version).

        Re-appending event ids that are all stored already is a no-op that returns
        the stored envelopes. Raises ``ConcurrencyError`` when the stream is not at
        the expected version. With ``conn`` the append joins the caller's transaction.
        """
        if not new_events:
            return []
        ids = list(event_ids) if event_ids is not None else [uuid.uuid4() for _ in new_events]
        if len(ids) != len(new_events):
            raise ValueError("one event id per event")
        if conn is not None:
            return await self._append(conn, stream_id, stream_type, expected_version,
                                      new_events, meta, ids)
        # A single-row INSERT is atomic on its own; several rows need a transaction.
        scope = self.db.autocommit() if len(new_events) == 1 else self.db.transaction()
        async with scope as own:
            return await self._append(own, stream_id, stream_type, expected_version,
                                      new_events, meta, ids)

    async def _append(
        self,
        conn: AsyncConnection,
        stream_id: str,
        stream_type: str,
        expected_version: int | None,
        new_events: Sequence[DomainEvent],
        meta: EventMetadata,
        ids: list[uuid.UUID],
    ) -> list[Envelope]:
        version, previous_hash = 0, GENESIS_HASH
        if expected_version != 0:
            head = (
                await conn.execute(
                    select(events.c.version, events.c.stream_hash, events.c.tx_id,
                           *self._head_extra)
                    .where(events.c.stream_id == stream_id)
                    .order_by(events.c.version.desc())
                    .limit(1)
                )
            ).first()
            if head is not None:
                version, previous_hash = head[0], head[1]
                current_tx = head[3] if self.db.is_postgres else None
                if current_tx is not None and current_tx < head[2]:
                    raise ConcurrencyError(stream_id, expected_version,
                                           "transaction began writing before the stream's head")
            if expected_version is not None and version != expected_version:
                return await self._replayed_or_conflict(conn, stream_id, expected_version, ids)

        occurred_at = format_timestamp(self._clock())
        envelopes: list[Envelope] = []
        rows: list[dict[str, Any]] = []
        for offset, (event, event_id) in enumerate(zip(new_events, ids, strict=True), start=1):
            envelope = Envelope(
                event_id=event_id,
                event_type=event.TYPE,
                schema_version=event.VERSION,
                stream_id=stream_id,
                stream_type=stream_type,
                stream_version=version + offset,
                occurred_at=occurred_at,
                correlation_id=meta.correlation_id,
                causation_id=meta.causation_id,
                actor=meta.actor,
                data=canonical_json(event.payload()).decode("utf-8"),
            )
            previous_hash = envelope.chained_hash(previous_hash)
            envelopes.append(envelope)
            rows.append({
                "event_id": event_id, "stream_id": stream_id, "stream_type": stream_type,
                "version": envelope.stream_version, "event_type": envelope.event_type,
                "schema_version": envelope.schema_version, "occurred_at": occurred_at,
                "correlation_id": meta.correlation_id, "causation_id": meta.causation_id,
                "actor": meta.actor, "data": envelope.data, "stream_hash": previous_hash,
            })
        if len(rows) == 1:
            inserted = (await conn.execute(self._insert, rows[0])).all()
        else:
            inserted = (await conn.execute(self._insert, rows)).all()
        if len(inserted) != len(rows):
            if inserted:  # part of the batch clashed: the caller's transaction must roll back
                raise IdempotencyConflict(
                    f"{len(rows) - len(inserted)} of {len(rows)} events clashed with stored ones")
            return await self._replayed_or_conflict(conn, stream_id, expected_version, ids)
        positions = {row[1]: row[0] for row in inserted}
        return [
            _with(envelope, position=positions[envelope.event_id], stream_hash=row["stream_hash"])
            for envelope, row in zip(envelopes, rows, strict=True)
        ]

    async def _replayed_or_conflict(
        self, conn: AsyncConnection, stream_id: str, expected: int | None, ids: list[uuid.UUID]
    ) -> list[Envelope]:
        stored = await self.by_ids(ids, conn=conn)
        if len(stored) == len(ids):
            return stored
        if stored:
            raise IdempotencyConflict(f"{len(stored)} of {len(ids)} event ids already stored")
        raise ConcurrencyError(stream_id, expected)

    # -- reading -----------------------------------------------------------------

    async def by_ids(
        self, ids: Sequence[uuid.UUID], *, conn: AsyncConnection | None = None
    ) -> list[Envelope]:
        query = select(*_COLUMNS).where(events.c.event_id.in_(list(ids))).order_by(events.c.position)
        return [envelope_from_row(row) for row in await self._fetch(query, conn)]

    async def load(
        self, stream_id: str, *, after_version: int = 0, conn: AsyncConnection | None = None
    ) -> list[Envelope]:
        """Every event of a stream after ``after_version``, in version order."""
        query = (
            select(*_COLUMNS)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        return [envelope_from_row(row) for row in await self._fetch(query, conn)]

    async def read_all(
        self, after: Checkpoint = ORIGIN, *, limit: int = 1000, conn: AsyncConnection | None = None
    ) -> Page:
        """The next committed events after ``after``, in commit-safe order (see module doc)."""
        query = (
            select(*_COLUMNS, events.c.tx_id)
            .where(tuple_(events.c.tx_id, events.c.position) > tuple_(after.tx_id, after.position))
            .order_by(events.c.tx_id, events.c.position)
            .limit(limit)
        )
        if self._horizon is not None:
            query = query.where(events.c.tx_id < self._horizon)
        rows = await self._fetch(query, conn)
        return Page(
            events=[envelope_from_row(row) for row in rows],
            checkpoints=[Checkpoint(row[13], row[11]) for row in rows],
        )

    async def by_correlation(
        self, correlation_id: uuid.UUID, *, conn: AsyncConnection | None = None
    ) -> list[Envelope]:
        query = (
            select(*_COLUMNS)
            .where(events.c.correlation_id == correlation_id)
            .order_by(events.c.position)
        )
        return [envelope_from_row(row) for row in await self._fetch(query, conn)]

    async def _fetch(self, query: Select[Any], conn: AsyncConnection | None) -> Sequence[Row[Any]]:
        if conn is not None:
            return (await conn.execute(query)).all()
        async with self.db.read() as own:
            return (await own.execute(query)).all()


def _with(envelope: Envelope, **changes: Any) -> Envelope:
    return replace(envelope, **changes)
