"""The relay: publishes a store's committed events to Kafka, in order, without loss.

The event store is the outbox: services never write to Kafka themselves. The
relay reads committed events in commit-safe order (see ``libs.store.store``),
publishes each keyed by its stream id, waits for the broker's acknowledgement,
then records in one transaction how far it got and seals what it read into
the global hash chain.

- Crash between publish and record: the batch is published again. Repeats are
  allowed (consumers deduplicate by event id); gaps never happen.

One stream, one partition, for good. Order per stream holds only while a
stream stays on one partition, so the relay chooses the partition itself:
Kafka's default partitioner formula (murmur2 of the key, modulo the count,
:func:`partition_for`) over the *configured* partition count, passed
explicitly with every record. Any other producer using that count (the Java
client's default partitioner, aiokafka's) agrees with it. What the broker did
to the topic cannot move a stream:

- more partitions than configured (a broker that auto-created the topic with
  its own count before anyone created it properly) are tolerated: the extra
  ones are never written; the relay logs an error and counts it
  (``shape_mismatches``, ``topic_partitions``);
- fewer partitions are refused: publishing around them would split streams,
  so the relay logs an error and publishes nothing until the topic has the
  configured count (it checks again every ``shape_retry_interval``).

On Apache Kafka, set ``auto.create.topics.enable=false`` on the brokers (or
an equivalent policy on a managed cluster): topics are then created only by
:func:`~libs.messaging.kafka.ensure_topics` (``o2c up``, each relay and
consumer at start), with the configured count, before anything writes. Never
change the count of an event topic under a running system; moving to another
count is a migration (new topics, republish).

Broker loss (a restarted in-memory broker, a recreated topic, an unclean
leader election) is noticed three ways, and then the relay republishes the
whole store from the start (consumers skip what they have, and their order
guard skips anything the broker kept that now stands ahead of its stream's
history):

- busy: a produce acknowledgement carries an offset lower than the next one
  the relay remembered for that partition;
- idle, every ``heartbeat_interval`` (1 s): a heartbeat on the relay's own
  control topic answers a lower offset than the previous one
  (:class:`~libs.messaging.broker_loss.Heartbeat`). The next expected offset
  is stored with the relay's position, so a loss while the relay itself was
  down is noticed by its first heartbeat;
- idle, every ``broker_check_interval`` (10 s): the event topic's end offsets,
  verified by a fetch (:class:`~libs.messaging.broker_loss.EndOffsets`); this
  also re-reads the topic's partition count.

- Several replicas: only the holder of the lease publishes.

Promptly, without polling hard. The relay reads the store when it is told that a
transaction which appended events has committed (``libs.store.commits``: at once
for writers in its own process, by PostgreSQL ``LISTEN/NOTIFY`` for the others),
and otherwise once every ``poll_interval`` (1 s), the fallback for writers it is not
told about (the CLI on SQLite, a lost LISTEN connection). A wake-up only shortens
the wait: the same read, the same checkpoint, so a missed one costs latency, never
an event. Under load a read takes what committed meanwhile (up to ``batch_size``),
sends it all and waits once for every acknowledgement before recording the
checkpoint: batches grow with the load, like a group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from sqlalchemy import func, select, tuple_

from libs.events.base import parse_timestamp, utc_now
from libs.events.envelope import GENESIS_HASH, Envelope
from libs.messaging.broker_loss import (
    HEARTBEAT_TOPIC_CONFIG,
    EndOffsets,
    Heartbeat,
    heartbeat_topic_for,
)
from libs.messaging.kafka import KafkaConnection, connection, ensure_topics
from libs.messaging.lease import Lease, lease_for
from libs.messaging.timing import sleep_or_stop
from libs.store.commits import CommitListener
from libs.store.integrity import seal_hash
from libs.store.schema import events, relay_offsets, relay_state
from libs.store.sql import Statement, row_placeholders, upsert
from libs.store.store import ORIGIN, Checkpoint, EventStore
from libs.telemetry import tracing

log = logging.getLogger(__name__)


@dataclass
class RelayState:
    published: Checkpoint = ORIGIN
    sealed: Checkpoint = ORIGIN
    sealed_seq: int = 0
    sealed_hash: str = GENESIS_HASH
    republished: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)
    heartbeat_next: int = 0
    """The lowest offset the next heartbeat may get (0: nothing known yet)."""


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 500
    poll_interval: float = 1.0
    """The fallback read while no commit is signalled (see the module doc)."""
    linger: float = 0.01
    """After a batch that caught up, the next read waits until this long after it, so that
    a trickle of commits is published a few at a time rather than one transaction each
    (a checkpoint is a write transaction: on SQLite it takes the write lock and a sync)."""
    settle_interval: float = 0.002
    """The first re-read when a signalled PostgreSQL commit is not readable yet (an older
    transaction still runs); it doubles on each empty read, up to ``poll_interval``."""
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 2.0
    broker_check_interval: float = 10.0
    lease_retry_interval: float = 1.0
    lease_renew_interval: float = 3.0
    """Well under the lease's time to live (10 s by default)."""
    partitions: int = 3
    """The configured partition count of the event topic: the stream -> partition mapping."""
    error_backoff: float = 0.5
    shape_retry_interval: float = 5.0


