"""The inbox and the order guard: what makes an at-least-once consumer exactly-once.

Per consumer and stream, ``stream_heads`` keeps the last version *passed*
(applied, ignored or dead-lettered); ``inbox`` keeps the event ids whose effect
was applied. Both are written in the effect's transaction, so a redelivered
event finds its id (or a head at or past its version) and changes nothing.

The guard decides each event, in stream order:

- at or below the head, or held already: a repeat, dropped;
- ahead of the head + 1, or behind an unresolved dead letter of its stream:
  held (``libs.messaging.held``), in the same transaction;
- the next version: applied (or, with no handler, only passed), and the head
  moves.

**Batches.** ``Batch`` decides a whole poll of records against one guard read
(``read_guard``: heads, held versions, unresolved dead letters and inbox hits of
the batch's streams, one statement) and keeps the heads in memory as it goes,
so a stream with several events in the batch is decided in order without
reading again. Its writes go out in bulk when the handlers are done: held rows,
inbox rows and one head per stream (never moved backwards), then one commit.

Events no handler wants are decided from their Kafka headers (``event_type``,
and ``stream_version`` when the publisher sends it) or a plain JSON parse of
the envelope's identity, never decoded into an event (``peek``). They need no
inbox row (there is no effect to deduplicate), but they do move the head: a
stream's handled events come after its unhandled ones, and a head left behind
would hold every later event of the stream as "ahead".
"""

from __future__ import annotations

import enum
import functools
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Collection, Container, Iterable, Mapping
from dataclasses import dataclass, field

import orjson
from aiokafka import ConsumerRecord
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.envelope import Envelope
from libs.messaging import dlq, held
from libs.messaging.work import BatchWork
from libs.store.schema import inbox, stream_heads
from libs.store.sql import Statement, row_placeholders, sqlite_in, sqlite_uuid


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a handler gets: the event, its envelope and the open transaction, and what the
    handlers of that transaction share (``work``; None when the handler is called alone)."""

    conn: AsyncConnection
    envelope: Envelope
    event: DomainEvent
    consumer: str
    work: BatchWork | None = None

    @property
    def meta(self) -> EventMetadata:
        """Metadata for events appended in reaction: same correlation, caused by this event."""
        return EventMetadata(
            actor=f"system:{self.consumer}",
            correlation_id=self.envelope.correlation_id,
            causation_id=self.envelope.event_id,
        )

    def event_ids(self, count: int, salt: str = "") -> list[uuid.UUID]:
        """Deterministic ids for reaction events: a replayed reaction appends nothing new."""
        prefix = self.envelope.event_id.bytes + f"{self.consumer}:{salt}:".encode()
        return [_uuid5(prefix + str(index).encode()) for index in range(count)]


_VERSION_5 = (5 << 76) | (0x8000 << 48)
_NOT_VERSION = ~((0xF000 << 64) | (0xC000 << 48))


def _uuid5(namespaced: bytes) -> uuid.UUID:
    """``uuid.uuid5(namespace, name)`` given ``namespace.bytes + name.encode()``, the same id:
    SHA-1's first 16 bytes with the version and variant bits set. ``uuid.uuid5`` builds the
    namespace's bytes and checks its arguments again for every id, several per reaction."""
    digest = hashlib.sha1(namespaced).digest()
    return uuid.UUID(int=int.from_bytes(digest[:16], "big") & _NOT_VERSION | _VERSION_5)


Handler = Callable[[Delivery], Awaitable[None]]


class Outcome(enum.Enum):
    APPLIED = "applied"
    REDRIVEN = "redriven"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    HELD = "held"
    DEAD = "dead"


# -- reading a record only as far as needed ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """One record's stream position; ``envelope`` is decoded only when a handler wants it."""

    record: ConsumerRecord
    stream_id: str
    version: int
    event_type: str
    envelope: Envelope | None


