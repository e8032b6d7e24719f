"""A distributor's webhook receiver over the running system, through an outage.

The receiver (a real HTTP server on a loopback port; the system runs with
``O2C_PROJECTIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP``) first refuses connections, then
answers 500, then recovers: every status of the partner's order arrives, each
exactly once after deduplication on the event id, and no other partner's event
ever reaches it. Every webhook call of another partner answers 404.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.e2e.conftest import (
    System,
    body,
    ensure_product,
    eventually,
    issue_key,
    placed_order,
    register_partner,
)
from tests.webhook_receiver import Receiver

SECRET = "whsec-e2e-0123456789abcdef"
STATUSES = ["placed", "confirmed", "approved", "shipped", "delivered"]


def order_statuses(receiver: Receiver, order_id: str) -> list[str]:
    return sorted(push["data"]["status"] for push in list(receiver.by_id.values())
                  if push["type"] == "order.status_changed" and push["data"]["order_id"] == order_id)


def test_a_receiver_gets_each_order_status_once_through_an_outage(system: System) -> None:
    terms = {"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30}
    mine, theirs = register_partner(system, tier="WH", region="wh-a", terms=terms), \
        register_partner(system, tier="WH", region="wh-b", terms=terms)
    ensure_product(system, "WH-1", list_price=1_000, stock=100)
    my_key, their_key = issue_key(system, "partner", mine["id"]), issue_key(system, "partner", theirs["id"])
    receiver = Receiver(SECRET).reserve_port()  # down: connections are refused
    bystander = Receiver(SECRET).start()
    try:
        with system.client("projections", my_key) as hooks:
            hook = body(hooks.post("/v1/webhooks", json={
                "url": receiver.url, "secret": SECRET, "events": ["order.status_changed"]}), 201)
            assert "secret" not in hook and SECRET not in hooks.get("/v1/webhooks").text
        with system.client("projections", their_key) as other:
            body(other.post("/v1/webhooks", json={
                "url": bystander.url, "secret": SECRET, "events": ["order.status_changed"]}), 201)
            for method, path in (("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
                                 ("DELETE", f"/v1/webhooks/{hook['id']}"),
                                 ("POST", f"/v1/webhooks/{hook['id']}/deliveries/whd_x/redeliver")):
                assert other.request(method, path).status_code == 404, (method, path)
            assert hook["id"] not in other.get("/v1/webhooks").text

        order = placed_order(system, my_key, partner_ref="WH-A-1", sku="WH-1", qty=2, region="wh-a")
        with system.as_role("delivery", "warehouse") as delivery:
            [shipment] = eventually(lambda: body(delivery.get(
                "/v1/shipments", params={"order_id": order["id"]}))["items"], bool, what="shipment")
            body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
                "lines": [{"sku": "WH-1", "qty": 2}], "carrier": "SF", "tracking_no": "WH1"}))
            body(delivery.post(f"/v1/shipments/{shipment['id']}/deliver", json={
                "delivered_at": f"{date.today()}T10:00:00Z", "signed_by": "Li"}))

        with system.client("projections", my_key) as hooks:
            def log() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = body(hooks.get(
                    f"/v1/webhooks/{hook['id']}/deliveries"))["items"]
                return items

            # refused: every status is queued and attempted, none delivered
            refused = eventually(log, lambda items: len(items) == len(STATUSES) and all(
                d["attempts"] >= 1 and d["last_status_code"] is None for d in items),
                what="every status attempted while the receiver refuses connections")
            assert {d["status"] for d in refused} == {"pending"}
            # then it answers 500 for a while
            receiver.failing = True
            receiver.start()
            eventually(lambda: len(receiver.pushes), lambda n: n >= 2 * len(STATUSES),
                       what="pushes retried while the receiver answers 500")
            assert receiver.by_id == {}
            # then it recovers: each status arrives, once after deduplication
            receiver.failing = False
            eventually(lambda: order_statuses(receiver, order["id"]), lambda s: s == sorted(STATUSES),
                       seconds=60, what="every order status at the recovered receiver")
            delivered = eventually(log, lambda items: {d["status"] for d in items} == {"delivered"},
                                   what="the log to show every push delivered")
        assert len(delivered) == len(STATUSES)
        assert all(d["log"][0]["status_code"] is None and d["log"][-1]["status_code"] == 204
                   for d in delivered)
        assert {push["id"] for push in receiver.pushes} == {d["event_id"] for d in delivered}
        assert all(push["partner_id"] == mine["id"] for push in receiver.pushes)
        assert all(push["partner_id"] == theirs["id"] for push in bystander.pushes)
        assert receiver.unsigned == 0
    finally:
        receiver.stop()
        bystander.stop()
