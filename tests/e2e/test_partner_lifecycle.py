"""The partner lifecycle reaches its open orders, over HTTP on the running system.

Figures (minor units): one sku per test at 1_000 a unit (tier list price, no discount).

Termination, partner T (credit, limit 1_000_000), sku stock 10:
- A: 2 units, approved, shipment pending               -> cancelled, 2 units back
- B: 3 units, approved, 1 dispatched (invoice 1_000)    -> remainder cancelled, 2 units back
- C: 1 unit, approved, dispatched (invoice 1_000)       -> stays shipped
- D: 20 units, backordered                             -> cancelled, leaves the queue
  exposure before = open invoices 2_000 + A 2_000 + B's uninvoiced 2_000 = 6_000; after = 2_000.
  stock: on hand 10 - 2 dispatched = 8; allocated 2 + 2 (A, B's rest) -> 0.

Suspension, partner S (credit, limit 1_000_000): E (1 unit) is backordered, S is suspended,
stock arrives -> E is confirmed and held at funds review (``partner_suspended``); finance
cannot release it; reinstating S approves it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from libs.events.topics import topic_for
from tests.e2e.conftest import System, body, eventually, register_partner

CREDIT = {"kind": "credit", "credit_limit_minor": 1_000_000, "term_days": 30}


def new_sku(system: System, stock: int) -> str:
    sku = f"LC-{uuid.uuid4().hex[:8]}"
    with system.as_role("orders", "sales") as orders:
        body(orders.post("/v1/products", json={"sku": sku, "name": sku, "category": "misc",
                                               "list_price_minor": 1_000}), 201)
    if stock:
        receive(system, sku, stock)
    return sku


def receive(system: System, sku: str, qty: int) -> None:
    with system.as_role("delivery", "warehouse") as delivery:
        body(delivery.post("/v1/stock/receipts", json={"sku": sku, "qty": qty,
                                                       "reference": uuid.uuid4().hex}), 201)


def place(system: System, partner_id: str, sku: str, qty: int) -> str:
    with system.client("orders") as orders:
        placed = eventually(lambda: orders.post("/v1/orders", json={
            "partner_id": partner_id, "partner_ref": uuid.uuid4().hex[:8],
            "lines": [{"sku": sku, "qty": qty}], "ship_to": {"region": "east"}}),
            lambda r: r.status_code == 201, what="orders to know the partner and the price list")
    return str(placed.json()["id"])


def order(system: System, order_id: str) -> dict[str, Any]:
    with system.client("orders") as orders:
        return dict(body(orders.get(f"/v1/orders/{order_id}")))


def wait_status(system: System, order_id: str, status: str) -> dict[str, Any]:
    return eventually(lambda: order(system, order_id), lambda o: o["status"] == status,
                      what=f"order {order_id} to become {status}")


def shipment_of(system: System, order_id: str) -> dict[str, Any]:
    with system.client("delivery") as delivery:
        items = eventually(
            lambda: body(delivery.get("/v1/shipments", params={"order_id": order_id}))["items"],
            bool, what=f"a shipment for {order_id}")
    return dict(items[0])


def dispatch(system: System, shipment_id: str, sku: str, qty: int) -> Any:
    with system.as_role("delivery", "warehouse") as delivery:
        return delivery.post(f"/v1/shipments/{shipment_id}/dispatch", json={
            "lines": [{"sku": sku, "qty": qty}], "carrier": "SF", "tracking_no": uuid.uuid4().hex[:10]})


def stock(system: System, sku: str) -> dict[str, Any]:
    with system.as_role("delivery", "warehouse") as delivery:
        return dict(body(delivery.get(f"/v1/stock/{sku}")))


def account(system: System, partner_id: str) -> dict[str, Any]:
    with system.as_role("credit", "finance") as credit:
        return dict(body(credit.get(f"/v1/accounts/{partner_id}")))


def timeline(system: System, order_id: str, event_type: str) -> list[dict[str, Any]]:
    with system.client("projections") as projections:
        found = eventually(
            lambda: body(projections.get(f"/v1/views/orders/{order_id}/timeline"))["events"],
            lambda events: any(e["type"] == event_type for e in events),
            what=f"{event_type} on the timeline of {order_id}")
    return [e for e in found if e["type"] == event_type]


def duplicates_seen(system: System, service: str) -> int:
    """How many events ``service``'s consumer recognised as already handled (its /metrics)."""
    with system.ops(service) as client:
        text = client.get("/metrics").text
    found = re.search(r'o2c_consumer_events_total\{[^}]*outcome="duplicate"[^}]*\} ([0-9.e+]+)', text)
    return int(float(found.group(1))) if found else 0


