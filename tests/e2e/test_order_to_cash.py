"""One walk through the whole chain over HTTP: order, confirm, fund, ship, reconcile, rebate.

Figures (minor units, CNY):
- TV-55 lists at 10_000, SB-01 at 2_500. Tier A: 10% off (1_000 bp), SB-01 overridden
  to 2_000. Tier B: 3.33% off (333 bp): TV-55 10_000 - 333 = 9_667, SB-01
  2_500 - round_half_up(83.25) = 2_417.
- P1 (credit, tier A, limit 1_000_000, 30 days). O1 = 10 x 9_000 + 5 x 2_000 = 100_000,
  approved. O2 = 101 x 9_000 = 909_000: exposure would be 1_009_000 > limit -> held,
  released by finance.
- P2 (prepaid, tier B). O3 = 2 x 9_667 + 1 x 2_417 = 21_751 -> awaiting funds until
  a payment of 21_751 arrives.
- O1 ships in two parts: 6 x TV-55 = 54_000, then 4 x TV-55 + 5 x SB-01 = 46_000.
  P1 pays 60_000: invoice 1 paid, 6_000 on invoice 2.
- Rebate program (tier A, invoiced basis, retroactive 1% from 0, 2% from 50_000):
  P1's invoiced 100_000 reaches 2% -> 2_000, paid as a credit note.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.e2e.conftest import System, body, eventually, issue_key


def order_status(system: System, order_id: str) -> str:
    with system.client("orders") as orders:
        return body(orders.get(f"/v1/orders/{order_id}"))["status"]


def wait_status(system: System, order_id: str, status: str) -> None:
    eventually(lambda: order_status(system, order_id), lambda s: s == status,
               what=f"order {order_id} to become {status}")


def test_order_to_cash_end_to_end(system: System) -> None:
    today = date.today()
    sales = issue_key(system, "sales")
    finance1 = issue_key(system, "finance")
    finance2 = issue_key(system, "finance")
    warehouse = issue_key(system, "warehouse")

    # -- partners, agreements, partner keys --------------------------------------------
    with system.client("partners", sales) as partners:
        p1 = body(partners.post("/v1/partners", json={
            "name": "East Distribution", "legal_id": "91310000E2E0001", "kind": "distributor",
            "tier": "A", "region": "east", "territories": ["east", "north"],
            "payment_terms": {"kind": "credit", "credit_limit_minor": 1_000_000, "term_days": 30},
        }), 201)
        p2 = body(partners.post("/v1/partners", json={
            "name": "South Reseller", "legal_id": "91440000E2E0002", "kind": "reseller",
            "tier": "B", "region": "south", "territories": ["south"],
            "payment_terms": {"kind": "prepaid"},
        }), 201)
        assert p1["status"] == "applied"
        assert body(partners.post(f"/v1/partners/{p1['id']}/agreements", json={
            "kind": "annual", "starts_on": str(today - timedelta(days=1)),
            "ends_on": str(today + timedelta(days=364)), "annual_target_minor": 50_000_000,
        }), 201)["status"] == "active"
        assert body(partners.post(f"/v1/partners/{p2['id']}/agreements", json={
            "kind": "trial", "starts_on": str(today), "ends_on": str(today + timedelta(days=90)),
        }), 201)["status"] == "trial"
    p1_key = issue_key(system, "partner", p1["id"])
    p2_key = issue_key(system, "partner", p2["id"])

    # -- catalog, tier prices, stock, rebate program ---------------------------------
    with system.client("orders", sales) as orders:
        body(orders.post("/v1/products", json={"sku": "TV-55", "name": "TV 55 inch",
                                               "category": "tv", "list_price_minor": 10_000,
                                               "min_price_minor": 8_000}), 201)
        body(orders.post("/v1/products", json={"sku": "SB-01", "name": "Soundbar",
                                               "category": "audio", "list_price_minor": 2_500}), 201)
        body(orders.put("/v1/price-lists/A", json={
            "effective_from": str(today), "discount_bp": 1_000, "override_reason": "launch prices",
            "overrides": [{"sku": "SB-01", "unit_price_minor": 2_000}]}))
        body(orders.put("/v1/price-lists/B", json={"effective_from": str(today),
                                                   "discount_bp": 333,
                                                   "override_reason": "launch prices"}))
    with system.client("delivery", warehouse) as delivery:
        body(delivery.post("/v1/stock/receipts", json={"sku": "TV-55", "qty": 300,
                                                       "reference": "GRN-1"}), 201)
        body(delivery.post("/v1/stock/receipts", json={"sku": "SB-01", "qty": 50,
                                                       "reference": "GRN-2"}), 201)
    with system.client("rebates", finance1) as rebates:
        program = body(rebates.post("/v1/programs", json={
            "name": "Tier A volume", "starts_on": str(today - timedelta(days=1)),
            "ends_on": str(today + timedelta(days=30)), "basis": "invoiced",
            "mode": "retroactive", "tiers": [{"from_minor": 0, "rate_bp": 100},
                                             {"from_minor": 50_000, "rate_bp": 200}],
            "eligibility": {"tiers": ["A"]}}), 201)

    # the partners' registrations reach orders asynchronously
    with system.client("orders", p1_key) as orders:
        def place(payload: dict[str, Any], key: str | None = None) -> Any:
            return orders.post("/v1/orders", json=payload,
                               headers={"Idempotency-Key": key} if key else {})

        o1_request = {"partner_ref": "PO-1", "lines": [{"sku": "TV-55", "qty": 10},
                                                       {"sku": "SB-01", "qty": 5}],
                      "ship_to": {"region": "east", "address": "1 Bund Rd"}}
        first = eventually(lambda: place(o1_request, "po-1"), lambda r: r.status_code == 201,
                           what="orders to know partner P1")
        o1 = first.json()
        assert [(ln["sku"], ln["unit_price_minor"], ln["line_total_minor"]) for ln in o1["lines"]] \
            == [("TV-55", 9_000, 90_000), ("SB-01", 2_000, 10_000)]
        assert o1["total_minor"] == 100_000 and o1["currency"] == "CNY"
        again = place(o1_request, "po-1")  # an idempotent retry
        assert again.status_code == 201 and again.json() == o1

        refused = place({"partner_ref": "PO-X", "lines": [{"sku": "TV-55", "qty": 1}],
                         "ship_to": {"region": "west"}})
        assert refused.status_code == 422
        assert refused.json()["type"].endswith("/territory-violation")

        # orders are separate streams (separate partitions): funds review follows arrival
        # at credit, so O2 is placed once O1 holds its part of the limit
        wait_status(system, o1["id"], "approved")
        o2 = body(place({"partner_ref": "PO-2", "lines": [{"sku": "TV-55", "qty": 101}],
                         "ship_to": {"region": "north"}}), 201)
        assert o2["total_minor"] == 909_000
    wait_status(system, o2["id"], "credit_hold")

    with system.client("credit", finance1) as credit:
        body(credit.post(f"/v1/holds/{o2['id']}/release",
                         json={"reason": "Q4 stocking agreed with sales"}))
    wait_status(system, o2["id"], "approved")

    # -- prepaid partner: waits for its money ----------------------------------------
    with system.client("orders", p2_key) as orders:
        o3 = eventually(lambda: orders.post("/v1/orders", json={
            "partner_ref": "S-1", "lines": [{"sku": "TV-55", "qty": 2}, {"sku": "SB-01", "qty": 1}],
            "ship_to": {"region": "south"}}), lambda r: r.status_code == 201,
            what="orders to know partner P2").json()
    assert [ln["unit_price_minor"] for ln in o3["lines"]] == [9_667, 2_417]
    assert o3["total_minor"] == 21_751
    wait_status(system, o3["id"], "awaiting_funds")
    with system.client("credit", finance1) as credit:
        body(credit.post("/v1/payments", json={
            "partner_id": p2["id"], "amount_minor": 21_751, "bank_ref": "BANK-P2-1",
            "received_on": str(today)}), 201)
    wait_status(system, o3["id"], "approved")

    # -- ship O1 in two parts --------------------------------------------------------
    with system.client("delivery", warehouse) as delivery:
        shipment = eventually(
            lambda: body(delivery.get("/v1/shipments", params={"order_id": o1["id"]}))["items"],
            lambda items: len(items) == 1, what="O1's shipment")[0]
        body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": "TV-55", "qty": 6}], "carrier": "SF", "tracking_no": "SF1"}))
        wait_status(system, o1["id"], "partially_shipped")
        too_many = delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": "TV-55", "qty": 5}], "carrier": "SF", "tracking_no": "SF2"})
        assert too_many.status_code == 409
        body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": "TV-55", "qty": 4}, {"sku": "SB-01", "qty": 5}],
            "carrier": "SF", "tracking_no": "SF3"}))
        wait_status(system, o1["id"], "shipped")
        body(delivery.post(f"/v1/shipments/{shipment['id']}/deliver", json={
            "delivered_at": f"{today}T10:00:00Z", "signed_by": "Wang"}))
        wait_status(system, o1["id"], "delivered")

    # -- invoices, payment, account ---------------------------------------------------
    due = str(today + timedelta(days=30))
    with system.client("credit", finance1) as credit:
        invoices = eventually(
            lambda: body(credit.get("/v1/invoices", params={"partner_id": p1["id"]}))["items"],
            lambda items: len(items) == 2, what="two invoices for O1")
        invoices.sort(key=lambda i: i["total_minor"], reverse=True)
        assert [(i["order_id"], i["total_minor"], i["due_on"], i["status"]) for i in invoices] \
            == [(o1["id"], 54_000, due, "open"), (o1["id"], 46_000, due, "open")]
        body(credit.post("/v1/payments", json={
            "partner_id": p1["id"], "amount_minor": 60_000, "bank_ref": "BANK-P1-1",
            "received_on": str(today)}), 201)
        repeat = credit.post("/v1/payments", json={
            "partner_id": p1["id"], "amount_minor": 60_000, "bank_ref": "BANK-P1-1",
            "received_on": str(today)})
        assert repeat.status_code == 409
        for received_on, words in ((today + timedelta(days=1), "after today"),
                                   (today - timedelta(days=1), "before the account")):
            refused = credit.post("/v1/payments", json={
                "partner_id": p1["id"], "amount_minor": 1_000, "bank_ref": f"BANK-P1-{received_on}",
                "received_on": str(received_on)})
            assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
            assert refused.json()["type"].endswith("/bad-received-on")
        paid = {i["total_minor"]: i for i in body(credit.get(
            "/v1/invoices", params={"partner_id": p1["id"]}))["items"]}
        assert (paid[54_000]["status"], paid[54_000]["paid_minor"], paid[54_000]["on_time"]) \
            == ("paid", 54_000, True)
        assert (paid[46_000]["status"], paid[46_000]["paid_minor"]) == ("open", 6_000)
        # writing off more than a residue needs a second finance key; here it is rejected
        proposal = body(credit.post(f"/v1/invoices/{paid[46_000]['id']}/write-off", json={
            "amount_minor": 40_000, "reason": "partner disputes the delivery"}))["write_off"]
        assert proposal["status"] == "proposed"
        assert credit.post(f"/v1/write-offs/{proposal['id']}/approve").status_code == 403
    with system.client("credit", finance2) as checker:
        rejected = body(checker.post(f"/v1/write-offs/{proposal['id']}/reject",
                                     json={"reason": "delivery signed by Wang"}))
        assert (rejected["status"], rejected["open_minor"], rejected["write_off"]["status"]) == (
            "open", 40_000, "rejected")
    with system.client("credit", finance1) as credit:
        account = body(credit.get(f"/v1/accounts/{p1['id']}"))
        assert account["exposure_minor"] == 40_000 + 909_000  # open invoices + O2 not invoiced
        assert account["available_minor"] == 1_000_000 - 949_000
        assert account["balance_minor"] == 40_000
        assert account["advance_minor"] == 0 and account["overdue_minor"] == 0
        prepaid = body(credit.get(f"/v1/accounts/{p2['id']}"))
        assert prepaid["advance_minor"] == 0  # all of it reserved for O3

    # -- rebate: accrual, close, approval by someone else, credit note --------------
    with system.client("rebates", finance1) as rebates:
        accrual = eventually(
            lambda: body(rebates.get("/v1/accruals", params={"partner_id": p1["id"],
                                                             "program_id": program["id"]}))["items"],
            lambda items: bool(items) and items[0]["basis_minor"] == 100_000,
            what="the rebate accrual of both invoices")[0]
        assert (accrual["accrued_minor"], accrual["tier_rate_bp"]) == (2_000, 200)
        assert {s["amount_minor"] for s in accrual["sources"]} == {54_000, 46_000}
        closed = body(rebates.post(f"/v1/programs/{program['id']}/close"))
        settlements = body(rebates.get("/v1/settlements", params={"program_id": program["id"]}))
        [settlement] = [s for s in settlements["items"] if s["partner_id"] == p1["id"]]
        assert (settlement["final_minor"], settlement["already_settled_minor"],
                settlement["payout_minor"]) == (2_000, 0, 2_000)
        same = rebates.post(f"/v1/settlements/{settlement['id']}/approve")
        assert same.status_code == 403, "the closer may not approve"
        assert closed is not None
    with system.client("rebates", finance2) as rebates:
        body(rebates.post(f"/v1/settlements/{settlement['id']}/approve"))
    with system.client("credit", p1_key) as credit:
        notes = eventually(lambda: body(credit.get("/v1/credit-notes",
                                                   params={"partner_id": p1["id"]}))["items"],
                           lambda items: len(items) == 1, what="the rebate credit note")
        assert (notes[0]["amount_minor"], notes[0]["source"]) == (2_000, "rebate")
        account = eventually(lambda: body(credit.get(f"/v1/accounts/{p1['id']}")),
                             lambda a: a["balance_minor"] == 38_000, what="balance after note")
        assert account["exposure_minor"] == 38_000 + 909_000

    # -- the order's timeline spans the services ---------------------------------------
    with system.client("projections", p1_key) as projections:
        timeline = eventually(
            lambda: body(projections.get(f"/v1/views/orders/{o1['id']}/timeline")),
            lambda t: {"orders", "delivery", "credit", "rebates"} <= {e["service"] for e in t["events"]},
            what="the timeline to hold events of orders, delivery, credit and rebates")
        types = [e["type"] for e in timeline["events"]]
        assert types[0] == "OrderPlaced"
        assert types.index("FundsReviewPassed") < types.index("ShipmentDispatched") \
            < types.index("InvoiceIssued")
        other = projections.get(f"/v1/views/orders/{o3['id']}/timeline")
        assert other.status_code == 404, "a partner never sees another partner's order"
