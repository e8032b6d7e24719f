"""An aggregate that declares its document (``Aggregate.document``) reads it with its events
(both databases): the load's one statement reads both, and the save's ``project`` hook
starts from it instead of reading it again (``Unit.document_before``).

- the store answers the document beside the same events a plain load answers;
- a save after such a load sends no read of the document, and writes the document a hook that
  reads it writes, from the stored snapshot, from the state remembered in the process, and
  from the first event;
- in a consumer batch, a load carries the document the reaction before it wrote (PostgreSQL:
  the write was held back for the next statement), so the document costs no round trip at all;
- a change committed between the load and the save is never folded over: on PostgreSQL the
  save clashes on the version and the command runs again from a fresh load, document included
  (SQLite has one writer at a time).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

from libs.events.base import DomainEvent, EventMetadata
from libs.events.codec import parse_json
from libs.events.orders import PriceListPublished
from libs.messaging.inbox import Delivery
from libs.messaging.work import BatchWork
from libs.runtime import commands, documents
from libs.runtime.commands import Aggregate, Unit, folded_document
from libs.store.database import Database
from libs.store.snapshots import SnapshotPolicy
from libs.store.store import EventStore
from services.partners.app import SPEC as PARTNERS
from tests.libs.sample_events import CounterIncremented
from tests.service_support import RunningService, Statements, running

META = EventMetadata(actor="test")
KIND = "test-tier"
DOCUMENT_READ = "SELECT body FROM documents WHERE kind = "  # documents.get, on either database


@pytest.fixture
async def partners(db: Database) -> AsyncIterator[RunningService]:
    async with running(PARTNERS, db) as svc:
        yield svc


async def test_the_store_answers_the_document_beside_the_same_events(db: Database) -> None:
    store = EventStore(db)
    await store.append("s", "counter", 0, [CounterIncremented(amount_minor=n) for n in (1, 2, 3)], META)
    async with db.transaction() as conn:
        await documents.put(conn, KIND, "s", {"total": 6})
    async with db.transaction() as conn:
        plain, plain_head = await store.load_tail(conn, "s", after_version=1)
        tail, head = await store.load_tail(conn, "s", after_version=1, document=(KIND, "s"))
        _, no_document = await store.load_tail(conn, "s", document=(KIND, "other"))
        nothing = await store.load_tail(conn, "none", document=(KIND, "s"))
    assert [e.stream_version for e in tail] == [2, 3] and tail == plain
    assert head is not None and plain_head is not None
    assert head.document == '{"total":6}' and plain_head.document is None
    assert (head.version, head.stream_hash) == (plain_head.version, plain_head.stream_hash)
    assert (head.version, head.stream_hash) == (3, tail[-1].stream_hash)
    assert no_document is not None and no_document.document is None
    assert nothing == ([], None)  # no stream: nothing to save after, no document either


@dataclass(frozen=True)
class Tier:
    versions: tuple[int, ...] = ()


def _evolve(state: Tier, event: DomainEvent) -> Tier:
    assert isinstance(event, PriceListPublished)
    return Tier((*state.versions, event.version))


def _fold(doc: dict[str, Any] | None, event: DomainEvent, unit: Unit) -> dict[str, Any]:
    assert isinstance(event, PriceListPublished)
    return {"versions": [*(doc or {}).get("versions", []), event.version], "status": "published"}


def _tiers(*, declared: bool, snapshots: SnapshotPolicy[Tier] | None) -> Aggregate[str, Tier]:
    return Aggregate(stream_type="price-list", stream_id=lambda tier: f"test-document-{tier}",
                     initial=lambda tier: Tier(), evolve=_evolve, project=folded_document(KIND, _fold),
                     document=KIND if declared else None, snapshots=snapshots)


def _published(version: int) -> PriceListPublished:
    return PriceListPublished(tier="A", version=version, effective_from=date(2026, 1, 1),
                              discount_bp=0, overrides=[], currency="CNY")


async def _publish(svc: RunningService, tiers: Aggregate[str, Tier], key: str, version: int
                   ) -> dict[str, Any] | None:
    async def publish(unit: Unit) -> dict[str, Any] | None:
        return (await unit.save(await unit.load(tiers, key), [_published(version)])).document

    return await commands.run(svc.ctx, META, publish)


async def _stored(svc: RunningService, key: str) -> dict[str, Any] | None:
    async with svc.ctx.db.read() as conn:
        return await documents.get(conn, KIND, key)


@pytest.mark.parametrize("snapshots", ["none", "in memory", "stored"])
async def test_a_save_after_the_load_reads_no_document_and_writes_the_same(
        partners: RunningService, snapshots: str) -> None:
    policy = {"none": None, "in memory": SnapshotPolicy.in_memory("test-document/1"),
              "stored": SnapshotPolicy(KIND, [PriceListPublished],  # nothing remembered: from the snapshot
                                       lambda tier: {"versions": list(tier.versions)},
                                       lambda body: Tier(tuple(body["versions"])), every=2,
                                       remembered=0)}[snapshots]
    declared, reading = _tiers(declared=True, snapshots=policy), _tiers(declared=False, snapshots=None)
    key = f"{snapshots.replace(' ', '-')}"
    with Statements(partners.ctx.db) as sent:
        for version in (1, 2, 3, 4, 5):
            written = await _publish(partners, declared, key, version)
    assert sent.having(DOCUMENT_READ) == []
    assert written == await _stored(partners, key) == {"versions": [1, 2, 3, 4, 5], "status": "published"}
    with Statements(partners.ctx.db) as old_way:  # the hook that reads it: the same document
        for version in (1, 2, 3, 4, 5):
            assert await _publish(partners, reading, f"{key}-read", version) is not None
    assert len(old_way.having(DOCUMENT_READ)) == 4
    assert await _stored(partners, f"{key}-read") == written


async def test_in_a_batch_the_next_load_carries_the_document_written_before_it(
        partners: RunningService) -> None:
    ctx, tiers = partners.ctx, _tiers(declared=True, snapshots=SnapshotPolicy.in_memory("test-document/3"))
    keys = ["batch-1", "batch-2", "batch-3"]
    for key in keys:
        await _publish(partners, tiers, key, 1)

    async def publish(unit: Unit, event: Any) -> None:
        loaded = await unit.load(tiers, keys[event.version - 2])
        await unit.save(loaded, [_published(event.version)], salt="tier")

    work = BatchWork()
    with Statements(ctx.db) as sent:
        async with ctx.db.transaction() as conn:
            for version in (2, 3, 4):
                envelope = SimpleNamespace(event_id=uuid.uuid4(), correlation_id=uuid.uuid4())
                delivery = Delivery(conn, envelope, _published(version), "test", work)  # type: ignore[arg-type]
                await commands.react(ctx, publish, delivery)
            await work.finish()
    assert sent.having(DOCUMENT_READ) == []
    if ctx.db.is_postgres:  # each document write rode the next load, the last one the commit's
        alone = [sql for sql in sent.sent if sql.startswith("INSERT INTO documents")]
        assert len(alone) == 1
    for key, version in zip(keys, (2, 3, 4), strict=True):
        assert await _stored(partners, key) == {"versions": [1, version], "status": "published"}


async def test_a_change_between_the_load_and_the_save_is_never_folded_over(
        partners: RunningService) -> None:
    tiers = _tiers(declared=True, snapshots=SnapshotPolicy.in_memory("test-document/2"))
    await _publish(partners, tiers, "race", 1)
    loaded, attempts = asyncio.Event(), 0

    async def slow(unit: Unit) -> dict[str, Any] | None:
        nonlocal attempts
        attempts += 1
        first = await unit.load(tiers, "race")
        if attempts == 1:
            loaded.set()
            await asyncio.sleep(0.3)  # the other command saves version 2 meanwhile
        return (await unit.save(first, [_published(first.version + 10)])).document

    racing = asyncio.create_task(commands.run(partners.ctx, META, slow))
    await loaded.wait()
    await _publish(partners, tiers, "race", 2)
    await racing
    events = await partners.ctx.store.load("test-document-race")
    stream = [parse_json(event.data)["version"] for event in events]
    assert await _stored(partners, "race") == {"versions": stream, "status": "published"}
    if partners.ctx.db.is_postgres:  # SQLite: the second writer waits for the first to commit
        assert stream == [1, 2, 12]
        assert attempts == 2  # the stale load clashed on the version, the second started afresh