def redeliver(system: System, service: str, event_id: str) -> None:
    """Publish again, through the broker, the very message ``service``'s relay published for
    ``event_id`` (same key, partition, headers and bytes): an at-least-once redelivery."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> None:
        topic = topic_for(service)
        reader = AIOKafkaConsumer(topic, bootstrap_servers=system.supervisor.bootstrap,
                                  auto_offset_reset="earliest", enable_auto_commit=False)
        await reader.start()
        try:
            found = None
            while found is None:
                batches = await asyncio.wait_for(reader.getmany(timeout_ms=1_000), 20)
                found = next((m for messages in batches.values() for m in messages
                              if dict(m.headers).get("event_id") == event_id.encode()), None)
        finally:
            await reader.stop()
        writer = AIOKafkaProducer(bootstrap_servers=system.supervisor.bootstrap, acks="all")
        await writer.start()
        try:
            await writer.send_and_wait(topic, value=found.value, key=found.key, partition=found.partition,
                                       headers=list(found.headers))
        finally:
            await writer.stop()

    asyncio.run(run())


def test_terminating_a_partner_cancels_its_unshipped_orders_and_releases_stock_and_exposure(
        system: System) -> None:
    partner = register_partner(system, tier="LC", region="east", terms=CREDIT)["id"]
    sku = new_sku(system, 10)
    a, b, c = (place(system, partner, sku, qty) for qty in (2, 3, 1))
    for approved in (a, b, c):
        wait_status(system, approved, "approved")
    body(dispatch(system, shipment_of(system, b)["id"], sku, 1))
    body(dispatch(system, shipment_of(system, c)["id"], sku, 1))
    d = place(system, partner, sku, 20)
    wait_status(system, b, "partially_shipped")
    wait_status(system, c, "shipped")
    wait_status(system, d, "backordered")
    eventually(lambda: account(system, partner)["open_invoices_minor"], lambda v: v == 2_000,
               what="both invoices at credit")
    assert account(system, partner)["exposure_minor"] == 6_000
    assert (stock(system, sku)["on_hand"], stock(system, sku)["allocated"]) == (8, 4)

    with system.as_role("partners", "sales") as partners:
        assert body(partners.post(f"/v1/partners/{partner}/terminate",
                                  json={"reason": "breach of contract"}))["status"] == "terminated"

    reason = "partner terminated: breach of contract"
    for cancelled in (a, b, d):
        closed = wait_status(system, cancelled, "cancelled")
        assert closed["cancel_reason"] == reason
        [event] = timeline(system, cancelled, "OrderCancelled")
        assert event["data"]["reason"] == reason
        [cause] = timeline(system, cancelled, "PartnerTerminated")  # the termination itself shows too
        assert event["causation_id"] == cause["event_id"]
    assert [line["shipped_qty"] for line in order(system, b)["lines"]] == [1]
    assert order(system, c)["status"] == "shipped"

    # stock: the allocations of A and of B's remainder are back; nothing left on hand
    released = eventually(lambda: stock(system, sku), lambda s: s["allocated"] == 0,
                          what="the stock of the cancelled orders to be released")
    assert (released["on_hand"], released["available"]) == (8, 8)
    for cancelled in (a, b):
        shipment = eventually(lambda o=cancelled: shipment_of(system, o),
                              lambda s: s["status"] == "cancelled", what="the shipment to be cancelled")
        refused = dispatch(system, shipment["id"], sku, 1)
        assert refused.status_code == 409 and refused.json()["type"].endswith("/shipment-cancelled")

    # exposure: only the two invoices remain
    after = eventually(lambda: account(system, partner), lambda acc: acc["exposure_minor"] == 2_000,
                       what="credit to release the cancelled orders' exposure")
    assert after["open_invoices_minor"] == 2_000 and after["queued_orders"] == []
    with system.client("projections") as projections:
        view = eventually(lambda: body(projections.get(f"/v1/views/partners/{partner}")),
                          lambda v: v["orders"]["by_status"] == {"cancelled": 3, "shipped": 1},
                          what="the partner 360 to see the cancellations")
        assert (view["status"], view["exposure_minor"]) == ("terminated", 2_000)

    # the termination delivered again through the broker: every consumer knows it, nothing doubles
    [termination] = timeline(system, a, "PartnerTerminated")
    before = {service: duplicates_seen(system, service) for service in ("orders", "credit", "projections")}
    redeliver(system, "partners", termination["event_id"])
    for service, seen in before.items():
        eventually(lambda s=service: duplicates_seen(system, s), lambda n, seen=seen: n > seen,
                   what=f"{service} to see the termination again")
    for cancelled in (a, b, d):
        assert len(timeline(system, cancelled, "OrderCancelled")) == 1
        assert [h["event"] for h in order(system, cancelled)["history"]].count("OrderCancelled") == 1
    assert (stock(system, sku)["on_hand"], stock(system, sku)["allocated"]) == (8, 0)
    again = account(system, partner)
    assert (again["exposure_minor"], again["open_invoices_minor"]) == (2_000, 2_000)


def test_suspending_a_partner_holds_its_orders_at_funds_review_until_it_is_reinstated(
        system: System) -> None:
    partner = register_partner(system, tier="LC", region="east", terms=CREDIT)["id"]
    sku = new_sku(system, 0)
    receive(system, sku, 1)
    e = place(system, partner, sku, 2)
    wait_status(system, e, "backordered")

    with system.as_role("partners", "sales") as partners:
        body(partners.post(f"/v1/partners/{partner}/suspend", json={"reason": "audit"}))
    eventually(lambda: account(system, partner)["suspended"], bool, what="credit to know the suspension")
    receive(system, sku, 1)
    held = wait_status(system, e, "credit_hold")
    assert held["hold_reason"] == "partner_suspended"
    [hold] = timeline(system, e, "OrderPutOnHold")
    assert hold["data"]["reason"] == "partner_suspended"
    assert account(system, partner)["queued_orders"] == [
        {"order_id": e, "status": "held", "amount_minor": 2_000, "hold_reason": "partner_suspended"}]
    with system.as_role("credit", "finance") as credit:
        refused = credit.post(f"/v1/holds/{e}/release", json={"reason": "sales asked"})
    assert refused.status_code == 409 and refused.json()["type"].endswith("/partner-suspended")

    with system.as_role("partners", "sales") as partners:
        assert body(partners.post(f"/v1/partners/{partner}/reinstate"))["status"] == "active"
    wait_status(system, e, "approved")
    [released] = timeline(system, e, "HoldReleased")
    assert released["data"]["reason"] == "partner reinstated"
    [cause] = timeline(system, e, "PartnerReinstated")
    assert released["causation_id"] == cause["event_id"]
    assert [h["status"] for h in order(system, e)["history"]] == [
        "placed", "backordered", "confirmed", "credit_hold", "approved"]
    final = account(system, partner)
    assert (final["suspended"], final["exposure_minor"], final["queued_orders"]) == (False, 2_000, [])
