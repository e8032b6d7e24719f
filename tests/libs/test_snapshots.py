"""Snapshots are only a cache: a load with them equals the fold from the first event, on both databases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select, update

from libs.events.base import DomainEvent, EventMetadata
from libs.runtime.aggregate import load
from libs.runtime.persistent import PMap
from libs.store.schema import snapshots as snapshots_table
from libs.store.snapshots import SnapshotPolicy, save_if_due
from libs.store.store import EventStore
from tests.libs.sample_events import CounterIncremented, registry

META = EventMetadata(actor="test")
STREAM = "counter-1"


@dataclass(frozen=True)
class Counter:
    total: int = 0
    seen: int = 0


folded: list[DomainEvent] = []


def evolve(state: Counter, event: DomainEvent) -> Counter:
    assert isinstance(event, CounterIncremented)
    folded.append(event)
    return Counter(state.total + event.amount_minor, state.seen + 1)


def policy(shape: str = "counter/1", every: int = 3, remembered: int = 16) -> SnapshotPolicy[Counter]:
    return SnapshotPolicy(shape, [CounterIncremented], lambda c: {"total": c.total, "seen": c.seen},
                          lambda body: Counter(**body), every=every, remembered=remembered)


async def _command(store: EventStore, snapshots: SnapshotPolicy[Counter], amounts: list[int]) -> None:
    """What a command does: load, append at the loaded version, snapshot if due, in one transaction."""
    async with store.db.transaction() as conn:
        state, version = await load(conn, store, registry, STREAM, Counter(), evolve, snapshots=snapshots)
        events = [CounterIncremented(amount_minor=a) for a in amounts]
        await store.append(STREAM, "counter", version, events, META, conn=conn)
        for event in events:
            state = evolve(state, event)
        await save_if_due(conn, STREAM, state, version + len(events), snapshots)


async def _load(store: EventStore, snapshots: SnapshotPolicy[Counter] | None) -> tuple[Counter, int]:
    async with store.db.read() as conn:
        return await load(conn, store, registry, STREAM, Counter(), evolve, snapshots=snapshots)


async def _snapshot_rows(store: EventStore) -> list[Any]:
    async with store.db.read() as conn:
        query = select(snapshots_table.c.stream_id, snapshots_table.c.version)
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def test_a_load_from_a_snapshot_folds_only_the_events_after_it(store: EventStore) -> None:
    snapshots = policy(remembered=0)
    for amounts in ([1], [2, 3], [4], [5], [6, 7], [8]):
        await _command(store, snapshots, amounts)

    assert await _snapshot_rows(store) == [(STREAM, 7)]  # at 1 (first), 4 (+3), 7 (+3); 8 is +1
    folded.clear()
    assert await _load(store, snapshots) == (Counter(36, 8), 8)
    assert [e.amount_minor for e in folded] == [8]  # type: ignore[attr-defined]
    assert await _load(store, None) == (Counter(36, 8), 8)


async def test_deleting_every_snapshot_changes_no_answer(store: EventStore) -> None:
    snapshots = policy(remembered=0)
    for n in range(1, 12):
        await _command(store, snapshots, [n])
    with_snapshots = await _load(store, snapshots)
    async with store.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))

    assert await _load(store, snapshots) == with_snapshots == (Counter(66, 11), 11)
    await _command(store, snapshots, [100])  # the next command takes one again
    assert await _snapshot_rows(store) == [(STREAM, 12)]


async def test_a_snapshot_of_another_shape_or_event_schema_is_ignored_and_replaced(store: EventStore) -> None:
    await _command(store, policy("counter/1", remembered=0), [1, 2])
    async with store.db.transaction() as conn:  # what an older shape wrote: nonsense to today's code
        await conn.execute(update(snapshots_table).values(state='{"total": 1000000, "seen": -5}'))

    newer = policy("counter/2", remembered=0)
    assert newer.fingerprint != policy("counter/1").fingerprint
    assert await _load(store, newer) == (Counter(3, 2), 2)

    class CounterIncrementedV2(CounterIncremented):
        VERSION = 2

    other_schema = SnapshotPolicy("counter/1", [CounterIncrementedV2], lambda c: {}, lambda b: Counter(),
                                  every=3)
    assert other_schema.fingerprint != policy("counter/1").fingerprint

    await _command(store, newer, [3])  # a stale snapshot is replaced at once, not after `every` events
    async with store.db.read() as conn:
        row = (await conn.execute(select(snapshots_table.c.version, snapshots_table.c.fingerprint))).one()
    assert tuple(row) == (3, newer.fingerprint)


async def test_a_remembered_state_is_used_only_while_its_version_still_holds_the_same_event(
    store: EventStore,
) -> None:
    snapshots = policy(every=1000)
    await _command(store, snapshots, [1, 2])
    async with store.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))
    try:  # a transaction loads what it wrote itself, then rolls back
        async with store.db.transaction() as conn:
            await store.append(STREAM, "counter", 2, [CounterIncremented(amount_minor=500)], META, conn=conn)
            assert await load(conn, store, registry, STREAM, Counter(), evolve, snapshots=snapshots) == (
                Counter(503, 3), 3)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert snapshots.remembered(STREAM) is not None
    await store.append(STREAM, "counter", 2, [CounterIncremented(amount_minor=7)], META)

    assert await _load(store, snapshots) == (Counter(10, 3), 3)
    folded.clear()
    assert await _load(store, snapshots) == (Counter(10, 3), 3)
    assert folded == []  # remembered at version 3 with the committed event's hash


async def test_a_growing_state_is_snapshotted_less_often_the_larger_it_is(store: EventStore) -> None:
    snapshots: SnapshotPolicy[Counter] = SnapshotPolicy(
        "counter/1", [CounterIncremented], lambda c: {"total": c.total, "seen": c.seen},
        lambda body: Counter(**body), every=2, remembered=0, size=lambda c: c.seen)
    taken = []
    for n in range(1, 70):
        await _command(store, snapshots, [n])
        taken += [version for _, version in await _snapshot_rows(store) if version not in taken]
    # every 2 events, then at least an eighth of its size (= its version here) after the last
    assert taken == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 26, 29, 33, 37, 42, 47, 53, 60, 68]
    assert await _load(store, snapshots) == await _load(store, None)


async def test_an_append_reads_the_snapshots_version_only_while_the_policy_does_not_know_it(
        store: EventStore) -> None:
    snapshots = policy()
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT version, fingerprint FROM snapshots"):
            reads.append(statement)

    event.listen(store.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for n in range(1, 11):
            await _command(store, snapshots, [n])
    finally:
        event.remove(store.db.engine.sync_engine, "before_cursor_execute", seen)

    assert len(reads) == 1  # the first append's; then the policy knows what it took
    assert await _snapshot_rows(store) == [(STREAM, 10)]  # at 1, 4, 7, 10: as when read each time
    snapshots.forget()  # a memory that lags (another replica took one since) costs nothing wrong
    assert await _load(store, snapshots) == await _load(store, None) == (Counter(55, 10), 10)


async def test_no_snapshot_is_taken_before_any_event(store: EventStore) -> None:
    async with store.db.transaction() as conn:
        assert await save_if_due(conn, STREAM, Counter(), 0, policy()) is False
        assert (await conn.execute(select(func.count()).select_from(snapshots_table))).scalar() == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40), st.integers()), max_size=120))
def test_a_pmap_behaves_as_a_dict_and_never_changes_after_set(steps: list[tuple[bool, int, int]]) -> None:
    pmap: PMap[int, int] = PMap()
    model: dict[int, int] = {}
    for remove, key, value in steps:
        before, frozen = pmap, dict(model)
        if remove:
            pmap, _ = pmap.without(key), model.pop(key, None)
        else:
            pmap, model[key] = pmap.set(key, value), value
        assert dict(before.items()) == frozen
        assert len(pmap) == len(model) and dict(pmap.items()) == model and pmap == model
        assert (key in pmap) == (key in model) and pmap.get(key) == model.get(key)
    assert PMap(model) == pmap
