"""Delivery over HTTP on both databases: stock and shipments, roles and partner isolation."""

from __future__ import annotations

from tests.delivery.support import (
    DISPATCH,
    WAREHOUSE,
    FakePublisher,
    book,
    delivery_events,
    dispatch,
    problem,
    shipped_order,
)
from tests.service_support import ADMIN, RunningService

# -- stock ------------------------------------------------------------------------------------


async def test_receipts_book_stock_once_per_reference(svc: RunningService, orders: FakePublisher) -> None:
    warehouse = await orders.issue_key("warehouse")
    first = await book(svc, "A", 7, warehouse, reference="DN-1")
    assert first.status_code == 201
    assert first.json() == {"sku": "A", "qty": 7, "reference": "DN-1", "received_on": "2026-03-10",
                            "on_hand": 7, "allocated": 0, "available": 7, "in_inspection": 0,
                            "allocated_orders": []}
    problem(await book(svc, "A", 7, warehouse, reference="DN-1"), 409, "duplicate-reference")
    assert (await book(svc, "B", 1, warehouse, reference="DN-1")).status_code == 201
    stock = await svc.client.get("/v1/stock", headers=warehouse)
    assert stock.json() == {"items": [
        {"sku": "A", "on_hand": 7, "allocated": 0, "available": 7, "in_inspection": 0},
        {"sku": "B", "on_hand": 1, "allocated": 0, "available": 1, "in_inspection": 0}], "next_cursor": None}
    assert [e["type"] for e in await delivery_events(svc, "stock-A")] == ["StockReceived"]


async def test_stock_lists_page_and_filter(svc: RunningService) -> None:
    for sku in ("A", "B", "C"):
        await book(svc, sku, 1)
    page = (await svc.client.get("/v1/stock?limit=2", headers=WAREHOUSE)).json()
    assert [item["sku"] for item in page["items"]] == ["A", "B"]
    rest = (await svc.client.get(f"/v1/stock?limit=2&cursor={page['next_cursor']}",
                                 headers=WAREHOUSE)).json()
    assert [item["sku"] for item in rest["items"]] == ["C"]
    only = (await svc.client.get("/v1/stock?sku=B", headers=WAREHOUSE)).json()
    assert [item["sku"] for item in only["items"]] == ["B"]
    problem(await svc.client.get("/v1/stock/NOPE", headers=WAREHOUSE), 404, "sku-not-found")


async def test_a_receipt_repeated_with_its_idempotency_key_answers_the_first_response(
    svc: RunningService,
) -> None:
    headers = {**WAREHOUSE, "Idempotency-Key": "k-1"}
    body = {"sku": "A", "qty": 2, "reference": "DN-9"}
    first = await svc.client.post("/v1/stock/receipts", headers=headers, json=body)
    again = await svc.client.post("/v1/stock/receipts", headers=headers, json=body)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    other = await svc.client.post("/v1/stock/receipts", headers=headers, json={**body, "qty": 3})
    problem(other, 409, "idempotency-key-reused")
    assert (await svc.client.get("/v1/stock/A", headers=WAREHOUSE)).json()["on_hand"] == 2


BAD_RECEIPTS = [
    {"sku": "A", "qty": 0, "reference": "r"},
    {"sku": "A", "qty": -1, "reference": "r"},
    {"sku": "A", "qty": "5", "reference": "r"},
    {"sku": "A", "qty": 1.5, "reference": "r"},
    {"sku": "A", "qty": 10**12, "reference": "r"},
    {"sku": "", "qty": 1, "reference": "r"},
    {"sku": "A B", "qty": 1, "reference": "r"},
    {"sku": "A", "qty": 1, "reference": "  "},
    {"sku": "A", "qty": 1},
    {"sku": "A", "qty": 1, "reference": "r", "warehouse": "W1"},
    [{"sku": "A", "qty": 1, "reference": "r"}],
]


async def test_bad_receipts_are_refused(svc: RunningService) -> None:
    for body in BAD_RECEIPTS:
        problem(await svc.client.post("/v1/stock/receipts", headers=WAREHOUSE, json=body), 422,
                "validation")
    assert (await svc.client.get("/v1/stock", headers=WAREHOUSE)).json()["items"] == []


