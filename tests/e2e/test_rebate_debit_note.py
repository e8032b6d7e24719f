"""A late refund claws back a settled rebate: a negative true-up, approved by finance, becomes
a debit note on the partner's account, on its statement and in aging, and the next receipt
pays it. Across rebates, credit, delivery and projections over HTTP.

Figures (minor units): DN-1 lists at 10_000; the partner buys 10 (invoice 100_000) under a
2% program, so 2_000 accrues and, once closed and approved, is paid as a credit note. A
refund of 5 (credit note 50_000) leaves a basis of 50_000, earning 1_000: the settled period
is re-opened with a true-up of 1_000 - 2_000 = -1_000, a debit note of 1_000. The invoice
still owes 100_000 - 2_000 - 50_000 = 48_000; a receipt of 49_000 pays both, invoice first.
"""

from __future__ import annotations

from datetime import date, timedelta
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


def test_a_late_refund_becomes_a_debit_note_paid_by_the_next_receipt(system: System) -> None:
    today = date.today()
    partner = register_partner(system, tier="DN", region="dn-east",
                               terms={"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30})
    pid = partner["id"]
    ensure_product(system, "DN-1", list_price=10_000, stock=50)
    key = issue_key(system, "partner", pid)
    closer, approver = issue_key(system, "finance"), issue_key(system, "finance")
    with system.client("rebates", closer) as rebates:
        program = body(rebates.post("/v1/programs", json={
            "name": "DN volume", "starts_on": str(today - timedelta(days=1)),
            "ends_on": str(today + timedelta(days=30)), "basis": "invoiced", "mode": "retroactive",
            "tiers": [{"from_minor": 0, "rate_bp": 200}], "eligibility": {"tiers": ["DN"]}}), 201)

    order = placed_order(system, key, partner_ref="DN-1", sku="DN-1", qty=10, region="dn-east")
    with system.as_role("delivery", "warehouse") as delivery:
        [shipment] = eventually(lambda: body(delivery.get(
            "/v1/shipments", params={"order_id": order["id"]}))["items"], bool, what="the shipment")
        body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": "DN-1", "qty": 10}], "carrier": "SF", "tracking_no": "DN1"}))

    # -- the period is settled: 2_000 paid as a credit note -------------------------------
    with system.client("rebates", closer) as rebates:
        eventually(lambda: body(rebates.get("/v1/accruals", params={
            "partner_id": pid, "program_id": program["id"]}))["items"],
            lambda items: bool(items) and items[0]["accrued_minor"] == 2_000, what="the accrual")
        body(rebates.post(f"/v1/programs/{program['id']}/close"))
        [paid_out] = body(rebates.get("/v1/settlements", params={"program_id": program["id"]}))["items"]
        assert paid_out["payout_minor"] == 2_000
    with system.client("rebates", approver) as rebates:
        body(rebates.post(f"/v1/settlements/{paid_out['id']}/approve"))

    # -- a refund of half the goods comes back -----------------------------------------
    with system.client("delivery", key) as own:
        asked = body(own.post("/v1/returns", json={
            "order_id": order["id"], "lines": [{"sku": "DN-1", "qty": 5}], "reason": "faulty",
            "kind": "refund"}), 201)
    with system.as_role("delivery", "warehouse") as delivery:
        body(delivery.post(f"/v1/returns/{asked['id']}/receive", json={"lines": [{"sku": "DN-1", "qty": 5}]}))
        body(delivery.post(f"/v1/returns/{asked['id']}/inspect",
                           json={"lines": [{"sku": "DN-1", "restock": 5}]}))

    # -- the settled period is re-opened with a negative true-up, approved ---------------
    with system.client("rebates", closer) as rebates:
        true_up = eventually(lambda: [s for s in body(rebates.get(
            "/v1/settlements", params={"program_id": program["id"]}))["items"] if s["payout_minor"] < 0],
            bool, what="the negative true-up")[0]
        assert (true_up["final_minor"], true_up["already_settled_minor"], true_up["payout_minor"],
                true_up["status"]) == (1_000, 2_000, -1_000, "debit")
        body(rebates.post(f"/v1/settlements/{true_up['id']}/approve"))

    # -- it is a debit note: listed, on the statement, in the balance and in aging -------
    with system.client("credit", key) as credit:
        [note] = eventually(lambda: body(credit.get("/v1/debit-notes"))["items"], bool,
                            what="the debit note")
        assert (note["amount_minor"], note["open_minor"], note["status"], note["source_ref"]) == (
            1_000, 1_000, "open", true_up["id"])
        account = eventually(lambda: body(credit.get(f"/v1/accounts/{pid}")),
                             lambda a: a["balance_minor"] == 49_000, what="the balance with the note")
        assert (account["open_invoices_minor"], account["open_debit_notes_minor"]) == (48_000, 1_000)
        statement = body(credit.get(f"/v1/statements/{pid}", params={"from": str(today), "to": str(today)}))
        assert ("debit_note", note["id"], 1_000) in [
            (line["kind"], line["ref"], line["debit_minor"]) for line in statement["lines"]]
        assert statement["closing_minor"] == 49_000

    def books() -> tuple[Any, Any]:
        with system.as_role("projections", "finance") as projections:
            aging = body(projections.get("/v1/views/receivables/aging"))
            seen = body(projections.get(f"/v1/views/partners/{pid}"))
        owed = [r["total_minor"] for r in aging["items"] if r["partner_id"] == pid]
        return sum(owed), seen  # a partner that owes nothing has no aging row

    _, seen = eventually(books, lambda b: b[0] == 49_000 and b[1]["balance_minor"] == 49_000,
                             what="aging and the partner 360 to count the debit note")
    assert seen["open_debit_notes_minor"] == 1_000

    # -- the next receipt pays the invoice, then the debit note -------------------------
    with system.as_role("credit", "finance") as credit:
        receipt = body(credit.post("/v1/payments", json={
            "partner_id": pid, "amount_minor": 49_000, "bank_ref": f"DN-{pid}",
            "received_on": str(today)}), 201)
        assert receipt["debit_note_applications"] == [{"debit_note_id": note["id"], "amount_minor": 1_000}]
        assert sum(a["amount_minor"] for a in receipt["applications"]) == 48_000
        paid = body(credit.get(f"/v1/debit-notes/{note['id']}"))
        assert (paid["status"], paid["open_minor"]) == ("paid", 0)
        assert body(credit.get(f"/v1/accounts/{pid}"))["balance_minor"] == 0
    eventually(books, lambda b: b[0] == 0 and b[1]["balance_minor"] == 0,
               what="aging and the partner 360 to see it paid")
