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

import functools
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, TextClause, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.chain import UNKEYED, Chain
from libs.events.codec import canonical_json
from libs.events.envelope import GENESIS_HASH, Envelope
from libs.store.commits import APPENDED
from libs.store.database import Database
from libs.store.errors import ConcurrencyError, IdempotencyConflict
from libs.store.schema import events
from libs.store.sql import Statement, row_placeholders, sqlite_uuid

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


@dataclass(frozen=True)
class Head:
    """A stream's last event as a load read it, for an append in the same transaction.

    The append then need not read the head again (``EventStore.append``): it chains to
    ``stream_hash`` and checks the commit order with ``tx_id`` (the transaction that wrote
    the head) and ``current_tx`` (the loading transaction's id, if it had one by then; one
    taken later is newer than any head it read). Someone appending in between makes the
    append clash on the version: a ``ConcurrencyError``, as before. A head this transaction
    wrote itself needs no check (``tx_id`` None).
    """

    version: int
    stream_hash: str | None
    tx_id: int | None = None
    current_tx: int | None = None
    #: The aggregate's own document (JSON text) as the load's statement read it, beside its
    #: events (``load_tail(document=...)``); None when not asked for, or there is none.
    document: str | None = None


class EventStore:
    """Append-only store of one service; also its outbox (see ``libs.messaging.relay``).

    ``chain`` links each appended event to its stream's head (``libs.events.chain``):
    keyed, the link is computed here, in the writing service, with a key the
    database never holds; the relay seals with the same chain.
    """

    def __init__(self, db: Database, *, clock: Callable[[], Any] = utc_now,
                 chain: Chain = UNKEYED) -> None:
        self.db = db
        self.chain = chain
        self._clock = clock
        self.appended = 0
        """Events appended by this process (some in transactions that later rolled back): a
        counter for metrics."""
        self.snapshot_starts: Counter[str] = Counter()
        """How loads of snapshotted streams started: ``remembered`` (the state kept in the
        process), ``stored`` (a snapshot row) or ``initial`` (folded from the first event)."""
        if db.is_postgres:
            self._horizon: TextClause | None = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        else:
            self._horizon = None

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
        head: Head | None = None,
    ) -> list[Envelope]:
        """Append ``new_events`` to a stream at ``expected_version`` (``None``: any version).

        ``head`` is the stream's head as ``conn``'s transaction last saw it: written by
        itself (nobody else can append behind it before that transaction ends) or read by
        its load (``load_tail``). At ``expected_version`` it is not read again.

        Re-appending event ids that are all stored already is a no-op that returns
        the stored envelopes. Raises ``ConcurrencyError`` when the stream is not at
        the expected version. With ``conn`` the append joins the caller's transaction
        (the services' path: inside ``Database.transaction()``); without, it runs the
        same path in a transaction of its own.
        """
        if not new_events:
            return []
        ids = list(event_ids) if event_ids is not None else [uuid.uuid4() for _ in new_events]
        if len(ids) != len(new_events):
            raise ValueError("one event id per event")
        batch = _Batch(stream_id, stream_type, expected_version, new_events, meta, ids,
                       format_timestamp(self._clock()), self.chain)
        if conn is not None:
            stored = await self._append_in(conn, batch, head)
        else:
            async with self.db.transaction() as own:
                stored = await self._append_in(own, batch)
        if stored is None:
            return await self._replayed_or_conflict(stream_id, expected_version, ids, conn)
        self.appended += len(stored)
        return stored

    async def _append_in(self, conn: AsyncConnection, batch: _Batch,
                         known: Head | None = None) -> list[Envelope] | None:
        """The append inside a caller's transaction (SQLAlchemy, both databases); ``known``:
        the head this transaction wrote or read (see ``append``)."""
        version, previous_hash = 0, GENESIS_HASH
        if known is not None and known.version == batch.expected_version and known.version \
                and known.stream_hash is not None:
            version, previous_hash = known.version, known.stream_hash
            self._check_commit_order(batch, known.current_tx, known.tx_id)
        elif batch.expected_version != 0:
            found = await _HEAD.fetch(conn, batch.stream_id)
            if found:
                head = found[0]
                version, previous_hash = head[0], head[1]
                self._check_commit_order(batch, head[3] if self.db.is_postgres else None, head[2])
        envelopes = batch.prepare(version, previous_hash)
        if envelopes is None:
            return None
        on_sqlite = not self.db.is_postgres
        inserted = [(r[0], uuid.UUID(str(r[1])), r[2]) for r in await _insert(len(envelopes)).fetch(
            conn, *(value for e in envelopes for value in _Batch.values(e, on_sqlite)))]
        if 0 < len(inserted) < len(envelopes):  # part clashed: the caller's transaction must end
            landed = {str(r[1]) for r in inserted}
            clashed = [e.event_id for e in envelopes if str(e.event_id) not in landed]
            if await self.by_ids(clashed, conn=conn):
                raise IdempotencyConflict(f"{len(clashed)} of {len(envelopes)} event ids stored")
            raise ConcurrencyError(batch.stream_id, batch.expected_version)
        if not inserted:  # a replay or a clash: the caller decides which
            return None
        # Wakes the relay once the transaction commits (libs.store.commits).
        conn.info[APPENDED] = max(conn.info.get(APPENDED, 0), *(r[2] for r in inserted))
        return batch.positioned(envelopes, [(r[0], r[1]) for r in inserted])

    @staticmethod
    def _check_commit_order(batch: _Batch, current_tx: int | None, head_tx: int | None) -> None:
        """PostgreSQL: refuse to append behind a head written by a transaction newer than this
        one's id (the relay's commit-safe order must match each stream's version order)."""
        if current_tx is not None and head_tx is not None and current_tx < head_tx:
            raise ConcurrencyError(batch.stream_id, batch.expected_version,
                                   "transaction began writing before the stream's head")

    async def _replayed_or_conflict(
        self, stream_id: str, expected: int | None, ids: list[uuid.UUID],
        conn: AsyncConnection | None,
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
        if conn is not None:
            return (await self.load_tail(conn, stream_id, after_version=after_version))[0]
        query = (
            select(*_COLUMNS)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        return [envelope_from_row(row) for row in await self._fetch(query, None)]

    async def load_tail(self, conn: AsyncConnection, stream_id: str, *, after_version: int = 0,
                        document: tuple[str, str] | None = None
                        ) -> tuple[list[Envelope], Head | None]:
        """``load`` in ``conn``'s transaction, with the head it read (None: no event after
        ``after_version``): every load of every command and reaction, straight to the driver.

        ``document=(kind, id)``: the same statement also reads that document (``Head.document``),
        so the save after the load (``libs.runtime.commands.Unit.save``) need not read it. One
        statement reads one snapshot: the document is the one written with the head's event
        by a writer that writes both in one transaction."""
        if document is None:
            rows = await _LOAD.fetch(conn, stream_id, after_version)
            body = None
        else:
            rows, body = [], None
            for row in await _LOAD_WITH_DOCUMENT.fetch(conn, stream_id, after_version, *document):
                if row[0] is None:
                    body = row[15]
                else:
                    rows.append(row)
        if not rows:
            return [], None
        last = rows[-1]
        return ([_envelope_of_driver_row(row) for row in rows],
                Head(last[5], last[12], None if last[13] is None else int(last[13]),
                     None if last[14] is None else int(last[14]), body))

    async def read_all(
        self, after: Checkpoint = ORIGIN, *, limit: int = 1000, conn: AsyncConnection | None = None
    ) -> Page:
        """The next committed events after ``after``, in commit-safe order (see module doc)."""
        if conn is None and self.db.is_postgres:
            pool = await self.db.driver_pool()
            async with pool.acquire() as con:
                records = await con.fetch(_PG_READ, after.tx_id, after.position, limit)
            return Page(
                events=[Envelope(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                                 r[10], r[11], r[12]) for r in records],
                checkpoints=[Checkpoint(r[13], r[11]) for r in records],
            )
        if self._horizon is None:  # SQLite: one writer at a time, so position order is commit order
            if conn is None:  # the relay's read: every wake-up of every relay
                async with self.db.read() as own:
                    rows = await _SQLITE_READ.fetch(own, after.position, limit)
            else:
                rows = await _SQLITE_READ.fetch(conn, after.position, limit)
            return Page(events=[_envelope_of_driver_row(row) for row in rows],
                        checkpoints=[Checkpoint(row[13], row[11]) for row in rows])
        query = (
            select(*_COLUMNS, events.c.tx_id)
            .where(tuple_(events.c.tx_id, events.c.position)
                   > tuple_(after.tx_id, after.position), events.c.tx_id < self._horizon)
            .order_by(events.c.tx_id, events.c.position)
            .limit(limit)
        )
        found = await self._fetch(query, conn)
        return Page(
            events=[envelope_from_row(row) for row in found],
            checkpoints=[Checkpoint(row.tx_id, row.position) for row in found],
        )

    async def _fetch(self, query: Select[Any], conn: AsyncConnection | None) -> Sequence[Row[Any]]:
        if conn is not None:
            return (await conn.execute(query)).all()
        async with self.db.read() as own:
            return (await own.execute(query)).all()


_PG_READ = ("SELECT event_id, event_type, schema_version, stream_id, stream_type, version, "
            "occurred_at, correlation_id, causation_id, actor, data, position, stream_hash, tx_id "
            "FROM events WHERE (tx_id, position) > ($1, $2) "
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
            "ORDER BY tx_id, position LIMIT $3")
"""The relay's read (``read_all`` without ``conn`` on PostgreSQL), on the driver directly:
it runs on every wake-up of every relay."""
_SQLITE_READ = Statement(
    "SELECT event_id, event_type, schema_version, stream_id, stream_type, version, "
    "occurred_at, correlation_id, causation_id, actor, data, position, stream_hash, tx_id "
    "FROM events WHERE position > $1 ORDER BY position LIMIT $2")
"""``read_all`` on SQLite (position order is commit order there): its text built once."""

# The append's two statements go straight to the driver (``libs.store.sql.Statement``): every
# command and reaction of every service runs them.
_HEAD = Statement(
    "SELECT version, stream_hash, tx_id, pg_current_xact_id_if_assigned()::text::bigint "
    "FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1",
    sqlite="SELECT version, stream_hash, tx_id FROM events WHERE stream_id = ?1 "
           "ORDER BY version DESC LIMIT 1")
_LOAD_COLUMNS = ("SELECT event_id, event_type, schema_version, stream_id, stream_type, version, "
                 "occurred_at, correlation_id, causation_id, actor, data, position, stream_hash, tx_id, ")
_LOAD = Statement(
    _LOAD_COLUMNS + "pg_current_xact_id_if_assigned()::text::bigint "
    "FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version",
    sqlite=_LOAD_COLUMNS + "NULL FROM events WHERE stream_id = ?1 AND version > ?2 ORDER BY version")
"""A stream's events after a version, and what an append after this load needs of its head
(``Head``): the transaction that wrote each event, and this transaction's id if it has one."""
_LOAD_WITH_DOCUMENT = Statement(
    _LOAD_COLUMNS + "pg_current_xact_id_if_assigned()::text::bigint, NULL::text "
    "FROM events WHERE stream_id = $1 AND version > $2 "
    "UNION ALL SELECT " + "NULL, " * 15 + "body FROM documents WHERE kind = $3 AND id = $4 ORDER BY 6",
    sqlite=_LOAD_COLUMNS + "NULL, NULL FROM events WHERE stream_id = ?1 AND version > ?2 "
    "UNION ALL SELECT " + "NULL, " * 15 + "body FROM documents WHERE kind = ?3 AND id = ?4 ORDER BY 6",
    rows=lambda values: [(values[2], values[3])])
"""``_LOAD`` and a document, in one statement: the document's row is the one without an event
(its place among the rows is the database's: PostgreSQL sorts it last, SQLite first). It
carries held writes of other documents (``rows``), such as the save's before it in a batch."""


def _uuid(value: Any) -> uuid.UUID:
    """A driver's ``Uuid`` value as ``uuid.UUID`` (SQLite: 32 hex digits; asyncpg: its own type)."""
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


def _envelope_of_driver_row(row: Sequence[Any]) -> Envelope:
    """The envelope of a ``_LOAD`` row as the driver answers it (ids converted as SQLAlchemy would)."""
    return Envelope(_uuid(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], _uuid(row[7]),
                    None if row[8] is None else _uuid(row[8]), row[9], row[10], row[11], row[12])


_INSERT_COLUMNS = ("event_id", "stream_id", "stream_type", "version", "event_type", "schema_version",
                   "occurred_at", "correlation_id", "causation_id", "actor", "data", "stream_hash")


@functools.lru_cache(maxsize=32)
def _insert(count: int) -> Statement:
    """The insert of ``count`` events (one statement, built once per count); a row whose id or
    (stream, version) is taken is skipped, and the rows that landed are answered."""
    rows = row_placeholders(count, len(_INSERT_COLUMNS))
    return Statement(f"INSERT INTO events ({', '.join(_INSERT_COLUMNS)}) VALUES {rows} "
                     "ON CONFLICT DO NOTHING RETURNING position, event_id, tx_id")


@dataclass(slots=True)
class _Batch:
    """One append: turns domain events into hash-chained envelopes and table rows."""

    stream_id: str
    stream_type: str
    expected_version: int | None
    events: Sequence[DomainEvent]
    meta: EventMetadata
    ids: list[uuid.UUID]
    occurred_at: str
    chain: Chain

    def prepare(self, version: int, previous_hash: str) -> list[Envelope] | None:
        """Envelopes chained onto the stream's head, or None if the head is not the expected one."""
        if self.expected_version is not None and version != self.expected_version:
            return None
        meta, envelopes = self.meta, []
        for offset, (event, event_id) in enumerate(zip(self.events, self.ids, strict=True), 1):
            data = canonical_json(event.payload()).decode("utf-8")
            envelope = Envelope(event_id, event.TYPE, event.VERSION, self.stream_id,
                                self.stream_type, version + offset, self.occurred_at,
                                meta.correlation_id, meta.causation_id, meta.actor, data)
            previous_hash = envelope.chained_hash(previous_hash, self.chain)
            object.__setattr__(envelope, "stream_hash", previous_hash)  # not yet shared
            envelopes.append(envelope)
        return envelopes

    @staticmethod
    def values(e: Envelope, on_sqlite: bool) -> tuple[Any, ...]:
        """The row of ``e``, in ``_INSERT_COLUMNS`` order (ids as SQLite holds them there)."""
        event_id: Any = e.event_id
        correlation_id: Any = e.correlation_id
        causation_id: Any = e.causation_id
        if on_sqlite:
            event_id, correlation_id, causation_id = (
                sqlite_uuid(event_id), sqlite_uuid(correlation_id), sqlite_uuid(causation_id))
        return (event_id, e.stream_id, e.stream_type, e.stream_version, e.event_type,
                e.schema_version, e.occurred_at, correlation_id, causation_id, e.actor, e.data,
                e.stream_hash)

    @staticmethod
    def positioned(envelopes: list[Envelope], inserted: list[tuple[int, Any]]) -> list[Envelope]:
        """Give each envelope its position (every one of them was inserted)."""
        positions = {str(event_id): position for position, event_id in inserted}
        for envelope in envelopes:
            object.__setattr__(envelope, "position", positions[str(envelope.event_id)])
        return envelopes
