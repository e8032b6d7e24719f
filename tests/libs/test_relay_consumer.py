"""Relay and consumers against the real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select

from libs.events.base import EventMetadata
from libs.messaging.broker import EmbeddedBroker
from libs.messaging.consumer import Consumer, ConsumerSettings, Delivery, Outcome
from libs.messaging.kafka import end_offsets, ensure_topics
from libs.messaging.relay import Relay, RelaySettings
from libs.store.database import Database
from libs.store.schema import dead_letters, held_events
from libs.store.store import EventStore
from tests.conftest import wait_until
from tests.libs.sample_events import CounterIncremented, registry

META = EventMetadata(actor="test")
QUICK_GROUPS = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200,
                "rebalance_timeout_ms": 1000}
FAST = RelaySettings(poll_interval=0.02, broker_check_interval=0.5, error_backoff=0.2)

effects_metadata = MetaData()
effects = Table(
    "test_effects", effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(50), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("stream_id", String(100), nullable=False),
    Column("version", Integer, nullable=False),
)


@dataclass
class Harness:
    """A store with its relay, plus consumers whose effect is a row per applied event."""

    db: Database
    bootstrap: str
    topic: str = field(default_factory=lambda: f"test.{uuid.uuid4().hex[:10]}")
    poison_fails: bool = True
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stops: list[asyncio.Event] = field(default_factory=list)

    @property
    def store(self) -> EventStore:
        return EventStore(self.db)

    def start(self, coroutine_factory) -> asyncio.Event:  # type: ignore[no-untyped-def]
        stop = asyncio.Event()
        self.stops.append(stop)
        self.tasks.append(asyncio.create_task(coroutine_factory(stop)))
        return stop

    def relay(self, **kwargs) -> Relay:  # type: ignore[no-untyped-def]
        return Relay(self.store, topic=self.topic, kafka=self.bootstrap,
                     settings=FAST, **kwargs)

    def consumer(self, name: str = "counter") -> Consumer:
        async def apply(delivery: Delivery) -> None:
            event = delivery.event
            assert isinstance(event, CounterIncremented)
            if event.poison and self.poison_fails:
                raise ValueError("poison")
            await delivery.conn.execute(effects.insert().values(
                consumer=delivery.consumer, event_id=delivery.envelope.event_id,
                stream_id=delivery.envelope.stream_id, version=delivery.envelope.stream_version))

        return Consumer(
            name=f"{name}-{self.topic}", db=self.db, registry=registry,
            handlers={CounterIncremented.TYPE: apply}, topics=[self.topic],
            kafka=self.bootstrap, dead_letter_topic=f"{self.topic}.dlq",
            settings=ConsumerSettings(max_attempts=3, retry_backoff=0.01, **QUICK_GROUPS),
        )

    async def applied(self, consumer: Consumer) -> list[tuple[uuid.UUID, str, int]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(effects.c.event_id, effects.c.stream_id, effects.c.version)
                .where(effects.c.consumer == consumer.name).order_by(effects.c.id))
            return [tuple(r) for r in rows]  # type: ignore[misc]

    async def close(self) -> None:
        for stop in self.stops:
            stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _harness(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    async with db.engine.begin() as conn:
        await conn.run_sync(effects_metadata.create_all)
    h = Harness(db, broker_bootstrap)
    await ensure_topics(broker_bootstrap, [h.topic, f"{h.topic}.dlq"], partitions=3)
    yield h
    await h.close()


@pytest.fixture
async def harness(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    async for h in _harness(db, broker_bootstrap):
        yield h


@pytest.fixture
async def pg_harness(pg_db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    """The harness on PostgreSQL only, for what only PostgreSQL has (LISTEN/NOTIFY)."""
    async for h in _harness(pg_db, broker_bootstrap):
        yield h


async def count_messages(bootstrap: str, topic: str) -> int:
    """How many messages ``topic`` holds, read from the start until the broker goes quiet."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              auto_offset_reset="earliest")
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await end_offsets(bootstrap, topic)]
        reader.assign(partitions)
        total = 0
        while batch := await reader.getmany(timeout_ms=1000):
            total += sum(len(records) for records in batch.values())
        return total
    finally:
        await reader.stop()