async def test_stock_roles(svc: RunningService, orders: FakePublisher) -> None:
    """Only the warehouse books receipts and reads stock (API.md), admin included."""
    for role in ("admin", "sales", "finance", "auditor"):
        key = ADMIN if role == "admin" else await orders.issue_key(role)
        problem(await book(svc, "A", 1, key), 403, "forbidden")
        problem(await svc.client.post("/v1/stock/receipts", headers=key, json={"sku": ""}), 403,
                "forbidden")
        problem(await svc.client.get("/v1/stock", headers=key), 403, "forbidden")
        problem(await svc.client.get("/v1/stock/A", headers=key), 403, "forbidden")
    assert (await svc.client.get("/v1/stock", headers=WAREHOUSE)).status_code == 200
    partner = await orders.issue_key("partner", "ptn_a")
    problem(await book(svc, "A", 1, partner), 403, "forbidden")
    problem(await svc.client.get("/v1/stock", headers=partner), 403, "forbidden")
    problem(await svc.client.get("/v1/stock"), 401, "unauthorized")
    problem(await svc.client.get("/v1/stock", headers={"Authorization": "Bearer nope"}), 401,
            "unauthorized")


# -- shipments --------------------------------------------------------------------------------


async def test_partial_dispatch_in_two_parts_then_delivery(
    svc: RunningService, orders: FakePublisher,
) -> None:
    shipment = await shipped_order(svc, orders, "o1", {"A": 5, "B": 2})
    sid = shipment["id"]
    warehouse = await orders.issue_key("warehouse")
    deliver = {"delivered_at": "2026-03-12T10:00:00+08:00", "signed_by": "Li Lei"}
    problem(await svc.client.post(f"/v1/shipments/{sid}/deliver", headers=warehouse, json=deliver),
            409, "not-fully-dispatched")

    first = await dispatch(svc, sid, {"A": 3}, warehouse)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["complete"]) == ("partially_dispatched", False)
    assert body["remaining"] == [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 2}]
    assert body["dispatches"][0]["dispatched_on"] == "2026-03-10"
    stock_a = (await svc.client.get("/v1/stock/A", headers=WAREHOUSE)).json()
    assert (stock_a["on_hand"], stock_a["allocated"], stock_a["available"]) == (2, 2, 0)

    problem(await dispatch(svc, sid, {"A": 3}, warehouse), 409, "exceeds-remaining")
    problem(await dispatch(svc, sid, {"C": 1}, warehouse), 409, "exceeds-remaining")
    second = await dispatch(svc, sid, {"A": 2, "B": 2}, warehouse)
    assert (second.json()["status"], second.json()["complete"]) == ("dispatched", True)
    assert second.json()["remaining"] == []
    problem(await dispatch(svc, sid, {"A": 1}, warehouse), 409, "exceeds-remaining")

    events = await delivery_events(svc, f"shipment-{sid}")
    assert [e["type"] for e in events] == ["ShipmentCreated", "ShipmentDispatched",
                                           "ShipmentDispatched"]
    assert events[1]["lines"] == [{"sku": "A", "qty": 3}] and not events[1]["complete"]
    assert events[2]["remaining"] == [] and events[2]["complete"]
    assert events[1]["dispatch_id"] != events[2]["dispatch_id"]
    assert events[2]["dispatched_on"] == "2026-03-10"

    problem(await svc.client.post(f"/v1/shipments/{sid}/deliver", headers=warehouse, json={
        **deliver, "delivered_at": "2026-03-09T10:00:00Z"}), 422, "delivered-before-dispatch")
    delivered = await svc.client.post(f"/v1/shipments/{sid}/deliver", headers=warehouse,
                                      json=deliver)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "delivered"
    assert delivered.json()["delivered_at"] == "2026-03-12T02:00:00Z"
    problem(await svc.client.post(f"/v1/shipments/{sid}/deliver", headers=warehouse, json=deliver),
            409, "already-delivered")
    stock = (await svc.client.get("/v1/stock", headers=WAREHOUSE)).json()["items"]
    assert [(s["sku"], s["on_hand"], s["allocated"]) for s in stock] == [("A", 0, 0), ("B", 0, 0)]


async def test_a_dispatch_repeated_with_its_idempotency_key_ships_once(
    svc: RunningService, orders: FakePublisher,
) -> None:
    sid = (await shipped_order(svc, orders, "o1", {"A": 4}))["id"]
    headers = {**WAREHOUSE, "Idempotency-Key": "dispatch-1"}
    first = await dispatch(svc, sid, {"A": 1}, headers)
    again = await dispatch(svc, sid, {"A": 1}, headers)
    assert again.json() == first.json()
    assert len(again.json()["dispatches"]) == 1


BAD_DISPATCHES = [
    {"lines": [], **DISPATCH},
    {"lines": [{"sku": "A", "qty": 0}], **DISPATCH},
    {"lines": [{"sku": "A", "qty": 1}, {"sku": "A", "qty": 1}], **DISPATCH},
    {"lines": [{"sku": "A", "qty": 1}], "carrier": "SF"},
    {"lines": [{"sku": "A", "qty": 1, "extra": 1}], **DISPATCH},
    {"lines": [{"sku": "A", "qty": 1}], "carrier": "SF", "tracking_no": ""},
]
BAD_DELIVERIES = [
    {"delivered_at": "2026-03-12T10:00:00", "signed_by": "x"},
    {"delivered_at": "yesterday", "signed_by": "x"},
    {"delivered_at": "2026-03-12T10:00:00Z", "signed_by": ""},
    {"delivered_at": "2026-03-12T10:00:00Z"},
]


