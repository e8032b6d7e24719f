"""Delivery's reactions to orders' events: allocation, backorders in arrival order, release, shipments."""

from __future__ import annotations

import uuid

from libs.events.orders import OrderApproved
from libs.messaging.consumer import Outcome
from tests.delivery.support import (
    WAREHOUSE,
    FakePublisher,
    assert_ledger_is_the_fold,
    delivery_events,
    order_placed,
)
from tests.service_support import ADMIN, BY_KEYS, ONE_DOCUMENT, RunningService, Statements, consumer_record


async def receive(svc: RunningService, sku: str, qty: int, reference: str | None = None) -> dict:
    response = await svc.client.post("/v1/stock/receipts", headers=WAREHOUSE, json={
        "sku": sku, "qty": qty, "reference": reference or f"DN-{uuid.uuid4().hex[:6]}"})
    assert response.status_code == 201, response.text
    return response.json()


async def level(svc: RunningService, sku: str) -> tuple[int, int, int]:
    body = (await svc.client.get(f"/v1/stock/{sku}", headers=WAREHOUSE)).json()
    return body["on_hand"], body["allocated"], body["available"]


async def test_an_order_covered_completely_is_allocated_in_the_orders_conversation(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await receive(svc, "A", 10)
    await receive(svc, "B", 3)
    await orders.place("o1", {"A": 4, "B": 3})
    assert await delivery_events(svc, "allocation-o1") == [{
        "type": "StockAllocated", "order_id": "o1",
        "lines": [{"sku": "A", "qty": 4}, {"sku": "B", "qty": 3}]}]
    [stored] = await svc.ctx.store.load("allocation-o1")
    assert orders.last is not None
    assert stored.correlation_id == orders.last.correlation_id
    assert stored.causation_id == orders.last.event_id
    assert await level(svc, "A") == (10, 4, 6)
    assert await level(svc, "B") == (3, 3, 0)


async def test_allocation_is_all_or_nothing(svc: RunningService, orders: FakePublisher) -> None:
    await receive(svc, "A", 10)
    await receive(svc, "B", 1)
    await orders.place("o1", {"A": 4, "B": 3, "C": 2})
    assert await delivery_events(svc, "allocation-o1") == [{
        "type": "StockBackordered", "order_id": "o1",
        "lines": [{"sku": "B", "qty": 2}, {"sku": "C", "qty": 2}]}]
    assert await level(svc, "A") == (10, 0, 10)
    assert await level(svc, "B") == (1, 0, 1)


async def test_backorders_are_confirmed_in_arrival_order_when_stock_comes_in(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await orders.place("o1", {"A": 5})
    await orders.place("o2", {"A": 3})
    await orders.place("o3", {"A": 2, "B": 1})
    first = await receive(svc, "A", 6)  # o1 first; o2 (3) no longer fits; o3 lacks B
    assert first["allocated_orders"] == ["o1"]
    assert (first["on_hand"], first["allocated"], first["available"]) == (6, 5, 1)
    second = await receive(svc, "B", 1)  # 1 A available: neither o2 (3) nor o3 (2) fits
    assert second["allocated_orders"] == []
    third = await receive(svc, "A", 4)  # 5 available: o2 (3) first, then o3 (2 + B)
    assert third["allocated_orders"] == ["o2", "o3"]
    assert await level(svc, "A") == (10, 10, 0)
    allocated = (await delivery_events(svc, "allocation-o2"))[-1]
    assert allocated == {"type": "StockAllocated", "order_id": "o2", "lines": [{"sku": "A", "qty": 3}]}
    stored = (await svc.ctx.store.load("allocation-o2"))[-1]
    assert stored.correlation_id == orders.correlations["order-o2"]
    receipt = (await svc.ctx.store.load("stock-A"))[-1]
    assert stored.causation_id == receipt.event_id


async def test_an_earlier_order_that_cannot_be_covered_does_not_block_a_later_one(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await orders.place("big", {"A": 10})
    await orders.place("small", {"A": 2})
    assert (await receive(svc, "A", 3))["allocated_orders"] == ["small"]
    assert (await receive(svc, "A", 9))["allocated_orders"] == ["big"]


async def test_cancel_releases_stock_which_serves_the_queue(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await receive(svc, "A", 5)
    await orders.place("o1", {"A": 5})
    await orders.place("o2", {"A": 4})
    await orders.cancel("o1")
    assert (await delivery_events(svc, "allocation-o1"))[-1] == {
        "type": "StockReleased", "order_id": "o1", "lines": [{"sku": "A", "qty": 5}]}
    assert (await delivery_events(svc, "allocation-o2"))[-1]["type"] == "StockAllocated"
    assert await level(svc, "A") == (5, 4, 1)


async def test_a_cancelled_backorder_leaves_the_queue(svc: RunningService, orders: FakePublisher) -> None:
    await orders.place("o1", {"A": 5})
    await orders.reject("o1")
    assert (await delivery_events(svc, "allocation-o1"))[-1] == {
        "type": "StockReleased", "order_id": "o1", "lines": []}
    assert (await receive(svc, "A", 5))["allocated_orders"] == []
    assert await level(svc, "A") == (5, 0, 5)


async def test_an_approved_order_gets_a_pending_shipment_cancelled_with_the_order(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await receive(svc, "A", 5)
    await orders.place("o1", {"A": 2}, partner_id="ptn_x")
    await orders.approve("o1")
    page = (await svc.client.get("/v1/shipments?order_id=o1", headers=ADMIN)).json()
    [shipment] = page["items"]
    assert shipment["id"].startswith("shp_")
    assert (shipment["status"], shipment["partner_id"]) == ("pending", "ptn_x")
    assert shipment["lines"] == shipment["remaining"] == [{"sku": "A", "qty": 2}]
    [created] = await delivery_events(svc, f"shipment-{shipment['id']}")
    assert created["type"] == "ShipmentCreated"
    await orders.cancel("o1", partner_id="ptn_x")
    cancelled = (await svc.client.get(f"/v1/shipments/{shipment['id']}", headers=ADMIN)).json()
    assert cancelled["status"] == "cancelled"
    assert await level(svc, "A") == (5, 0, 5)
    refused = await svc.client.post(f"/v1/shipments/{shipment['id']}/dispatch", headers=WAREHOUSE,
                                    json={"lines": [{"sku": "A", "qty": 1}], "carrier": "SF",
                                          "tracking_no": "T1"})
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/shipment-cancelled")


async def test_facts_seen_again_change_nothing(svc: RunningService, orders: FakePublisher) -> None:
    await receive(svc, "A", 5)
    await orders.place("o1", {"A": 2})
    assert orders.last is not None
    assert await svc.consumer.handle(orders.last) == Outcome.DUPLICATE
    await orders.place("o1", {"A": 2})  # the same fact under another event id
    await orders.approve("o1")
    await orders.approve("o1")
    assert len(await delivery_events(svc, "allocation-o1")) == 1
    shipments = (await svc.client.get("/v1/shipments?order_id=o1", headers=ADMIN)).json()["items"]
    assert len(shipments) == 1
    assert await level(svc, "A") == (5, 2, 3)


async def test_the_stock_ledger_is_the_fold_of_deliverys_events(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await receive(svc, "A", 6)
    await receive(svc, "B", 2)
    await orders.place("o1", {"A": 4, "B": 2})
    await orders.place("o2", {"A": 4})
    await orders.approve("o1")
    [shipment] = (await svc.client.get("/v1/shipments?order_id=o1", headers=ADMIN)).json()["items"]
    await svc.client.post(f"/v1/shipments/{shipment['id']}/dispatch", headers=WAREHOUSE, json={
        "lines": [{"sku": "A", "qty": 4}], "carrier": "SF", "tracking_no": "T"})
    await orders.place("o3", {"B": 1})
    await orders.cancel("o1")  # B 2 released: o3 takes 1
    await receive(svc, "A", 2)  # o2 now covered
    for kind, outcome in (("refund", {"restock": 1, "scrap": 1}), ("exchange", {"restock": 1}),
                          ("repair", {"repaired": 1})):  # the 4 A of o1 come back
        qty = sum(outcome.values())
        asked = await svc.client.post("/v1/returns", headers=ADMIN, json={
            "order_id": "o1", "lines": [{"sku": "A", "qty": qty}], "reason": "x", "kind": kind})
        await svc.client.post(f"/v1/returns/{asked.json()['id']}/receive", headers=WAREHOUSE,
                              json={"lines": [{"sku": "A", "qty": qty}]})
        inspected = await svc.client.post(f"/v1/returns/{asked.json()['id']}/inspect", headers=WAREHOUSE,
                                          json={"lines": [{"sku": "A", **outcome}]})
        for shipment_id in inspected.json()["shipment_ids"]:
            sent = await svc.client.post(f"/v1/shipments/{shipment_id}/dispatch", headers=WAREHOUSE,
                                         json={"lines": [{"sku": "A", "qty": 1}], "carrier": "SF",
                                               "tracking_no": "T"})
            assert sent.status_code == 200, sent.text
    listed = await assert_ledger_is_the_fold(svc)
    assert [(s["sku"], s["on_hand"], s["allocated"], s["in_inspection"]) for s in listed] == [
        ("A", 5, 4, 0), ("B", 2, 1, 0)]



async def test_a_batch_of_reactions_reads_and_locks_the_ledger_once(
    svc: RunningService, orders: FakePublisher,
) -> None:
    """Placements and an approval in one consumer batch: the stock lock is taken once, the
    order copies of the batch are read in one statement, the levels of skus once (not read
    back to move them), and no document of a stream the batch begins is looked for; the
    effects are those of the events one at a time."""
    await receive(svc, "A", 10)
    await receive(svc, "B", 4)
    envelopes = [orders.envelope(f"order-o{n}", order_placed(f"o{n}", {"A": 2, "B": 1})) for n in range(1, 6)]
    envelopes.insert(2, orders.envelope("order-o1", OrderApproved(order_id="o1")))
    applied = svc.consumer.outcomes[Outcome.APPLIED]
    with Statements(svc.ctx.db) as statements:
        await svc.consumer.apply_records([consumer_record(n, e) for n, e in enumerate(envelopes)])
    assert svc.consumer.outcomes[Outcome.APPLIED] == applied + 6
    assert [e["type"] for n in range(1, 6) for e in await delivery_events(svc, f"allocation-o{n}")] == [
        "StockAllocated"] * 4 + ["StockBackordered"]
    assert await level(svc, "A") == (10, 8, 2)
    assert await level(svc, "B") == (4, 4, 0)
    shipments = (await svc.client.get("/v1/shipments", params={"order_id": "o1"}, headers=WAREHOUSE)).json()
    assert [s["status"] for s in shipments["items"]] == ["pending"]
    locks = statements.having("pg_advisory_xact_lock")
    assert len(locks) == (1 if svc.ctx.db.is_postgres else 0), locks
    single = statements.having(*ONE_DOCUMENT)
    assert single == [], single
    by_key = statements.having(*BY_KEYS)
    assert len(by_key) == 2, by_key  # the order copies, the levels
