"""The relay wakes on commit instead of polling hard (libs.store.commits).

The relays here would read the store only once a minute on their own (fallback poll,
heartbeat and lease renewal all set to 60 s), so each event below reaches the broker
within the test's wait only if its commit woke the relay.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import event

from libs.messaging.relay import Relay, RelaySettings
from libs.store.commits import channel_for, listener_name
from libs.store.database import Database
from libs.store.store import EventStore
from tests.conftest import PG_URL, wait_until
from tests.libs.sample_events import CounterIncremented
from tests.libs.test_relay_consumer import META, Harness, count_messages
from tests.libs.test_relay_consumer import harness as harness  # the fixture
from tests.libs.test_relay_consumer import pg_harness as pg_harness  # the fixture

SLEEPY = RelaySettings(poll_interval=60, heartbeat_interval=60, lease_renew_interval=60,
                       broker_check_interval=60)


async def _sleepy(harness: Harness) -> Relay:
    """A running relay that has published what there was and gone idle."""
    relay = Relay(harness.store, topic=harness.topic, kafka=harness.bootstrap,
                  settings=SLEEPY)
    harness.start(relay.run)
    await wait_until(lambda: _true(relay.heartbeats >= 1), what="the relay to go idle")
    return relay


@pytest.fixture
async def sleepy(harness: Harness) -> Relay:
    return await _sleepy(harness)


@pytest.fixture
async def pg_sleepy(pg_harness: Harness) -> Relay:
    return await _sleepy(pg_harness)


async def _true(value: bool) -> bool:
    return value


async def _published(harness: Harness, relay: Relay, n: int) -> bool:
    return relay.published_total >= n


async def test_a_commit_in_the_relays_process_wakes_it(harness: Harness, sleepy: Relay) -> None:
    for n in range(3):
        async with harness.db.transaction() as conn:
            await harness.store.append(f"c-{n}", "counter", 0,
                                       [CounterIncremented(amount_minor=n)], META, conn=conn)
        await wait_until(lambda n=n: _published(harness, sleepy, n + 1),  # type: ignore[misc]
                         what=f"event {n} published")
    assert await count_messages(harness.bootstrap, harness.topic) == 3


async def test_a_rolled_back_append_signals_nothing(harness: Harness) -> None:
    commits = harness.db.commits
    before = commits.count
    with pytest.raises(RuntimeError):
        async with harness.db.transaction() as conn:
            await harness.store.append("c-1", "counter", 0, [CounterIncremented(amount_minor=1)],
                                       META, conn=conn)
            raise RuntimeError("effect failed")
    async with harness.db.transaction():
        pass  # a transaction that appends nothing
    assert commits.count == before
    await harness.store.append("c-1", "counter", 0, [CounterIncremented(amount_minor=1)], META)
    assert commits.count == before + 1


@pytest.mark.postgres
async def test_a_commit_in_another_process_wakes_it_by_notify(
    pg_harness: Harness, pg_sleepy: Relay
) -> None:
    """LISTEN/NOTIFY is PostgreSQL's; on SQLite other processes' writes are polled."""
    harness, sleepy = pg_harness, pg_sleepy
    other = Database(PG_URL, schema=harness.db.schema)  # another process's connections
    try:
        store = EventStore(other)
        for n in range(3):
            await store.append(f"c-{n}", "counter", 0, [CounterIncremented(amount_minor=n)],
                               META)
            await wait_until(lambda n=n: _published(harness, sleepy, n + 1),  # type: ignore[misc]
                             what=f"event {n} published")
        # The listener's connection is cut: the relay connects again and keeps listening.
        admin = await asyncpg.connect(PG_URL)
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1", listener_name(channel_for(harness.db.schema)))
        finally:
            await admin.close()
        assert cut == 1
        await asyncio.sleep(0)
        await store.append("c-9", "counter", 0, [CounterIncremented(amount_minor=9)], META)
        await wait_until(lambda: _published(harness, sleepy, 4), what="published after the cut")
    finally:
        await other.dispose()


@pytest.mark.postgres
async def test_writers_beside_a_leading_relay_do_not_notify(pg_harness: Harness) -> None:
    """NOTIFY serialises commits, so it is sent only when the relay runs elsewhere."""
    harness = pg_harness
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(harness.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await harness.store.append("c-1", "counter", 0, [CounterIncremented(amount_minor=1)], META)
        assert sum("pg_notify" in s for s in statements) == 1
        harness.db.commits.relays_leading += 1  # as a relay does while it leads
        try:
            await harness.store.append("c-2", "counter", 0, [CounterIncremented(amount_minor=2)],
                                       META)
        finally:
            harness.db.commits.relays_leading -= 1
        assert sum("pg_notify" in s for s in statements) == 1
    finally:
        event.remove(harness.db.engine.sync_engine, "before_cursor_execute", seen)


@pytest.mark.postgres
async def test_a_published_batch_is_read_and_recorded_on_the_driver_in_one_statement_each(
        pg_harness: Harness) -> None:
    """Every relay of every service records each batch it publishes: on PostgreSQL its seals,
    state and offsets go in one statement (one round trip), not a transaction of three."""
    harness = pg_harness
    for n in range(1, 4):
        await harness.store.append(f"c-{n}", "counter", 0, [CounterIncremented(amount_minor=n)], META)
    relay = harness.relay()
    await relay.start()
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(harness.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        published = 0
        for _ in range(100):
            published += await relay.publish_batch()
            if published == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        event.remove(harness.db.engine.sync_engine, "before_cursor_execute", seen)
        await relay.stop()
    assert published == 3
    assert statements == []  # nothing through SQLAlchemy: read and record went to the driver
    state = await harness.relay()._load_state()  # what a restarted relay resumes from
    assert (state.published, state.sealed, state.sealed_seq) == (relay._state.published,  # type: ignore[union-attr]
                                                                 relay._state.sealed, 3)  # type: ignore[union-attr]
    assert state.next_offsets == relay._state.next_offsets  # type: ignore[union-attr]
    assert sum(state.next_offsets.values()) == 3
