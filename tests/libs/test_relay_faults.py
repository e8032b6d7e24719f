"""The relay under broker faults: a topic of the wrong shape, a broker that lost its data
while nothing was being written. Real broker, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from libs.messaging.broker import EmbeddedBroker
from libs.messaging.kafka import end_offsets, ensure_topics
from libs.messaging.relay import Relay, RelaySettings, partition_for
from libs.store.database import Database
from tests.conftest import wait_until
from tests.libs.test_relay_consumer import (
    Harness,
    append_many,
    append_many_more,
    assert_exactly_once_in_stream_order,
    count_messages,
    effects_metadata,
)

IDLE_NOTICE_BOUND_S = 5.0
"""An idle relay must notice a broker that lost its data within seconds of its return."""


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A broker of the test's own: these tests restart it."""
    async with EmbeddedBroker(log_path=tmp_path / "broker.log", stop_signal=signal.SIGINT) as own:
        yield own


@pytest.fixture
async def faults(db: Database, broker: EmbeddedBroker) -> AsyncIterator[Harness]:
    async with db.engine.begin() as conn:
        await conn.run_sync(effects_metadata.create_all)
    harness = Harness(db, broker.bootstrap_servers)
    yield harness
    await harness.close()


def production_relay(harness: Harness, **settings: float) -> Relay:
    """A relay with the production timings (heartbeat every second), unless told otherwise."""
    return Relay(harness.store, topic=harness.topic, kafka=harness.bootstrap,
                 settings=RelaySettings(**settings))  # type: ignore[arg-type]


async def stop_last(harness: Harness) -> None:
    """Stop the task started last (a relay, here) and wait until it has stopped."""
    harness.stops[-1].set()
    await harness.tasks[-1]


async def placement(bootstrap: str, topic: str) -> dict[int, set[str]]:
    """Which streams (record keys) each partition of ``topic`` holds."""
    ends = await end_offsets(bootstrap, topic)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign([TopicPartition(topic, p) for p in ends])
        found: dict[int, set[str]] = {p: set() for p in ends}
        while batch := await reader.getmany(timeout_ms=1000):
            for tp, records in batch.items():
                found[tp.partition].update(r.key.decode() for r in records if r.key)
        return found
    finally:
        await reader.stop()


def test_partition_for_is_the_java_clients_default_partitioner() -> None:
    """Kafka's own murmur2 vectors (``UtilsTest.testMurmur2``), made positive and taken
    modulo the count exactly as the Java client's default partitioner does."""
    java_murmur2 = {b"21": -973932308, b"foobar": -790332482,
                    b"a-little-bit-long-string": -985981536,
                    b"a-little-bit-longer-string": -1486304829,
                    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
                    b"abc": 479470107}
    for key, hashed in java_murmur2.items():
        for count in (1, 3, 4, 7, 12):
            assert partition_for(key, count) == (hashed & 0x7FFFFFFF) % count, (key, count)


async def test_a_topic_recreated_with_more_partitions_strands_nothing(faults: Harness,
                                                                     broker: EmbeddedBroker) -> None:
    """The finding: a broker restart, then the topic auto-created with 4 partitions, not 3.

    The relay keeps every stream on its partition of 3, reports the mismatch, and the
    consumer group (its offsets lost with the broker) applies every event once, in order.
    """
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
    consumer = faults.consumer()
    faults.start(consumer.run)
    faults.start(faults.relay().run)
    first = await append_many(faults.store, streams=12, per_stream=3)
    await wait_until(lambda: _applied_count(faults, consumer, len(first)), what="first half")
    await stop_last(faults)

    await broker.restart()
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=4)  # as Tansu auto-creates
    second = await append_many_more(faults.store, streams=12, start=3, count=3)
    relay = faults.relay()
    faults.start(relay.run)

    everything = first | second
    await wait_until(lambda: _applied_count(faults, consumer, len(everything)), 60,
                     what="every event applied after the topic changed shape")
    assert_exactly_once_in_stream_order(await faults.applied(consumer), everything)
    assert relay.topic_partitions == 4 and relay.shape_mismatches >= 1
    held = await placement(faults.bootstrap, faults.topic)
    assert held[3] == set(), "the relay wrote to a partition beyond the configured count"
    for partition, streams in held.items():
        assert {partition_for(s.encode(), 3) for s in streams} <= {partition}, held


async def test_a_topic_with_fewer_partitions_is_refused_until_it_is_fixed(faults: Harness) -> None:
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=2)
    relay = production_relay(faults, shape_retry_interval=0.2)
    faults.start(relay.run)
    ids = await append_many(faults.store, streams=6, per_stream=2)
    await wait_until(lambda: _at_least(relay.shape_mismatches, 3), what="the shape refused")
    assert relay.topic_partitions == 2 and relay.published_total == 0
    assert await count_messages(faults.bootstrap, faults.topic) == 0

    admin = AIOKafkaAdminClient(bootstrap_servers=faults.bootstrap)  # the operator fixes it
    await admin.start()
    try:
        await admin.delete_topics([faults.topic])
    finally:
        await admin.close()
    await wait_until(lambda: _at_least(relay.published_total, len(ids)), 30,
                     what="publishing once the topic has the configured count")
    assert relay.topic_partitions == 3