def assert_exactly_once_in_stream_order(applied: list, expected_ids: set) -> None:
    ids = [a[0] for a in applied]
    assert len(ids) == len(set(ids)), "an effect happened twice"
    assert set(ids) == expected_ids
    versions: dict[str, list[int]] = {}
    for _, stream, version in applied:
        versions.setdefault(stream, []).append(version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{stream} applied out of order: {seen}"


async def append_many(store: EventStore, streams: int, per_stream: int,
                      prefix: str = "c") -> set[uuid.UUID]:
    ids = set()
    for n in range(per_stream):
        for s in range(streams):
            [e] = await store.append(f"{prefix}-{s}", "counter", n, [CounterIncremented(amount_minor=n)],
                                     META)
            ids.add(e.event_id)
    return ids


async def append_many_more(store: EventStore, streams: int, start: int, count: int) -> set[uuid.UUID]:
    ids = set()
    for n in range(start, start + count):
        for s in range(streams):
            [e] = await store.append(f"c-{s}", "counter", n, [CounterIncremented(amount_minor=n)],
                                     META)
            ids.add(e.event_id)
    return ids


async def test_eight_concurrent_writers_tailing_relay_consumer_gets_all_once(
    harness: Harness,
) -> None:
    relay = harness.relay()
    consumer = harness.consumer()
    harness.start(relay.run)
    harness.start(consumer.run)
    expected: set[uuid.UUID] = set()

    async def writer(w: int) -> None:
        for n in range(20):
            async with harness.db.transaction() as conn:
                [e] = await harness.store.append(f"w{w}-{n % 4}", "counter", None,
                                                 [CounterIncremented(amount_minor=n)], META,
                                                 conn=conn)
                expected.add(e.event_id)
                await asyncio.sleep(0.005 * ((w + n) % 3))  # commit out of position order

    await asyncio.gather(*(writer(w) for w in range(8)))
    await wait_until(lambda: _count_is(harness, consumer, len(expected)), what="all events applied")
    assert_exactly_once_in_stream_order(await harness.applied(consumer), expected)


async def _count_is(harness: Harness, consumer: Consumer, n: int) -> bool:
    return len(await harness.applied(consumer)) >= n


async def test_relay_killed_mid_batch_loses_nothing_and_effects_happen_once(
    harness: Harness,
) -> None:
    expected = await append_many(harness.store, streams=5, per_stream=8)

    crashing = harness.relay()
    await crashing.start()
    assert crashing._producer is not None
    real_send, sent = crashing._producer.send, 0

    async def send_then_die(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal sent
        sent += 1
        if sent > 15:
            await crashing._producer.flush()  # 15 messages reached the broker, then it dies
            raise RuntimeError("relay process killed")
        return await real_send(*args, **kwargs)

    crashing._producer.send = send_then_die  # type: ignore[method-assign]

    async def publish_until_killed() -> None:
        # On PostgreSQL a page holds only events no open transaction could still precede
        # (``pg_snapshot_xmin``): another session's transaction anywhere on the server can
        # hold part of the 40 back for a moment, so one call may publish fewer than 16.
        while True:
            await crashing.publish_batch()
            await asyncio.sleep(0.05)

    with pytest.raises(RuntimeError, match="killed"):
        await asyncio.wait_for(publish_until_killed(), 30)
    await crashing.stop()
    assert await count_messages(harness.bootstrap, harness.topic) == 15

    consumer = harness.consumer()
    harness.start(consumer.run)
    harness.start(harness.relay().run)  # the restarted relay resumes from its durable position
    await wait_until(lambda: _count_is(harness, consumer, len(expected)), what="all applied")
    await asyncio.sleep(0.5)  # let any redelivered duplicates arrive
    # the first 15 were published twice
    assert await count_messages(harness.bootstrap, harness.topic) == len(expected) + 15
    assert_exactly_once_in_stream_order(await harness.applied(consumer), expected)


async def test_poison_event_is_dead_lettered_others_flow_and_redrive_applies_it(
    harness: Harness,
) -> None:
    consumer = harness.consumer()
    harness.start(harness.relay().run)
    harness.start(consumer.run)
    store = harness.store
    [poison] = await store.append("sick", "counter", 0,
                                  [CounterIncremented(amount_minor=1, poison=True)], META)
    behind = await store.append("sick", "counter", 1,
                                [CounterIncremented(amount_minor=2)], META)
    healthy = await append_many(store, streams=3, per_stream=4)

    await wait_until(lambda: _count_is(harness, consumer, len(healthy)), what="healthy applied")
    await wait_until(lambda: _held_count_is(harness, 1), what="the follower held")
    async with harness.db.read() as conn:
        letters = dict((await conn.execute(
            select(dead_letters.c.event_id, dead_letters.c.status)
            .where(dead_letters.c.consumer == consumer.name))).all())
        held = list((await conn.execute(select(held_events.c.event_id))).scalars())
    # one dead letter; the event behind it is held (not a second dead letter)
    assert letters == {poison.event_id: "dead"}
    assert held == [behind[0].event_id]
    assert {a[1] for a in await harness.applied(consumer)} == {"c-0", "c-1", "c-2"}
    assert await count_messages(harness.bootstrap, f"{harness.topic}.dlq") == 1

    harness.poison_fails = False  # the bug is fixed; put the dead letter back
    report = await consumer.redrive()
    assert (report.redriven, report.still_dead) == (1, 0)
    expected = healthy | {poison.event_id, behind[0].event_id}
    assert_exactly_once_in_stream_order(await harness.applied(consumer), expected)
    async with harness.db.read() as conn:
        statuses = set((await conn.execute(select(dead_letters.c.status).where(
            dead_letters.c.consumer == consumer.name))).scalars())
    assert statuses == {"redriven"}
    assert not await _held_count_is(harness, 1)


async def _held_count_is(harness: Harness, n: int) -> bool:
    async with harness.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(held_events))).scalar() == n


