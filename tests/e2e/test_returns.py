"""Returns of every kind through the running system: stock, shipments, money and the timeline.

Figures (minor units): RET-1 lists at 1_000. The partner orders 6, 5 are dispatched
(invoice 5_000), then:
- an exchange of 1: received into inspection (on hand unchanged), scrapped, and a replacement
  ships from available stock: no invoice, no credit note;
- a repair of 1: repaired and shipped back from the inspection location: no money moves;
- a refund of 1: a credit note of 1_000; restocked, it becomes sellable again.
The last unit of the order then ships as a sale: invoice 1_000. Two invoices in all.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import (
    System,
    body,
    ensure_product,
    eventually,
    issue_key,
    placed_order,
    register_partner,
)


def level(delivery: httpx.Client) -> dict[str, Any]:
    return body(delivery.get("/v1/stock/RET-1"))


def receive_and_inspect(system: System, delivery: httpx.Client, partner_key: str, order_id: str,
                        kind: str, outcome: dict[str, int]) -> dict[str, Any]:
    """Ask (as the partner), receive and inspect a return of one RET-1; check on hand held still."""
    with system.client("delivery", partner_key) as own:
        asked = body(own.post("/v1/returns", json={
            "order_id": order_id, "lines": [{"sku": "RET-1", "qty": 1}], "reason": "faulty",
            "kind": kind}), 201)
    before = level(delivery)
    body(delivery.post(f"/v1/returns/{asked['id']}/receive", json={"lines": [{"sku": "RET-1", "qty": 1}]}))
    assert level(delivery) == {**before, "in_inspection": before["in_inspection"] + 1}
    return body(delivery.post(f"/v1/returns/{asked['id']}/inspect",
                              json={"lines": [{"sku": "RET-1", **outcome}]}))


def test_returns_of_every_kind(system: System) -> None:
    partner = register_partner(system, tier="RET", region="ret-east",
                               terms={"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30})
    ensure_product(system, "RET-1", list_price=1_000, stock=20)
    key = issue_key(system, "partner", partner["id"])
    other = issue_key(system, "partner", register_partner(
        system, tier="RET", region="ret-west", terms={"kind": "prepaid"})["id"])
    order = placed_order(system, key, partner_ref="RET-1", sku="RET-1", qty=6, region="ret-east")
    with system.as_role("delivery", "warehouse") as delivery:
        [sale] = eventually(lambda: body(delivery.get(
            "/v1/shipments", params={"order_id": order["id"]}))["items"], bool, what="its shipment")
        body(delivery.post(f"/v1/shipments/{sale['id']}/dispatch", json={
            "lines": [{"sku": "RET-1", "qty": 5}], "carrier": "SF", "tracking_no": "S1"}))
        start = level(delivery)

        exchange = receive_and_inspect(system, delivery, key, order["id"], "exchange", {"scrap": 1})
        [replacement] = exchange["shipment_ids"]
        body(delivery.post(f"/v1/shipments/{replacement}/dispatch", json={
            "lines": [{"sku": "RET-1", "qty": 1}], "carrier": "SF", "tracking_no": "X1"}))
        repair = receive_and_inspect(system, delivery, key, order["id"], "repair", {"repaired": 1})
        [repaired] = repair["shipment_ids"]
        assert level(delivery)["in_inspection"] == start["in_inspection"] + 1
        body(delivery.post(f"/v1/shipments/{repaired}/dispatch", json={
            "lines": [{"sku": "RET-1", "qty": 1}], "carrier": "SF", "tracking_no": "R1"}))
        # the replacement left available stock; the repaired unit was never stock
        assert level(delivery) == {**start, "on_hand": start["on_hand"] - 1,
                                   "available": start["available"] - 1}
        refund = receive_and_inspect(system, delivery, key, order["id"], "refund", {"restock": 1})
        assert level(delivery) == start
        body(delivery.post(f"/v1/shipments/{sale['id']}/dispatch", json={
            "lines": [{"sku": "RET-1", "qty": 1}], "carrier": "SF", "tracking_no": "S2"}))

    with system.client("delivery", key) as own:
        followed = {r["kind"]: r for r in body(own.get(
            "/v1/returns", params={"order_id": order["id"]}))["items"]}
        assert {kind: r["status"] for kind, r in followed.items()} == {
            "exchange": "replacement_shipped", "repair": "repaired_shipped", "refund": "inspected"}
        assert followed["exchange"]["goods_dispatched"][0]["tracking_no"] == "X1"
        assert body(own.get(f"/v1/shipments/{repaired}"))["purpose"] == "repair"
    with system.client("delivery", other) as stranger:
        assert stranger.get(f"/v1/returns/{exchange['id']}").status_code == 404

    with system.as_role("credit", "finance") as credit:
        invoices = eventually(lambda: body(credit.get("/v1/invoices", params={
            "partner_id": partner["id"]}))["items"], lambda items: len(items) >= 2,
            what="the second sale dispatch invoiced")
        notes = eventually(lambda: body(credit.get("/v1/credit-notes", params={
            "partner_id": partner["id"]}))["items"], bool, what="the refund's credit note")
        assert sorted(i["total_minor"] for i in invoices) == [1_000, 5_000]
        assert [(n["amount_minor"], n["source_ref"]) for n in notes] == [(1_000, refund["id"])]

    with system.client("orders", key) as orders:
        eventually(lambda: body(orders.get(f"/v1/orders/{order['id']}"))["status"],
                   lambda s: s == "shipped", what="the order shipped by its sale dispatches alone")
    with system.client("projections", key) as projections:
        wanted = {"ReturnRequested", "ReturnReceived", "ReturnInspected", "ReturnGoodsDispatched"}
        timeline = eventually(
            lambda: body(projections.get(f"/v1/views/orders/{order['id']}/timeline")),
            lambda t: sum(e["type"] == "ReturnGoodsDispatched" for e in t["events"]) == 2
            and sum(e["type"] == "ReturnInspected" for e in t["events"]) == 3,
            what="the returns on the order's timeline")
        types = [e["type"] for e in timeline["events"]]
        assert wanted <= set(types)
        purposes = [e["data"]["purpose"] for e in timeline["events"] if e["type"] == "ShipmentCreated"]
        assert sorted(purposes) == ["repair", "replacement", "sale"]
