"""A consumer never commits past an event it has not applied (issue 6, finding 1),
drops what it already passed without writing (after a broker loss), and survives
being killed mid-batch.

Real broker, SQLite and PostgreSQL. Events are produced on chosen partitions of a
4-partition topic, as when a broker auto-created a topic with its own partition
count and one stream's versions were split across two partitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import sqlalchemy
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry, generate_latest

from libs.events.base import utc_now
from libs.messaging import consumer as consumer_module
from libs.messaging import held
from libs.messaging.consumer import Outcome
from libs.messaging.kafka import end_offsets
from libs.runtime.metrics import ServiceMetrics
from libs.store.database import Database
from tests.conftest import wait_until
from tests.libs.consumer_support import (
    commit_past_everything,
    committed_offsets,
    harness_on,
    held_of,
    ignored,
    produce,
    quick_gaps,
    record_of,
    stream_of,
)
from tests.libs.sample_events import CounterIncremented
from tests.libs.test_relay_consumer import (
    Harness,
    assert_exactly_once_in_stream_order,
)

PARTITIONS = 4


@pytest.fixture
async def four(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    """A harness whose topic has 4 partitions (the consumers agreed on 3)."""
    async with harness_on(db, broker_bootstrap, PARTITIONS) as harness:
        yield harness


async def test_a_stream_split_across_two_partitions_is_applied_once_in_order(four: Harness) -> None:
    split = await stream_of(four.db, "acct-1", 12)
    other = await stream_of(four.db, "acct-2", 3)
    consumer = four.consumer()
    # versions 7..12 on partition 1 arrive first; 1..6 on partition 2 come later
    await produce(four.bootstrap, four.topic, split[6:], partition=1)
    await produce(four.bootstrap, four.topic, other, partition=3)
    four.start(consumer.run)
    await wait_until(lambda: _held_is(four, consumer.name, 6), what="versions 7..12 held")
    await wait_until(lambda: _applied_is(four, consumer, 3), what="the other stream applied")

    await produce(four.bootstrap, four.topic, split[:6], partition=2)
    expected = {e.event_id for e in split + other}
    await wait_until(lambda: _applied_is(four, consumer, len(expected)), what="everything applied")
    assert_exactly_once_in_stream_order(await four.applied(consumer), expected)
    # the last spent row goes in the release step after the last effect's commit
    await wait_until(lambda: _held_is(four, consumer.name, 0), what="spent held rows deleted")
    ends = await end_offsets(four.bootstrap, four.topic)

    async def all_committed() -> bool:
        committed = await committed_offsets(four.bootstrap, consumer.name, four.topic)
        return all(committed[p] == end for p, end in ends.items() if end)

    await wait_until(all_committed, what="offsets committed on every partition")


async def test_a_gap_the_group_committed_past_is_healed_from_the_topic(four: Harness) -> None:
    """v2 is on the topic, behind the group's committed offset (the old consumer skipped it)."""
    v1, v2, v3, v4 = await stream_of(four.db, "acct-9", 4)
    consumer = quick_gaps(four.consumer())
    await produce(four.bootstrap, four.topic, [v2], partition=2)
    await commit_past_everything(four.bootstrap, consumer.name, four.topic, partition=2)
    await produce(four.bootstrap, four.topic, [v1], partition=0)
    await produce(four.bootstrap, four.topic, [v3, v4], partition=1)
    four.start(consumer.run)

    await wait_until(lambda: _applied_is(four, consumer, 4), what="the gap healed")
    assert_exactly_once_in_stream_order(await four.applied(consumer),
                                        {e.event_id for e in (v1, v2, v3, v4)})
    assert consumer.gap_alarms == 0
    # the last spent row goes in the release step after the last effect's commit
    await wait_until(lambda: _held_is(four, consumer.name, 0), what="spent held rows deleted")


