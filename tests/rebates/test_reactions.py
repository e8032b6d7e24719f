"""Accrual from the partners' and credit's events, period close, approval and true-ups (both databases)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from libs.events.credit import CreditNoteApplied, InvoiceIssued
from libs.events.values import InvoiceLine
from libs.messaging.consumer import Delivery, Outcome
from libs.runtime import documents
from libs.store.database import Database
from services.rebates.app import SPEC
from tests.rebates.support import Feed, accrual, issue_key, program_body, stored, stored_events
from tests.service_support import RunningService, running


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service


async def publish(svc: RunningService, headers: dict[str, str], **overrides: Any) -> str:
    response = await svc.client.post("/v1/programs", json=program_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def close(svc: RunningService, headers: dict[str, str], program_id: str) -> list[dict[str, Any]]:
    response = await svc.client.post(f"/v1/programs/{program_id}/close", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["settlements"]


async def test_retroactive_and_incremental_accrue_exact_running_totals(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    retro = await publish(svc, finance, mode="retroactive")
    incremental = await publish(svc, finance, mode="incremental")
    await feed.invoice("inv-1", "p1", [("tools", 800_000)])
    await feed.invoice("inv-2", "p1", [("tools", 4_000_000), ("paint", 1_200_000)])
    await feed.invoice("inv-late", "p1", [("tools", 9_000_000)], issued_on="2026-04-01")
    await feed.invoice("inv-usd", "p1", [("tools", 9_000_000)], currency="USD")

    sources = [{"kind": "invoice", "ref": "inv-1", "amount_minor": 800_000},
               {"kind": "invoice", "ref": "inv-2", "amount_minor": 5_200_000}]
    assert await accrual(svc, finance, retro, "p1") == {
        "partner_id": "p1", "program_id": retro, "basis_minor": 6_000_000, "accrued_minor": 180_000,
        "tier_rate_bp": 300, "currency": "CNY", "sources": sources, "settled_minor": 0,
        "components": [{"kind": "volume", "amount_minor": 180_000}]}
    assert (await accrual(svc, finance, incremental, "p1"))["accrued_minor"] == 120_000
    accrued = await stored_events(svc, "RebateAccrued")
    running_totals = {(e["program_id"], e["basis_minor"], e["accrued_minor"], e["tier_rate_bp"])
                      for e in accrued}
    assert running_totals == {(retro, 800_000, 8_000, 100), (retro, 6_000_000, 180_000, 300),
                              (incremental, 800_000, 8_000, 100), (incremental, 6_000_000, 120_000, 300)}
    reactions = await stored(svc, "RebateAccrued")
    assert {e.correlation_id for e in reactions} == {feed.correlation_id}
    assert all(e.actor == "system:rebates" and e.causation_id for e in reactions)


async def test_a_redelivered_or_repeated_invoice_is_counted_once(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, finance)
    await feed.invoice("inv-1", "p1", [("tools", 100_000)])
    envelope = feed.envelope(InvoiceIssued.model_validate({
        "invoice_id": "inv-2", "order_id": "o", "partner_id": "p1", "dispatch_id": "d",
        "lines": [{"sku": "S", "category": "tools", "qty": 1, "unit_price_minor": 5,
                   "line_total_minor": 5}],
        "total_minor": 5, "issued_on": "2026-02-01", "due_on": "2026-03-01", "region": "east",
        "tier": "A"}), "invoice-inv-2")
    assert await svc.consumer.handle(envelope) == Outcome.APPLIED
    assert await svc.consumer.handle(envelope) == Outcome.DUPLICATE
    await feed.invoice("inv-1", "p1", [("tools", 100_000)])  # the same invoice under another event id
    assert (await accrual(svc, finance, program, "p1"))["basis_minor"] == 100_005
    assert len(await stored_events(svc, "RebateAccrued")) == 2


async def test_eligibility_by_tier_region_and_category(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1", tier="A", region="east", parent_id="p0")
    await feed.partner("p2", tier="B", region="east")
    await feed.partner("p3", tier="A", region="west")
    program = await publish(svc, finance, eligibility={"tiers": ["A"], "regions": ["east"],
                                                       "categories": ["tools"]})
    for partner in ("p1", "p2", "p3"):
        await feed.invoice(f"inv-{partner}", partner, [("tools", 100_000), ("paint", 50_000)])
    # no partner news yet: the tier and region the invoice carries decide
    await feed.invoice("inv-p4", "p4", [("tools", 70_000)], tier="A", region="east")
    listed = (await svc.client.get("/v1/accruals", params={"program_id": program}, headers=finance)).json()
    assert {a["partner_id"]: a["basis_minor"] for a in listed["items"]} == {"p1": 100_000, "p4": 70_000}
    await feed.tier_change("p2", "B", "A")
    await feed.invoice("inv-p2-b", "p2", [("tools", 30_000), ("paint", 1)])
    assert (await accrual(svc, finance, program, "p2"))["sources"] == [
        {"kind": "invoice", "ref": "inv-p2-b", "amount_minor": 30_000}]
    await feed.tier_change("p2", "A", "C")  # moved down: new sales no longer count, returns still reverse
    await feed.invoice("inv-p2-c", "p2", [("tools", 1_000)])
    await feed.credit_note("cn-p2", "p2", [("tools", 10_000), ("paint", 1)])
    moved_down = await accrual(svc, finance, program, "p2")
    assert [s["ref"] for s in moved_down["sources"]] == ["inv-p2-b", "cn-p2"]
    assert moved_down["basis_minor"] == 20_000
    async with svc.ctx.db.read() as conn:
        copy = await documents.get(conn, "partner-copy", "p1")
    assert copy == {"partner_id": "p1", "tier": "A", "region": "east", "parent_id": "p0"}


async def test_collected_basis_counts_the_eligible_share_of_cash_applied_in_the_period(
        svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    collected = await publish(svc, finance, basis="collected", eligibility={"categories": ["tools"]})
    invoiced = await publish(svc, finance, basis="invoiced")
    await feed.invoice("inv-1", "p1", [("tools", 600_000), ("paint", 400_000)])
    assert (await svc.client.get("/v1/accruals", params={"program_id": collected},
                                 headers=finance)).json()["items"] == []
    await feed.payment("pay-1", "inv-1", "p1", 500_000, applied_on="2026-02-20")
    await feed.payment("pay-2", "inv-1", "p1", 500_000, applied_on="2026-04-05")  # after the period
    await feed.payment("pay-3", "inv-2", "p1", 200_000, applied_on="2026-03-01")  # before its invoice
    await feed.invoice("inv-2", "p1", [("tools", 200_000)])
    await feed.invoice("inv-3", "p1", [("tools", 50_000)])
    await feed.advance("inv-3", "p1", 50_000)  # prepaid: settled from the advance, dated by the invoice
    await feed.advance(None, "p1", 99_999)     # only reserved for an order: not cash on an invoice
    assert await accrual(svc, finance, collected, "p1") == {
        "partner_id": "p1", "program_id": collected, "basis_minor": 550_000, "accrued_minor": 5_500,
        "tier_rate_bp": 100, "currency": "CNY", "settled_minor": 0,
        "components": [{"kind": "volume", "amount_minor": 5_500}], "sources": [
            {"kind": "payment", "ref": "pay-1/inv-1", "amount_minor": 300_000},
            {"kind": "payment", "ref": "pay-3/inv-2", "amount_minor": 200_000},
            {"kind": "payment", "ref": "advance/inv-3", "amount_minor": 50_000}]}
    assert (await accrual(svc, finance, invoiced, "p1"))["basis_minor"] == 1_250_000


async def test_collected_basis_does_not_accrue_on_a_credit_note_applied_to_an_invoice(
        svc: RunningService) -> None:
    """A credit note settling an invoice is not cash: no rebate on a rebate, no refund as cash."""
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    collected = await publish(svc, finance, basis="collected")
    await feed.invoice("inv-1", "p1", [("tools", 600_000)])
    await feed.payment("pay-1", "inv-1", "p1", 100_000, applied_on="2026-02-20")
    before = await accrual(svc, finance, collected, "p1")
    assert before["basis_minor"] == 100_000
    for note_id, amount in (("cn-rebate", 200_000), ("cn-return", 300_000)):
        applied = CreditNoteApplied(credit_note_id=note_id, invoice_id="inv-1", partner_id="p1",
                                    amount_minor=amount, applied_on=date(2026, 3, 1))
        outcome = await svc.consumer.handle(feed.envelope(applied, "account-p1"))
        assert outcome in (Outcome.IGNORED, Outcome.APPLIED), outcome
    assert CreditNoteApplied.TYPE not in svc.consumer.handlers
    assert await accrual(svc, finance, collected, "p1") == before


async def test_close_approve_late_return_and_true_ups(svc: RunningService) -> None:
    closer = await issue_key(svc, "finance", key_id="fin-1")
    approver = await issue_key(svc, "finance", key_id="fin-2")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, closer)
    await feed.invoice("inv-1", "p1", [("tools", 2_000_000)])
    await feed.credit_note("cn-1", "p1", [("tools", 300_000)], issued_on="2026-03-05")
    await feed.credit_note("cn-out", "p1", [("tools", 1)], issued_on="2026-04-10")  # outside the period
    assert (await accrual(svc, closer, program, "p1"))["accrued_minor"] == 34_000  # 1_700_000 x 2%

    [first] = await close(svc, closer, program)
    assert {k: first[k] for k in ("partner_id", "status", "final_minor", "already_settled_minor",
                                  "payout_minor", "proposed_by", "volume_minor")} == {
        "partner_id": "p1", "status": "proposed", "final_minor": 34_000, "already_settled_minor": 0,
        "payout_minor": 34_000, "proposed_by": "fin-1", "volume_minor": 34_000}
    assert first["id"].startswith("stl_") and first["sources"] == [
        {"kind": "invoice", "ref": "inv-1", "amount_minor": 2_000_000},
        {"kind": "return", "ref": "cn-1", "amount_minor": -300_000}]

    same = await svc.client.post(f"/v1/settlements/{first['id']}/approve", headers=closer)
    assert same.status_code == 403 and same.json()["type"].endswith("/same-approver")
    approved = await svc.client.post(f"/v1/settlements/{first['id']}/approve", headers=approver)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("approved", "fin-2")
    assert await stored_events(svc, "SettlementApproved") == [{
        "settlement_id": first["id"], "program_id": program, "partner_id": "p1",
        "payout_minor": 34_000, "currency": "CNY", "approved_by": "fin-2"}]
    again = await svc.client.post(f"/v1/settlements/{first['id']}/approve", headers=approver)
    assert again.status_code == 409
    assert (await accrual(svc, closer, program, "p1"))["settled_minor"] == 34_000

    await feed.credit_note("cn-2", "p1", [("tools", 800_000)], issued_on="2026-03-30")  # late return
    listed = (await svc.client.get("/v1/settlements", params={"program_id": program},
                                   headers=closer)).json()["items"]
    [auto] = [s for s in listed if s["status"] == "debit"]  # the final program proposed its true-up at once
    assert (auto["kind"], auto["proposed_by"], auto["final_minor"], auto["payout_minor"]) == (
        "true_up", "rebates", 9_000, -25_000)
    [debit] = await close(svc, closer, program)
    assert (debit["status"], debit["final_minor"], debit["already_settled_minor"], debit["payout_minor"]) == (
        "debit", 9_000, 34_000, -25_000)
    same_key = await svc.client.post(f"/v1/settlements/{debit['id']}/approve", headers=closer)
    assert same_key.status_code == 403
    collected = await svc.client.post(f"/v1/settlements/{debit['id']}/approve", headers=approver)
    assert collected.status_code == 200 and collected.json()["status"] == "approved", collected.text
    assert (await accrual(svc, closer, program, "p1"))["settled_minor"] == 9_000

    await feed.invoice("inv-late", "p1", [("tools", 5_000_000)], issued_on="2026-03-31")
    [true_up] = await close(svc, approver, program)  # fin-2 closes this round: fin-1 approves
    assert (true_up["final_minor"], true_up["already_settled_minor"], true_up["payout_minor"]) == (
        177_000, 9_000, 168_000)
    ok = await svc.client.post(f"/v1/settlements/{true_up['id']}/approve", headers=closer)
    assert ok.status_code == 200 and ok.json()["approved_by"] == "fin-1"
    statuses = (await svc.client.get("/v1/settlements", params={"program_id": program},
                                     headers=closer)).json()["items"]
    assert sorted(s["status"] for s in statuses) == [
        "approved", "approved", "approved", "superseded", "superseded"]
    assert (await accrual(svc, closer, program, "p1"))["settled_minor"] == 177_000
    proposals = await stored_events(svc, "SettlementProposed")
    assert [p["payout_minor"] for p in proposals] == [34_000, -25_000, -25_000, 168_000, 168_000]
    assert [p["payout_minor"] for p in await stored_events(svc, "SettlementApproved")] == [
        34_000, -25_000, 168_000]
    assert len(await stored_events(svc, "ProgramClosed")) == 3

    await feed.credit_note("cn-rebate", "p1", [], source_kind="rebate", source_ref=true_up["id"],
                           amount_minor=168_000, issued_on="2026-04-02")
    linked = (await svc.client.get(f"/v1/settlements/{true_up['id']}", headers=closer)).json()
    assert linked["credit_note_id"] == "cn-rebate"
    assert (await accrual(svc, closer, program, "p1"))["basis_minor"] == 5_900_000


async def test_growth_and_timeliness_bonuses_and_the_cap_apply_at_close(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    await feed.partner("p2")
    for partner in ("p1", "p2"):  # last year's same quarter: the growth baseline
        await feed.invoice(f"base-{partner}", partner, [("tools", 1_000_000)], issued_on="2025-02-01")
    bonuses = {"growth": {"baseline_from": "2025-01-01", "baseline_to": "2025-03-31",
                          "min_growth_bp": 1_000, "rate_bp": 50},
               "timeliness": {"min_on_time_bp": 8_000, "rate_bp": 25}}
    uncapped = await publish(svc, finance, **bonuses)
    capped = await publish(svc, finance, cap_minor=25_000, **bonuses)
    for n, amount in enumerate((500_000, 300_000, 300_000)):  # p1: +10%, all paid on time
        await feed.invoice(f"p1-{n}", "p1", [("tools", amount)])
        await feed.paid(f"p1-{n}", "p1", on_time=True)
    for n, amount in enumerate((525_000, 525_000)):  # p2: +5%, half on time
        await feed.invoice(f"p2-{n}", "p2", [("tools", amount)])
    await feed.paid("p2-0", "p2", on_time=True)
    await feed.paid("p2-1", "p2", on_time=False)

    finals = {s["partner_id"]: s for s in await close(svc, finance, uncapped)}
    p1 = finals["p1"]
    assert (p1["basis_minor"], p1["volume_minor"], p1["growth_bonus_minor"], p1["timeliness_bonus_minor"],
            p1["final_minor"]) == (1_100_000, 22_000, 5_500, 2_750, 30_250)
    p2 = finals["p2"]
    assert (p2["volume_minor"], p2["growth_bonus_minor"], p2["timeliness_bonus_minor"],
            p2["final_minor"]) == (21_000, 0, 0, 21_000)
    finals = {s["partner_id"]: s for s in await close(svc, finance, capped)}
    assert (finals["p1"]["final_minor"], finals["p1"]["payout_minor"]) == (25_000, 25_000)
    assert finals["p2"]["final_minor"] == 21_000


async def test_a_program_published_late_accrues_what_the_period_already_holds(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    await feed.partner("p2", tier="C")
    await feed.invoice("inv-1", "p1", [("tools", 1_500_000)], issued_on="2026-01-15")
    await feed.payment("pay-1", "inv-1", "p1", 1_000_000, applied_on="2026-02-01")
    await feed.credit_note("cn-1", "p1", [("tools", 500_000)], issued_on="2026-02-15")
    await feed.invoice("inv-2", "p2", [("tools", 1_500_000)])
    await feed.invoice("inv-old", "p1", [("tools", 7_000_000)], issued_on="2025-12-31")
    invoiced = await publish(svc, finance, eligibility={"tiers": ["A"]})
    collected = await publish(svc, finance, basis="collected", mode="incremental")
    assert await accrual(svc, finance, invoiced, "p1") == {
        "partner_id": "p1", "program_id": invoiced, "basis_minor": 1_000_000, "accrued_minor": 20_000,
        "tier_rate_bp": 200, "currency": "CNY", "settled_minor": 0,
        "components": [{"kind": "volume", "amount_minor": 20_000}], "sources": [
            {"kind": "invoice", "ref": "inv-1", "amount_minor": 1_500_000},
            {"kind": "return", "ref": "cn-1", "amount_minor": -500_000}]}
    listed = (await svc.client.get("/v1/accruals", params={"program_id": invoiced}, headers=finance)).json()
    assert [a["partner_id"] for a in listed["items"]] == ["p1"]
    assert (await accrual(svc, finance, collected, "p1"))["basis_minor"] == 500_000
    await feed.invoice("inv-3", "p1", [("tools", 100)])  # and accrual goes on from there
    assert (await accrual(svc, finance, invoiced, "p1"))["basis_minor"] == 1_000_100


async def test_a_partner_key_reads_only_its_own_accruals_and_settlements(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    await feed.partner("p2")
    program = await publish(svc, finance)
    await feed.invoice("inv-1", "p1", [("tools", 10_000)])
    await feed.invoice("inv-2", "p2", [("tools", 20_000)])
    p2 = await issue_key(svc, "partner", partner_id="p2")
    own = await accrual(svc, p2, program, "p1")  # asking for p1 still answers p2's own
    assert (own["partner_id"], own["basis_minor"]) == ("p2", 20_000)
    settlements = await close(svc, finance, program)
    other = next(s for s in settlements if s["partner_id"] == "p1")
    assert (await svc.client.get(f"/v1/settlements/{other['id']}", headers=p2)).status_code == 404
    mine = (await svc.client.get("/v1/settlements", headers=p2)).json()["items"]
    assert [s["partner_id"] for s in mine] == ["p2"]


async def test_concurrent_closes_and_accruals_serialise_without_losing_anything(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, finance)
    await feed.invoice("inv-0", "p1", [("tools", 1_000)])
    results = await asyncio.gather(
        svc.client.post(f"/v1/programs/{program}/close", headers=finance),
        svc.client.post(f"/v1/programs/{program}/close", headers=finance),
        *(feed.invoice(f"inv-{n}", "p1", [("tools", 1_000)]) for n in range(1, 4)))
    assert [r.status_code for r in results[:2]] == [200, 200]
    assert (await accrual(svc, finance, program, "p1"))["basis_minor"] == 4_000
    statuses = [s["status"] for s in (await svc.client.get(
        "/v1/settlements", params={"program_id": program}, headers=finance)).json()["items"]]
    # Two closes, and a true-up for each invoice that arrived after the first: the latest stands.
    assert statuses.count("proposed") == 1 and set(statuses) == {"proposed", "superseded"}
    listed = (await svc.client.get("/v1/settlements", params={"program_id": program}, headers=finance)).json()
    latest = next(s for s in listed["items"] if s["status"] == "proposed")
    assert latest["final_minor"] == (await accrual(svc, finance, program, "p1"))["accrued_minor"] == 40


async def test_cash_on_an_invoice_issued_while_ineligible_does_not_accrue_it_on_the_invoiced_basis(
        svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1", tier="A")
    program = await publish(svc, finance, eligibility={"tiers": ["A"]})
    await feed.invoice("inv-1", "p1", [("tools", 100_000)])
    await feed.tier_change("p1", "A", "C")  # moved down: its later sales no longer count
    await feed.invoice("inv-2", "p1", [("tools", 900_000)])
    await feed.payment("pay-1", "inv-2", "p1", 400_000)
    await feed.advance("inv-2", "p1", 500_000)
    assert [s["ref"] for s in (await accrual(svc, finance, program, "p1"))["sources"]] == ["inv-1"]
    assert (await accrual(svc, finance, program, "p1"))["basis_minor"] == 100_000


async def test_a_program_published_while_an_invoice_is_accruing_still_counts_it(svc: RunningService) -> None:
    """The publish reads the ledger, the reaction reads the programs: neither may miss the other."""
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    issued = InvoiceIssued(
        invoice_id="inv-1", order_id="ord-1", partner_id="p1", dispatch_id="dsp-1",
        lines=[InvoiceLine(sku="S", category="tools", qty=1, unit_price_minor=700, line_total_minor=700)],
        total_minor=700, issued_on=date(2026, 2, 10), due_on=date(2026, 3, 12), region="east", tier="A")
    envelope = feed.envelope(issued, "account-p1")
    handler = svc.consumer.handlers[InvoiceIssued.TYPE]
    async with svc.ctx.db.transaction() as conn:  # the reaction, not yet committed
        await handler(Delivery(conn, envelope, issued, svc.consumer.name))
        publishing = asyncio.create_task(svc.client.post("/v1/programs", json=program_body(),
                                                         headers=finance))
        await asyncio.sleep(0.5)
    response = await publishing
    assert response.status_code == 201, response.text
    assert (await accrual(svc, finance, response.json()["id"], "p1"))["basis_minor"] == 700
