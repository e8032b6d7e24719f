"""Writes the handlers of one consumer batch share (``Delivery.work``) land in the batch's
transaction: all of them or none, never twice.

Real broker, SQLite and PostgreSQL. Each handler here keeps its effect row in the
batch's shared list; the list is written in one bulk insert before the batch commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from libs.messaging.consumer import Consumer, Delivery, Outcome
from libs.store.database import Database
from tests.conftest import wait_until
from tests.libs.consumer_support import committed_offsets, dead_letters_of, harness_on, produce, stream_of
from tests.libs.sample_events import CounterIncremented
from tests.libs.test_relay_consumer import Harness, assert_exactly_once_in_stream_order, effects

PARTITIONS = 4


@pytest.fixture
async def four(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    async with harness_on(db, broker_bootstrap, PARTITIONS) as harness:
        yield harness


def sharing(harness: Harness, *, stall_at: int | None = None) -> tuple[Consumer, list[int]]:
    """A consumer whose effects wait in the batch's shared list (one bulk insert per batch);
    with ``stall_at``, the handler of that call never returns (the process dies there).
    Also answers the sizes of the bulk inserts made."""
    consumer = harness.consumer()
    consumer.settings = replace(consumer.settings, batch_events=10)
    flushed: list[int] = []
    calls = 0

    async def flush(rows: list[dict[str, Any]], conn: Any) -> None:
        flushed.append(len(rows))
        await conn.execute(effects.insert(), rows)

    async def apply(delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        event = delivery.event
        assert isinstance(event, CounterIncremented) and delivery.work is not None
        if event.poison:
            raise ValueError("poison")
        rows = delivery.work.shared("effects", list, flush=lambda rows: flush(rows, delivery.conn))
        rows.append({"consumer": delivery.consumer, "event_id": delivery.envelope.event_id,
                     "stream_id": delivery.envelope.stream_id,
                     "version": delivery.envelope.stream_version})
        if calls == stall_at:
            await asyncio.Event().wait()

    consumer.handlers[CounterIncremented.TYPE] = apply
    return consumer, flushed


async def _applied_is(harness: Harness, consumer: Consumer, n: int) -> bool:
    return len(await harness.applied(consumer)) >= n


async def test_shared_writes_of_a_batch_killed_midway_are_gone_whole_and_applied_once_later(
    four: Harness,
) -> None:
    history = [e for s in range(3) for e in await stream_of(four.db, f"acct-w{s}", 10)]
    await produce(four.bootstrap, four.topic, history, partition=0)
    killed, flushed = sharing(four, stall_at=13)
    four.start(killed.run)
    await wait_until(lambda: _once(flushed == [10]), what="the first batch in one bulk write")
    await asyncio.sleep(0.5)  # the second batch is stalled inside its 3rd handler
    four.tasks[-1].cancel()
    stopped, _ = await asyncio.wait({four.tasks[-1]}, timeout=30)
    assert stopped, "the killed consumer did not stop within 30 s of its cancellation"
    assert len(await four.applied(killed)) == 10  # the first batch, nothing of the second
    assert await committed_offsets(four.bootstrap, killed.name, four.topic) == dict.fromkeys(
        range(PARTITIONS), -1)

    restarted, flushed_again = sharing(four)
    four.start(restarted.run)
    expected = {e.event_id for e in history}
    await wait_until(lambda: _applied_is(four, restarted, len(expected)), what="all applied")
    assert_exactly_once_in_stream_order(await four.applied(restarted), expected)
    assert sum(flushed_again) == 20 and restarted.outcomes[Outcome.APPLIED] == 20


async def test_a_failing_handler_leaves_no_shared_write_of_its_batch_behind(four: Harness) -> None:
    """The poisoned event rolls its batch back (shared writes too); the events before it are
    applied again as a batch, it is dead-lettered alone, the others go on: each effect once."""
    poisoned = await stream_of(four.db, "acct-p", 6, poison_at=4)
    healthy = [e for s in range(2) for e in await stream_of(four.db, f"acct-h{s}", 6)]
    await produce(four.bootstrap, four.topic, poisoned + healthy, partition=0)
    consumer, flushed = sharing(four)
    four.start(consumer.run)
    expected = {e.event_id for e in poisoned[:3] + healthy}
    await wait_until(lambda: _applied_is(four, consumer, len(expected)), what="all but the poison")
    await wait_until(lambda: _dead_is(four, consumer, 1), what="the poison dead-lettered")
    assert_exactly_once_in_stream_order(await four.applied(consumer), expected)
    assert set(await dead_letters_of(four.db, consumer.name)) == {poisoned[3].event_id}
    assert sum(flushed) == len(expected)  # a rolled-back batch wrote nothing that stayed


async def _dead_is(harness: Harness, consumer: Consumer, n: int) -> bool:
    return len(await dead_letters_of(harness.db, consumer.name)) == n


async def _once(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
