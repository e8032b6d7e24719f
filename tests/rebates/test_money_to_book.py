"""Issue 8's rebate findings, over HTTP on both databases, each with its exact figures.

Accrual equals what a close proposes (cap, growth, timeliness); a late refund claws back the
period of its sale, even a settled one, with a negative true-up that a second key approves;
interim and final settlements reproduce the condition-contract example. After each, every
amount is checked against what explains it and against projections' figures (``explained``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from libs.store.database import Database
from services.rebates.app import SPEC
from tests.rebates.explained import assert_explained
from tests.rebates.support import Feed, accrual, issue_key, stored_events
from tests.rebates.test_reactions import close, publish
from tests.service_support import RunningService, running

TODAY = date.today()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service


async def settle(svc: RunningService, headers: dict[str, str], program_id: str, through: str) -> Any:
    return await svc.client.post(f"/v1/programs/{program_id}/settle", json={"through": through},
                                 headers=headers)


async def approve(svc: RunningService, headers: dict[str, str], settlement_id: str) -> dict[str, Any]:
    response = await svc.client.post(f"/v1/settlements/{settlement_id}/approve", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_accrued_equals_what_the_close_proposes_for_capped_timeliness_and_growth_programs(
        svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    for partner in ("p1", "p2", "p3"):
        await feed.partner(partner)
    capped = await publish(svc, finance, tiers=[{"from_minor": 0, "rate_bp": 100},
                                                {"from_minor": 1_000_000, "rate_bp": 250}],
                           cap_minor=50_000, eligibility={"partner_ids": ["p1"]})
    timely = await publish(svc, finance, tiers=[{"from_minor": 100_000_000, "rate_bp": 100}],
                           timeliness={"min_on_time_bp": 9_000, "rate_bp": 200},
                           eligibility={"partner_ids": ["p2"]})
    growing = await publish(svc, finance, growth={"baseline_from": "2025-01-01", "baseline_to": "2025-03-31",
                                                  "min_growth_bp": 1_000, "rate_bp": 50},
                            eligibility={"partner_ids": ["p3"]})
    await feed.invoice("big", "p1", [("tools", 21_500_000)])
    await feed.invoice("t-1", "p2", [("tools", 1_340_000)])
    assert (await accrual(svc, finance, timely, "p2"))["accrued_minor"] == 0  # unpaid: no bonus yet
    await feed.paid("t-1", "p2", on_time=True)
    await feed.invoice("base", "p3", [("tools", 1_000_000)], issued_on="2025-02-01")
    await feed.invoice("g-1", "p3", [("tools", 1_200_000)])

    cap = await accrual(svc, finance, capped, "p1")
    assert (cap["accrued_minor"], cap["components"]) == (50_000, [
        {"kind": "volume", "amount_minor": 537_500}, {"kind": "cap", "amount_minor": -487_500}])
    on_time = await accrual(svc, finance, timely, "p2")
    assert (on_time["accrued_minor"], on_time["components"], on_time["sources"]) == (26_800, [
        {"kind": "volume", "amount_minor": 0}, {"kind": "timeliness_bonus", "amount_minor": 26_800}], [
        {"kind": "invoice", "ref": "t-1", "amount_minor": 1_340_000},
        {"kind": "bonus", "ref": "paid/t-1", "amount_minor": 0}])
    grown = await accrual(svc, finance, growing, "p3")
    assert (grown["accrued_minor"], grown["components"]) == (30_000, [
        {"kind": "volume", "amount_minor": 24_000}, {"kind": "growth_bonus", "amount_minor": 6_000}])
    expected = ((capped, "p1", 50_000), (timely, "p2", 26_800), (growing, "p3", 30_000))
    for program, partner, accrued in expected:
        [proposal] = await close(svc, finance, program)
        assert (proposal["partner_id"], proposal["final_minor"], proposal["payout_minor"]) == (
            partner, accrued, accrued)
        assert (await accrual(svc, finance, program, partner))["accrued_minor"] == accrued
    await assert_explained(svc, finance)


async def test_a_late_refund_reopens_last_years_settlement_and_leaves_this_years_growth_alone(
        svc: RunningService) -> None:
    closer = await issue_key(svc, "finance", key_id="fin-1")
    approver = await issue_key(svc, "finance", key_id="fin-2")
    feed = Feed(svc)
    await feed.partner("p1")
    flat = [{"from_minor": 0, "rate_bp": 200}]
    last = await publish(svc, closer, name="last year", starts_on=day(-500), ends_on=day(-200), tiers=flat)
    this = await publish(svc, closer, name="this year", starts_on=day(-199), ends_on=day(100), tiers=flat,
                         growth={"baseline_from": day(-500), "baseline_to": day(-200),
                                 "min_growth_bp": 1_000, "rate_bp": 100})
    await feed.invoice("inv-old", "p1", [("tools", 800_000)], issued_on=day(-300))
    [settled] = await close(svc, closer, last)
    assert (settled["final_minor"], settled["payout_minor"]) == (16_000, 16_000)
    await approve(svc, approver, settled["id"])
    await feed.invoice("inv-new", "p1", [("tools", 1_000_000)], issued_on=day(-30))
    before = await accrual(svc, closer, this, "p1")
    assert (before["basis_minor"], before["accrued_minor"], before["components"]) == (1_000_000, 30_000, [
        {"kind": "volume", "amount_minor": 20_000}, {"kind": "growth_bonus", "amount_minor": 10_000}])

    await feed.credit_note("cn-r", "p1", [("tools", 500_000)], issued_on=day(-5), order_id="ord-inv-old")

    after = await accrual(svc, closer, this, "p1")
    assert after == before  # this year's basis, growth bonus and sources are untouched
    reopened = await accrual(svc, closer, last, "p1")
    assert (reopened["basis_minor"], reopened["accrued_minor"], reopened["settled_minor"]) == (
        300_000, 6_000, 16_000)
    assert reopened["sources"][-1] == {"kind": "return", "ref": "cn-r", "amount_minor": -500_000}
    listed = (await svc.client.get("/v1/settlements", params={"program_id": last},
                                   headers=closer)).json()["items"]
    [true_up] = [s for s in listed if s["status"] == "debit"]
    assert {k: true_up[k] for k in ("kind", "proposed_by", "final_minor", "already_settled_minor",
                                    "payout_minor")} == {
        "kind": "true_up", "proposed_by": "rebates", "final_minor": 6_000, "already_settled_minor": 16_000,
        "payout_minor": -10_000}
    [again] = await close(svc, closer, last)  # re-closing answers the same true-up, not nothing_due
    assert (again["status"], again["payout_minor"]) == ("debit", -10_000)

    refused = await svc.client.post(f"/v1/settlements/{again['id']}/approve", headers=closer)
    assert refused.status_code == 403 and refused.json()["type"].endswith("/same-approver")
    collected = await approve(svc, approver, again["id"])
    assert (collected["status"], collected["approved_by"], collected["payout_minor"]) == (
        "approved", "fin-2", -10_000)
    assert (await stored_events(svc, "SettlementApproved"))[-1] == {
        "settlement_id": again["id"], "program_id": last, "partner_id": "p1", "payout_minor": -10_000,
        "currency": "CNY", "approved_by": "fin-2"}
    assert (await accrual(svc, closer, last, "p1"))["settled_minor"] == 6_000
    [proposal] = await close(svc, closer, this)
    assert (proposal["volume_minor"], proposal["growth_bonus_minor"], proposal["final_minor"]) == (
        20_000, 10_000, 30_000)
    await assert_explained(svc, closer)


@pytest.mark.parametrize(("mode", "final", "payout"), [("retroactive", 108_000, 94_000),
                                                       ("incremental", 68_000, 54_000)])
async def test_the_condition_contract_example_interim_then_final(
        svc: RunningService, mode: str, final: int, payout: int) -> None:
    """2% from 0, 4% from 20,000.00: an interim at 7,000.00 pays 140.00; the final at 27,000.00 the rest."""
    proposer = await issue_key(svc, "finance", key_id="fin-1")
    approver = await issue_key(svc, "finance", key_id="fin-2")
    feed = Feed(svc)
    await feed.partner("p1")
    tiers = [{"from_minor": 0, "rate_bp": 200}, {"from_minor": 2_000_000, "rate_bp": 400}]
    program = await publish(svc, proposer, starts_on=day(-100), ends_on=day(100), mode=mode, tiers=tiers)
    await feed.invoice("inv-1", "p1", [("tools", 700_000)], issued_on=day(-90))
    await feed.invoice("inv-2", "p1", [("tools", 2_000_000)], issued_on=day(-40))  # after the interim

    response = await settle(svc, proposer, program, day(-60))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["settled_through"], body["closes"]) == ("open", day(-60), 0)
    [interim] = body["settlements"]
    assert {k: interim[k] for k in ("kind", "through", "basis_minor", "final_minor", "payout_minor",
                                    "status")} == {
        "kind": "interim", "through": day(-60), "basis_minor": 700_000, "final_minor": 14_000,
        "payout_minor": 14_000, "status": "proposed"}
    assert interim["sources"] == [{"kind": "invoice", "ref": "inv-1", "amount_minor": 700_000}]
    await approve(svc, approver, interim["id"])
    shown = (await svc.client.get(f"/v1/programs/{program}", headers=proposer)).json()
    assert shown["status"] == "open"  # it goes on accruing
    assert (await accrual(svc, proposer, program, "p1"))["accrued_minor"] == final

    [closing] = await close(svc, proposer, program)
    assert {k: closing[k] for k in ("kind", "final_minor", "already_settled_minor", "payout_minor")} == {
        "kind": "final", "final_minor": final, "already_settled_minor": 14_000, "payout_minor": payout}
    assert (await svc.client.get(f"/v1/programs/{program}", headers=proposer)).json()["status"] == "final"
    late = await settle(svc, proposer, program, day(-10))
    assert late.status_code == 409 and late.json()["type"].endswith("/program-final")
    await assert_explained(svc, proposer)


async def test_settle_refuses_bad_dates_unknown_programs_and_other_roles(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, finance, starts_on=day(-100), ends_on=day(100))
    for through, problem in ((day(101), "after the period ends"), (day(-101), "before the period starts"),
                             (day(1), "in the future")):
        refused = await settle(svc, finance, program, through)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert problem in refused.json()["detail"]
    for body in ({}, {"through": "2026-02-30"}, {"through": day(-1), "extra": 1}):
        bad = await svc.client.post(f"/v1/programs/{program}/settle", json=body, headers=finance)
        assert bad.status_code == 422, body
    unknown = await settle(svc, finance, "prg_nope", day(-1))
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/program-not-found")
    partner = await issue_key(svc, "partner", partner_id="p1")
    assert (await settle(svc, partner, program, day(-1))).status_code == 403
    assert (await settle(svc, finance, program, day(-10))).status_code == 200
    earlier = await settle(svc, finance, program, day(-20))
    assert earlier.status_code == 422 and "last interim" in earlier.json()["detail"]
    keyed = {**finance, "Idempotency-Key": "interim-1"}
    first, repeat = await settle(svc, keyed, program, day(-5)), await settle(svc, keyed, program, day(-5))
    assert first.status_code == repeat.status_code == 200 and first.json() == repeat.json()
    assert len(await stored_events(svc, "ProgramSettled")) == 2
    listed = (await svc.client.get("/v1/programs", params={"status": "open"}, headers=finance)).json()
    assert [p["id"] for p in listed["items"]] == [program]
