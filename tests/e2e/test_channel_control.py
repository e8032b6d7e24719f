"""Price-change notices and deal registration (报备) through the running system.

- Tier CHN: a price-list version published ten days ahead notifies both partners of the
  tier; the first acknowledges before it takes effect, the second shows in sales' list of
  unacknowledged notices. A version three days ahead is refused without an override reason.
- The first partner registers a deal for an end customer; the second partner's registration
  for the same customer (spelt differently) and product is refused and recorded: sales sees
  it among the refused deals, the partners service counts it as a violation. Approved at
  8_500 (list 10_000, minimum 8_000), the deal prices the order that cites it, and the order's
  timeline and the partner 360 show the deal.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx

from tests.e2e.conftest import System, body, eventually, issue_key, register_partner

TIER = "CHN"


def test_price_notices_and_deal_registration(system: System) -> None:
    today = date.today()
    sku = f"CHN-{uuid.uuid4().hex[:6]}"
    customer = f"Harbour Water Works {uuid.uuid4().hex[:6]}"
    first = register_partner(system, tier=TIER, region="chn-east", terms={"kind": "prepaid"})
    second = register_partner(system, tier=TIER, region="chn-east", terms={"kind": "prepaid"})
    p1, p2 = issue_key(system, "partner", first["id"]), issue_key(system, "partner", second["id"])
    sales = issue_key(system, "sales")

    with system.client("orders", sales) as orders:
        body(orders.post("/v1/products", json={"sku": sku, "name": "Pump", "category": "pumps",
                                               "list_price_minor": 10_000, "min_price_minor": 8_000}), 201)
        body(orders.put(f"/v1/price-lists/{TIER}", json={
            "effective_from": str(today), "discount_bp": 500, "override_reason": "launch prices"}))
    for key in (p1, p2):  # a partner reads its tier's prices once orders knows the partner
        with system.client("orders", key) as own:
            eventually(lambda c=own: body(c.get("/v1/price-lists"))["items"], bool,
                       what="orders to know the partner's tier")

    # -- a price change needs notice; each partner of the tier is notified -------------------
    effective = today + timedelta(days=10)
    with system.client("orders", sales) as orders:
        short = orders.put(f"/v1/price-lists/{TIER}", json={
            "effective_from": str(today + timedelta(days=3)), "discount_bp": 800})
        assert short.status_code == 422 and short.json()["type"].endswith("/short-notice")
        version = body(orders.put(f"/v1/price-lists/{TIER}", json={
            "effective_from": str(effective), "discount_bp": 800}))
        assert version["notices_sent"] == 2
    with system.client("orders", p1) as own:
        [notice] = body(own.get("/v1/price-notices", params={"tier": TIER}))["items"]
        assert (notice["version"], notice["effective_from"]) == (version["version"], str(effective))
        acked = body(own.post(f"/v1/price-notices/{notice['id']}/acknowledge"))
        assert acked["status"] == "acknowledged" and acked["acknowledged_at"][:10] < str(effective)
    with system.client("orders", p2) as other:
        assert other.post(f"/v1/price-notices/{notice['id']}/acknowledge").status_code == 404
    with system.client("orders", sales) as orders:
        waiting = body(orders.get("/v1/price-notices", params={
            "tier": TIER, "version": version["version"], "acknowledged": "false"}))["items"]
        assert [n["partner_id"] for n in waiting] == [second["id"]]

    # -- deal registration: the second partner's is refused and recorded ---------------------
    with system.client("orders", p1) as own:
        deal = body(own.post("/v1/deals", json={
            "end_customer": customer, "lines": [{"sku": sku, "qty": 40}],
            "expires_on": str(today + timedelta(days=30))}), 201)
        assert deal["status"] == "pending"
    with system.client("orders", p2) as other:
        refused = other.post("/v1/deals", json={
            "end_customer": f"  {customer.upper()} ", "lines": [{"sku": sku, "qty": 5}],
            "expires_on": str(today + timedelta(days=20))})
        assert refused.status_code == 409 and refused.json()["type"].endswith("/deal-conflict")
        assert other.get(f"/v1/deals/{deal['id']}").status_code == 404
    with system.client("orders", sales) as orders:
        conflicts = body(orders.get("/v1/deals", params={"status": "refused",
                                                         "partner_id": second["id"]}))["items"]
        assert [c["conflict"]["deal_id"] for c in conflicts] == [deal["id"]]
        approved = body(orders.post(f"/v1/deals/{deal['id']}/approve", json={
            "lines": [{"sku": sku, "unit_price_minor": 8_500}]}))
        assert approved["status"] == "approved"
    with system.client("partners", sales) as partners:
        violations = eventually(
            lambda: body(partners.get(f"/v1/partners/{second['id']}"))["violations"], bool,
            what="the channel conflict to count against the second partner")
        assert [(v["kind"], v["skus"]) for v in violations] == [("deal_conflict", [sku])]

    # -- the approved deal prices the order that cites it ------------------------------------
    with system.client("orders", p1) as own:
        order = body(own.post("/v1/orders", json={
            "partner_ref": "PO-DEAL", "lines": [{"sku": sku, "qty": 4}],
            "ship_to": {"region": "chn-east"}, "deal_id": deal["id"]}), 201)
        [line] = order["lines"]
        assert (line["unit_price_minor"], line["line_total_minor"]) == (8_500, 34_000)
        assert (order["deal_id"], order["price_list_version"]) == (deal["id"], None)
        plain = body(own.post("/v1/orders", json={
            "partner_ref": "PO-PLAIN", "lines": [{"sku": sku, "qty": 1}],
            "ship_to": {"region": "chn-east"}}), 201)
        assert (plain["lines"][0]["unit_price_minor"], plain["price_list_version"]) \
            == (9_500, version["version"] - 1)  # the version in effect today
    with system.client("projections", p1) as views:
        def types(answer: httpx.Response) -> list[str]:
            return [e["type"] for e in answer.json()["events"]] if answer.status_code == 200 else []

        timeline = types(eventually(
            lambda: views.get(f"/v1/views/orders/{order['id']}/timeline"),
            lambda answer: {"DealApproved", "OrderPlaced"} <= set(types(answer)),
            what="the deal on the order's timeline"))
        assert timeline.index("DealRegistered") < timeline.index("DealApproved") \
            < timeline.index("OrderPlaced")
        seen = eventually(lambda: views.get(f"/v1/views/partners/{first['id']}"),
                          lambda a: a.status_code == 200 and a.json()["deals"]["count"] == 1,
                          what="the deal in the 360")
        assert seen.json()["deals"]["by_status"] == {"approved": 1}
