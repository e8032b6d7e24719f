"""A save remembers the state it folded (``Unit.save``), for every aggregate with a
``SnapshotPolicy``, an in-memory one included; the memory is only a cache (both databases):

- the next load after a save folds nothing the save already folded;
- a command that fails after its save, and a consumer batch that rolls back, leave the next
  load equal to the fold of the stream from its first event;
- a reaction's event ids are ``uuid5(event id, "consumer:salt:index")``, as they always were
  (they dedupe a redelivery).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

from libs.events.base import DomainEvent, EventMetadata
from libs.events.orders import PriceListPublished
from libs.messaging.inbox import Delivery
from libs.messaging.work import BatchWork
from libs.runtime import commands
from libs.runtime.aggregate import load
from libs.runtime.commands import Aggregate, Unit
from libs.store.database import Database
from libs.store.snapshots import SnapshotPolicy
from services.partners.app import SPEC as PARTNERS
from tests.service_support import RunningService, running

META = EventMetadata(actor="test")


@pytest.fixture
async def partners(db: Database) -> AsyncIterator[RunningService]:
    async with running(PARTNERS, db) as svc:
        yield svc


@dataclass(frozen=True)
class Tier:
    versions: tuple[int, ...] = ()


folded: list[DomainEvent] = []


def _evolve(state: Tier, event: DomainEvent) -> Tier:
    assert isinstance(event, PriceListPublished)
    folded.append(event)
    return Tier((*state.versions, event.version))


def _tiers() -> Aggregate[str, Tier]:
    return Aggregate(stream_type="price-list", stream_id=lambda tier: f"test-remember-{tier}",
                     initial=lambda tier: Tier(), evolve=_evolve,
                     snapshots=SnapshotPolicy.in_memory("test-tier/1"))


def _published(version: int) -> PriceListPublished:
    return PriceListPublished(tier="A", version=version, effective_from=date(2026, 1, 1),
                              discount_bp=0, overrides=[], currency="CNY")


async def _full_fold(svc: RunningService, tiers: Aggregate[str, Tier], key: str) -> tuple[Tier, int]:
    async with svc.ctx.db.read() as conn:
        return await load(conn, svc.ctx.store, svc.ctx.registry, tiers.stream_id(key), Tier(), _evolve)


async def _loaded(svc: RunningService, tiers: Aggregate[str, Tier], key: str) -> tuple[Tier, int]:
    async with svc.ctx.db.read() as conn:
        loaded = await commands.read(svc.ctx, conn, tiers, key)
    return loaded.state, loaded.version


async def _publish(svc: RunningService, tiers: Aggregate[str, Tier], key: str, *versions: int,
                   fail: bool = False) -> None:
    async def publish(unit: Unit) -> None:
        loaded = await unit.load(tiers, key)
        await unit.save(loaded, [_published(v) for v in versions])
        if fail:
            raise RuntimeError("fails after its save")

    await commands.run(svc.ctx, META, publish)


async def test_the_next_load_folds_nothing_the_save_folded(partners: RunningService) -> None:
    tiers = _tiers()
    await _publish(partners, tiers, "A", 1, 2)
    assert tiers.snapshots is not None
    remembered = tiers.snapshots.remembered("test-remember-A")
    assert remembered is not None and (remembered.version, remembered.state) == (2, Tier((1, 2)))
    folded.clear()
    assert await _loaded(partners, tiers, "A") == (Tier((1, 2)), 2)
    assert folded == []
    await _publish(partners, tiers, "A", 3)
    folded.clear()
    after = await _loaded(partners, tiers, "A")
    assert folded == []  # the save of version 3 remembered it too
    assert after == (Tier((1, 2, 3)), 3) == await _full_fold(partners, tiers, "A")


async def test_a_command_failing_after_its_save_is_never_read_back(partners: RunningService) -> None:
    tiers = _tiers()
    await _publish(partners, tiers, "B", 1)
    with pytest.raises(RuntimeError):
        await _publish(partners, tiers, "B", 20, 21, fail=True)
    assert await _loaded(partners, tiers, "B") == (Tier((1,)), 1) == await _full_fold(partners, tiers, "B")
    with pytest.raises(RuntimeError):
        await _publish(partners, tiers, "B", 30, fail=True)
    await _publish(partners, tiers, "B", 2)  # the same version again, another event
    assert await _loaded(partners, tiers, "B") == (Tier((1, 2)), 2) == await _full_fold(partners, tiers, "B")


async def test_a_batch_remembers_only_after_its_last_handler_and_a_rolled_back_one_never_is_read(
        partners: RunningService) -> None:
    ctx, tiers = partners.ctx, _tiers()
    assert tiers.snapshots is not None

    async def publish(unit: Unit, event: Any) -> None:
        loaded = await unit.load(tiers, "C")
        await unit.save(loaded, [_published(loaded.version + 1)], salt="tier")

    async def batch(count: int, *, fail: bool = False) -> None:
        work = BatchWork()
        async with ctx.db.transaction() as conn:
            for _ in range(count):
                envelope = SimpleNamespace(event_id=uuid.uuid4(), correlation_id=uuid.uuid4())
                delivery = Delivery(conn, envelope, _published(1), "test", work)  # type: ignore[arg-type]
                await commands.react(ctx, publish, delivery)
            assert tiers.snapshots is not None and tiers.snapshots.remembered("test-remember-C") is None
            if fail:
                raise RuntimeError("a handler failed: the batch rolls back")
            await work.finish()

    with pytest.raises(RuntimeError):
        await batch(2, fail=True)
    assert tiers.snapshots.remembered("test-remember-C") is None
    assert await _loaded(partners, tiers, "C") == (Tier(), 0) == await _full_fold(partners, tiers, "C")
    tiers.snapshots.forget()
    await batch(3)
    remembered = tiers.snapshots.remembered("test-remember-C")
    assert remembered is not None and (remembered.version, remembered.state) == (3, Tier((1, 2, 3)))
    folded.clear()
    assert await _loaded(partners, tiers, "C") == (Tier((1, 2, 3)), 3)
    assert folded == []


async def test_a_reactions_event_ids_are_uuid5_of_the_event_reacted_to() -> None:
    envelope = SimpleNamespace(event_id=uuid.uuid4(), correlation_id=uuid.uuid4())
    delivery = Delivery(None, envelope, _published(1), "credit", None)  # type: ignore[arg-type]
    assert delivery.event_ids(3, "dispatch-é") == [
        uuid.uuid5(envelope.event_id, f"credit:dispatch-é:{index}") for index in range(3)]