class BrokerDataLost(Exception):
    """The broker holds fewer messages than the relay had published."""


class TopicShapeError(Exception):
    """The event topic has fewer partitions than configured; publishing would split streams."""


@functools.lru_cache(maxsize=4096)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive, modulo) over ``partitions``.

    The same formula as the Java client and aiokafka use when given that count, so
    every producer configured with the same count puts a stream on the same partition.
    Remembered for the streams published lately: aiokafka's murmur2 is pure Python
    (about 17 µs a key), and a stream's events follow one another within seconds.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Relay:
    """Publishes one store to one topic; run one per service (more replicas wait on the lease)."""

    def __init__(
        self,
        store: EventStore,
        *,
        topic: str,
        kafka: KafkaConnection | str,
        name: str = "relay",
        lease: Lease | None = None,
        settings: RelaySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.topic = topic
        self.kafka = connection(kafka)
        self.name = name
        self._source = f"/o2c/{name}".encode()
        self.lease = lease or lease_for(store.db, f"relay:{name}")
        self.settings = settings or RelaySettings()
        self._clock = clock
        self.heartbeat_topic = heartbeat_topic_for(topic)
        self._heartbeat = Heartbeat(self.heartbeat_topic, name.encode("utf-8"),
                                    self.settings.heartbeat_timeout, self._ensure_topics)
        self._end_offsets = EndOffsets(self.kafka, topic)
        self._producer: AIOKafkaProducer | None = None
        self._state: RelayState | None = None
        self._last_broker_check = float("-inf")
        self._last_heartbeat = float("-inf")
        self._heartbeat_durable = False
        self.published_total = 0
        self.heartbeats = 0
        self.topic_partitions: int | None = None
        """The event topic's partition count as last seen (a gauge for metrics)."""
        self.shape_mismatches = 0
        """How often the event topic was seen with another partition count than configured."""

    @property
    def republished(self) -> int:
        """How often this relay found the broker had lost data and republished everything."""
        return self._state.republished if self._state is not None else 0

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; survives broker and database outages."""
        try:
            while not stop.is_set():
                if not await self.lease.acquire():
                    await sleep_or_stop(stop, self.settings.lease_retry_interval)
                    continue
                try:
                    await self._lead(stop)
                except TopicShapeError as error:
                    log.error("relay %s: %s", self.name, error)
                    await self._close_producer()
                    await sleep_or_stop(stop, self.settings.shape_retry_interval)
                except (KafkaError, OSError, ConnectionError) as error:
                    log.warning("relay %s: broker unavailable (%r); retrying", self.name, error)
                    await self._close_producer()
                    await sleep_or_stop(stop, self.settings.error_backoff)
                except Exception:
                    log.exception("relay %s failed; retrying", self.name)
                    await self._close_producer()
                    self._state = None
                    await sleep_or_stop(stop, self.settings.error_backoff)
        finally:
            await self._close_producer()
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _lead(self, stop: asyncio.Event) -> None:
        await self.start()
        commits = self.store.db.commits
        listener = CommitListener(self.store.db) if self.store.db.is_postgres else None
        commits.relays_leading += 1  # writers in this process need not NOTIFY now
        try:
            renewed_at = self._clock()
            settle, caught_up_at = 0.0, float("-inf")
            while not stop.is_set():
                # Renew a few times per lease period, not on every read: on SQLite a
                # renewal is a durable write transaction, on PostgreSQL a round trip.
                if self._clock() - renewed_at >= self.settings.lease_renew_interval:
                    if not await self.lease.renew():
                        log.warning("relay %s lost its lease", self.name)
                        await self._close_producer()
                        return
                    renewed_at = self._clock()
                if listener is not None:
                    await listener.ensure()
                if (gather := caught_up_at + self.settings.linger - self._clock()) > 0:
                    await sleep_or_stop(stop, gather)
                seen = commits.count  # before the read: a commit during it wakes the next wait
                published = await self.publish_batch()
                if published:
                    settle = 0.0
                    if published < self.settings.batch_size:
                        caught_up_at = self._clock()
                    continue
                await self.watch_broker()
                wait = self._idle_wait(renewed_at)
                assert self._state is not None
                if commits.tx_id > self._state.published.tx_id:  # signalled, not readable yet
                    settle = wait = min(max(settle * 2, self.settings.settle_interval), wait)
                else:
                    settle = 0.0
                await commits.wait(seen, stop, wait)
        finally:
            commits.relays_leading -= 1
            if listener is not None:
                await listener.close()

    def _idle_wait(self, renewed_at: float) -> float:
        """How long an idle relay may sleep: until the fallback read, heartbeat or renewal."""
        now = self._clock()
        return max(0.0, min(self.settings.poll_interval,
                            self._last_heartbeat + self.settings.heartbeat_interval - now,
                            renewed_at + self.settings.lease_renew_interval - now))

    async def start(self) -> None:
        """Make sure the topics exist with the right shape, connect, load the durable state."""
        if self._producer is None:
            await self._ensure_topics()
            producer = AIOKafkaProducer(
                **self.kafka.client_kwargs(),
                acks="all",
                enable_idempotence=False,
                linger_ms=2,
                max_batch_size=512 * 1024,
                request_timeout_ms=15000,
            )
            await producer.start()
            self._producer = producer
        if self._state is None:
            self._state = await self._load_state()
            self._heartbeat_durable = False
            self._last_broker_check = float("-inf")
            self._last_heartbeat = float("-inf")
            await self.watch_broker()

    async def _ensure_topics(self) -> None:
        counts = await ensure_topics(self.kafka, [self.topic], self.settings.partitions)
        self._note_shape(counts[self.topic])
        await ensure_topics(self.kafka, [self.heartbeat_topic], 1,
                            config=HEARTBEAT_TOPIC_CONFIG)

    def _note_shape(self, partitions: int) -> None:
        """Record the topic's partition count; refuse fewer than configured (see the module)."""
        self.topic_partitions = partitions
        wanted = self.settings.partitions
        if partitions == wanted:
            return
        self.shape_mismatches += 1
        if partitions < wanted:
            raise TopicShapeError(
                f"topic {self.topic} has {partitions} partitions, fewer than the configured "
                f"{wanted}: nothing is published until it has {wanted}")
        log.error("relay %s: topic %s has %d partitions, configured %d; streams stay on the "
                  "first %d, the others are never written", self.name, self.topic, partitions,
                  wanted, wanted)

    async def stop(self) -> None:
        await self._close_producer()

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # -- one step ----------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Publish the next committed events; return how many (0: nothing new)."""
        await self.start()
        assert self._producer is not None and self._state is not None
        state = self._state
        page = await self.store.read_all(state.published, limit=self.settings.batch_size)
        if not page.events:
            return 0
        pending = []
        for envelope in page.events:
            key = envelope.stream_id.encode("utf-8")
            pending.append(await self._producer.send(
                self.topic,
                value=envelope.to_wire(),
                key=key,
                partition=partition_for(key, self.settings.partitions),
                headers=self._headers(envelope),
            ))
        acknowledged = await asyncio.gather(*pending)
        offsets = dict(state.next_offsets)
        for metadata in acknowledged:
            if metadata.offset < state.next_offsets.get(metadata.partition, 0):
                await self._republish_all(
                    f"partition {metadata.partition} answered offset {metadata.offset}, "
                    f"expected at least {state.next_offsets[metadata.partition]}")
                return 0
            offsets[metadata.partition] = max(offsets.get(metadata.partition, 0),
                                              metadata.offset + 1)
        await self._record(page.events, page.checkpoints, offsets)
        self.published_total += len(page.events)
        return len(page.events)

    def _headers(self, envelope: Envelope) -> list[tuple[str, bytes]]:
        """Kafka headers: ``event_type`` and ``stream_version`` (with the key, the stream id: a
        consumer passes a type it does not handle without parsing the message,
        ``libs.messaging.inbox.peek``) and the CloudEvents attributes of the Kafka binding, so
        any tool can route on them; ``traceparent`` when tracing (``libs.telemetry.tracing``)."""
        event_id = str(envelope.event_id).encode()
        event_type = envelope.event_type.encode()
        return [("event_type", event_type), ("stream_version", b"%d" % envelope.stream_version),
                ("event_id", event_id),
                ("ce_specversion", b"1.0"), ("ce_id", event_id), ("ce_type", event_type),
                ("ce_source", self._source), ("ce_time", envelope.occurred_at.encode()),
                ("ce_subject", envelope.stream_id.encode("utf-8")),
                ("content-type", b"application/json"),
                *tracing.publish_headers(envelope, self.topic)]

    async def lag(self) -> tuple[int, float] | None:
        """Committed events not yet published, and the age in seconds of the oldest of them
        (a gauge for metrics); None while this replica does not lead."""
        state = self._state
        if state is None:
            return None
        after = state.published
        unpublished = (tuple_(events.c.tx_id, events.c.position) > tuple_(after.tx_id, after.position)
                       if self.store.db.is_postgres else events.c.position > after.position)
        async with self.store.db.read() as conn:
            count, oldest = (await conn.execute(
                select(func.count(), func.min(events.c.occurred_at)).where(unpublished))).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max((utc_now() - parse_timestamp(oldest)).total_seconds(), 0.0)

    async def watch_broker(self) -> bool:
        """While idle: a heartbeat when one is due, the end-offset check when due.

        True when the broker had lost data (and everything was republished)."""
        now = self._clock()
        if now - self._last_heartbeat >= self.settings.heartbeat_interval:
            self._last_heartbeat = now
            if await self.beat():
                return True
        return await self.check_broker()

    async def beat(self) -> bool:
        """Produce one heartbeat; a lower offset than expected means the broker lost data.

        True when it had (and everything was republished)."""
        await self.start()  # a republish closed the producer
        assert self._producer is not None and self._state is not None
        offset = await self._heartbeat.send(self._producer)
        self.heartbeats += 1
        expected = self._state.heartbeat_next
        lost = offset < expected
        if lost:
            await self._republish_all(
                f"heartbeat answered offset {offset}, expected at least {expected}")
        self._state.heartbeat_next = offset + 1
        if not self._heartbeat_durable:  # once per leadership: a loss while we are down shows
            async with self.store.db.transaction() as conn:
                await upsert(conn, relay_offsets, self._heartbeat_row(self._state),
                             ["relay", "topic", "partition"])
            self._heartbeat_durable = True
        return lost

    async def check_broker(self, *, force: bool = False) -> bool:
        """Compare the broker's end offsets with ours; republish everything if it lost data."""
        now = self._clock()
        if not force and now - self._last_broker_check < self.settings.broker_check_interval:
            return False
        self._last_broker_check = now
        assert self._state is not None
        partitions, lost = await self._end_offsets.check(self._state.next_offsets)
        if partitions:
            self._note_shape(partitions)
        if lost is None:
            return False
        await self._republish_all(
            f"partition {lost} no longer holds offset {self._state.next_offsets[lost] - 1}")
        return True

    async def _republish_all(self, reason: str) -> None:
        log.warning("relay %s: broker lost data (%s); republishing from the start",
                    self.name, reason)
        assert self._state is not None
        # What the broker kept since it lost its data (our last batch, say) now stands
        # ahead of the republished history; consumers' order guard skips it and applies
        # it again when it comes in order. (Deleting the topic instead would race with
        # brokers that auto-create topics, and not every broker deletes what it hides.)
        await self._ensure_topics()
        await self._close_producer()  # the next batch starts one with fresh metadata
        self._state.published = ORIGIN
        self._state.next_offsets = {}
        self._state.heartbeat_next = 0  # the next heartbeat sets it again
        self._state.republished += 1
        self._end_offsets.forget()
        self._heartbeat_durable = False
        async with self.store.db.transaction() as conn:
            await conn.execute(relay_offsets.delete().where(relay_offsets.c.relay == self.name))
            await upsert(conn, relay_state, self._state_row(self._state), ["relay"])

    # -- durable state -----------------------------------------------------------

    async def _load_state(self) -> RelayState:
        async with self.store.db.read() as conn:
            row = (await conn.execute(
                select(relay_state).where(relay_state.c.relay == self.name))).mappings().first()
            offsets = (await conn.execute(
                select(relay_offsets.c.topic, relay_offsets.c.partition,
                       relay_offsets.c.next_offset).where(
                    relay_offsets.c.relay == self.name,
                    relay_offsets.c.topic.in_([self.topic, self.heartbeat_topic]))
            )).all()
        if row is None:
            return RelayState()
        return RelayState(
            published=Checkpoint(row["published_tx"], row["published_position"]),
            sealed=Checkpoint(row["sealed_tx"], row["sealed_position"]),
            sealed_seq=row["sealed_seq"],
            sealed_hash=row["sealed_hash"],
            republished=row["republished"],
            next_offsets={partition: offset for topic, partition, offset in offsets
                          if topic == self.topic},
            heartbeat_next=max((offset for topic, _, offset in offsets
                                if topic == self.heartbeat_topic), default=0),
        )

    def _state_row(self, state: RelayState) -> dict[str, Any]:
        return {
            "relay": self.name,
            "published_tx": state.published.tx_id,
            "published_position": state.published.position,
            "sealed_tx": state.sealed.tx_id,
            "sealed_position": state.sealed.position,
            "sealed_seq": state.sealed_seq,
            "sealed_hash": state.sealed_hash,
            "republished": state.republished,
        }

    def _heartbeat_row(self, state: RelayState) -> dict[str, Any]:
        return {"relay": self.name, "topic": self.heartbeat_topic, "partition": 0,
                "next_offset": state.heartbeat_next}

    async def _record(self, envelopes: list[Any], checkpoints: list[Checkpoint],
                      offsets: dict[int, int]) -> None:
        assert self._state is not None
        state = RelayState(**{**self._state.__dict__})
        seals = []
        for envelope, checkpoint in zip(envelopes, checkpoints, strict=True):
            if checkpoint > state.sealed:
                state.sealed_seq += 1
                state.sealed_hash = seal_hash(state.sealed_hash, envelope.position,
                                              envelope.stream_hash, self.store.chain)
                state.sealed = checkpoint
                seals.append({"seq": state.sealed_seq, "position": envelope.position,
                              "stream_hash": envelope.stream_hash,
                              "chain_hash": state.sealed_hash})
        state.published = checkpoints[-1]
        state.next_offsets = offsets
        offset_rows = [*((self.topic, p, o) for p, o in offsets.items()),
                       *([(self.heartbeat_topic, 0, state.heartbeat_next)] if state.heartbeat_next else [])]
        if self.store.db.is_postgres:  # one statement, one round trip, atomic on its own
            pool = await self.store.db.driver_pool()
            async with pool.acquire() as con:
                await con.execute(
                    _PG_RECORD, self.name,
                    [seal["seq"] for seal in seals], [seal["position"] for seal in seals],
                    [seal["stream_hash"] for seal in seals], [seal["chain_hash"] for seal in seals],
                    state.published.tx_id, state.published.position, state.sealed.tx_id,
                    state.sealed.position, state.sealed_seq, state.sealed_hash, state.republished,
                    [topic for topic, _, _ in offset_rows], [p for _, p, _ in offset_rows],
                    [o for _, _, o in offset_rows])
            self._state = state
            return
        async with self.store.db.transaction() as conn:  # SQLite: statements built once
            if seals:
                await _sqlite_seals(len(seals)).execute(conn, *(
                    value for seal in seals for value in (seal["seq"], seal["position"],
                                                          seal["stream_hash"], seal["chain_hash"])))
            await _SQLITE_STATE.execute(conn, *self._state_row(state).values())
            await _sqlite_offsets(len(offset_rows)).execute(conn, *(
                value for row in offset_rows for value in (self.name, *row)))
        self._state = state


_PG_RECORD = """
WITH seals AS (
    INSERT INTO event_seals (seq, position, stream_hash, chain_hash)
    SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[])
), state AS (
    INSERT INTO relay_state (relay, published_tx, published_position, sealed_tx, sealed_position,
                             sealed_seq, sealed_hash, republished)
    VALUES ($1::text, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (relay) DO UPDATE SET
        published_tx = EXCLUDED.published_tx, published_position = EXCLUDED.published_position,
        sealed_tx = EXCLUDED.sealed_tx, sealed_position = EXCLUDED.sealed_position,
        sealed_seq = EXCLUDED.sealed_seq, sealed_hash = EXCLUDED.sealed_hash,
        republished = EXCLUDED.republished
)
INSERT INTO relay_offsets (relay, topic, partition, next_offset)
SELECT $1::text, * FROM unnest($13::text[], $14::int[], $15::bigint[])
ON CONFLICT (relay, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset
"""
"""What the relay records after each published batch, on PostgreSQL (``_record``): the seals,
its state and the partitions' offsets in one statement on the driver (one round trip, where a
transaction of three statements through SQLAlchemy took five), atomic as that transaction was.
The three touch different tables, so no part of it needs to see another's write."""




_SQLITE_STATE = Statement(
    "INSERT INTO relay_state (relay, published_tx, published_position, sealed_tx, sealed_position, "
    "sealed_seq, sealed_hash, republished) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (relay) DO UPDATE SET published_tx = excluded.published_tx, "
    "published_position = excluded.published_position, sealed_tx = excluded.sealed_tx, "
    "sealed_position = excluded.sealed_position, sealed_seq = excluded.sealed_seq, "
    "sealed_hash = excluded.sealed_hash, republished = excluded.republished")
"""``_record``'s state on SQLite (values in ``_state_row`` order): what ``upsert`` built and
compiled through SQLAlchemy Core after every published batch, written once."""


@functools.lru_cache(maxsize=64)
def _sqlite_seals(count: int) -> Statement:
    """``_record``'s insert of ``count`` seals on SQLite (seq, position, stream_hash, chain_hash)."""
    return Statement("INSERT INTO event_seals (seq, position, stream_hash, chain_hash) VALUES "
                     + row_placeholders(count, 4))


@functools.lru_cache(maxsize=8)
def _sqlite_offsets(count: int) -> Statement:
    """``_record``'s upsert of ``count`` partitions' offsets on SQLite (relay, topic, partition,
    next offset)."""
    return Statement("INSERT INTO relay_offsets (relay, topic, partition, next_offset) VALUES "
                     + row_placeholders(count, 4) + " ON CONFLICT (relay, topic, partition) "
                     "DO UPDATE SET next_offset = excluded.next_offset")
