"""Returns over HTTP on both databases: limits, receipt into inspection, roles, partner isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.delivery.support import WAREHOUSE, FakePublisher, delivery_events, dispatch, problem, shipped_order
from tests.service_support import ADMIN, RunningService


async def ask(svc: RunningService, order_id: str, lines: dict[str, int],
              headers: dict[str, str] = ADMIN, kind: str = "refund") -> httpx.Response:
    return await svc.client.post("/v1/returns", headers=headers, json={
        "order_id": order_id, "lines": [{"sku": s, "qty": q} for s, q in lines.items()],
        "reason": "damaged in transit", "kind": kind})


async def receive(svc: RunningService, return_id: str, lines: dict[str, int],
                  headers: dict[str, str] = WAREHOUSE) -> httpx.Response:
    return await svc.client.post(f"/v1/returns/{return_id}/receive", headers=headers, json={
        "lines": [{"sku": s, "qty": q} for s, q in lines.items()]})


async def inspect(svc: RunningService, return_id: str, outcomes: dict[str, tuple[int, int]],
                  headers: dict[str, str] = WAREHOUSE) -> httpx.Response:
    """Inspect ``return_id``: per sku ``(restock, scrap)``."""
    return await svc.client.post(f"/v1/returns/{return_id}/inspect", headers=headers, json={
        "lines": [{"sku": s, "restock": r, "scrap": x} for s, (r, x) in outcomes.items()]})


@pytest.fixture
async def dispatched(svc: RunningService, orders: FakePublisher) -> dict[str, Any]:
    """Order o1 of ptn_a: 5 A and 2 B ordered, 3 A dispatched so far."""
    shipment = await shipped_order(svc, orders, "o1", {"A": 5, "B": 2})
    assert (await dispatch(svc, shipment["id"], {"A": 3})).status_code == 200
    return shipment


async def test_returns_are_limited_to_what_was_dispatched_and_not_returned(
    svc: RunningService, orders: FakePublisher, dispatched: dict[str, Any],
) -> None:
    partner = await orders.issue_key("partner", "ptn_a")
    problem(await ask(svc, "o1", {"A": 4}, partner), 409, "exceeds-returnable")
    problem(await ask(svc, "o1", {"B": 1}, partner), 409, "exceeds-returnable")
    first = await ask(svc, "o1", {"A": 2}, partner)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"].startswith("ret_")
    assert {k: body[k] for k in ("order_id", "partner_id", "status", "kind", "lines")} == {
        "order_id": "o1", "partner_id": "ptn_a", "status": "requested", "kind": "refund",
        "lines": [{"sku": "A", "qty": 2}]}
    problem(await ask(svc, "o1", {"A": 2}, partner), 409, "exceeds-returnable")
    assert (await ask(svc, "o1", {"A": 1}, partner, kind="repair")).status_code == 201
    problem(await ask(svc, "o1", {"A": 1}, partner), 409, "exceeds-returnable")
    # more goods dispatched: more can come back
    assert (await dispatch(svc, dispatched["id"], {"B": 2})).status_code == 200
    assert (await ask(svc, "o1", {"B": 2}, kind="exchange")).status_code == 201
    assert [e["type"] for e in await delivery_events(svc, f"return-{body['id']}")] == [
        "ReturnRequested"]


async def test_received_returns_go_to_inspection_not_on_hand(
    svc: RunningService, orders: FakePublisher, dispatched: dict[str, Any],
) -> None:
    return_id = (await ask(svc, "o1", {"A": 3})).json()["id"]
    warehouse = await orders.issue_key("warehouse")
    problem(await receive(svc, return_id, {"A": 4}, warehouse), 409, "exceeds-requested")
    problem(await receive(svc, return_id, {"B": 1}, warehouse), 409, "exceeds-requested")
    before = (await svc.client.get("/v1/stock/A", headers=WAREHOUSE)).json()
    received = await receive(svc, return_id, {"A": 2}, warehouse)
    assert received.status_code == 200, received.text
    assert (received.json()["status"], received.json()["received_on"]) == ("received", "2026-03-10")
    assert received.json()["received_lines"] == [{"sku": "A", "qty": 2}]
    after = (await svc.client.get("/v1/stock/A", headers=WAREHOUSE)).json()
    assert after == {**before, "in_inspection": before["in_inspection"] + 2}
    problem(await receive(svc, return_id, {"A": 1}, warehouse), 409, "return-already-received")
    [_, event] = await delivery_events(svc, f"return-{return_id}")
    assert event == {"type": "ReturnReceived", "return_id": return_id, "order_id": "o1",
                     "partner_id": "ptn_a", "kind": "refund", "lines": [{"sku": "A", "qty": 2}],
                     "received_on": "2026-03-10"}
    # only what arrived counts as returned: the one A not received may be asked for again
    assert (await ask(svc, "o1", {"A": 1})).status_code == 201


async def test_only_restocked_units_serve_the_backorder_queue(
    svc: RunningService, orders: FakePublisher, dispatched: dict[str, Any],
) -> None:
    await orders.place("o2", {"A": 2})
    assert (await delivery_events(svc, "allocation-o2"))[-1]["type"] == "StockBackordered"
    return_id = (await ask(svc, "o1", {"A": 2})).json()["id"]
    assert (await receive(svc, return_id, {"A": 2})).status_code == 200
    assert (await delivery_events(svc, "allocation-o2"))[-1]["type"] == "StockBackordered"
    inspected = await inspect(svc, return_id, {"A": (1, 1)})
    assert inspected.status_code == 200, inspected.text
    assert (await delivery_events(svc, "allocation-o2"))[-1]["type"] == "StockBackordered"
    again = (await ask(svc, "o1", {"A": 1})).json()["id"]
    assert (await receive(svc, again, {"A": 1})).status_code == 200
    assert (await inspect(svc, again, {"A": (1, 0)})).status_code == 200
    assert (await delivery_events(svc, "allocation-o2"))[-1]["type"] == "StockAllocated"


async def test_return_roles_and_partner_isolation(
    svc: RunningService, orders: FakePublisher, dispatched: dict[str, Any],
) -> None:
    own = await orders.issue_key("partner", "ptn_a")
    other = await orders.issue_key("partner", "ptn_b")
    problem(await ask(svc, "o1", {"A": 1}, other), 404, "order-not-found")
    problem(await ask(svc, "nope", {"A": 1}), 404, "order-not-found")
    auditor = await orders.issue_key("auditor")
    problem(await ask(svc, "o1", {"A": 1}, auditor), 403, "forbidden")
    return_id = (await ask(svc, "o1", {"A": 1}, own)).json()["id"]
    assert (await svc.client.get(f"/v1/returns/{return_id}", headers=own)).status_code == 200
    assert (await svc.client.get(f"/v1/returns/{return_id}", headers=auditor)).status_code == 200
    problem(await svc.client.get(f"/v1/returns/{return_id}", headers=other), 404, "return-not-found")
    assert (await svc.client.get("/v1/returns", headers=other)).json()["items"] == []
    listed = (await svc.client.get("/v1/returns?order_id=o1", headers=own)).json()["items"]
    assert [r["id"] for r in listed] == [return_id]
    for key in (own, auditor, ADMIN, await orders.issue_key("sales")):
        problem(await receive(svc, return_id, {"A": 1}, key), 403, "forbidden")
    problem(await receive(svc, "ret_nope", {"A": 1}), 404, "return-not-found")


async def test_a_return_repeated_with_its_idempotency_key_is_requested_once(
    svc: RunningService, dispatched: dict[str, Any],
) -> None:
    headers = {**ADMIN, "Idempotency-Key": "ret-1"}
    first = await ask(svc, "o1", {"A": 3}, headers)
    again = await ask(svc, "o1", {"A": 3}, headers)
    assert again.status_code == 201 and again.json() == first.json()


BAD_RETURNS = [
    {"order_id": "o1", "lines": [{"sku": "A", "qty": 1}], "reason": "x", "kind": "gift"},
    {"order_id": "o1", "lines": [{"sku": "A", "qty": 0}], "reason": "x", "kind": "refund"},
    {"order_id": "o1", "lines": [], "reason": "x", "kind": "refund"},
    {"order_id": "o1", "lines": [{"sku": "A", "qty": 1}], "reason": "", "kind": "refund"},
    {"lines": [{"sku": "A", "qty": 1}], "reason": "x", "kind": "refund"},
    {"order_id": "o1", "lines": [{"sku": "A", "qty": 1}, {"sku": "A", "qty": 1}], "reason": "x",
     "kind": "refund"},
]


async def test_bad_returns_are_refused(svc: RunningService, dispatched: dict[str, Any]) -> None:
    for body in BAD_RETURNS:
        problem(await svc.client.post("/v1/returns", headers=ADMIN, json=body), 422, "validation")
    problem(await svc.client.post("/v1/returns/ret_x/receive", headers=WAREHOUSE, json={"lines": []}),
            422, "validation")
    assert (await svc.client.get("/v1/returns", headers=ADMIN)).json()["items"] == []
