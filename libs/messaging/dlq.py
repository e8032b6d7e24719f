"""Dead letters: the events one consumer group gave up on (the ``dead_letters`` table).

The consumer's own table is the source of truth. A dead letter belongs to the
group that failed it and goes back only to that group: redrive
(``Consumer.redrive``) re-applies it in process, from this table, in stream
order. Nothing is put back on a shared topic, so other groups never see it
again and a redrive never reads its own output. The dead-letter topic is an
outward notification only (one message per new dead letter); nothing reads it
to act.

One message yields at most one dead letter per group: a dead letter is keyed
by (consumer, event id), an undecodable message by an id derived from its
topic and bytes, and a message already recorded is never recorded or
announced again (a re-read after a broker loss, a second redrive).

Statuses: ``dead`` (waiting for an operator; ``parked`` is the same, written
by earlier versions for events queued behind a dead letter), ``redriven``
(applied by a redrive) and ``discarded`` (an operator decided it is never to
be applied; who and why are recorded). While a stream has an unresolved dead
letter, its later events are held (``libs.messaging.held``), not dead-lettered.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Collection
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Exists, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.events.envelope import Envelope
from libs.messaging.kafka import KafkaConnection
from libs.store.schema import dead_letters
from libs.store.sql import upsert

UNRESOLVED = ("dead", "parked")
UNDECODABLE = "undecodable"
_UNDECODABLE_NAMESPACE = uuid.UUID("6f2a1d0e-3c1b-5b7e-9a53-0d2c5f1e8b41")

SUMMARY = (dead_letters.c.event_id, dead_letters.c.stream_id, dead_letters.c.stream_version,
           dead_letters.c.event_type, dead_letters.c.status, dead_letters.c.reason,
           dead_letters.c.attempts, dead_letters.c.dead_at, dead_letters.c.origin_topic,
           dead_letters.c.resolved_at, dead_letters.c.resolved_by, dead_letters.c.resolution)


def undecodable_id(topic: str, key: bytes | None, value: bytes | None) -> uuid.UUID:
    """The id of a message that is not an event: the same bytes on a topic, the same id."""
    digest = hashlib.sha256(b"%s\0%s\0%s" % (topic.encode(), key or b"", value or b""))
    return uuid.uuid5(_UNDECODABLE_NAMESPACE, digest.hexdigest())


async def is_recorded(conn: AsyncConnection, consumer: str, event_id: uuid.UUID) -> bool:
    """Whether this group has a dead letter for the event, in any status."""
    return (await conn.execute(select(dead_letters.c.event_id).where(
        dead_letters.c.consumer == consumer,
        dead_letters.c.event_id == event_id))).first() is not None


async def is_unresolved(conn: AsyncConnection, consumer: str, event_id: uuid.UUID) -> bool:
    """Whether the dead letter still waits; the row stays locked until the transaction ends
    (PostgreSQL; SQLite has one writer), so a discard cannot resolve it meanwhile."""
    return (await conn.execute(select(dead_letters.c.event_id).where(
        dead_letters.c.consumer == consumer, dead_letters.c.event_id == event_id,
        dead_letters.c.status.in_(UNRESOLVED)).with_for_update())).first() is not None


def blocking(consumer: str, envelope: Envelope) -> Exists:
    """Whether an unresolved dead letter comes before ``envelope`` in its stream (an
    EXISTS clause, so the consumer's order guard reads it with the head in one query)."""
    return exists().where(
        dead_letters.c.consumer == consumer, dead_letters.c.stream_id == envelope.stream_id,
        dead_letters.c.stream_version < envelope.stream_version,
        dead_letters.c.status.in_(UNRESOLVED))


async def is_blocked(conn: AsyncConnection, consumer: str, envelope: Envelope) -> bool:
    return bool((await conn.execute(select(blocking(consumer, envelope)))).scalar())


async def record(conn: AsyncConnection, consumer: str, *, event_id: uuid.UUID, stream_id: str,
                 stream_version: int, event_type: str, reason: str, attempts: int,
                 origin_topic: str, wire: str) -> None:
    """Record (or, after a failed redrive, update) a dead letter; it is ``dead`` until resolved."""
    await upsert(conn, dead_letters, {
        "consumer": consumer, "event_id": event_id, "stream_id": stream_id,
        "stream_version": stream_version, "event_type": event_type, "reason": reason[:2000],
        "attempts": attempts, "parked_behind": None, "status": "dead",
        "dead_at": format_timestamp(utc_now()), "envelope": wire, "origin_topic": origin_topic,
    }, ["consumer", "event_id"])


async def mark_redriven(conn: AsyncConnection, consumer: str, event_id: uuid.UUID) -> None:
    await conn.execute(update(dead_letters).where(
        dead_letters.c.consumer == consumer, dead_letters.c.event_id == event_id,
    ).values(status="redriven", resolved_at=format_timestamp(utc_now()),
             resolved_by=f"system:{consumer}", resolution="applied by a redrive"))


async def unresolved_count(conn: AsyncConnection, consumer: str) -> int:
    """How many dead letters of this group wait for a redrive or a discard."""
    return int((await conn.execute(select(func.count()).select_from(dead_letters).where(
        dead_letters.c.consumer == consumer, dead_letters.c.status.in_(UNRESOLVED)))).scalar_one())


async def unresolved(conn: AsyncConnection, consumer: str,
                     ids: Collection[uuid.UUID] | None = None) -> list[Any]:
    """This group's unresolved dead letters (of ``ids`` only, if given), in stream order."""
    query = select(dead_letters.c.event_id, dead_letters.c.event_type, dead_letters.c.envelope,
                   dead_letters.c.origin_topic).where(
        dead_letters.c.consumer == consumer, dead_letters.c.status.in_(UNRESOLVED))
    if ids is not None:
        query = query.where(dead_letters.c.event_id.in_(list(ids)))
    query = query.order_by(dead_letters.c.stream_id, dead_letters.c.stream_version)
    return list((await conn.execute(query)).all())


async def discard(conn: AsyncConnection, consumer: str, event_id: uuid.UUID, *, reason: str,
                  actor: str) -> str | None:
    """Resolve an unresolved dead letter as never to be applied; its stream id, or None.

    The update checks the status itself: a redrive that applied the event first (and
    held the row meanwhile) wins, and the discard finds nothing to resolve.
    """
    stream = (await conn.execute(select(dead_letters.c.stream_id).where(
        dead_letters.c.consumer == consumer, dead_letters.c.event_id == event_id,
        dead_letters.c.status.in_(UNRESOLVED)))).scalar()
    if stream is None:
        return None
    resolved = await conn.execute(update(dead_letters).where(
        dead_letters.c.consumer == consumer, dead_letters.c.event_id == event_id,
        dead_letters.c.status.in_(UNRESOLVED),
    ).values(status="discarded", resolved_at=format_timestamp(utc_now()), resolved_by=actor,
             resolution=reason[:2000]))
    return stream if resolved.rowcount == 1 else None


async def listed(conn: AsyncConnection, consumer: str, *, everything: bool = False,
                 limit: int = 500) -> list[dict[str, Any]]:
    """This group's dead letters, unresolved only unless ``everything``, oldest first."""
    query = select(*SUMMARY).where(dead_letters.c.consumer == consumer)
    if not everything:
        query = query.where(dead_letters.c.status.in_(UNRESOLVED))
    rows = await conn.execute(query.order_by(dead_letters.c.dead_at).limit(limit))
    return [_as_dict(row) for row in rows]


async def shown(conn: AsyncConnection, consumer: str, event_id: uuid.UUID) -> dict[str, Any] | None:
    """One dead letter with the message it holds, or None."""
    row = (await conn.execute(select(*SUMMARY, dead_letters.c.envelope).where(
        dead_letters.c.consumer == consumer, dead_letters.c.event_id == event_id))).first()
    if row is None:
        return None
    return {**_as_dict(row), "message": row.envelope}


def _as_dict(row: Any) -> dict[str, Any]:
    return {name: (str(value) if isinstance(value, uuid.UUID) else value)
            for name, value in row._mapping.items() if name != "envelope"}


class Notices:
    """The dead-letter topic: one outward notice per new dead letter (nothing reads it to act)."""

    def __init__(self, kafka: KafkaConnection, topic: str, consumer: str) -> None:
        self.kafka = kafka
        self.topic = topic
        self.consumer = consumer
        self._producer: AIOKafkaProducer | None = None

    async def announce(self, key: bytes | None, value: bytes | None, origin_topic: str,
                       reason: str, attempts: int) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(**self.kafka.client_kwargs(), acks="all",
                                        enable_idempotence=False, request_timeout_ms=10000)
            await producer.start()
            self._producer = producer
        headers = [
            ("consumer", self.consumer.encode()),
            ("origin_topic", origin_topic.encode()),
            ("reason", reason[:2000].encode()),
            ("attempts", str(attempts).encode()),
        ]
        await self._producer.send_and_wait(self.topic, value=value, key=key, headers=headers)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
