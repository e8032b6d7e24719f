"""Helpers of the consumer fault suites: events produced where a test wants them.

The relay decides partitions by key; these tests need to put one stream's
events on chosen partitions (as a topic auto-created with another partition
count did), leave versions out, or repeat a history, so they produce the
stored envelopes themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy import select

from libs.events.base import EventMetadata
from libs.events.envelope import Envelope
from libs.messaging.consumer import Consumer
from libs.messaging.kafka import end_offsets, ensure_topics
from libs.store.database import Database
from libs.store.schema import dead_letters, held_events
from libs.store.store import EventStore
from tests.libs.sample_events import CounterIncremented
from tests.libs.test_relay_consumer import Harness, effects_metadata

META = EventMetadata(actor="test")


def record_of(topic: str, offset: int, envelope: Envelope) -> ConsumerRecord:  # type: ignore[type-arg]
    """A record as the relay publishes it (headers ``event_type`` and ``event_id``), to hand
    to ``Consumer.apply_records`` without a broker."""
    value, key = envelope.to_wire(), envelope.stream_id.encode()
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value),
                          [("event_type", envelope.event_type.encode()),
                           ("event_id", str(envelope.event_id).encode())])


@asynccontextmanager
async def harness_on(db: Database, bootstrap: str, partitions: int) -> AsyncIterator[Harness]:
    """A relay/consumer harness whose topic (and dead-letter topic) has ``partitions``."""
    async with db.engine.begin() as conn:
        await conn.run_sync(effects_metadata.create_all)
    harness = Harness(db, bootstrap)
    await ensure_topics(bootstrap, [harness.topic, f"{harness.topic}.dlq"], partitions=partitions)
    try:
        yield harness
    finally:
        await harness.close()


async def stream_of(db: Database, stream_id: str, count: int, *, poison_at: int | None = None,
                    start: int = 1) -> list[Envelope]:
    """``count`` stored events of ``stream_id``, versions ``start``.. (one poisoned, if asked)."""
    events = [CounterIncremented(amount_minor=n, poison=n == poison_at)
              for n in range(start, start + count)]
    return await EventStore(db).append(stream_id, "counter", start - 1, events, META)


def ignored(envelope: Envelope) -> Envelope:
    """The same event as a type no handler wants."""
    return replace(envelope, event_type="test.SomethingElse")


async def produce(bootstrap: str, topic: str, envelopes: Sequence[Envelope],
                  partition: int | None = None) -> None:
    """Publish ``envelopes`` keyed by stream, in order, on ``partition`` if given."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(topic, value=envelope.to_wire(),
                                         key=envelope.stream_id.encode(), partition=partition)
    finally:
        await producer.stop()


async def produce_raw(bootstrap: str, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed on each partition of ``topic`` (-1: none)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                              enable_auto_commit=False)
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await end_offsets(bootstrap, topic)]
        return {tp.partition: (await reader.committed(tp)) or -1 for tp in partitions}
    finally:
        await reader.stop()


async def commit_past_everything(bootstrap: str, group: str, topic: str, partition: int) -> None:
    """Commit ``group`` past what ``partition`` holds now (as the old consumer did past a gap)."""
    ends = await end_offsets(bootstrap, topic)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                              enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topic, partition)
        reader.assign([tp])
        await reader.commit({tp: ends[partition]})
    finally:
        await reader.stop()


def quick_gaps(consumer: Consumer, heal_after: float = 1.0) -> Consumer:
    """Make ``consumer`` heal gaps after ``heal_after`` seconds and tend often."""
    consumer.settings = replace(consumer.settings, gap_heal_seconds=heal_after,
                                tend_interval=0.1, heal_scan_seconds=10.0)
    return consumer


async def dead_letters_of(db: Database, consumer: str) -> dict[uuid.UUID, str]:
    """event id -> status of ``consumer``'s dead letters."""
    async with db.read() as conn:
        return dict((await conn.execute(select(dead_letters.c.event_id, dead_letters.c.status)
                                        .where(dead_letters.c.consumer == consumer))).all())


async def held_of(db: Database, consumer: str) -> dict[tuple[str, int], str | None]:
    """(stream, version) -> parked_at of ``consumer``'s held events."""
    async with db.read() as conn:
        rows = await conn.execute(select(held_events.c.stream_id, held_events.c.stream_version,
                                         held_events.c.parked_at)
                                  .where(held_events.c.consumer == consumer))
        return {(stream, version): parked for stream, version, parked in rows}
