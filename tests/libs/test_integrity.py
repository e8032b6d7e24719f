"""verify(): an edited or removed stored event is found, and named by its position."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from libs.events.base import EventMetadata
from libs.store.database import Database
from libs.store.integrity import verify
from libs.store.schema import events
from libs.store.store import EventStore
from tests.forgery import seal_everything
from tests.libs.sample_events import CounterIncremented

META = EventMetadata(actor="test")


@pytest.fixture
async def sealed_store(db: Database, broker_bootstrap: str) -> EventStore:
    """Three streams of four events, all published and sealed by the relay."""
    store = EventStore(db)
    for version in range(4):
        for stream in ("a", "b", "c"):
            await store.append(stream, "counter", version,
                               [CounterIncremented(amount_minor=version)], META)
    await seal_everything(store, broker_bootstrap)
    return store


async def _position(store: EventStore, stream: str, version: int) -> int:
    [event] = [e for e in await store.load(stream) if e.stream_version == version]
    assert event.position is not None
    return event.position


async def test_untouched_store_verifies(sealed_store: EventStore) -> None:
    report = await verify(sealed_store.db)
    assert report.ok
    assert report.checked == 12 and report.sealed == 12
    assert report.first_bad is None


async def test_edited_payload_is_named(sealed_store: EventStore) -> None:
    bad = await _position(sealed_store, "b", 2)
    async with sealed_store.db.transaction() as conn:
        await conn.execute(update(events).where(events.c.position == bad)
                           .values(data='{"amount_minor":1000000,"poison":false}'))
    report = await verify(sealed_store.db)
    assert not report.ok
    assert report.first_bad == bad
    assert {p.kind for p in report.problems if p.position == bad} == {"altered"}


async def test_edit_with_recomputed_stream_chain_is_still_found_by_the_seal(
    sealed_store: EventStore,
) -> None:
    """A forger who rewrites a stream's hashes consistently still breaks the global seal."""
    stream = await sealed_store.load("c")
    forged = [e.__class__(**{**{f: getattr(e, f) for f in e.__slots__}, "data":  # type: ignore[attr-defined]
                             '{"amount_minor":7,"poison":false}'}) for e in stream]
    previous = "0" * 64
    async with sealed_store.db.transaction() as conn:
        for envelope in forged:
            previous = envelope.chained_hash(previous)
            await conn.execute(update(events).where(events.c.position == envelope.position)
                               .values(data=envelope.data, stream_hash=previous))
    report = await verify(sealed_store.db)
    assert report.first_bad == stream[0].position


@pytest.mark.parametrize("version", [2, 4], ids=["middle-of-stream", "last-of-stream"])
async def test_deleted_event_is_named(sealed_store: EventStore, version: int) -> None:
    gone = await _position(sealed_store, "a", version)
    async with sealed_store.db.transaction() as conn:
        await conn.execute(delete(events).where(events.c.position == gone))
    report = await verify(sealed_store.db)
    assert not report.ok
    assert report.first_bad == gone
    assert "removed" in {p.kind for p in report.problems}