def peek(record: ConsumerRecord, wanted: Container[str]) -> Incoming:
    """The record's stream, version and type; the full envelope only for a ``wanted`` type.

    Raises on a message that is not an event (the caller dead-letters it)."""
    headers = dict(record.headers or ())
    header_type = headers.get("event_type")
    if header_type is not None and header_type.decode() not in wanted:
        version, key = headers.get("stream_version"), record.key
        if version is not None and key:
            return Incoming(record, key.decode(), int(version), header_type.decode(), None)
        body = orjson.loads(record.value)
        event_type = str(body["event_type"])
        if event_type not in wanted:
            return Incoming(record, str(body["stream_id"]), int(body["stream_version"]),
                            event_type, None)
    envelope = Envelope.from_wire(record.value)
    return Incoming(record, envelope.stream_id, envelope.stream_version, envelope.event_type,
                    envelope)


# -- the guard of one batch ----------------------------------------------------------------


@dataclass(slots=True)
class Guard:
    """What a batch's streams had passed before it: heads, held versions, the first unresolved
    dead letter of each stream, and which of its handled events are in the inbox."""

    heads: dict[str, int] = field(default_factory=dict)
    held: set[tuple[str, int]] = field(default_factory=set)
    first_dead: dict[str, int] = field(default_factory=dict)
    in_inbox: set[uuid.UUID] = field(default_factory=set)

    def known(self, stream_id: str, version: int) -> Outcome | None:
        """DUPLICATE or HELD when the event is certainly passed or held already; else None."""
        if version <= self.heads.get(stream_id, 0):
            return Outcome.DUPLICATE
        if (stream_id, version) in self.held:
            return Outcome.HELD
        return None


async def read_guard(conn: AsyncConnection, consumer: str, streams: Collection[str],
                     event_ids: Collection[uuid.UUID] = ()) -> Guard:
    """The guard of ``streams`` (and the inbox hits among ``event_ids``), in one statement."""
    guard = Guard()
    if not streams:
        return guard
    streams, ids = list(streams), list(event_ids)
    if conn.dialect.name == "postgresql":
        rows = await _GUARD_PG.fetch(conn, consumer, streams, list(dlq.UNRESOLVED), ids)
    else:
        rows = await _guard_sqlite(len(streams), len(ids)).fetch(
            conn, consumer, *dlq.UNRESOLVED, *streams, *(sqlite_uuid(i) for i in ids))
    for kind, key, version in rows:
        if kind == "h":
            guard.heads[key] = int(version)
        elif kind == "k":
            guard.held.add((key, int(version)))
        elif kind == "d":
            guard.first_dead[key] = int(version)
        else:
            guard.in_inbox.add(uuid.UUID(key))
    return guard


# The guard's read, the inbox rows and the heads run once per consumer batch in every service:
# straight to the driver (``libs.store.sql.Statement``), as arrays on PostgreSQL (one text to
# prepare), as ``IN`` lists on SQLite (one text per shape, built once).
_GUARD = (
    "SELECT 'h', stream_id, version FROM stream_heads WHERE consumer = $1 AND stream_id {streams} "
    "UNION ALL SELECT 'k', stream_id, stream_version FROM held_events "
    "WHERE consumer = $1 AND stream_id {streams} "
    "UNION ALL SELECT 'd', stream_id, min(stream_version) FROM dead_letters "
    "WHERE consumer = $1 AND stream_id {streams} AND status {unresolved} GROUP BY stream_id "
    "UNION ALL SELECT 'i', CAST(event_id AS TEXT), 0 FROM inbox WHERE consumer = $1 AND event_id {ids}")
