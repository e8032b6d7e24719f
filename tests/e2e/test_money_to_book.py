"""Issue 8's money findings over HTTP, on SQLite and PostgreSQL, each with its exact figures.

Last year's sales need last year's dates: the system first runs on a rehearsal business clock
started 365 days ago (``O2C_CLOCK_START``), sells, settles and collects, is stopped, and runs
again on the same data (files or schemas) on the real clock. T = today, B = T - 365.

Partners (price 10_000 a unit, credit terms):
- p1 (400 days): bought 80 at B (800_000) under last year's flat 2% program (B-1..B+30): settled
  16_000 (a credit note), then paid 284_000, so 500_000 stays open. Buys 100 at T (1_000_000)
  under this year's program (T-30..T+100): 2% + a 1% growth bonus over last year (25% growth)
  = 30_000; a capped program (1%, cap 5_000) and a timeliness program (2% when paid on time).
  Returns 50 of last year's goods at T: last year's basis 300_000 earns 6_000, a true-up of
  -10_000, a debit note; the receipt of 1_010_000 pays the invoice, then the note.
- p2 (400 days): 700_000 at B, 2_000_000 at T, under 2% from 0 / 4% from 2_000_000 (B-1..T+30),
  retroactive and incremental: the interim through B+10 pays 14_000 (140.00); the final
  108_000 less 14_000 = 94_000 (940.00), incrementally 68_000 less 14_000 = 54_000.
- p3 (300 days): 50_000 at B, due T-65, paid by a receipt backdated to T-10.

The tests tell one story per backend, in file order (the capped, growth and timeliness closes
follow the receipt that paid this year's invoice on time; the last checks every account).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from libs.runtime.clock import CLOCK_START_ENV
from tests.conftest import PG_URL, integration_unavailable
from tests.e2e.conftest import (
    System,
    _drop_schemas,
    _pg_available,
    body,
    ensure_product,
    eventually,
    issue_key,
    placed_order,
    start_system,
)

T = datetime.now(UTC).date()  # the services' business day is the UTC date
B = T - timedelta(days=365)
PRICE = 10_000
ADMIN = {"Authorization": "Bearer e2e-admin-token"}


def on(base: date, days: int = 0) -> str:
    return str(base + timedelta(days=days))


@dataclass
class Story:
    system: System
    sku: str
    partners: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    orders: dict[str, str] = field(default_factory=dict)
    programs: dict[str, str] = field(default_factory=dict)


def _partner(system: System, name: str, term_days: int) -> str:
    with system.as_role("partners", "sales") as partners:
        partner = body(partners.post("/v1/partners", json={
            "name": f"Money {name} {uuid.uuid4().hex[:6]}", "legal_id": uuid.uuid4().hex[:18].upper(),
            "kind": "distributor", "tier": "MB", "region": "mb-east", "territories": ["mb-east"],
            "payment_terms": {"kind": "credit", "credit_limit_minor": 100_000_000,
                              "term_days": term_days}}), 201)
        body(partners.post(f"/v1/partners/{partner['id']}/agreements", json={
            "kind": "annual", "starts_on": str(B), "ends_on": on(T, 200)}), 201)
    return str(partner["id"])


def _program(story: Story, name: str, pid: str, starts_on: str, ends_on: str, **terms: Any) -> None:
    with story.system.client("rebates", story.keys["closer"]) as rebates:
        story.programs[name] = body(rebates.post("/v1/programs", json={
            "name": f"{name} {story.sku}", "starts_on": starts_on, "ends_on": ends_on,
            "basis": "invoiced", "mode": "retroactive", "tiers": [{"from_minor": 0, "rate_bp": 200}],
            "eligibility": {"partner_ids": [pid]}, **terms}), 201)["id"]


def _sell(story: Story, who: str, qty: int) -> None:
    """An order of ``qty`` dispatched in full: one invoice of ``qty * PRICE`` dated today."""
    pid = story.partners[who]
    ref = f"{who}-{uuid.uuid4().hex[:6]}"
    order = placed_order(story.system, story.keys[who], partner_ref=ref, sku=story.sku, qty=qty,
                         region="mb-east")
    story.orders.setdefault(who, order["id"])  # the first (last year's) order of each partner
    with story.system.as_role("delivery", "warehouse") as delivery:
        [shipment] = eventually(lambda: body(delivery.get(
            "/v1/shipments", params={"order_id": order["id"]}))["items"], bool, what="the shipment")
        body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": story.sku, "qty": qty}], "carrier": "SF", "tracking_no": ref}))
    with story.system.as_role("credit", "finance") as credit:
        eventually(lambda: [i["total_minor"] for i in body(credit.get(
            "/v1/invoices", params={"partner_id": pid}))["items"] if i["order_id"] == order["id"]],
            lambda totals: totals == [qty * PRICE], what=f"{ref}'s invoice")


def accrual(story: Story, program: str, who: str) -> dict[str, Any]:
    with story.system.client("rebates", story.keys["closer"]) as rebates:
        items = body(rebates.get("/v1/accruals", params={
            "program_id": story.programs[program], "partner_id": story.partners[who]}))["items"]
    assert len(items) == 1, items
    return dict(items[0])


def settlements(story: Story, program: str) -> list[dict[str, Any]]:
    with story.system.client("rebates", story.keys["closer"]) as rebates:
        return list(body(rebates.get("/v1/settlements", params={
            "program_id": story.programs[program]}))["items"])


def approve(story: Story, settlement_id: str) -> dict[str, Any]:
    with story.system.client("rebates", story.keys["approver"]) as rebates:
        return dict(body(rebates.post(f"/v1/settlements/{settlement_id}/approve")))


def account(story: Story, who: str) -> dict[str, Any]:
    with story.system.as_role("credit", "finance") as credit:
        return dict(body(credit.get(f"/v1/accounts/{story.partners[who]}")))


def aging_row(story: Story, who: str, as_of: str | None = None) -> dict[str, Any] | None:
    params = {"partner_id": story.partners[who], **({"as_of": as_of} if as_of else {})}
    with story.system.as_role("projections", "finance") as projections:
        items = body(projections.get("/v1/views/receivables/aging", params=params))["items"]
    return items[0] if items else None


def _last_year(story: Story) -> None:
    """On the rehearsal clock (today = B): the sales, settlement and receipt of last year."""
    system = story.system
    ensure_product(system, story.sku, list_price=PRICE, stock=500)
    for who, term in (("p1", 400), ("p2", 400), ("p3", 300)):
        story.partners[who] = _partner(system, who, term)
        story.keys[who] = issue_key(system, "partner", story.partners[who])
    story.keys["closer"], story.keys["approver"] = issue_key(system, "finance"), issue_key(system, "finance")
    p1, p2 = story.partners["p1"], story.partners["p2"]
    _program(story, "last", p1, on(B, -1), on(B, 30))
    _program(story, "this", p1, on(T, -30), on(T, 100), growth={
        "baseline_from": on(B, -1), "baseline_to": on(B, 30), "min_growth_bp": 1_000, "rate_bp": 100})
    contract = [{"from_minor": 0, "rate_bp": 200}, {"from_minor": 2_000_000, "rate_bp": 400}]
    for mode in ("retroactive", "incremental"):
        _program(story, mode, p2, on(B, -1), on(T, 30), mode=mode, tiers=contract)
    _sell(story, "p1", 80)
    _sell(story, "p2", 70)
    _sell(story, "p3", 5)
    eventually(lambda: accrual(story, "last", "p1")["accrued_minor"], lambda a: a == 16_000,
               what="last year's accrual")
    with system.client("rebates", story.keys["closer"]) as rebates:
        [settled] = body(rebates.post(f"/v1/programs/{story.programs['last']}/close"))["settlements"]
    assert (settled["final_minor"], settled["payout_minor"]) == (16_000, 16_000)
    approve(story, settled["id"])
    eventually(lambda: account(story, "p1")["balance_minor"], lambda b: b == 784_000,
               what="the settlement's credit note at credit")
    with system.as_role("credit", "finance") as credit:
        receipt = body(credit.post("/v1/payments", json={
            "partner_id": p1, "amount_minor": 284_000, "bank_ref": f"LY-{p1}", "received_on": str(B)}), 201)
        assert receipt["received_on"] == str(B)  # the rehearsal clock's today
        [invoice] = body(credit.get("/v1/invoices", params={"partner_id": p1}))["items"]
    assert (invoice["issued_on"], invoice["open_minor"]) == (str(B), 500_000)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    backend = request.param
    if backend == "postgres" and not _pg_available():
        integration_unavailable(f"PostgreSQL at {PG_URL} unreachable")
    prefix = f"money{uuid.uuid4().hex[:8]}_"
    data_dir: Path = tmp_path_factory.mktemp(f"o2c-money-{backend}")
    last_year = (datetime.now(UTC) - timedelta(days=365)).isoformat(timespec="seconds")
    try:
        supervisor = start_system(data_dir, backend, prefix, {CLOCK_START_ENV: last_year})
        try:
            story = Story(System(supervisor, supervisor.urls(), ADMIN, backend), f"MB-{uuid.uuid4().hex[:8]}")
            _last_year(story)
        finally:
            supervisor.stop()
        supervisor = start_system(data_dir, backend, prefix)  # the same books, on the real clock
        try:
            story.system = System(supervisor, supervisor.urls(), ADMIN, backend, story.system.role_keys)
            p1 = story.partners["p1"]
            _program(story, "capped", p1, on(T, -1), on(T, 100), tiers=[{"from_minor": 0, "rate_bp": 100}],
                     cap_minor=5_000)
            _program(story, "timely", p1, on(T, -1), on(T, 100),
                     tiers=[{"from_minor": 100_000_000, "rate_bp": 100}],
                     timeliness={"min_on_time_bp": 9_000, "rate_bp": 200})
            _sell(story, "p1", 100)
            _sell(story, "p2", 200)
            yield story
        finally:
            supervisor.stop()
    finally:
        if backend == "postgres":
            _drop_schemas(prefix)


def test_a_late_refund_reopens_last_years_settlement_as_a_debit_note_paid_by_the_next_receipt(
        story: Story) -> None:
    p1 = story.partners["p1"]
    before = eventually(lambda: accrual(story, "this", "p1"), lambda a: a["accrued_minor"] == 30_000,
                        what="this year's accrual")
    assert (before["basis_minor"], before["components"]) == (1_000_000, [
        {"kind": "volume", "amount_minor": 20_000}, {"kind": "growth_bonus", "amount_minor": 10_000}])

    # -- half of last year's goods come back for a refund, a year late ----------------
    with story.system.client("delivery", story.keys["p1"]) as own:
        asked = body(own.post("/v1/returns", json={
            "order_id": story.orders["p1"], "lines": [{"sku": story.sku, "qty": 50}],
            "reason": "faulty", "kind": "refund"}), 201)
    with story.system.as_role("delivery", "warehouse") as delivery:
        body(delivery.post(f"/v1/returns/{asked['id']}/receive",
                           json={"lines": [{"sku": story.sku, "qty": 50}]}))
        body(delivery.post(f"/v1/returns/{asked['id']}/inspect",
                           json={"lines": [{"sku": story.sku, "restock": 50}]}))

    # -- last year's settled period re-opens with a negative true-up ------------------
    true_up = eventually(lambda: [s for s in settlements(story, "last") if s["payout_minor"] < 0],
                         bool, what="the negative true-up")[0]
    assert {k: true_up[k] for k in ("kind", "proposed_by", "status", "final_minor",
                                    "already_settled_minor", "payout_minor")} == {
        "kind": "true_up", "proposed_by": "rebates", "status": "debit", "final_minor": 6_000,
        "already_settled_minor": 16_000, "payout_minor": -10_000}
    reopened = accrual(story, "last", "p1")
    assert (reopened["basis_minor"], reopened["accrued_minor"], reopened["settled_minor"]) == (
        300_000, 6_000, 16_000)
    assert (reopened["sources"][-1]["kind"], reopened["sources"][-1]["amount_minor"]) == ("return", -500_000)
    approved = approve(story, true_up["id"])
    assert (approved["status"], approved["payout_minor"]) == ("approved", -10_000)
    assert accrual(story, "last", "p1")["settled_minor"] == 6_000

    # -- this year's growth bonus is untouched by last year's return ------------------
    assert accrual(story, "this", "p1") == before

    # -- the debit note: listed, on the statement, in the balance and in aging -----------
    with story.system.client("credit", story.keys["p1"]) as credit:
        [note] = eventually(lambda: body(credit.get("/v1/debit-notes"))["items"], bool, what="the debit note")
        assert (note["amount_minor"], note["open_minor"], note["status"], note["source_ref"]) == (
            10_000, 10_000, "open", true_up["id"])
        figures = eventually(lambda: body(credit.get(f"/v1/accounts/{p1}")),
                             lambda a: a["balance_minor"] == 1_010_000, what="the balance with the note")
        assert (figures["open_invoices_minor"], figures["open_debit_notes_minor"]) == (1_000_000, 10_000)
        statement = body(credit.get(f"/v1/statements/{p1}", params={"from": str(B), "to": str(T)}))
        assert [(line["date"], line["kind"], line["debit_minor"], line["credit_minor"])
                for line in statement["lines"]] == [
            (str(B), "invoice", 800_000, 0), (str(B), "credit_note", 0, 16_000),
            (str(B), "payment", 0, 284_000), (str(T), "invoice", 1_000_000, 0),
            (str(T), "credit_note", 0, 500_000), (str(T), "debit_note", 10_000, 0)]
        assert statement["closing_minor"] == 1_010_000
    row = eventually(lambda: aging_row(story, "p1"),
                     lambda r: r is not None and r["total_minor"] == 1_010_000,
                     what="aging to count the debit note")
    assert (row["current_minor"], row["on_account_minor"]) == (1_010_000, 0)

    # -- the next receipt pays this year's invoice, then the debit note ------------------
    with story.system.as_role("credit", "finance") as credit:
        receipt = body(credit.post("/v1/payments", json={
            "partner_id": p1, "amount_minor": 1_010_000, "bank_ref": f"TY-{p1}", "received_on": str(T)}), 201)
        assert receipt["debit_note_applications"] == [{"debit_note_id": note["id"], "amount_minor": 10_000}]
        assert sum(a["amount_minor"] for a in receipt["applications"]) == 1_000_000
        paid = body(credit.get(f"/v1/debit-notes/{note['id']}"))
        assert (paid["status"], paid["open_minor"]) == ("paid", 0)
        assert body(credit.get(f"/v1/accounts/{p1}"))["balance_minor"] == 0
    eventually(lambda: aging_row(story, "p1"), lambda r: r is None, what="aging to see it paid")


def test_accrued_equals_what_the_close_proposes_for_capped_growth_and_timeliness_programs(
        story: Story) -> None:
    # runs after the receipt above: this year's invoice was paid on time
    capped = accrual(story, "capped", "p1")
    assert (capped["accrued_minor"], capped["components"]) == (5_000, [
        {"kind": "volume", "amount_minor": 10_000}, {"kind": "cap", "amount_minor": -5_000}])
    timely = eventually(lambda: accrual(story, "timely", "p1"), lambda a: a["accrued_minor"] == 20_000,
                        what="the timeliness bonus once paid on time")
    assert timely["components"] == [{"kind": "volume", "amount_minor": 0},
                                    {"kind": "timeliness_bonus", "amount_minor": 20_000}]
    grown = accrual(story, "this", "p1")
    assert (grown["accrued_minor"], grown["components"]) == (30_000, [
        {"kind": "volume", "amount_minor": 20_000}, {"kind": "growth_bonus", "amount_minor": 10_000}])
    for program, accrued in (("capped", 5_000), ("timely", 20_000), ("this", 30_000)):
        with story.system.client("rebates", story.keys["closer"]) as rebates:
            [proposal] = body(rebates.post(f"/v1/programs/{story.programs[program]}/close"))["settlements"]
        assert (proposal["partner_id"], proposal["final_minor"], proposal["payout_minor"]) == (
            story.partners["p1"], accrued, accrued), program
        assert accrual(story, program, "p1")["accrued_minor"] == accrued
    assert (proposal["volume_minor"], proposal["growth_bonus_minor"]) == (20_000, 10_000)  # "this"


@pytest.mark.parametrize(("mode", "final", "payout"), [("retroactive", 108_000, 94_000),
                                                       ("incremental", 68_000, 54_000)])
def test_the_condition_contract_example_interim_140_then_final(
        story: Story, mode: str, final: int, payout: int) -> None:
    """2% from 0, 4% from 20,000.00: the interim through B+10 (7,000.00 sold) pays 140.00;
    the final at 27,000.00 the rest: 940.00 retroactively, 540.00 incrementally."""
    program = story.programs[mode]
    eventually(lambda: accrual(story, mode, "p2")["basis_minor"], lambda b: b == 2_700_000,
               what="this year's sale in the accrual")
    with story.system.client("rebates", story.keys["closer"]) as rebates:
        settled = body(rebates.post(f"/v1/programs/{program}/settle", json={"through": on(B, 10)}))
    [interim] = settled["settlements"]
    assert {k: interim[k] for k in ("kind", "through", "basis_minor", "final_minor", "payout_minor",
                                    "status")} == {
        "kind": "interim", "through": on(B, 10), "basis_minor": 700_000, "final_minor": 14_000,
        "payout_minor": 14_000, "status": "proposed"}
    approve(story, interim["id"])
    assert accrual(story, mode, "p2")["accrued_minor"] == final
    with story.system.client("rebates", story.keys["closer"]) as rebates:
        [closing] = body(rebates.post(f"/v1/programs/{program}/close"))["settlements"]
    assert {k: closing[k] for k in ("kind", "final_minor", "already_settled_minor", "payout_minor")} == {
        "kind": "final", "final_minor": final, "already_settled_minor": 14_000, "payout_minor": payout}


def test_receipts_are_never_future_dated_and_backdated_ones_move_paid_on_and_aging(story: Story) -> None:
    p3 = story.partners["p3"]
    with story.system.as_role("credit", "finance") as credit:
        for day, words in ((on(T, 1), "after today"), (on(T, -31), "more than 30 days back")):
            refused = credit.post("/v1/payments", json={
                "partner_id": p3, "amount_minor": 50_000, "bank_ref": f"R-{p3}", "received_on": day})
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"].endswith("/bad-received-on") and words in refused.json()["detail"]
        assert account(story, "p3")["balance_minor"] == 50_000  # nothing changed
        body(credit.post("/v1/payments", json={
            "partner_id": p3, "amount_minor": 50_000, "bank_ref": f"R-{p3}", "received_on": on(T, -10)}), 201)
        [invoice] = body(credit.get("/v1/invoices", params={"partner_id": p3}))["items"]
        assert (invoice["status"], invoice["due_on"], invoice["paid_on"], invoice["on_time"]) == (
            "paid", on(T, -65), on(T, -10), False)
        assert body(credit.get(f"/v1/statements/{p3}", params={"from": str(B), "to": on(T, -11)}))[
            "closing_minor"] == 50_000
        assert body(credit.get(f"/v1/statements/{p3}", params={"from": str(B), "to": on(T, -10)}))[
            "closing_minor"] == 0
    # aging as of the day before the receipt: 54 days past due; as of its day: nothing owed
    row = eventually(lambda: aging_row(story, "p3", on(T, -11)),
                     lambda r: r is not None and r["total_minor"] == 50_000 and r["d31_60_minor"] == 50_000,
                     what="aging before the receipt")
    assert row["on_account_minor"] == 0
    eventually(lambda: (aging_row(story, "p3", on(T, -10)), aging_row(story, "p3")),
               lambda rows: rows == (None, None), what="aging from the receipt's date on")


def test_every_figure_of_each_partners_account_agrees(story: Story) -> None:
    """After last year's and this year's money: credit's balance = the statement's closing
    balance = the aging total = the partner 360's balance, partner by partner."""

    def figures() -> dict[str, tuple[int, int, int, int]]:
        seen: dict[str, tuple[int, int, int, int]] = {}
        with story.system.as_role("credit", "finance") as credit, \
                story.system.as_role("projections", "finance") as projections:
            for who, pid in story.partners.items():
                row = aging_row(story, who)
                seen[who] = (
                    body(credit.get(f"/v1/accounts/{pid}"))["balance_minor"],
                    body(credit.get(f"/v1/statements/{pid}", params={"from": str(B), "to": str(T)}))[
                        "closing_minor"],
                    row["total_minor"] if row else 0,
                    body(projections.get(f"/v1/views/partners/{pid}"))["balance_minor"])
        return seen

    # p2 owes 2_700_000 less the two interim payouts (14_000 each, credit notes)
    expected = {"p1": 0, "p2": 2_700_000 - 28_000, "p3": 0}
    eventually(figures, lambda seen: all(set(seen[who]) == {expected[who]} for who in expected),
               what="every figure of every account to agree")
