"""An invariant over HTTP: after a randomised (seeded, bounded) run of orders, dispatches,
payments, refund returns and write-offs, every figure of a partner's account agrees.

For every partner, once the services have converged:
- credit's account balance = its statement's closing balance = the aging total = projections'
  360 balance;
- aging's buckets add up to the open invoices credit counts and the 360's, and its on-account
  column is credit's money on account (advance, reserved or not): total = buckets - on account;
- every rebate accrual's basis is the sum of the sources it lists.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import System, body, eventually, register_partner

PRICE = 1_000
PARTNERS = 3
ORDERS = 3


def _figures(system: System, partner_ids: list[str], program_id: str) -> dict[str, Any]:
    today = str(date.today())
    with system.as_role("credit", "finance") as credit, \
            system.as_role("projections", "finance") as projections, \
            system.as_role("rebates", "finance") as rebates:
        report = body(projections.get("/v1/views/receivables/aging"))
        aging = {row["partner_id"]: (row["total_minor"], sum(row[b] for b in report["buckets"]),
                                     row["on_account_minor"]) for row in report["items"]}
        figures: dict[str, Any] = {}
        for pid in partner_ids:
            account = body(credit.get(f"/v1/accounts/{pid}"))
            view = body(projections.get(f"/v1/views/partners/{pid}"))
            statement = body(credit.get(f"/v1/statements/{pid}", params={"from": "2000-01-01", "to": today}))
            accruals = body(rebates.get("/v1/accruals", params={"partner_id": pid,
                                                                 "program_id": program_id}))["items"]
            figures[pid] = {
                "balance": account["balance_minor"], "closing": statement["closing_minor"],
                "view_balance": view["balance_minor"], "open": account["open_invoices_minor"],
                "aging": aging.get(pid, (0, 0, 0)), "view_open": view["open_invoices_minor"],
                "money_on_account": account["advance_minor"] + account["reserved_minor"],
                "accruals": [(a["basis_minor"], sum(s["amount_minor"] for s in a["sources"]))
                             for a in accruals],
                "invoiced": view["invoiced_minor"],
            }
    return figures


def _agree(figures: dict[str, Any], invoiced: dict[str, int]) -> bool:
    return all(
        f["balance"] == f["closing"] == f["aging"][0] == f["view_balance"]
        and f["open"] == f["aging"][1] == f["view_open"]
        and f["aging"][2] == f["money_on_account"]
        and f["balance"] == f["open"] - f["money_on_account"]
        and all(basis == summed for basis, summed in f["accruals"])
        and f["invoiced"] == invoiced[pid]
        for pid, f in figures.items())


def write_off_some(credit: httpx.Client, partner_id: str, rng: random.Random) -> None:
    """Write a little off one of the partner's open invoices, if it has one.

    A refund's credit note reaches credit asynchronously and may close or shrink the invoice
    between the list and the write-off; credit then answers 409 and the list is read again.
    """
    for _ in range(5):
        open_ones = [i for i in body(credit.get("/v1/invoices", params={
            "partner_id": partner_id, "limit": 200}))["items"] if i["open_minor"] > 0]
        if not open_ones:
            return
        invoice = rng.choice(open_ones)
        answer = credit.post(f"/v1/invoices/{invoice['id']}/write-off", json={
            "amount_minor": min(invoice["open_minor"], rng.randint(1, 90)), "reason": "residue"})
        if answer.status_code != 409:
            body(answer)
            return
    pytest.fail(f"every write-off on {partner_id}'s invoices met a conflict: {answer.text}")


@pytest.mark.parametrize("seed", [20261127])
def test_every_partners_books_agree_after_a_random_run(system: System, seed: int) -> None:
    rng = random.Random(seed)
    tier = f"INV{seed % 1000}{uuid.uuid4().hex[:4]}"
    sku = f"INV-{uuid.uuid4().hex[:8]}"
    today = date.today()
    with system.as_role("orders", "sales") as orders:
        body(orders.post("/v1/products", json={"sku": sku, "name": sku, "category": "inv",
                                               "list_price_minor": PRICE}), 201)
    with system.as_role("delivery", "warehouse") as delivery:
        body(delivery.post("/v1/stock/receipts", json={"sku": sku, "qty": 1_000,
                                                       "reference": uuid.uuid4().hex}), 201)
    with system.as_role("rebates", "finance") as rebates:
        program = body(rebates.post("/v1/programs", json={
            "name": f"Invariant {tier}", "starts_on": str(today - timedelta(days=1)),
            "ends_on": str(today + timedelta(days=30)), "basis": "invoiced", "mode": "retroactive",
            "tiers": [{"from_minor": 0, "rate_bp": 100}, {"from_minor": 8_000, "rate_bp": 250}],
            "eligibility": {"tiers": [tier]}}), 201)
    partners = [register_partner(system, tier=tier, region="east", terms={
        "kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30})["id"]
        for _ in range(PARTNERS)]

    # orders, approved at once (the limit is far away)
    placed: list[tuple[str, str, int]] = []
    with system.client("orders") as client:
        for pid in partners:
            for _ in range(ORDERS):
                qty = rng.randint(1, 6)
                answer = eventually(lambda p=pid, q=qty: client.post("/v1/orders", json={
                    "partner_id": p, "partner_ref": uuid.uuid4().hex[:8],
                    "lines": [{"sku": sku, "qty": q}], "ship_to": {"region": "east"}}),
                    lambda r: r.status_code == 201, what="orders to know the partner")
                placed.append((pid, answer.json()["id"], qty))
        for _, order_id, _ in placed:
            eventually(lambda o=order_id: body(client.get(f"/v1/orders/{o}"))["status"],
                       lambda s: s == "approved", what=f"{order_id} approved")

    # dispatches: all, part, or nothing of each order
    shipped: list[tuple[str, str, int]] = []
    invoiced = dict.fromkeys(partners, 0)
    with system.as_role("delivery", "warehouse") as delivery:
        for pid, order_id, qty in placed:
            out = rng.choice([qty, rng.randint(1, qty), 0])
            if not out:
                continue
            shipment = eventually(
                lambda o=order_id: body(delivery.get("/v1/shipments", params={"order_id": o}))["items"],
                bool, what=f"{order_id}'s shipment")[0]
            body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
                "lines": [{"sku": sku, "qty": out}], "carrier": "SF", "tracking_no": uuid.uuid4().hex[:8]}))
            shipped.append((pid, order_id, out))
            invoiced[pid] += out * PRICE

    # the invoices reach credit; then payments, write-offs and refund returns in a random order
    with system.as_role("credit", "finance") as credit:
        for pid in partners:
            eventually(lambda p=pid: sum(i["total_minor"] for i in body(credit.get(
                "/v1/invoices", params={"partner_id": p, "limit": 200}))["items"]),
                lambda total, p=pid: total == invoiced[p], what="the invoices at credit")
    steps: list[tuple[str, Any]] = (
        [("pay", pid) for pid in partners for _ in range(2)]
        + [("write_off", pid) for pid in partners]
        + [("return", item) for item in shipped if rng.random() < 0.5])
    rng.shuffle(steps)
    with system.as_role("credit", "finance") as credit, \
            system.as_role("delivery", "warehouse") as delivery:
        for kind, subject in steps:
            if kind == "pay":
                body(credit.post("/v1/payments", json={
                    "partner_id": subject, "amount_minor": rng.randint(1, 4) * 700,
                    "bank_ref": uuid.uuid4().hex, "received_on": str(today)}), 201)
            elif kind == "write_off":
                write_off_some(credit, subject, rng)
            else:
                pid, order_id, out = subject
                back = rng.randint(1, out)
                ret = body(delivery.post("/v1/returns", json={
                    "order_id": order_id, "kind": "refund", "reason": "damaged",
                    "lines": [{"sku": sku, "qty": back}]}), 201)
                body(delivery.post(f"/v1/returns/{ret['id']}/receive", json={
                    "lines": [{"sku": sku, "qty": back}]}))

    figures = eventually(lambda: _figures(system, partners, program["id"]), lambda f: _agree(f, invoiced),
                         seconds=45, what="every partner's books to agree")
    assert _agree(figures, invoiced)
    assert sum(invoiced.values()) > 0 and any(f["accruals"] for f in figures.values())  # money moved