async def test_a_gap_that_never_heals_parks_its_stream_with_an_alarm_others_flow(
    four: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    v1, v2, v3, v4 = await stream_of(four.db, "acct-gap", 4)
    healthy = await stream_of(four.db, "acct-ok", 3)
    consumer = quick_gaps(four.consumer())
    await produce(four.bootstrap, four.topic, [v1, v3, v4], partition=0)  # v2 was never published
    four.start(consumer.run)
    await produce(four.bootstrap, four.topic, healthy, partition=1)

    with caplog.at_level(logging.ERROR, logger="libs.messaging.consumer"):
        await wait_until(lambda: _true(consumer.parked_streams == 1), what="the stream parked")
    assert consumer.gap_alarms == 1
    alarm = [r.getMessage() for r in caplog.records if "parked" in r.getMessage()]
    assert len(alarm) == 1
    assert consumer.name in alarm[0] and "acct-gap" in alarm[0] and "versions 2-2" in alarm[0]
    held = await held_of(four.db, consumer.name)
    assert set(held) == {("acct-gap", 3), ("acct-gap", 4)}
    assert all(parked is not None for parked in held.values())
    await wait_until(lambda: _applied_is(four, consumer, 4), what="v1 and the other stream")
    assert {a[1] for a in await four.applied(consumer)} == {"acct-gap", "acct-ok"}
    metrics = CollectorRegistry()
    metrics.register(ServiceMetrics(service="test", consumer=consumer, store=None, db=four.db,
                                    relay=None))
    exposed = generate_latest(metrics).decode()
    assert f'o2c_consumer_gap_alarms_total{{consumer="{consumer.name}"}} 1.0' in exposed
    assert f'o2c_consumer_parked_streams{{consumer="{consumer.name}"}} 1.0' in exposed

    # the missing event turns up (republished): the parked stream goes on, the alarm clears
    await produce(four.bootstrap, four.topic, [v2], partition=3)
    expected = {e.event_id for e in [v1, v2, v3, v4, *healthy]}
    await wait_until(lambda: _applied_is(four, consumer, len(expected)), what="the stream resumed")
    assert_exactly_once_in_stream_order(await four.applied(consumer), expected)
    await wait_until(lambda: _true(consumer.parked_streams == 0), what="the alarm cleared")
    assert await held_of(four.db, consumer.name) == {}


async def test_a_parked_gap_is_healed_by_a_redrive_once_the_event_is_on_the_topic(
    four: Harness,
) -> None:
    v1, v2, v3 = await stream_of(four.db, "acct-late", 3)
    consumer = quick_gaps(four.consumer())
    await produce(four.bootstrap, four.topic, [v1, v3], partition=0)
    four.start(consumer.run)
    await wait_until(lambda: _true(consumer.gap_alarms == 1), what="the stream parked")

    four.stops[-1].set()  # the consumer stops polling: only a healing can bring v2 now
    await asyncio.gather(*four.tasks)
    await produce(four.bootstrap, four.topic, [v2], partition=2)
    report = await consumer.redrive()
    assert report.healed_streams == 1
    assert_exactly_once_in_stream_order(await four.applied(consumer),
                                        {v1.event_id, v2.event_id, v3.event_id})


async def test_after_a_broker_loss_already_passed_events_go_without_write_transactions(
    four: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole history read again (offsets lost, everything republished): applied,
    ignored, dead-lettered and held events are all dropped with one read per batch."""
    applied = await stream_of(four.db, "acct-a", 5)
    not_wanted = [ignored(e) for e in await stream_of(four.db, "acct-i", 3)]
    poisoned = await stream_of(four.db, "acct-p", 2, poison_at=1)
    v1, _, v3 = await stream_of(four.db, "acct-h", 3)
    history = [*applied, *not_wanted, *poisoned, v1, v3]
    consumer = four.consumer()
    await produce(four.bootstrap, four.topic, history, partition=0)
    four.start(consumer.run)
    await wait_until(lambda: _applied_is(four, consumer, 6), what="the first reading")
    await wait_until(lambda: _held_is(four, consumer.name, 2), what="held events")
    assert consumer.outcomes[Outcome.IGNORED] == 3 and consumer.outcomes[Outcome.DEAD] == 1

    writes = 0
    real_transaction = four.db.transaction

    def counted():  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += 1
        return real_transaction()

    monkeypatch.setattr(four.db, "transaction", counted)
    before = consumer.outcomes.copy()
    await produce(four.bootstrap, four.topic, history, partition=1)  # republished, offsets reset
    seen_again = len(history)

    async def all_seen_again() -> bool:
        repeats = (consumer.outcomes[Outcome.DUPLICATE] - before[Outcome.DUPLICATE]
                   + consumer.outcomes[Outcome.HELD] - before[Outcome.HELD])
        return repeats >= seen_again

    await wait_until(all_seen_again, what="the history read again")
    assert writes == 0
    assert consumer.outcomes[Outcome.HELD] - before[Outcome.HELD] == 2  # acct-p v2 and acct-h v3
    assert len(await four.applied(consumer)) == 6


async def _applied_is(harness: Harness, consumer, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await harness.applied(consumer)) >= n


async def _held_is(harness: Harness, consumer: str, n: int) -> bool:
    return len(await held_of(harness.db, consumer)) == n


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value


async def test_a_consumer_killed_mid_batch_neither_loses_nor_doubles_an_effect(
    four: Harness,
) -> None:
    """30 events in batches of 10, one transaction each. The consumer dies inside the second
    batch, after two of its effects were written: the first batch stays, the second is gone
    whole (effects, inbox rows, heads), and a restarted consumer applies each event once."""
    history = [e for s in range(3) for e in await stream_of(four.db, f"acct-k{s}", 10)]
    await produce(four.bootstrap, four.topic, history, partition=0)
    killed = four.consumer()
    killed.settings = replace(killed.settings, batch_events=10)
    apply, calls = killed.handlers[CounterIncremented.TYPE], 0

    async def stalls_on_the_thirteenth(delivery):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        await apply(delivery)
        if calls == 13:  # its effect is written, its transaction never ends: the process dies
            await asyncio.Event().wait()

    killed.handlers[CounterIncremented.TYPE] = stalls_on_the_thirteenth
    four.start(killed.run)
    await wait_until(lambda: _true(calls == 13), what="the kill point")
    four.tasks[-1].cancel()
    stopped, _ = await asyncio.wait({four.tasks[-1]}, timeout=30)
    assert stopped, "the killed consumer did not stop within 30 s of its cancellation"
    assert len(await four.applied(killed)) == 10  # the first batch, nothing of the second
    assert await committed_offsets(four.bootstrap, killed.name, four.topic) == dict.fromkeys(
        range(PARTITIONS), -1)  # the poll's offsets wait for all its batches

    restarted = four.consumer()
    four.start(restarted.run)
    expected = {e.event_id for e in history}
    await wait_until(lambda: _applied_is(four, restarted, len(expected)), what="all applied")
    assert_exactly_once_in_stream_order(await four.applied(restarted), expected)
    assert restarted.outcomes[Outcome.DUPLICATE] == 10 and restarted.outcomes[Outcome.APPLIED] == 20


async def test_a_consumer_that_dies_between_its_commit_and_the_offsets_applies_nothing_twice(
    four: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch's transaction committed, then the offset commit fails (the process dies
    there, or the broker goes): the poll is read again and dropped by the guard, its
    unhandled events too, with one read and no write transaction."""
    history = [e for s in range(2) for e in await stream_of(four.db, f"acct-c{s}", 5)]
    history += [ignored(e) for e in await stream_of(four.db, "acct-other", 3)]
    await produce(four.bootstrap, four.topic, history, partition=0)
    failures = [KafkaConnectionError("the process died before committing its offsets")]

    class DiesBeforeItsOffsets(consumer_module.AIOKafkaConsumer):  # type: ignore[misc,name-defined]
        async def commit(self, offsets=None):  # type: ignore[no-untyped-def]
            if failures:
                raise failures.pop()
            return await super().commit(offsets)

    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", DiesBeforeItsOffsets)
    consumer = four.consumer()
    four.start(consumer.run)
    expected = {e.event_id for e in history[:10]}
    await wait_until(lambda: _applied_is(four, consumer, len(expected)), what="all applied")
    await wait_until(lambda: _true(consumer.outcomes[Outcome.DUPLICATE] >= len(history)),
                     what="the poll read again")
    assert not failures, "the failure never happened"
    assert_exactly_once_in_stream_order(await four.applied(consumer), expected)
    assert consumer.outcomes[Outcome.APPLIED] == 10 and consumer.outcomes[Outcome.IGNORED] == 3


async def test_an_idle_tending_round_is_one_read_and_no_write(
    four: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tending runs every second in every service: with held events that cannot go on
    yet (a gap inside its bound), one round reads once and writes nothing."""
    _, _, v3 = await stream_of(four.db, "acct-t", 3)
    consumer = four.consumer()
    await consumer.handle(v3)  # held: v1 and v2 have not come
    calls = {"read": 0, "transaction": 0}
    for name in calls:
        real = getattr(four.db, name)

        def counted(real=real, name=name):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return real()

        monkeypatch.setattr(four.db, name, counted)
    await consumer.tend_once()
    assert calls == {"read": 1, "transaction": 0}
    assert consumer.parked_streams == 0
    assert await held_of(four.db, consumer.name) == {("acct-t", 3): None}


async def test_when_a_parked_gap_fills_the_next_gap_waits_its_own_bound(four: Harness) -> None:
    """v2 and v4 missing, v3 and v5 held, the stream parked on v2. When v2 comes, v3 is
    applied and the stream now waits for v4: a new gap, not parked (and not yet healed
    or alarmed) until it has waited its own bound."""
    v1, v2, v3, _, v5 = await stream_of(four.db, "acct-2gaps", 5)
    consumer = four.consumer()
    for event in (v1, v3, v5):
        await consumer.handle(event)
    async with four.db.transaction() as conn:
        await held.park(conn, consumer.name, "acct-2gaps")
    await consumer.tend_once()
    assert consumer.parked_streams == 1
    await consumer.handle(v2)
    assert await held_of(four.db, consumer.name) == {("acct-2gaps", 5): None}
    await consumer.tend_once()
    assert consumer.parked_streams == 0
    [waiting] = await _waiting(four, consumer.name)
    assert waiting.missing == range(4, 5) and waiting.waited(utc_now()) < 5
    assert [a[2] for a in await four.applied(consumer)] == [1, 2, 3]


async def _waiting(harness: Harness, consumer: str) -> list[held.WaitingStream]:
    async with harness.db.read() as conn:
        return await held.waiting_streams(conn, consumer)


async def test_an_event_in_order_costs_one_guard_read_beside_its_effect(four: Harness) -> None:
    """The hot path: every consumed event. The order guard (head, inbox, dead letter before
    it) is one read; then the effect, the inbox row and the head: four statements (besides
    transaction control: BEGIN, COMMIT, and on SQLite the savepoint of a group commit)."""
    v1, v2 = await stream_of(four.db, "acct-hot", 2)
    consumer = four.consumer()
    await consumer.handle(v1)
    statements: list[str] = []

    def record(_conn, _cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "PRAGMA", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    engine = four.db.engine.sync_engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        assert await consumer.handle(v2) is Outcome.APPLIED
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 4, statements
    assert [a[2] for a in await four.applied(consumer)] == [1, 2]


async def test_a_batch_costs_one_guard_read_its_effects_and_three_bulk_writes(
    four: Harness,
) -> None:
    """The order guard is read once per batch, not per event; inbox rows and heads are
    written in bulk; events no handler wants cost no statement of their own."""
    wanted = [*await stream_of(four.db, "acct-b1", 3), *await stream_of(four.db, "acct-b2", 2)]
    unwanted = [ignored(e) for e in await stream_of(four.db, "acct-b3", 2)]
    _, v2 = await stream_of(four.db, "acct-b4", 2)  # ahead of its stream: held
    records = [record_of(four.topic, offset, envelope)
               for offset, envelope in enumerate([*wanted, *unwanted, v2])]
    consumer = four.consumer()
    statements: list[str] = []

    def record(_conn, _cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "PRAGMA", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    engines = {four.db.engine.sync_engine, four.db.reader.sync_engine}
    for engine in engines:
        sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        await consumer.apply_records(records)
    finally:
        for engine in engines:
            sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    # the guard, 5 effects, the held row, the inbox rows, the heads; on PostgreSQL the inbox
    # rows ride with the heads (a deferrable write, libs.store.sql.Statement): one round trip
    if four.db.is_postgres:
        assert len(statements) == 1 + 5 + 2, statements
        assert statements[-1].startswith("WITH o2c_deferred AS (INSERT INTO inbox"), statements[-1]
    else:
        assert len(statements) == 1 + 5 + 3, statements
    assert consumer.outcomes[Outcome.APPLIED] == 5 and consumer.outcomes[Outcome.IGNORED] == 2
    assert await held_of(four.db, consumer.name) == {("acct-b4", 2): None}
    assert_exactly_once_in_stream_order(await four.applied(consumer),
                                        {e.event_id for e in wanted})
    await consumer.apply_records(records)  # read again: all dropped
    assert consumer.outcomes[Outcome.DUPLICATE] == 7 and consumer.outcomes[Outcome.HELD] == 2
