"""A sub-dealer's sales roll up to its parent's rebate, and a co-op fund pays a matched claim as a
credit note. Across partners, orders, delivery, credit, rebates and projections over HTTP.

Figures (minor units): RC-1 lists at 10_000. The master buys 10 (invoice 100_000); its
sub-dealer buys 30 (invoice 300_000). Under a 2% volume program with ``rollup: parent`` the
master's basis is 400_000 and it accrues 8_000, listing the sub-dealer's invoice as a source;
the sub-dealer accrues nothing of its own there. A co-op program puts 2% of each partner's
sales in its fund: the sub-dealer's holds 6_000. Its claim for 8_000 of spend is matched at
50%: 4_000 paid; a second for 10_000 is matched at 5_000 but capped at the 2_000 left. Both
become credit notes: the statement closes at 300_000 - 6_000 = 294_000.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from tests.e2e.conftest import (
    System,
    body,
    ensure_product,
    eventually,
    issue_key,
    placed_order,
)

TERMS = {"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30}


def register(system: System, parent_id: str | None = None) -> dict[str, Any]:
    with system.as_role("partners", "sales") as partners:
        partner = body(partners.post("/v1/partners", json={
            "name": f"Partner {uuid.uuid4().hex[:6]}", "legal_id": uuid.uuid4().hex[:18].upper(),
            "kind": "distributor", "tier": "RC", "region": "rc-east", "territories": ["rc-east"],
            "payment_terms": TERMS, "parent_id": parent_id}), 201)
        today = date.today()
        body(partners.post(f"/v1/partners/{partner['id']}/agreements", json={
            "kind": "annual", "starts_on": str(today), "ends_on": str(today + timedelta(days=200))}), 201)
    return partner


def ship(system: System, order: dict[str, Any], qty: int) -> None:
    with system.as_role("delivery", "warehouse") as delivery:
        [shipment] = eventually(lambda: body(delivery.get(
            "/v1/shipments", params={"order_id": order["id"]}))["items"], bool, what="the shipment")
        body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": "RC-1", "qty": qty}], "carrier": "SF", "tracking_no": order["id"]}))


def test_sub_dealer_rollup_and_a_matched_coop_claim_paid_as_a_credit_note(system: System) -> None:
    today = date.today()
    master = register(system)
    sub = register(system, parent_id=master["id"])
    ensure_product(system, "RC-1", list_price=10_000, stock=100)
    master_key, sub_key = issue_key(system, "partner", master["id"]), issue_key(system, "partner", sub["id"])
    finance, approver = issue_key(system, "finance"), issue_key(system, "finance")
    period = {"starts_on": str(today - timedelta(days=1)), "ends_on": str(today + timedelta(days=30)),
              "eligibility": {"tiers": ["RC"]}}
    with system.client("rebates", finance) as rebates:
        volume = body(rebates.post("/v1/programs", json={
            "name": "RC volume", "basis": "invoiced", "mode": "retroactive", "rollup": "parent",
            "tiers": [{"from_minor": 0, "rate_bp": 200}], **period}), 201)
        coop = body(rebates.post("/v1/programs", json={
            "name": "RC co-op", "kind": "coop", **period,
            "coop": {"share_bp": 200, "match_bp": 5000,
                     "expires_on": str(today + timedelta(days=60))}}), 201)

    ship(system, placed_order(system, master_key, partner_ref="RC-M", sku="RC-1", qty=10,
                              region="rc-east"), 10)
    ship(system, placed_order(system, sub_key, partner_ref="RC-S", sku="RC-1", qty=30,
                              region="rc-east"), 30)

    # -- the sub-dealer's 300_000 invoice raises its parent's accrual -----------------------
    with system.client("rebates", master_key) as rebates:
        [parent] = eventually(lambda: body(rebates.get("/v1/accruals", params={"program_id": volume["id"]}))[
            "items"], lambda items: bool(items) and items[0]["basis_minor"] == 400_000, what="the roll-up")
        assert (parent["partner_id"], parent["accrued_minor"], parent["tier_rate_bp"]) == (
            master["id"], 8_000, 200)
        assert sorted((s["amount_minor"], s.get("partner_id")) for s in parent["sources"]) == [
            (100_000, None), (300_000, sub["id"])]
    with system.client("rebates", finance) as rebates:
        listed = body(rebates.get("/v1/accruals", params={"program_id": volume["id"]}))["items"]
        assert [a["partner_id"] for a in listed] == [master["id"]]

    # -- the co-op fund: 2% of the sub-dealer's sales, claims matched at 50% up to it -------
    with system.client("rebates", sub_key) as rebates:
        [fund] = eventually(lambda: body(rebates.get("/v1/coop-funds"))["items"],
                            lambda items: bool(items) and items[0]["accrued_minor"] == 6_000, what="the fund")
        assert (fund["partner_id"], fund["balance_minor"]) == (sub["id"], 6_000)
        first = body(rebates.post("/v1/coop-claims", json={
            "program_id": coop["id"], "amount_minor": 8_000, "description": "local radio",
            "evidence_ref": "dms://ads/radio-1"}), 201)
        second = body(rebates.post("/v1/coop-claims", json={
            "program_id": coop["id"], "amount_minor": 10_000, "description": "billboard",
            "evidence_ref": "dms://ads/board-2"}), 201)
    with system.client("rebates", master_key) as rebates:
        assert rebates.get(f"/v1/coop-claims/{first['id']}").status_code == 404
        assert body(rebates.get("/v1/coop-claims"))["items"] == []
    with system.client("rebates", approver) as rebates:
        paid = body(rebates.post(f"/v1/coop-claims/{first['id']}/approve"))
        assert (paid["matched_minor"], paid["approved_minor"]) == (4_000, 4_000)
        capped = body(rebates.post(f"/v1/coop-claims/{second['id']}/approve"))
        assert (capped["matched_minor"], capped["approved_minor"]) == (5_000, 2_000)
        [drained] = body(rebates.get("/v1/coop-funds", params={"partner_id": sub["id"]}))["items"]
        assert (drained["paid_minor"], drained["balance_minor"]) == (6_000, 0)

    # -- paid as credit notes: listed and on the statement ---------------------------------
    with system.client("credit", sub_key) as credit:
        notes = eventually(lambda: body(credit.get("/v1/credit-notes"))["items"], lambda n: len(n) == 2,
                           what="the co-op credit notes")
        assert sorted((n["amount_minor"], n["source"]) for n in notes) == [(2_000, "coop"), (4_000, "coop")]
        statement = body(credit.get(f"/v1/statements/{sub['id']}",
                                    params={"from": str(today), "to": str(today)}))
        lines = sorted((x["kind"], x["debit_minor"], x["credit_minor"]) for x in statement["lines"])
        assert lines == [("credit_note", 0, 2_000), ("credit_note", 0, 4_000), ("invoice", 300_000, 0)]
        assert statement["closing_minor"] == 294_000
    with system.client("rebates", sub_key) as rebates:
        linked = eventually(lambda: body(rebates.get(f"/v1/coop-claims/{first['id']}")),
                            lambda c: c["credit_note_id"] is not None, what="the claim's credit note")
        assert linked["credit_note_id"] in {n["id"] for n in notes}

    # -- the 360: the master's own and sub-dealer sales; the sub-dealer's fund ---------------
    with system.as_role("projections", "finance") as projections:
        seen = eventually(lambda: body(projections.get(f"/v1/views/partners/{master['id']}")),
                          lambda v: v["sales"]["total_minor"] == 400_000, what="the master's 360")
        assert (seen["sales"]["own_minor"], seen["sales"]["sub_dealers_minor"]) == (100_000, 300_000)
        funds = eventually(lambda: body(projections.get(f"/v1/views/partners/{sub['id']}"))["coop"],
                           lambda c: c["paid_minor"] == 6_000, what="the sub-dealer's co-op fund")
        assert funds["balance_minor"] == 0 and len(funds["funds"][0]["claims"]) == 2
