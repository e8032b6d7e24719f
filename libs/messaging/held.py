"""Events held until their stream catches up (the ``held_events`` table).

A consumer applies each stream's events in version order. An event that comes
ahead of its stream's head (an earlier version has not been applied: it is on
another partition, not republished yet, or dead-lettered) is written here in
the transaction that decides to hold it, and only then is its offset
committed. So a consumer never commits past an event it has not applied or
kept. Held events are applied in version order as soon as the version before
them is (``Consumer._release_held``, at once in the process that applied it,
else by the next tending); a row at or below the stream's head is spent and
is deleted by the next release.

A gap that does not fill within its bound is healed from the topics
(``libs.messaging.healing``); one that still does not is *parked*
(``parked_at`` set, with an alarm). Parked events stay held: the missing event
releases them whenever it arrives.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, parse_timestamp, utc_now
from libs.events.envelope import Envelope
from libs.messaging import dlq
from libs.store.schema import dead_letters, held_events, stream_heads
from libs.store.sql import insert_ignoring_duplicates


@dataclass(frozen=True, slots=True)
class Held:
    """One held event, as stored."""

    envelope: Envelope
    origin_topic: str


@dataclass(frozen=True, slots=True)
class WaitingStream:
    """A stream with held events: where its head is and what it waits for."""

    stream_id: str
    head: int
    first_held: int
    last_held: int
    count: int
    since: str
    parked_at: str | None
    blocked: bool

    @property
    def releasable(self) -> bool:
        """Its next held event can be applied now (nothing missing, no dead letter before it)."""
        return self.first_held <= self.head + 1 and not self.blocked

    @property
    def missing(self) -> range:
        """The versions that have not arrived (empty when none is missing)."""
        return range(self.head + 1, self.first_held)

    def waited(self, now: datetime) -> float:
        return (now - parse_timestamp(self.since)).total_seconds()

    def as_dict(self) -> dict[str, object]:
        return {"stream_id": self.stream_id, "head": self.head,
                "missing": [self.missing.start, self.missing.stop - 1] if self.missing else [],
                "held": self.count, "held_versions": [self.first_held, self.last_held],
                "since": self.since, "parked_at": self.parked_at,
                "blocked_by_dead_letter": self.blocked}


async def hold(conn: AsyncConnection, consumer: str, envelope: Envelope, origin_topic: str) -> None:
    """Keep ``envelope`` until its stream reaches it (holding it twice keeps the first)."""
    await insert_ignoring_duplicates(conn, held_events, {
        "consumer": consumer, "stream_id": envelope.stream_id,
        "stream_version": envelope.stream_version, "event_id": envelope.event_id,
        "origin_topic": origin_topic, "held_at": format_timestamp(utc_now()), "parked_at": None,
        "envelope": envelope.to_wire().decode("utf-8"),
    })


async def next_held(conn: AsyncConnection, consumer: str, stream_id: str,
                    head: int) -> tuple[Held | None, bool]:
    """The held event right after ``head``, and whether any remain held for the stream.

    Spent rows (at or below the head: applied, or dead-lettered) are deleted first.
    When that moves the stream onto a new gap, the new gap's wait starts now: its
    rows are no longer parked, and it is healed (then parked) only after its own bound.
    """
    spent = await conn.execute(delete(held_events).where(
        held_events.c.consumer == consumer, held_events.c.stream_id == stream_id,
        held_events.c.stream_version <= head))
    row = (await conn.execute(
        select(held_events.c.stream_version, held_events.c.envelope, held_events.c.origin_topic)
        .where(held_events.c.consumer == consumer, held_events.c.stream_id == stream_id)
        .order_by(held_events.c.stream_version).limit(1))).first()
    if row is None:
        return None, False
    if row.stream_version != head + 1:
        if spent.rowcount:
            await _wait_anew(conn, consumer, stream_id)
        return None, True
    return Held(Envelope.from_wire(row.envelope.encode("utf-8")), row.origin_topic), True


async def _wait_anew(conn: AsyncConnection, consumer: str, stream_id: str) -> None:
    await conn.execute(update(held_events).where(
        held_events.c.consumer == consumer, held_events.c.stream_id == stream_id,
    ).values(held_at=format_timestamp(utc_now()), parked_at=None))


async def held_keys(conn: AsyncConnection, consumer: str,
                    streams: Collection[str]) -> set[tuple[str, int]]:
    """Which (stream, version) pairs of ``streams`` are held already."""
    rows = await conn.execute(select(held_events.c.stream_id, held_events.c.stream_version).where(
        held_events.c.consumer == consumer, held_events.c.stream_id.in_(streams)))
    return {(stream, version) for stream, version in rows}


async def waiting_streams(conn: AsyncConnection, consumer: str,
                          streams: Collection[str] | None = None) -> list[WaitingStream]:
    """Every stream with held events (of ``streams``, if given), with its head and whether
    a dead letter blocks it."""
    query = (
        select(held_events.c.stream_id, func.min(held_events.c.stream_version),
               func.max(held_events.c.stream_version), func.count(),
               func.min(held_events.c.held_at), func.max(held_events.c.parked_at),
               func.coalesce(stream_heads.c.version, 0))
        .select_from(held_events.outerjoin(stream_heads, (
            stream_heads.c.consumer == held_events.c.consumer)
            & (stream_heads.c.stream_id == held_events.c.stream_id)))
        .where(held_events.c.consumer == consumer)
        .group_by(held_events.c.stream_id, stream_heads.c.version)
        .order_by(held_events.c.stream_id))
    if streams is not None:
        query = query.where(held_events.c.stream_id.in_(list(streams)))
    rows = (await conn.execute(query)).all()
    if not rows:
        return []
    blocked = set((await conn.execute(select(dead_letters.c.stream_id).distinct().where(
        dead_letters.c.consumer == consumer, dead_letters.c.status.in_(dlq.UNRESOLVED),
        dead_letters.c.stream_id.in_([row[0] for row in rows])))).scalars())
    return [WaitingStream(stream_id=stream, head=head, first_held=first, last_held=last,
                          count=count, since=since, parked_at=parked, blocked=stream in blocked)
            for stream, first, last, count, since, parked, head in rows]


async def park(conn: AsyncConnection, consumer: str, stream_id: str) -> None:
    """Mark a stream's held events as parked: its gap outlived the bound and the healing."""
    await conn.execute(update(held_events).where(
        held_events.c.consumer == consumer, held_events.c.stream_id == stream_id,
        held_events.c.parked_at.is_(None)).values(parked_at=format_timestamp(utc_now())))


async def hold_many(conn: AsyncConnection, consumer: str,
                    envelopes: Sequence[tuple[Envelope, str]]) -> None:
    """``hold`` for many events (with their origin topics), in one statement."""
    now = format_timestamp(utc_now())
    rows = [{"consumer": consumer, "stream_id": envelope.stream_id,
             "stream_version": envelope.stream_version, "event_id": envelope.event_id,
             "origin_topic": topic, "held_at": now, "parked_at": None,
             "envelope": envelope.to_wire().decode("utf-8")} for envelope, topic in envelopes]
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(held_events).values(rows).on_conflict_do_nothing())