_GUARD_PG = Statement(
    "SELECT 'h', s.id, h.version FROM unnest($2::text[]) AS s(id) CROSS JOIN LATERAL "
    "(SELECT version FROM stream_heads WHERE consumer = $1 AND stream_id = s.id OFFSET 0) h "
    "UNION ALL SELECT 'k', s.id, k.stream_version FROM unnest($2::text[]) AS s(id) CROSS JOIN LATERAL "
    "(SELECT stream_version FROM held_events WHERE consumer = $1 AND stream_id = s.id OFFSET 0) k "
    "UNION ALL SELECT 'd', s.id, d.first FROM unnest($2::text[]) AS s(id) CROSS JOIN LATERAL "
    "(SELECT min(stream_version) AS first FROM dead_letters "
    "WHERE consumer = $1 AND stream_id = s.id AND status = ANY($3::text[])) d WHERE d.first IS NOT NULL "
    "UNION ALL SELECT 'i', CAST(i.id AS TEXT), 0 FROM unnest($4::uuid[]) AS i(id) CROSS JOIN LATERAL "
    "(SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = i.id OFFSET 0) seen")
"""PostgreSQL's guard: one index search per stream, whatever the statistics say.

Written as ``stream_id = ANY($2)``, asyncpg's prepared statement gets a generic plan, and on
tables not analysed yet (a new schema, the first minute of a deployment: autovacuum analyses
later) that plan was a scan of the consumer's whole ``stream_heads`` and ``inbox``
(``consumer = $1``, the streams and event ids filtered after): a cost that grew with every
stream and event the consumer had seen, 10-15 ms and 2,000-3,000 buffers per batch in a
600-order chain (``docs/benchmarks.md``). Each ``LATERAL`` subquery here (kept apart by
``OFFSET 0``) is one primary-key search per stream or event id."""


@functools.lru_cache(maxsize=256)
def _guard_sqlite(streams: int, ids: int) -> Statement:
    """``$1`` the consumer, then the unresolved statuses, the streams and the event ids."""
    unresolved = len(dlq.UNRESOLVED)
    text = _GUARD.replace("$1", "?1").format(
        unresolved=sqlite_in(2, unresolved), streams=sqlite_in(2 + unresolved, streams),
        ids=sqlite_in(2 + unresolved + streams, ids))
    return Statement(text, sqlite=text)


@dataclass
class Batch:
    """A batch decided event by event against one guard read; its writes go out in bulk.

    ``decide`` moves the in-memory heads as it goes; ``applied`` records an event whose
    handler runs in the batch (the consumer decides the whole batch before its first
    handler; a handler that fails rolls back the batch and discards the decisions).
    ``write`` then holds, records and advances everything in three statements.
    """

    consumer: str
    guard: Guard
    holds: list[tuple[Incoming, str]] = field(default_factory=list)
    applied_ids: list[uuid.UUID] = field(default_factory=list)
    advanced: dict[str, int] = field(default_factory=dict)

    def decide(self, item: Incoming, handled: bool) -> Outcome | None:
        """The guard's answer for ``item``: DUPLICATE, HELD, IGNORED, or None (apply it now).

        A new hold is queued for ``write``, an unhandled event's too: its stream still
        needs its version passed before the events after it."""
        guard, stream, version = self.guard, item.stream_id, item.version
        known = guard.known(stream, version)
        if known is not None:
            return known
        if version > guard.heads.get(stream, 0) + 1:
            return self._hold(item)
        if not handled:
            self._advance(stream, version)
            return Outcome.IGNORED
        assert item.envelope is not None
        if item.envelope.event_id in guard.in_inbox:
            self._advance(stream, version)
            return Outcome.DUPLICATE
        if guard.first_dead.get(stream, version) < version:
            return self._hold(item)
        return None

    def _hold(self, item: Incoming) -> Outcome:
        self.holds.append((item, item.record.topic))
        self.guard.held.add((item.stream_id, item.version))
        return Outcome.HELD

    def applied(self, item: Incoming) -> None:
        assert item.envelope is not None
        self.applied_ids.append(item.envelope.event_id)
        self._advance(item.stream_id, item.version)

    def _advance(self, stream: str, version: int) -> None:
        self.guard.heads[stream] = version
        self.advanced[stream] = version

    async def write(self, conn: AsyncConnection) -> None:
        if self.holds:
            await held.hold_many(conn, self.consumer, [
                (_envelope_of(item), topic) for item, topic in self.holds])
        if self.applied_ids:
            now = format_timestamp(utc_now())
            if conn.dialect.name == "postgresql":
                await _RECORD_MANY_PG.execute(conn, self.consumer, self.applied_ids, now)
            else:
                await _record_many(len(self.applied_ids)).execute(conn, *(
                    value for event_id in self.applied_ids
                    for value in (self.consumer, sqlite_uuid(event_id), now)))
        await advance(conn, self.consumer, self.advanced)


