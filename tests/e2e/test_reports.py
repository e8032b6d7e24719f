"""Reports over HTTP on a system living a year in the past, then today's date a year on.

The system runs on a rehearsal business clock (``O2C_CLOCK_START``): first on
2025-05-05, where the partner buys 3 units at 100.00 and pays 100.00; then every
service is restarted on 2026-05-05, where it pays 200.00, buys 5 units and
tries to ship into a region outside its territories. Hand-worked:

- scorecard 2026-01-01..2026-05-05 against the same days of 2025: sales 500.00
  vs 300.00, growth 6667 bp (200/300); attainment 500.00 / 10 000.00 = 500 bp;
  one order each year; one violation now; the 2025 invoice was paid (in full,
  by the oldest-first 200.00) on 2026-05-05, 365 days after issue;
- sales by month, May 2026 against May 2025: the same 500.00 vs 300.00;
- as of 2025-12-31, credit's account, its statement and the partner 360 agree
  on a balance of 200.00, all of it overdue; on 2026-05-05 on 300 + 500 - 300.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.events.base import format_timestamp, utc_now
from tests.e2e.conftest import (
    System,
    body,
    dispatch,
    eventually,
    issue_key,
    placed_order,
    running_system,
)

SERVICES = ("partners", "orders", "credit", "delivery", "rebates", "projections")
LAST_YEAR, THIS_YEAR = "2025-05-05", "2026-05-05"


@pytest.fixture(params=["sqlite", "postgres"])
def rehearsal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[System]:
    env = {"O2C_CLOCK_START": f"{LAST_YEAR}T09:00:00Z"}
    with running_system(request.param, tmp_path / "o2c", prefix="rep", extra_env=env) as system:
        yield system


def move_clock(system: System, day: str) -> None:
    """Restart every service on a business clock starting at ``day`` 09:00 UTC."""
    system.supervisor.extra_env.update(O2C_CLOCK_START=f"{day}T09:00:00Z",
                                       O2C_CLOCK_ANCHOR=format_timestamp(utc_now()))
    for name in SERVICES:
        system.supervisor.restart_service(name)


def pay(system: System, partner_id: str, amount: int, on: str) -> None:
    with system.as_role("credit", "finance") as credit:
        body(credit.post("/v1/payments", json={
            "partner_id": partner_id, "amount_minor": amount, "bank_ref": uuid.uuid4().hex,
            "received_on": on}), 201)


def balances(system: System, partner_id: str, day: str) -> tuple[Any, ...]:
    """(account balance, its overdue, statement closing, 360 balance, 360 overdue) as of ``day``."""
    with system.as_role("credit", "finance") as credit, system.as_role("projections", "finance") as views:
        account = body(credit.get(f"/v1/accounts/{partner_id}", params={"as_of": day}))
        closing = body(credit.get(f"/v1/statements/{partner_id}",
                                  params={"from": day, "to": day}))["closing_minor"]
        view = body(views.get(f"/v1/views/partners/{partner_id}", params={"as_of": day}))
    return (account["balance_minor"], account["overdue_minor"], closing, view["balance_minor"],
            view["overdue_minor"])


def test_scorecard_growth_and_as_of_across_a_year(rehearsal: System) -> None:
    system = rehearsal
    sku = f"REP-{uuid.uuid4().hex[:6]}"
    with system.as_role("orders", "sales") as orders:
        body(orders.post("/v1/products", json={"sku": sku, "name": sku, "category": "misc",
                                               "list_price_minor": 10_000}), 201)
    with system.as_role("delivery", "warehouse") as delivery:
        body(delivery.post("/v1/stock/receipts", json={"sku": sku, "qty": 100,
                                                       "reference": uuid.uuid4().hex}), 201)
    with system.as_role("partners", "sales") as partners:
        partner = body(partners.post("/v1/partners", json={
            "name": "Rehearsal Trading", "legal_id": uuid.uuid4().hex[:18].upper(),
            "kind": "distributor", "tier": "gold", "region": "east", "territories": ["east"],
            "payment_terms": {"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30}}), 201)
        body(partners.post(f"/v1/partners/{partner['id']}/agreements", json={
            "kind": "annual", "starts_on": LAST_YEAR, "ends_on": "2026-12-31",
            "annual_target_minor": 1_000_000}), 201)
    pid = partner["id"]
    key = issue_key(system, "partner", pid)

    # -- 2025-05-05: 3 units, 100.00 paid ------------------------------------------
    first = placed_order(system, key, partner_ref="R-2025", sku=sku, qty=3, region="east")
    dispatch(system, first["id"], sku, 3)
    pay(system, pid, 10_000, LAST_YEAR)
    with system.as_role("credit", "finance") as credit:
        eventually(lambda: body(credit.get("/v1/invoices", params={"partner_id": pid}))["items"],
                   lambda items: [(i["issued_on"], i["total_minor"]) for i in items] == [(LAST_YEAR, 30_000)],
                   what="the 2025 invoice")

    # -- a year on: 2026-05-05 -------------------------------------------------------
    move_clock(system, THIS_YEAR)
    pay(system, pid, 20_000, THIS_YEAR)  # settles the (overdue) 2025 invoice: no credit hold
    second = placed_order(system, key, partner_ref="R-2026", sku=sku, qty=5, region="east")
    dispatch(system, second["id"], sku, 5)
    with system.client("orders", key) as orders:
        refused = eventually(lambda: orders.post("/v1/orders", json={
            "partner_ref": "R-WEST", "lines": [{"sku": sku, "qty": 1}], "ship_to": {"region": "west"}}),
            lambda r: r.status_code == 422, what="the territory violation")
        assert refused.json()["type"].endswith("/territory-violation")

    with system.as_role("projections", "sales") as views:
        def scorecard() -> dict[str, Any]:
            return body(views.get("/v1/views/scorecards", params={
                "partner_id": pid, "from": "2026-01-01", "to": THIS_YEAR, "compare": "previous_year"}))

        report = eventually(scorecard, lambda r: r["items"] and r["items"][0]["invoices_paid"] == 1
                            and r["items"][0]["violations"] == 1 and r["items"][0]["sales_minor"] == 50_000,
                            what="the scorecard")
        [row] = report["items"]
        assert (report["compare_from"], report["compare_to"]) == ("2025-01-01", LAST_YEAR)
        assert {k: row[k] for k in ("target_minor", "sales_minor", "previous_sales_minor",
                                    "sales_growth_bp", "attainment_bp", "previous_attainment_bp",
                                    "orders", "previous_orders", "violations", "previous_violations",
                                    "invoices_paid", "days_to_pay_avg", "previous_invoices_paid",
                                    "returns_rate_bp", "invoices_due", "on_time_bp")} == {
            "target_minor": 1_000_000, "sales_minor": 50_000, "previous_sales_minor": 30_000,
            "sales_growth_bp": 6_667, "attainment_bp": 500, "previous_attainment_bp": 300,
            "orders": 1, "previous_orders": 1, "violations": 1, "previous_violations": 0,
            "invoices_paid": 1, "days_to_pay_avg": 365, "previous_invoices_paid": 0,
            "returns_rate_bp": 0, "invoices_due": 0, "on_time_bp": None}
        months = body(views.get("/v1/views/sales", params={
            "group_by": "month", "from": "2026-05-01", "to": "2026-05-31", "compare": "previous_year",
            "partner_id": pid}))
        assert [(r["key"], r["amount_minor"], r["previous_amount_minor"], r["growth_bp"])
                for r in months["items"]] == [("2026-05", 50_000, 30_000, 6_667)]
    with system.client("projections", key) as own:
        assert [r["partner_id"] for r in body(own.get("/v1/views/scorecards"))["items"]] == [pid]
        assert own.get("/v1/views/scorecards", params={"partner_id": "someone-else"}).status_code == 404

    # -- time travel: every as_of answer is the statement for that day ----------------
    assert balances(system, pid, "2025-12-31") == (20_000, 20_000, 20_000, 20_000, 20_000)
    assert eventually(lambda: balances(system, pid, THIS_YEAR), lambda b: b[3] == 50_000,
                      what="projections to see the payment") == (50_000, 0, 50_000, 50_000, 0)