async def test_broker_restarted_empty_gets_everything_republished(
    db: Database, tmp_path
) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(effects_metadata.create_all)
    async with EmbeddedBroker(log_path=tmp_path / "broker.log",
                              stop_signal=signal.SIGINT) as broker:
        harness = Harness(db, broker.bootstrap_servers)
        await ensure_topics(broker.bootstrap_servers, [harness.topic], partitions=3)
        relay = harness.relay()
        consumer = harness.consumer()
        harness.start(relay.run)
        harness.start(consumer.run)
        try:
            first = await append_many(harness.store, streams=4, per_stream=5)
            await wait_until(lambda: _count_is(harness, consumer, len(first)), what="first batch")

            await broker.restart()  # memory storage: every topic and offset is gone
            # the same streams go on (v6, v7): their history must still arrive before them
            second = await append_many_more(harness.store, streams=4, start=5, count=2)
            second |= await append_many(harness.store, streams=2, per_stream=2, prefix="after")
            late = harness.consumer("late")  # a new group: sees only what the broker holds now
            harness.start(late.run)
            everything = first | second
            await wait_until(lambda: _count_is(harness, consumer, len(everything)), 60,
                             what="old consumer converged")
            await wait_until(lambda: _count_is(harness, late, len(everything)), 60,
                             what="late consumer saw the republished history")
            assert_exactly_once_in_stream_order(await harness.applied(consumer), everything)
            assert_exactly_once_in_stream_order(await harness.applied(late), everything)
            assert relay._state is not None and relay._state.republished >= 1
        finally:
            await harness.close()


