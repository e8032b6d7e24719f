"""Consumers: at-least-once delivery made effectively-once by an inbox.

Each message is applied in one database transaction that also records its
event id in the ``inbox``; a redelivered event finds its id there and changes
nothing. Offsets are committed to Kafka only after the effect is committed.
Messages are keyed by stream id, so a stream's events arrive in order on one
partition and are applied one after another; an order guard (the last version
passed, per stream) also keeps that order when a broker or producer does not
(a broker that lost data, a retried produce): an event that comes early is
skipped and applied when the relay brings it again in order.

A handler that keeps failing is retried a bounded number of times (transient
failures, such as a concurrent append or the database away, until they pass),
then its event goes to the dead-letter topic with the error, and the consumer
moves on.
Later events of the same stream are parked behind it (also dead-lettered, so
the stream's order is kept) while other streams flow. ``o2c dlq redrive``
(``libs.messaging.dlq``) puts them back on their topic, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry
from libs.events.topics import DEAD_LETTER_TOPIC
from libs.messaging.broker import ensure_topics
from libs.messaging.timing import sleep_or_stop
from libs.store.database import Database
from libs.store.errors import ConcurrencyError
from libs.store.schema import dead_letters, inbox, stream_heads
from libs.store.sql import upsert

log = logging.getLogger(__name__)

UNRESOLVED = ("dead", "parked")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a handler gets: the event, its envelope and the open transaction."""

    conn: AsyncConnection
    envelope: Envelope
    event: DomainEvent
    consumer: str

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
    PARKED = "parked"
    DEAD = "dead"
    GAP = "gap"


@dataclass(frozen=True)
class ConsumerSettings:
    max_attempts: int = 5
    retry_backoff: float = 0.05
    max_records: int = 200
    poll_timeout_ms: int = 200
    partitions: int = 3
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    rebalance_timeout_ms: int = 10000


