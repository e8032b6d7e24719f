"""Inspection of received returns over HTTP on both databases, and what each kind sends back.

Order o1 of ptn_a: 5 A ordered and dispatched, 10 A booked (so 5 on hand after the dispatch).
- Received units sit at the inspection location: on hand does not move until inspection
  restocks them; scrapped units never come back.
- An exchange gets a replacement shipment (purpose ``replacement``) from available stock; a
  repair gets its repaired units back (purpose ``repair``) from the inspection location.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.delivery.support import (
    WAREHOUSE,
    FakePublisher,
    book,
    delivery_events,
    dispatch,
    problem,
    shipped_order,
)
from tests.delivery.test_api_returns import ask, inspect, receive
from tests.service_support import ADMIN, RunningService


async def stock(svc: RunningService, sku: str = "A") -> dict[str, Any]:
    return (await svc.client.get(f"/v1/stock/{sku}", headers=WAREHOUSE)).json()


async def received(svc: RunningService, qty: int, kind: str, headers: dict[str, str] = ADMIN) -> str:
    """A return of ``qty`` A of o1, requested and received: its id."""
    asked = await ask(svc, "o1", {"A": qty}, headers, kind=kind)
    assert asked.status_code == 201, asked.text
    got = await receive(svc, asked.json()["id"], {"A": qty})
    assert got.status_code == 200, got.text
    return asked.json()["id"]


@pytest.fixture
async def shipped(svc: RunningService, orders: FakePublisher) -> dict[str, Any]:
    shipment = await shipped_order(svc, orders, "o1", {"A": 5})
    assert (await book(svc, "A", 5)).status_code == 201
    assert (await dispatch(svc, shipment["id"], {"A": 5})).status_code == 200
    assert await stock(svc) == {"sku": "A", "on_hand": 5, "allocated": 0, "available": 5,
                                "in_inspection": 0}
    return shipment


async def test_received_units_are_sellable_only_once_inspection_restocks_them(
    svc: RunningService, shipped: dict[str, Any],
) -> None:
    return_id = await received(svc, 3, "refund")
    assert await stock(svc) == {"sku": "A", "on_hand": 5, "allocated": 0, "available": 5,
                                "in_inspection": 3}
    answer = await inspect(svc, return_id, {"A": (2, 1)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["inspected_on"], body["shipment_ids"]) == ("inspected", "2026-03-10", [])
    assert body["inspection"] == {"restocked": [{"sku": "A", "qty": 2}],
                                  "scrapped": [{"sku": "A", "qty": 1}], "repaired": []}
    assert await stock(svc) == {"sku": "A", "on_hand": 7, "allocated": 0, "available": 7,
                                "in_inspection": 0}
    events = await delivery_events(svc, f"return-{return_id}")
    assert [e["type"] for e in events] == ["ReturnRequested", "ReturnReceived", "ReturnInspected"]
    assert events[-1] == {
        "type": "ReturnInspected", "return_id": return_id, "order_id": "o1", "partner_id": "ptn_a",
        "kind": "refund", "restocked": [{"sku": "A", "qty": 2}], "scrapped": [{"sku": "A", "qty": 1}],
        "repaired": [], "inspected_on": "2026-03-10", "shipment_id": None}
    # a refund ships nothing back: the order keeps its one (sale) shipment
    listed = (await svc.client.get("/v1/shipments?order_id=o1", headers=ADMIN)).json()["items"]
    assert [s["purpose"] for s in listed] == ["sale"]


async def test_an_exchange_ships_a_replacement_from_available_stock(
    svc: RunningService, orders: FakePublisher, shipped: dict[str, Any],
) -> None:
    partner = await orders.issue_key("partner", "ptn_a")
    return_id = await received(svc, 2, "exchange", partner)
    body = (await inspect(svc, return_id, {"A": (0, 2)})).json()
    [shipment_id] = body["shipment_ids"]
    assert body["status"] == "inspected"
    assert await stock(svc) == {"sku": "A", "on_hand": 5, "allocated": 0, "available": 5,
                                "in_inspection": 0}
    replacement = (await svc.client.get(f"/v1/shipments/{shipment_id}", headers=partner)).json()
    assert {k: replacement[k] for k in ("order_id", "partner_id", "purpose", "return_id", "status",
                                        "lines")} == {
        "order_id": "o1", "partner_id": "ptn_a", "purpose": "replacement", "return_id": return_id,
        "status": "pending", "lines": [{"sku": "A", "qty": 2}]}

    await orders.place("o2", {"A": 4})  # allocated: only 1 A stays available
    problem(await dispatch(svc, shipment_id, {"A": 2}), 409, "insufficient-stock")
    assert (await stock(svc))["on_hand"] == 5
    assert (await book(svc, "A", 1)).status_code == 201
    sent = await dispatch(svc, shipment_id, {"A": 2})
    assert sent.status_code == 200, sent.text
    assert await stock(svc) == {"sku": "A", "on_hand": 4, "allocated": 4, "available": 0,
                                "in_inspection": 0}
    [created, dispatched] = await delivery_events(svc, f"shipment-{shipment_id}")
    assert (created["type"], created["purpose"], created["return_id"]) == (
        "ShipmentCreated", "replacement", return_id)
    assert (dispatched["type"], dispatched["purpose"], dispatched["complete"]) == (
        "ShipmentDispatched", "replacement", True)

    followed = (await svc.client.get(f"/v1/returns/{return_id}", headers=partner)).json()
    assert followed["status"] == "replacement_shipped"
    assert followed["goods_dispatched"] == [{
        "shipment_id": shipment_id, "dispatch_id": dispatched["dispatch_id"],
        "lines": [{"sku": "A", "qty": 2}], "carrier": "SF Express", "tracking_no": "SF123",
        "dispatched_on": "2026-03-10", "complete": True}]
    assert [e["type"] for e in await delivery_events(svc, f"return-{return_id}")] == [
        "ReturnRequested", "ReturnReceived", "ReturnInspected", "ReturnGoodsDispatched"]
    delivered = await svc.client.post(f"/v1/shipments/{shipment_id}/deliver", headers=WAREHOUSE, json={
        "delivered_at": "2026-03-11T10:00:00Z", "signed_by": "Li Wei"})
    assert delivered.status_code == 200, delivered.text
    assert (await delivery_events(svc, f"shipment-{shipment_id}"))[-1]["purpose"] == "replacement"


async def test_a_repaired_unit_goes_back_to_its_partner_never_into_stock(
    svc: RunningService, orders: FakePublisher, shipped: dict[str, Any],
) -> None:
    partner = await orders.issue_key("partner", "ptn_a")
    return_id = await received(svc, 1, "repair", partner)
    problem(await inspect(svc, return_id, {"A": (1, 0)}), 409, "outcome-not-for-kind")
    problem(await inspect(svc, return_id, {"A": (0, 1)}), 409, "outcome-not-for-kind")
    answer = await svc.client.post(f"/v1/returns/{return_id}/inspect", headers=WAREHOUSE, json={
        "lines": [{"sku": "A", "repaired": 1}]})
    assert answer.status_code == 200, answer.text
    [shipment_id] = answer.json()["shipment_ids"]
    assert answer.json()["inspection"]["repaired"] == [{"sku": "A", "qty": 1}]
    assert await stock(svc) == {"sku": "A", "on_hand": 5, "allocated": 0, "available": 5,
                                "in_inspection": 1}
    back = (await svc.client.get(f"/v1/shipments/{shipment_id}", headers=partner)).json()
    assert (back["purpose"], back["return_id"], back["lines"]) == (
        "repair", return_id, [{"sku": "A", "qty": 1}])
    assert (await dispatch(svc, shipment_id, {"A": 1})).status_code == 200
    assert await stock(svc) == {"sku": "A", "on_hand": 5, "allocated": 0, "available": 5,
                                "in_inspection": 0}
    followed = (await svc.client.get(f"/v1/returns/{return_id}", headers=partner)).json()
    assert (followed["status"], followed["goods_dispatched"][0]["shipment_id"]) == (
        "repaired_shipped", shipment_id)
    listed = (await svc.client.get("/v1/returns?status=repaired_shipped", headers=partner)).json()
    assert [r["id"] for r in listed["items"]] == [return_id]


async def test_a_partner_follows_only_its_own_returns(
    svc: RunningService, orders: FakePublisher, shipped: dict[str, Any],
) -> None:
    own = await orders.issue_key("partner", "ptn_a")
    other = await orders.issue_key("partner", "ptn_b")
    return_id = await received(svc, 1, "exchange", own)
    shipment_id = (await inspect(svc, return_id, {"A": (1, 0)})).json()["shipment_ids"][0]
    followed = (await svc.client.get(f"/v1/returns/{return_id}", headers=own)).json()
    assert {k: followed[k] for k in ("kind", "status", "lines", "received_lines", "shipment_ids")} == {
        "kind": "exchange", "status": "inspected", "lines": [{"sku": "A", "qty": 1}],
        "received_lines": [{"sku": "A", "qty": 1}], "shipment_ids": [shipment_id]}
    problem(await svc.client.get(f"/v1/returns/{return_id}", headers=other), 404, "return-not-found")
    problem(await svc.client.get(f"/v1/shipments/{shipment_id}", headers=other), 404,
            "shipment-not-found")
    assert (await svc.client.get("/v1/returns?status=inspected", headers=other)).json()["items"] == []
    problem(await inspect(svc, return_id, {"A": (1, 0)}, own), 403, "forbidden")


async def _unchanged(svc: RunningService, return_id: str, answer: httpx.Response, status: int, slug: str,
                     before: tuple[Any, ...]) -> None:
    problem(answer, status, slug)
    after = (await stock(svc), await delivery_events(svc, f"return-{return_id}"),
             (await svc.client.get(f"/v1/returns/{return_id}", headers=ADMIN)).json())
    assert after == before


async def test_bad_inspections_are_refused_and_change_nothing(
    svc: RunningService, orders: FakePublisher, shipped: dict[str, Any],
) -> None:
    asked = (await ask(svc, "o1", {"A": 3})).json()["id"]

    async def state() -> tuple[Any, ...]:
        return (await stock(svc), await delivery_events(svc, f"return-{asked}"),
                (await svc.client.get(f"/v1/returns/{asked}", headers=ADMIN)).json())

    await _unchanged(svc, asked, await inspect(svc, asked, {"A": (3, 0)}), 409, "return-not-received",
                     await state())
    assert (await receive(svc, asked, {"A": 2})).status_code == 200
    before = await state()
    for outcome, slug in (({"A": (2, 1)}, "exceeds-received"), ({"A": (1, 0)}, "inspection-incomplete"),
                          ({"A": (1, 1), "B": (1, 0)}, "exceeds-received")):
        await _unchanged(svc, asked, await inspect(svc, asked, outcome), 409, slug, before)
    await _unchanged(svc, asked, await svc.client.post(
        f"/v1/returns/{asked}/inspect", headers=WAREHOUSE, json={"lines": [{"sku": "A", "repaired": 2}]}),
        409, "outcome-not-for-kind", before)
    for bad in ({"lines": []}, {"lines": [{"sku": "A"}]}, {"lines": [{"sku": "A", "restock": -1}]},
                {"lines": [{"sku": "A", "restock": 1}, {"sku": "A", "scrap": 1}]},
                {"lines": [{"sku": "A", "restock": "2"}]}, {"lines": [{"sku": "A", "keep": 2}]}):
        await _unchanged(svc, asked, await svc.client.post(
            f"/v1/returns/{asked}/inspect", headers=WAREHOUSE, json=bad), 422, "validation", before)
    for key in (ADMIN, await orders.issue_key("sales"), await orders.issue_key("auditor")):
        await _unchanged(svc, asked, await inspect(svc, asked, {"A": (2, 0)}, key), 403, "forbidden",
                         before)
    problem(await inspect(svc, "ret_nope", {"A": (1, 0)}), 404, "return-not-found")

    headers = {**WAREHOUSE, "Idempotency-Key": "inspect-1"}
    first = await inspect(svc, asked, {"A": (2, 0)}, headers)
    assert first.status_code == 200, first.text
    assert (await inspect(svc, asked, {"A": (2, 0)}, headers)).json() == first.json()
    after = await state()
    await _unchanged(svc, asked, await inspect(svc, asked, {"A": (2, 0)}), 409,
                     "return-already-inspected", after)
    await _unchanged(svc, asked, await receive(svc, asked, {"A": 1}), 409, "return-already-received",
                     after)
    assert after[0]["on_hand"] == before[0]["on_hand"] + 2