async def test_only_one_relay_publishes_and_another_takes_over(harness: Harness) -> None:
    from libs.messaging.lease import lease_for

    first_lease = lease_for(harness.db, "relay:takeover", ttl=1.0)
    second_lease = lease_for(harness.db, "relay:takeover", ttl=1.0)
    assert await first_lease.acquire()
    assert not await second_lease.acquire()

    second = harness.relay(name="takeover", lease=second_lease)
    harness.start(second.run)
    ids = await append_many(harness.store, streams=2, per_stream=3)
    await asyncio.sleep(0.5)
    assert second.published_total == 0  # it waits while the first holds the lease

    await first_lease.release()  # the holder dies (PostgreSQL: its connection closes)
    await wait_until(lambda: _published(second, len(ids)), what="second relay took over")


async def _published(relay: Relay, n: int) -> bool:
    return relay.published_total >= n


async def test_events_without_a_handler_are_ignored_not_dead_lettered(harness: Harness) -> None:
    from dataclasses import replace

    [stored] = await harness.store.append("x", "counter", 0,
                                          [CounterIncremented(amount_minor=1)], META)
    consumer = harness.consumer()
    outcome = await consumer.handle(replace(stored, event_type="test.SomethingElse"))
    assert outcome.value == "ignored"
    assert await harness.applied(consumer) == []
    async with harness.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(dead_letters))).scalar() == 0


@pytest.mark.parametrize("garbage", [b"[]", b"null", b"1", b'{"event_id": 5}', b"\xff\xfe"])
async def test_a_malformed_message_is_dead_lettered_and_the_consumer_goes_on(
    harness: Harness, garbage: bytes
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=harness.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(harness.topic, value=garbage, key=b"c-0")
    finally:
        await producer.stop()
    consumer = harness.consumer()
    harness.start(consumer.run)
    harness.start(harness.relay().run)
    expected = await append_many(harness.store, streams=1, per_stream=2)
    await wait_until(lambda: _count_is(harness, consumer, len(expected)), what="valid events applied")
    assert consumer.outcomes[Outcome.DEAD] == 1
    assert await count_messages(harness.bootstrap, f"{harness.topic}.dlq") == 1


async def test_transient_failures_are_retried_until_they_pass_never_dead_lettered(
    harness: Harness,
) -> None:
    from libs.store.errors import ConcurrencyError

    [stored] = await harness.store.append("t", "counter", 0, [CounterIncremented(amount_minor=1)],
                                          META)
    failures = iter([ConcurrencyError("t", 1), ConcurrencyError("t", 1), OSError("db away")])

    async def flaky(delivery: Delivery) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    consumer = harness.consumer()
    consumer.handlers[CounterIncremented.TYPE] = flaky
    consumer.settings = ConsumerSettings(max_attempts=1, retry_backoff=0.001)
    assert await consumer.handle(stored) is Outcome.APPLIED
    async with harness.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(dead_letters))).scalar() == 0


async def test_an_event_ahead_of_its_stream_is_held_and_applied_after_the_one_before(
    harness: Harness,
) -> None:
    """The order guard: v2 seen before v1 is held, and applied right after v1."""
    first, second = await harness.store.append(
        "o", "counter", 0, [CounterIncremented(amount_minor=1), CounterIncremented(amount_minor=2)],
        META)
    consumer = harness.consumer()
    assert await consumer.handle(second) is Outcome.HELD
    assert await consumer.handle(first) is Outcome.APPLIED
    assert [a[2] for a in await harness.applied(consumer)] == [1, 2]
    assert await consumer.handle(second) is Outcome.DUPLICATE
    assert await consumer.handle(first) is Outcome.DUPLICATE
    assert [a[2] for a in await harness.applied(consumer)] == [1, 2]
    assert await _held_count_is(harness, 0)
