"""Event store behaviour, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

import pytest
from sqlalchemy import select, text

from libs.events.base import DomainEvent, EventMetadata
from libs.events.registry import EventRegistry
from libs.store.database import Database
from libs.store.errors import ConcurrencyError, IdempotencyConflict
from libs.store.schema import events
from libs.store.store import ORIGIN, EventStore
from tests.conftest import wait_until
from tests.libs.sample_events import CounterIncremented

META = EventMetadata(actor="test")


def bump(amount: int = 1) -> CounterIncremented:
    return CounterIncremented(amount_minor=amount)


async def test_append_assigns_versions_positions_and_chains_hashes(store: EventStore) -> None:
    first = await store.append("counter-1", "counter", 0, [bump(1), bump(2)], META)
    second = await store.append("counter-1", "counter", 2, [bump(3)], META)

    loaded = await store.load("counter-1")
    assert [e.stream_version for e in loaded] == [1, 2, 3]
    assert [e.position for e in loaded] == [e.position for e in [*first, *second]]
    assert loaded[0].position < loaded[1].position < loaded[2].position
    assert loaded[1].chained_hash(loaded[0].stream_hash) == loaded[1].stream_hash
    assert [e.payload()["amount_minor"] for e in loaded] == [1, 2, 3]


async def test_optimistic_concurrency_conflict(store: EventStore) -> None:
    await store.append("counter-1", "counter", 0, [bump()], META)
    await store.append("counter-1", "counter", 1, [bump()], META)

    with pytest.raises(ConcurrencyError):
        await store.append("counter-1", "counter", 1, [bump(99)], META)
    with pytest.raises(ConcurrencyError):
        await store.append("counter-1", "counter", 0, [bump(99)], META)

    loaded = await store.load("counter-1")
    assert [e.payload()["amount_minor"] for e in loaded] == [1, 1]


async def test_concurrent_appenders_to_one_stream_exactly_one_wins(store: EventStore) -> None:
    await store.append("race", "counter", 0, [bump()], META)

    async def attempt(n: int) -> bool:
        try:
            await store.append("race", "counter", 1, [bump(n), bump(n)], META)
        except ConcurrencyError:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(8)))
    assert results.count(True) == 1
    assert [e.stream_version for e in await store.load("race")] == [1, 2, 3]


async def test_reappending_stored_event_ids_is_a_no_op(store: EventStore) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    first = await store.append("counter-1", "counter", 0, [bump(), bump()], META, event_ids=ids)
    again = await store.append("counter-1", "counter", 0, [bump(), bump()], META, event_ids=ids)

    assert [e.position for e in again] == [e.position for e in first]
    assert len(await store.load("counter-1")) == 2
    with pytest.raises(IdempotencyConflict):
        await store.append("counter-1", "counter", 2, [bump(), bump()], META,
                           event_ids=[ids[1], uuid.uuid4()])


async def test_append_joins_the_callers_transaction(store: EventStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.db.transaction() as conn:
            await store.append("counter-1", "counter", 0, [bump()], META, conn=conn)
            raise RuntimeError("effect failed")
    assert await store.load("counter-1") == []


async def test_read_all_pages_in_order(store: EventStore) -> None:
    for n in range(25):
        await store.append(f"s-{n}", "counter", 0, [bump(n)], META)

    async def all_visible() -> bool:
        # On PostgreSQL ``read_all`` stops at the oldest transaction still open anywhere on the
        # server (another suite's, say) until it ends.
        return len((await store.read_all(ORIGIN, limit=100)).events) == 25

    await wait_until(all_visible, what="every append to pass the commit horizon")
    seen, after, pages = [], ORIGIN, 0
    while (page := await store.read_all(after, limit=7)).events:
        seen += page.events
        after, pages = page.last or after, pages + 1
    assert pages == 4
    assert [e.payload()["amount_minor"] for e in seen] == list(range(25))


class CounterIncrementedV2(DomainEvent):
    """Version 2 splits the amount into units and a currency."""

    TYPE: ClassVar[str] = "test.CounterIncremented"
    VERSION: ClassVar[int] = 2
    amount_minor: int
    currency: str
    poison: bool = False


async def test_stored_v1_event_is_read_as_v2_through_an_upcaster(store: EventStore) -> None:
    await store.append("counter-1", "counter", 0, [bump(5)], META)  # written as v1
    registry = EventRegistry(
        [CounterIncrementedV2],
        {("test.CounterIncremented", 1): lambda data: {**data, "currency": "CNY"}},
    )
    [stored] = await store.load("counter-1")
    assert stored.schema_version == 1
    event = registry.decode(stored)
    assert event == CounterIncrementedV2(amount_minor=5, currency="CNY")


async def test_eight_concurrent_writers_and_a_tailing_reader_skip_nothing(db: Database) -> None:
    """Writers commit out of position order on purpose; the reader must still see every event.

    Each writer holds its transaction open for a moment after inserting, so later
    positions commit before earlier ones. A reader that followed positions would
    skip; the commit-safe order may not.
    """
    store = EventStore(db)
    writers, per_writer = 8, 15
    expected: set[uuid.UUID] = set()
    done = asyncio.Event()

    async def writer(w: int) -> None:
        for n in range(per_writer):
            async with db.transaction() as conn:
                [env] = await store.append(f"w{w}-s{n % 3}", "counter", None, [bump(n)], META,
                                           conn=conn)
                expected.add(env.event_id)
                await asyncio.sleep(0.01 * ((w + n) % 3))

    seen: list = []
    naive_skips = 0

    async def tail() -> None:
        nonlocal naive_skips
        after, naive_after = ORIGIN, 0
        while True:
            finished = done.is_set()
            page = await store.read_all(after, limit=50)
            seen.extend(page.events)
            after = page.last or after
            async with db.read() as conn:  # a naive reader, following positions only
                visible = (await conn.execute(
                    select(events.c.position).where(events.c.position > naive_after)
                    .order_by(events.c.position))).scalars().all()
                if visible:
                    missing_below = [p for p in range(naive_after + 1, visible[-1])
                                     if p not in set(visible)]
                    naive_skips += bool(missing_below)
                    naive_after = visible[-1]
            if finished and not page.events and len(seen) >= len(expected):
                return  # (an open transaction anywhere on the server may hold the horizon back)
            if finished and asyncio.get_running_loop().time() > deadline:
                return  # the assertions below say what is missing
            await asyncio.sleep(0.002)

    reader = asyncio.create_task(tail())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    deadline = asyncio.get_running_loop().time() + 10
    done.set()
    await reader

    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert set(ids) == expected, f"{len(expected - set(ids))} events were skipped"
    per_stream: dict[str, list[int]] = {}
    for e in seen:
        per_stream.setdefault(e.stream_id, []).append(e.stream_version)
    assert all(v == sorted(v) for v in per_stream.values()), "stream order broken"
    if db.is_postgres:
        # The scenario really produced out-of-order commits: following positions would skip.
        assert naive_skips > 0


@pytest.mark.parametrize("head_from", ["append", "load"])
async def test_postgres_transaction_that_wrote_before_reading_the_head_is_refused(
    pg_db: Database, head_from: str,
) -> None:
    """Keeps the commit-safe order consistent with each stream's version order, whether the
    append reads the head itself or takes it from the transaction's load (``Head``)."""
    db = pg_db
    store = EventStore(db)
    await store.append("s", "counter", 0, [bump()], META)
    async with db.engine.connect() as early:
        tx = await early.begin()
        await early.execute(text("SELECT pg_current_xact_id()"))  # takes an older id
        await store.append("s", "counter", 1, [bump()], META)  # a newer transaction appends
        head = None
        if head_from == "load":
            _, head = await store.load_tail(early, "s")
            assert head is not None and head.current_tx is not None and head.tx_id is not None
        with pytest.raises(ConcurrencyError):
            await store.append("s", "counter", 2, [bump()], META, conn=early, head=head)
        await tx.rollback()


async def test_a_batch_clashing_on_versions_is_a_concurrency_error_on_every_path(
    store: EventStore,
) -> None:
    """A stale multi-event append is retryable (ConcurrencyError), standalone or in a transaction."""
    await store.append("s", "counter", 0, [bump()], META)
    with pytest.raises(ConcurrencyError):
        await store.append("s", "counter", 0, [bump(), bump()], META)
    with pytest.raises(ConcurrencyError):
        async with store.db.transaction() as conn:
            await store.append("s", "counter", 0, [bump(), bump()], META, conn=conn)
    assert [e.stream_version for e in await store.load("s")] == [1]