async def test_bad_dispatches_and_deliveries_are_refused(
    svc: RunningService, orders: FakePublisher,
) -> None:
    sid = (await shipped_order(svc, orders, "o1", {"A": 4}))["id"]
    for body in BAD_DISPATCHES:
        problem(await svc.client.post(f"/v1/shipments/{sid}/dispatch", headers=WAREHOUSE, json=body),
                422, "validation")
    for body in BAD_DELIVERIES:
        problem(await svc.client.post(f"/v1/shipments/{sid}/deliver", headers=WAREHOUSE, json=body),
                422, "validation")
    shipment = (await svc.client.get(f"/v1/shipments/{sid}", headers=ADMIN)).json()
    assert (shipment["status"], shipment["dispatches"]) == ("pending", [])


async def test_unknown_shipments_answer_404(svc: RunningService) -> None:
    missing = problem(await svc.client.get("/v1/shipments/shp_nope", headers=ADMIN), 404,
                      "shipment-not-found")
    assert "shp_nope" not in missing["title"]
    problem(await svc.client.get("/v1/shipments?status=lost", headers=ADMIN), 422, "validation")
    problem(await dispatch(svc, "shp_nope", {"A": 1}), 404, "shipment-not-found")
    problem(await svc.client.post("/v1/shipments/shp_nope/deliver", headers=WAREHOUSE, json={
        "delivered_at": "2026-03-12T10:00:00Z", "signed_by": "x"}), 404, "shipment-not-found")


async def test_shipments_are_listed_by_order(svc: RunningService, orders: FakePublisher) -> None:
    first = await shipped_order(svc, orders, "o1", {"A": 2}, partner_id="ptn_a")
    second = await shipped_order(svc, orders, "o2", {"B": 1}, partner_id="ptn_a")

    async def listed(query: str) -> list[str]:
        return [s["id"] for s in (await svc.client.get(f"/v1/shipments{query}",
                                                       headers=ADMIN)).json()["items"]]

    assert await listed("?order_id=o1") == [first["id"]]
    assert await listed("?order_id=o2") == [second["id"]]
    assert await listed("?order_id=o2&status=pending") == [second["id"]]
    assert await listed("?order_id=o2&partner_id=ptn_b") == []
    assert await listed("?order_id=o3") == []
    assert sorted(await listed("")) == sorted([first["id"], second["id"]])


async def test_shipment_roles_and_partner_isolation(svc: RunningService, orders: FakePublisher) -> None:
    mine = await shipped_order(svc, orders, "o1", {"A": 2}, partner_id="ptn_a")
    theirs = await shipped_order(svc, orders, "o2", {"B": 2}, partner_id="ptn_b")
    partner_a = await orders.issue_key("partner", "ptn_a")
    seen = (await svc.client.get("/v1/shipments", headers=partner_a)).json()["items"]
    assert [s["id"] for s in seen] == [mine["id"]]
    assert (await svc.client.get("/v1/shipments?order_id=o2", headers=partner_a)).json()["items"] == []
    forced = (await svc.client.get("/v1/shipments?partner_id=ptn_b", headers=partner_a)).json()
    assert [s["id"] for s in forced["items"]] == [mine["id"]]  # a partner's list is its own
    by_partner = (await svc.client.get("/v1/shipments?partner_id=ptn_b", headers=ADMIN)).json()
    assert [s["id"] for s in by_partner["items"]] == [theirs["id"]]
    assert (await svc.client.get(f"/v1/shipments/{mine['id']}", headers=partner_a)).status_code == 200
    problem(await svc.client.get(f"/v1/shipments/{theirs['id']}", headers=partner_a), 404,
            "shipment-not-found")
    problem(await dispatch(svc, mine["id"], {"A": 1}, partner_a), 403, "forbidden")
    for role in ("admin", "sales", "finance", "auditor"):
        key = ADMIN if role == "admin" else await orders.issue_key(role)
        problem(await dispatch(svc, mine["id"], {"A": 1}, key), 403, "forbidden")
        problem(await svc.client.post(f"/v1/shipments/{mine['id']}/deliver", headers=key, json={}),
                403, "forbidden")
        listed = (await svc.client.get("/v1/shipments?status=pending", headers=key)).json()
        assert len(listed["items"]) == 2
    problem(await svc.client.post(f"/v1/shipments/{mine['id']}/deliver", headers=partner_a, json={
        "delivered_at": "2026-03-12T10:00:00Z", "signed_by": "x"}), 403, "forbidden")