async def test_an_idle_relay_notices_broker_loss_within_seconds_and_republishes(
    faults: Harness, broker: EmbeddedBroker
) -> None:
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
    relay = production_relay(faults)
    faults.start(relay.run)
    ids = await append_many(faults.store, streams=4, per_stream=5)
    await wait_until(lambda: _at_least(relay.published_total, len(ids)), what="published")
    beats = relay.heartbeats
    await wait_until(lambda: _at_least(relay.heartbeats, beats + 1), what="an idle heartbeat")

    await broker.restart()  # memory storage: topics, records and group offsets are gone
    back = asyncio.get_running_loop().time()
    await wait_until(lambda: _at_least(relay.republished, 1), IDLE_NOTICE_BOUND_S,
                     what="the idle relay to notice the broker's loss")
    await wait_until(lambda: _holds(faults, len(ids)),
                     IDLE_NOTICE_BOUND_S - (asyncio.get_running_loop().time() - back),
                     what="every event on the broker again")
    late = faults.consumer("late")  # a group that starts now sees the whole history
    faults.start(late.run)
    await wait_until(lambda: _applied_count(faults, late, len(ids)), what="late consumer")
    assert_exactly_once_in_stream_order(await faults.applied(late), ids)


async def test_a_relay_down_while_the_broker_lost_its_data_republishes_at_start(
    faults: Harness, broker: EmbeddedBroker
) -> None:
    """Topics recreated empty before the relay returns (as ``o2c up`` does): the end
    offsets prove nothing on every broker, the stored heartbeat offset does."""
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
    faults.start(production_relay(faults).run)
    ids = await append_many(faults.store, streams=3, per_stream=4)
    await wait_until(lambda: _holds(faults, len(ids)), what="published")
    await stop_last(faults)

    await broker.restart()
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
    relay = production_relay(faults)
    faults.start(relay.run)
    await wait_until(lambda: _at_least(relay.republished, 1), IDLE_NOTICE_BOUND_S,
                     what="the restarted relay to notice the broker's loss")
    await wait_until(lambda: _holds(faults, len(ids)), what="every event on the broker again")
    assert relay.republished >= 1


async def test_after_a_loss_found_by_a_produce_the_heartbeat_starts_over(
    faults: Harness, broker: EmbeddedBroker
) -> None:
    """The republish after a produce answered a low offset leaves the relay ready to beat:
    the heartbeat learns the new broker's offsets instead of reporting the same loss twice."""
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
    relay = production_relay(faults)
    try:
        await relay.start()
        first = await append_many(faults.store, streams=3, per_stream=2)
        await publish_through(relay, len(first))
        assert not await relay.beat()

        await broker.restart()
        await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
        second = await append_many_more(faults.store, streams=3, start=2, count=1)
        async def loss_found() -> None:  # the first produce that gets through finds the loss
            while relay.republished == 0:
                assert await relay.publish_batch() == 0, "published over a lost broker"
                await asyncio.sleep(0.05)

        await asyncio.wait_for(loss_found(), timeout=60)
        assert relay.republished == 1
        assert not await relay.beat() and not await relay.beat()
        await publish_through(relay, len(first) + len(first | second))
        assert relay.republished == 1
        assert await count_messages(faults.bootstrap, faults.topic) >= len(first | second)
    finally:
        await relay.stop()


async def test_a_failed_batch_is_read_again_without_a_new_kafka_consumer(
    faults: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails (the database away) is rewound and read again by the same Kafka
    consumer: a new one would have to re-join the group and wait for the old member."""
    import libs.messaging.consumer as consumer_module

    created: list[AIOKafkaConsumer] = []

    class CountedConsumer(AIOKafkaConsumer):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", CountedConsumer)
    await ensure_topics(faults.bootstrap, [faults.topic], partitions=3)
    consumer = faults.consumer()
    real_seen_before, failures = consumer._read_guard, [OSError("database away")]

    async def seen_before_failing_once(records):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await real_seen_before(records)

    consumer._read_guard = seen_before_failing_once  # type: ignore[method-assign]
    ids = await append_many(faults.store, streams=4, per_stream=3)
    faults.start(faults.relay().run)
    faults.start(consumer.run)
    await wait_until(lambda: _applied_count(faults, consumer, len(ids)), what="all applied")
    assert not failures, "the failure never happened"
    assert_exactly_once_in_stream_order(await faults.applied(consumer), ids)
    assert len(created) == 1


async def publish_through(relay: Relay, total: int) -> None:
    """Publish until ``total`` events went out in all. On PostgreSQL the relay reads only behind
    the oldest open transaction on the server, so an empty page may only mean "not yet" while
    another test (another xdist worker) holds one open: stopping at the first empty page flakes."""
    async def published() -> None:
        while relay.published_total < total:
            await relay.publish_batch() or await asyncio.sleep(0.05)

    await asyncio.wait_for(published(), timeout=60)


async def _at_least(value: int, wanted: int) -> bool:
    return value >= wanted


async def _applied_count(harness: Harness, consumer, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await harness.applied(consumer)) >= n


async def _holds(harness: Harness, n: int) -> bool:
    return await count_messages(harness.bootstrap, harness.topic) >= n
