"""Reading and cancelling orders over HTTP: partner isolation, filters, roles, guarded cancel."""

from __future__ import annotations

import pytest

from libs.events.delivery import StockAllocated
from libs.events.values import SkuQty
from tests.orders.support import Publisher, add_product, place
from tests.service_support import ADMIN, RunningService


@pytest.fixture
async def two_partners(svc: RunningService, publisher: Publisher) -> dict[str, dict[str, str]]:
    await publisher.partner("p1")
    await publisher.partner("p2")
    await add_product(svc, "P-1", 1000)
    return {"p1": await publisher.key("partner", "p1"), "p2": await publisher.key("partner", "p2")}


async def test_a_partner_sees_its_own_orders_only(svc: RunningService, publisher: Publisher,
                                                  two_partners: dict[str, dict[str, str]]) -> None:
    mine = await place(svc, two_partners["p1"], ("P-1", 1))
    theirs = await place(svc, two_partners["p2"], ("P-1", 2))
    p1 = two_partners["p1"]
    other = await svc.client.get(f"/v1/orders/{theirs['id']}", headers=p1)
    assert other.status_code == 404 and "partner_id" not in other.json()
    listed = (await svc.client.get("/v1/orders?partner_id=p2", headers=p1)).json()
    assert [o["id"] for o in listed["items"]] == [mine["id"]]
    cancel = await svc.client.post(f"/v1/orders/{theirs['id']}/cancel", json={"reason": "x"},
                                   headers=p1)
    assert cancel.status_code == 404
    assert (await svc.client.get(f"/v1/orders/{theirs['id']}", headers=ADMIN)).json()["status"] == "placed"
    for role in ("finance", "warehouse", "auditor", "sales"):
        staff = await publisher.key(role)
        everything = (await svc.client.get("/v1/orders", headers=staff)).json()["items"]
        assert {o["id"] for o in everything} == {mine["id"], theirs["id"]}, role


async def test_orders_are_listed_by_partner_and_status(svc: RunningService, publisher: Publisher,
                                                       two_partners: dict[str, dict[str, str]]) -> None:
    first = await place(svc, two_partners["p1"], ("P-1", 1))
    second = await place(svc, two_partners["p1"], ("P-1", 2))
    await place(svc, two_partners["p2"], ("P-1", 3))
    await publisher.emit("allocation-1", StockAllocated(order_id=first["id"],
                                                        lines=[SkuQty(sku="P-1", qty=1)]))
    by_partner = (await svc.client.get("/v1/orders?partner_id=p1", headers=ADMIN)).json()["items"]
    assert {o["id"] for o in by_partner} == {first["id"], second["id"]}
    confirmed = (await svc.client.get("/v1/orders?status=confirmed", headers=ADMIN)).json()["items"]
    assert [o["id"] for o in confirmed] == [first["id"]]
    placed = (await svc.client.get("/v1/orders?partner_id=p1&status=placed",
                                   headers=two_partners["p1"])).json()["items"]
    assert [o["id"] for o in placed] == [second["id"]]
    page = (await svc.client.get("/v1/orders?limit=2", headers=ADMIN)).json()
    rest = (await svc.client.get(f"/v1/orders?limit=2&cursor={page['next_cursor']}",
                                 headers=ADMIN)).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    for query in ("status=lost", "limit=0", "limit=1000", "cursor=_w"):
        assert (await svc.client.get(f"/v1/orders?{query}", headers=ADMIN)).status_code == 422, query
    missing = await svc.client.get("/v1/orders/ord_nothing", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/order-not-found")


async def test_an_order_is_cancelled_before_any_shipment(svc: RunningService, publisher: Publisher,
                                                         two_partners: dict[str, dict[str, str]]) -> None:
    order = await place(svc, two_partners["p1"], ("P-1", 1))
    url = f"/v1/orders/{order['id']}/cancel"
    for role in ("finance", "warehouse", "auditor"):
        refused = await svc.client.post(url, json={"reason": "x"}, headers=await publisher.key(role))
        assert refused.status_code == 403, role
    assert (await svc.client.post(url, json={"reason": ""}, headers=ADMIN)).status_code == 422
    assert (await svc.client.post(url, json={}, headers=ADMIN)).status_code == 422
    cancelled = await svc.client.post(url, json={"reason": "changed mind"}, headers=two_partners["p1"])
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "changed mind"
    assert [h["status"] for h in body["history"]] == ["placed", "cancelled"]
    again = await svc.client.post(url, json={"reason": "again"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["type"].endswith("/order-not-cancellable")
    events = await svc.ctx.store.load(f"order-{order['id']}")
    assert [e.event_type for e in events] == ["OrderPlaced", "OrderCancelled"]
    assert events[1].payload() == {"order_id": order["id"], "partner_id": "p1", "reason": "changed mind"}
    unknown = await svc.client.post("/v1/orders/ord_nothing/cancel", json={"reason": "x"},
                                    headers=ADMIN)
    assert unknown.status_code == 404


async def test_staff_cancel_on_a_partners_behalf(svc: RunningService, publisher: Publisher,
                                                 two_partners: dict[str, dict[str, str]]) -> None:
    order = await place(svc, two_partners["p2"], ("P-1", 1))
    sales = await publisher.key("sales")
    response = await svc.client.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "phone call"},
                                     headers=sales)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