class Consumer:
    """One consumer group: a name, the topics it reads and a handler per event type."""

    def __init__(
        self,
        *,
        name: str,
        db: Database,
        registry: EventRegistry,
        handlers: Mapping[str, Handler],
        topics: Sequence[str],
        bootstrap_servers: str,
        settings: ConsumerSettings | None = None,
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
    ) -> None:
        self.name = name
        self.db = db
        self.registry = registry
        self.handlers = dict(handlers)
        self.topics = list(topics)
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings or ConsumerSettings()
        self.dead_letter_topic = dead_letter_topic
        self._producer: AIOKafkaProducer | None = None
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)

    # -- the Kafka loop ------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; reconnects after broker outages."""
        while not stop.is_set():
            settings = self.settings
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                metadata_max_age_ms=3000,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                rebalance_timeout_ms=settings.rebalance_timeout_ms,
            )
            try:
                # Create our topics with the agreed partition count before subscribing:
                # a broker that auto-creates topics would otherwise pick its own count.
                await ensure_topics(self.bootstrap_servers, [*self.topics, self.dead_letter_topic],
                                    settings.partitions)
                await consumer.start()
                if ready is not None:
                    ready.set()
                while not stop.is_set():
                    batch = await consumer.getmany(
                        timeout_ms=self.settings.poll_timeout_ms,
                        max_records=self.settings.max_records,
                    )
                    if batch and not await self._consume_batch(consumer, batch):
                        await sleep_or_stop(stop, 1.0)
            except (KafkaError, OSError, ConnectionError) as error:
                log.warning("consumer %s: broker trouble (%s); reconnecting", self.name, error)
                await sleep_or_stop(stop, 0.5)
            except Exception:  # a database outage, say: never die, the offsets were not committed
                log.exception("consumer %s failed; reconnecting", self.name)
                await sleep_or_stop(stop, 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
        await self.close()

    async def _consume_batch(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> bool:
        """Each partition's records, side by side. False when a partition failed.

        Whatever fails, the Kafka consumer stays: a new one would re-join the group, and
        (on brokers that keep a departed member until its session times out) the whole
        group would wait for that before it resumes. Instead the batch's partitions are
        rewound to their first record, so what was not committed is read again (the
        inbox skips what was applied):
        - a commit refused because the group rebalanced (a member came or went, or the
          broker lost the group with its data) is no failure: the consumer re-joins by
          itself and reads on from the committed offsets;
        - anything else (the database away, say) is logged; the caller pauses.
        """
        results = await asyncio.gather(*(
            self._consume_partition(consumer, tp, records) for tp, records in batch.items()
        ), return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if not failures:
            return True
        for failure in failures:
            if not isinstance(failure, Exception):  # cancelled: stop as asked
                raise failure
        assigned = consumer.assignment()
        for tp, records in batch.items():
            if tp in assigned:
                consumer.seek(tp, records[0].offset)
        errors = [f for f in failures if not isinstance(f, CommitFailedError)]
        if not errors:
            log.info("consumer %s: commit refused, the group rebalanced; re-joining", self.name)
            return True
        log.error("consumer %s: a batch failed; reading it again", self.name,
                  exc_info=errors[0])
        return False

    async def _consume_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        heads = await self._heads_of(records)
        for record in records:
            await self.handle_record(record, heads)
        await consumer.commit({tp: records[-1].offset + 1})

    async def _heads_of(self, records: list[ConsumerRecord]) -> dict[str, int]:
        """The stream heads of a batch, in one read (keys are stream ids)."""
        streams = {record.key.decode("utf-8", "replace") for record in records if record.key}
        if not streams:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(select(stream_heads.c.stream_id, stream_heads.c.version).where(
                stream_heads.c.consumer == self.name, stream_heads.c.stream_id.in_(streams)))
            return dict(rows.all())

    async def handle_record(self, record: ConsumerRecord,
                            heads: dict[str, int] | None = None) -> Outcome:
        """One message. ``heads`` (read before the batch) lets a certainly-old event go
        without a write transaction: heads only grow, so a version at or below a head read
        earlier is a repeat (after a republish, the whole history is). Redrives always pass."""
        try:
            envelope = Envelope.from_wire(record.value)
        except Exception as error:  # any malformed message: never let it stop the partition
            log.error("consumer %s: undecodable message at %s:%s offset %s: %s", self.name,
                      record.topic, record.partition, record.offset, error)
            await self._publish_dead_letter(record.key, record.value, record.topic,
                                            f"undecodable: {error!r}", 0, None)
            self.outcomes[Outcome.DEAD] += 1
            return Outcome.DEAD
        redrive = ("redriven", b"1") in (record.headers or ())
        if not redrive and heads and envelope.stream_version <= heads.get(envelope.stream_id, 0):
            self.outcomes[Outcome.DUPLICATE] += 1
            return Outcome.DUPLICATE
        return await self.handle(envelope, origin_topic=record.topic)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # -- one event -------------------------------------------------------------------

    async def handle(self, envelope: Envelope, *, origin_topic: str = "") -> Outcome:
        """Apply one event exactly once, retrying, parking or dead-lettering it.

        Transient failures (a concurrent append, the database away) are retried
        until they pass: dead-lettering them would park a healthy stream. Other
        failures are retried ``max_attempts`` times, then dead-lettered.
        """
        handler = self.handlers.get(envelope.event_type)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome, blocker = await self._apply(envelope, handler)
            except Exception as error:
                transient = _is_transient(error)
                if not transient and attempt >= self.settings.max_attempts:
                    log.error("consumer %s: %s %s failed %d times, dead-lettered: %r", self.name,
                              envelope.event_type, envelope.event_id, attempt, error)
                    await self._dead_letter(envelope, origin_topic, repr(error), attempt, None)
                    outcome = Outcome.DEAD
                else:
                    log.warning("consumer %s: %s %s failed (attempt %d%s): %r", self.name,
                                envelope.event_type, envelope.event_id, attempt,
                                ", transient" if transient else "", error)
                    await asyncio.sleep(min(self.settings.retry_backoff * 2 ** min(attempt - 1, 10), 5.0))
                    continue
            if outcome is Outcome.PARKED:
                await self._dead_letter(envelope, origin_topic, f"parked behind {blocker}", 0,
                                        blocker)
            self.outcomes[outcome] += 1
            if outcome is Outcome.REDRIVEN:  # events parked behind it may follow now
                await self._release_parked_followers(envelope, origin_topic)
            return outcome

    async def _apply(
        self, envelope: Envelope, handler: Handler | None
    ) -> tuple[Outcome, uuid.UUID | None]:
        """One event, in one transaction: the order guard, then the effect and the inbox.

        The guard keeps each stream's order whatever the broker does: per stream the
        consumer records the last version it passed (applied, ignored, parked or dead).
        An older version is a repeat; a version beyond the next one means an earlier
        event has not come through yet (a broker that lost data and got a newer event
        first, a producer retry) and it is skipped: the relay's in-order republish
        brings it again. A redriven dead letter is the one event allowed behind the head.
        """
        async with self.db.transaction() as conn:
            head = (await conn.execute(select(stream_heads.c.version).where(
                stream_heads.c.consumer == self.name,
                stream_heads.c.stream_id == envelope.stream_id))).scalar() or 0
            version = envelope.stream_version
            if version > head + 1:
                log.info("consumer %s: %s v%d arrived before v%d; skipped until it comes in order",
                         self.name, envelope.stream_id, version, head + 1)
                return Outcome.GAP, None
            # A dead letter passed the head when it was recorded, so only an event behind
            # the head can be a redriven one; an in-order event never is.
            redriven = version <= head
            if redriven and not (handler and await self._is_dead_letter(conn, envelope)):
                return Outcome.DUPLICATE, None
            if handler is None:
                await self._advance(conn, envelope)
                return Outcome.IGNORED, None
            seen = (await conn.execute(select(inbox.c.event_id).where(
                inbox.c.consumer == self.name, inbox.c.event_id == envelope.event_id))).first()
            if seen is not None:
                await self._advance(conn, envelope)
                return Outcome.DUPLICATE, None
            blocker = (await conn.execute(
                select(dead_letters.c.event_id).where(
                    dead_letters.c.consumer == self.name,
                    dead_letters.c.stream_id == envelope.stream_id,
                    dead_letters.c.stream_version < version,
                    dead_letters.c.status.in_(UNRESOLVED),
                ).order_by(dead_letters.c.stream_version).limit(1)
            )).scalar()
            if blocker is not None:
                return Outcome.PARKED, blocker  # the head moves when the dead letter is recorded
            event = self.registry.decode(envelope)
            await handler(Delivery(conn, envelope, event, self.name))
            await conn.execute(inbox.insert().values(
                consumer=self.name, event_id=envelope.event_id,
                processed_at=format_timestamp(utc_now())))
            if redriven:
                await conn.execute(
                    update(dead_letters)
                    .where(dead_letters.c.consumer == self.name,
                           dead_letters.c.event_id == envelope.event_id)
                    .values(status="redriven"))
                return Outcome.REDRIVEN, None
            await self._advance(conn, envelope)
            return Outcome.APPLIED, None

    async def _is_dead_letter(self, conn: AsyncConnection, envelope: Envelope) -> bool:
        return (await conn.execute(select(dead_letters.c.event_id).where(
            dead_letters.c.consumer == self.name, dead_letters.c.event_id == envelope.event_id,
            dead_letters.c.status.in_(UNRESOLVED)))).first() is not None

    async def _advance(self, conn: AsyncConnection, envelope: Envelope) -> None:
        """Move the stream's head to this event's version (never backwards)."""
        values = {"consumer": self.name, "stream_id": envelope.stream_id,
                  "version": envelope.stream_version}
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(stream_heads).values(**values)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["consumer", "stream_id"], set_={"version": stmt.excluded.version},
            where=stream_heads.c.version < stmt.excluded.version))

    async def _release_parked_followers(self, applied: Envelope, origin_topic: str) -> None:
        """After a stream's blocker is applied, apply the events parked behind it, in order.

        Without this, an event parked while a redrive was running would keep blocking
        its stream until the next redrive. Stops at the first one still blocked.
        """
        after = applied.stream_version
        while True:
            async with self.db.read() as conn:
                row = (await conn.execute(
                    select(dead_letters.c.envelope).where(
                        dead_letters.c.consumer == self.name,
                        dead_letters.c.stream_id == applied.stream_id,
                        dead_letters.c.stream_version > after,
                        dead_letters.c.status == "parked",
                    ).order_by(dead_letters.c.stream_version).limit(1))).scalar()
            if row is None:
                return
            follower = Envelope.from_wire(row.encode("utf-8"))
            handler = self.handlers.get(follower.event_type)
            if handler is None:
                return
            try:
                outcome, _ = await self._apply(follower, handler)
            except Exception:  # it stays parked; the next redrive retries it
                log.exception("consumer %s: parked %s still fails", self.name, follower.event_id)
                return
            if outcome is Outcome.PARKED:
                return
            self.outcomes[outcome] += 1
            after = follower.stream_version

    async def _dead_letter(self, envelope: Envelope, origin_topic: str, reason: str,
                           attempts: int, parked_behind: uuid.UUID | None) -> None:
        """Publish the dead letter, then record it, outside any other transaction.

        Publishing first means a crash leaves at worst a repeated dead letter, never a
        recorded one that the topic (and so the redrive) does not hold; and no database
        transaction stays open while the broker is slow.
        """
        wire = envelope.to_wire()
        await self._publish_dead_letter(envelope.stream_id.encode(), wire, origin_topic, reason,
                                        attempts, parked_behind)
        async with self.db.transaction() as conn:
            await self._advance(conn, envelope)
            await upsert(conn, dead_letters, {
                "consumer": self.name, "event_id": envelope.event_id,
                "stream_id": envelope.stream_id, "stream_version": envelope.stream_version,
                "event_type": envelope.event_type, "reason": reason[:2000], "attempts": attempts,
                "parked_behind": parked_behind, "status": "parked" if parked_behind else "dead",
                "dead_at": format_timestamp(utc_now()), "envelope": wire.decode("utf-8"),
            }, ["consumer", "event_id"])

    async def _publish_dead_letter(self, key: bytes | None, value: bytes, origin_topic: str,
                                   reason: str, attempts: int,
                                   parked_behind: uuid.UUID | None) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                        enable_idempotence=False, request_timeout_ms=10000)
            await producer.start()
            self._producer = producer
        headers = [
            ("consumer", self.name.encode()),
            ("origin_topic", origin_topic.encode()),
            ("reason", reason[:2000].encode()),
            ("attempts", str(attempts).encode()),
        ]
        if parked_behind is not None:
            headers.append(("parked_behind", str(parked_behind).encode()))
        await self._producer.send_and_wait(self.dead_letter_topic, value=value, key=key,
                                           headers=headers)



def _is_transient(error: Exception) -> bool:
    """Failures that pass by themselves: retry them, never dead-letter them."""
    if isinstance(error, ConcurrencyError | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated) or isinstance(error, OperationalError)
    return False