def _envelope_of(item: Incoming) -> Envelope:
    if item.envelope is not None:
        return item.envelope
    return Envelope.from_wire(item.record.value)  # an unhandled event held: decode it to keep it


# -- one event at a time ---------------------------------------------------------------------


async def guard_one(conn: AsyncConnection, consumer: str,
                    envelope: Envelope) -> tuple[int, bool, bool]:
    """The guard of one event, in one read: the stream's head, whether the event is in the
    inbox, and whether a dead letter blocks it."""
    head = select(stream_heads.c.version).where(
        stream_heads.c.consumer == consumer,
        stream_heads.c.stream_id == envelope.stream_id).scalar_subquery()
    in_inbox = exists().where(inbox.c.consumer == consumer, inbox.c.event_id == envelope.event_id)
    row = (await conn.execute(select(
        func.coalesce(head, 0), in_inbox, dlq.blocking(consumer, envelope)))).one()
    return int(row[0]), bool(row[1]), bool(row[2])


async def record(conn: AsyncConnection, consumer: str, event_id: uuid.UUID) -> None:
    """The effect of ``event_id`` is applied (in the effect's transaction)."""
    await conn.execute(inbox.insert().values(
        consumer=consumer, event_id=event_id, processed_at=format_timestamp(utc_now())))


async def contains(conn: AsyncConnection, consumer: str, event_id: uuid.UUID) -> bool:
    return (await conn.execute(select(inbox.c.event_id).where(
        inbox.c.consumer == consumer, inbox.c.event_id == event_id))).first() is not None


async def head_of(conn: AsyncConnection, consumer: str, stream_id: str) -> int:
    return (await conn.execute(select(stream_heads.c.version).where(
        stream_heads.c.consumer == consumer, stream_heads.c.stream_id == stream_id))).scalar() or 0


async def advance(conn: AsyncConnection, consumer: str, heads: Mapping[str, int]) -> None:
    """Move each stream's head to its version (never backwards), in one statement."""
    if not heads:
        return
    if conn.dialect.name == "postgresql":
        await _ADVANCE_MANY_PG.execute(conn, consumer, list(heads), list(heads.values()))
    else:
        await _advance_many(len(heads)).execute(conn, *(
            value for stream, version in heads.items() for value in (consumer, stream, version)))


@functools.lru_cache(maxsize=64)
def _record_many(count: int) -> Statement:
    return Statement("INSERT INTO inbox (consumer, event_id, processed_at) VALUES "
                     + row_placeholders(count, 3))


@functools.lru_cache(maxsize=64)
def _advance_many(count: int) -> Statement:
    return Statement("INSERT INTO stream_heads (consumer, stream_id, version) VALUES "
                     + row_placeholders(count, 3) + _ADVANCE_ON_CONFLICT)


_RECORD_MANY_PG = Statement(
    "INSERT INTO inbox (consumer, event_id, processed_at) SELECT $1::text, unnest($2::uuid[]), $3::text",
    deferrable=True)
"""Deferrable (``libs.store.sql.Statement``): the heads' upsert after it carries it, one round
trip for both."""
_ADVANCE_ON_CONFLICT = (" ON CONFLICT (consumer, stream_id) DO UPDATE SET version = excluded.version "
                        "WHERE stream_heads.version < excluded.version")
_ADVANCE_MANY_PG = Statement(
    "INSERT INTO stream_heads (consumer, stream_id, version) "
    "SELECT $1::text, * FROM unnest($2::text[], $3::int[])" + _ADVANCE_ON_CONFLICT)


def streams_of(items: Iterable[Incoming]) -> set[str]:
    return {item.stream_id for item in items}
