"""Reactions: orders' territory violations and deal conflicts join the partner's history; keys
reach the key copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from libs.events.base import EventMetadata
from libs.events.envelope import Envelope
from libs.events.orders import DealConflictRecorded, TerritoryViolationRecorded
from libs.events.values import SkuQty
from libs.messaging.consumer import Outcome
from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.store import EventStore
from tests.service_support import ADMIN, RunningService

from .support import issue_key, register


@pytest.fixture
async def orders_store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """A scratch store standing in for the orders service's outbox."""
    database = Database(f"sqlite:///{tmp_path / 'orders.db'}")
    await migrate(database)
    yield EventStore(database)
    await database.dispose()


async def violation(store: EventStore, partner_id: str, ref: str, region: str) -> Envelope:
    [envelope] = await store.append(
        f"violation-{ref}", "territory-violation", 0,
        [TerritoryViolationRecorded(partner_id=partner_id, partner_ref=ref, region=region,
                                    territories=["east"])],
        EventMetadata(actor="partner:key_1"))
    return envelope


async def test_violations_join_the_partner_once(svc: RunningService, orders_store: EventStore) -> None:
    pid = (await register(svc))["id"]
    first = await violation(orders_store, pid, "PO-1", "west")
    second = await violation(orders_store, pid, "PO-2", "south")
    assert await svc.consumer.handle(first) == Outcome.APPLIED
    assert await svc.consumer.handle(second) == Outcome.APPLIED
    assert await svc.consumer.handle(first) == Outcome.DUPLICATE

    partner = (await svc.client.get(f"/v1/partners/{pid}", headers=ADMIN)).json()
    assert partner["violation_count"] == 2
    assert [(v["partner_ref"], v["region"]) for v in partner["violations"]] == [
        ("PO-1", "west"), ("PO-2", "south")]
    assert partner["violations"][0]["correlation_id"] == str(first.correlation_id)
    own = await issue_key(svc, "partner", pid)
    listed = (await svc.client.get("/v1/partners", headers=own)).json()["items"]
    assert listed[0]["violation_count"] == 2

    # A later command rewrites the partner document; the violation history stays.
    changed = await svc.client.patch(f"/v1/partners/{pid}", json={"tier": "C"}, headers=ADMIN)
    assert changed.json()["violation_count"] == 2


async def test_a_refused_deal_registration_counts_as_a_violation(
        svc: RunningService, orders_store: EventStore) -> None:
    pid = (await register(svc))["id"]
    await svc.consumer.handle(await violation(orders_store, pid, "PO-1", "west"))
    [conflict] = await orders_store.append("deals-acme", "end-customer-deals", 0, [DealConflictRecorded(
        deal_id="deal_2", partner_id=pid, end_customer="ACME", customer_key="acme",
        lines=[SkuQty(sku="P-1", qty=3)], expires_on=date(2026, 5, 1), conflicting_deal_id="deal_1",
        conflicting_partner_id="ptn_other", skus=["P-1"])], EventMetadata(actor="partner:key_1"))
    assert await svc.consumer.handle(conflict) == Outcome.APPLIED
    partner = (await svc.client.get(f"/v1/partners/{pid}", headers=ADMIN)).json()
    assert partner["violation_count"] == 2
    assert [(v["kind"], v["region"], v["end_customer"], v["skus"]) for v in partner["violations"]] == [
        ("territory", "west", None, []), ("deal_conflict", None, "ACME", ["P-1"])]


async def test_own_key_events_come_back_harmlessly(svc: RunningService) -> None:
    """The service consumes its own topic too (keys); replaying them leaves its copy right."""
    issued = (await svc.client.post("/v1/keys", json={"role": "sales"}, headers=ADMIN)).json()
    headers = {"Authorization": f"Bearer {issued['secret']}"}
    for envelope in await svc.ctx.store.load(f"key-{issued['key_id']}"):
        assert await svc.consumer.handle(envelope) == Outcome.APPLIED
    await svc.ctx.keyring.refresh()
    assert (await svc.client.get("/v1/partners", headers=headers)).status_code == 200
