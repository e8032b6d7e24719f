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
import uuid
from collections.abc import Awaitable, Callable, Collection, Container, Iterable, Mapping
from dataclasses import dataclass, field

import orjson
from aiokafka import ConsumerRecord
from sqlalchemy import String, cast, exists, func, literal_column, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.envelope import Envelope
from libs.messaging import dlq, held
from libs.messaging.work import BatchWork
from libs.store.schema import dead_letters, held_events, inbox, stream_heads


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
        return [
            uuid.uuid5(self.envelope.event_id, f"{self.consumer}:{salt}:{index}")
            for index in range(count)
        ]


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
    streams = list(streams)
    parts = [
        select(literal_column("'h'"), stream_heads.c.stream_id, stream_heads.c.version).where(
            stream_heads.c.consumer == consumer, stream_heads.c.stream_id.in_(streams)),
        select(literal_column("'k'"), held_events.c.stream_id, held_events.c.stream_version).where(
            held_events.c.consumer == consumer, held_events.c.stream_id.in_(streams)),
        select(literal_column("'d'"), dead_letters.c.stream_id,
               func.min(dead_letters.c.stream_version)).where(
            dead_letters.c.consumer == consumer, dead_letters.c.stream_id.in_(streams),
            dead_letters.c.status.in_(dlq.UNRESOLVED)).group_by(dead_letters.c.stream_id),
    ]
    if event_ids:
        parts.append(select(literal_column("'i'"), cast(inbox.c.event_id, String),
                            literal_column("0")).where(
            inbox.c.consumer == consumer, inbox.c.event_id.in_(list(event_ids))))
    for kind, key, version in await conn.execute(union_all(*parts)):
        if kind == "h":
            guard.heads[key] = int(version)
        elif kind == "k":
            guard.held.add((key, int(version)))
        elif kind == "d":
            guard.first_dead[key] = int(version)
        else:
            guard.in_inbox.add(uuid.UUID(key))
    return guard


@dataclass
class Batch:
    """A batch decided event by event against one guard read; its writes go out in bulk.

    ``decide`` moves the in-memory heads as it goes; ``applied`` records a handler's
    success. ``write`` then holds, records and advances everything in three statements.
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
            await conn.execute(inbox.insert(), [
                {"consumer": self.consumer, "event_id": event_id, "processed_at": now}
                for event_id in self.applied_ids])
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
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(stream_heads)
    stmt = stmt.on_conflict_do_update(
        index_elements=["consumer", "stream_id"], set_={"version": stmt.excluded.version},
        where=stream_heads.c.version < stmt.excluded.version)
    rows = [{"consumer": consumer, "stream_id": stream, "version": version}
            for stream, version in heads.items()]
    await conn.execute(stmt.values(rows) if len(rows) > 1 else stmt.values(**rows[0]))


def streams_of(items: Iterable[Incoming]) -> set[str]:
    return {item.stream_id for item in items}
