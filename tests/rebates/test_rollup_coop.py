"""Sub-dealer roll-up and the co-op advertising fund, against the running rebates service (both databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from libs.events import default_registry
from libs.events.partners import PartnerParentChanged
from libs.store.database import Database
from services.rebates.app import SPEC
from services.rebates.application import views
from services.rebates.application.coop import expire_funds
from services.rebates.application.rebuild import rebuild_read_models
from tests.read_model_support import documents_of
from tests.rebates.support import Feed, accrual, issue_key, program_body, stored_events
from tests.service_support import RunningService, running

TODAY = date(2026, 3, 20)


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        service.ctx.clock = lambda: datetime(2026, 3, 20, 12, tzinfo=UTC)
        yield service


async def publish(svc: RunningService, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = await svc.client.post("/v1/programs", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def coop_body(**coop: Any) -> dict[str, Any]:
    rule = {"share_bp": 200, "match_bp": 5000, "expires_on": "2026-06-30", **coop}
    return {"name": "Co-op 2026", "kind": "coop", "starts_on": "2026-01-01", "ends_on": "2026-03-31",
            "coop": rule}


async def parent_change(feed: Feed, partner_id: str, to: str | None, on: str) -> None:
    await feed.send(PartnerParentChanged(partner_id=partner_id, from_parent_id=None, to_parent_id=to,
                                         effective_from=date.fromisoformat(on)), f"partner-{partner_id}")


# -- roll-up ---------------------------------------------------------------------------------


async def test_a_sub_dealers_invoice_counts_toward_its_parent_by_the_programs_rollup(
        svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("master")
    await feed.partner("sub", parent_id="master")
    tiers = [{"from_minor": 0, "rate_bp": 100}]
    to_parent = await publish(svc, finance, program_body(tiers=tiers, rollup="parent"))
    to_both = await publish(svc, finance, program_body(tiers=tiers, rollup="both"))
    own_only = await publish(svc, finance, program_body(tiers=tiers))
    await feed.invoice("inv-m", "master", [("tools", 1_000_000)])
    await feed.invoice("inv-s", "sub", [("tools", 300_000)])

    parent = await accrual(svc, finance, to_parent, "master")
    assert parent["basis_minor"] == 1_300_000 and parent["accrued_minor"] == 13_000
    assert parent["sources"] == [{"kind": "invoice", "ref": "inv-m", "amount_minor": 1_000_000},
                                 {"kind": "invoice", "ref": "inv-s", "amount_minor": 300_000,
                                  "partner_id": "sub"}]
    listed = (await svc.client.get("/v1/accruals", params={"program_id": to_parent}, headers=finance)).json()
    assert [a["partner_id"] for a in listed["items"]] == ["master"]  # "parent": not the sub-dealer's own
    assert (await accrual(svc, finance, to_both, "master"))["accrued_minor"] == 13_000
    assert (await accrual(svc, finance, to_both, "sub"))["accrued_minor"] == 3_000
    assert (await accrual(svc, finance, own_only, "master"))["accrued_minor"] == 10_000
    assert (await accrual(svc, finance, own_only, "sub"))["accrued_minor"] == 3_000
    # a return of the sub-dealer's goods comes off the parent's basis too
    await feed.credit_note("cn-s", "sub", [("tools", 100_000)], order_id="ord-inv-s")
    assert (await accrual(svc, finance, to_parent, "master"))["basis_minor"] == 1_200_000
    # the parent's partner key sees the sub-dealer's invoice among its own sources
    mine = await issue_key(svc, "partner", "master")
    seen = await accrual(svc, mine, to_parent, "master")
    assert {s.get("partner_id") for s in seen["sources"]} == {None, "sub"}


async def test_a_program_published_later_attributes_the_ledger_by_its_rollup(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("master")
    await feed.partner("sub", parent_id="master")
    await feed.invoice("inv-s", "sub", [("tools", 300_000)])
    program = await publish(svc, finance, program_body(tiers=[{"from_minor": 0, "rate_bp": 100}],
                                                       rollup="parent"))
    parent = await accrual(svc, finance, program, "master")
    assert (parent["basis_minor"], parent["accrued_minor"]) == (300_000, 3_000)
    assert parent["sources"][0]["partner_id"] == "sub"


async def test_a_parent_change_counts_from_its_date_and_leaves_settled_periods_alone(
        svc: RunningService) -> None:
    finance, approver = await issue_key(svc, "finance"), await issue_key(svc, "finance")
    feed = Feed(svc)
    for partner in ("old", "new"):
        await feed.partner(partner)
    await feed.partner("sub", parent_id="old")
    program = await publish(svc, finance, program_body(tiers=[{"from_minor": 0, "rate_bp": 100}],
                                                       rollup="parent"))
    await feed.invoice("inv-1", "sub", [("tools", 200_000)], issued_on="2026-02-10")
    settled = await svc.client.post(f"/v1/programs/{program}/settle", json={"through": "2026-02-28"},
                                    headers=finance)
    assert settled.status_code == 200, settled.text
    [proposal] = settled.json()["settlements"]
    assert (proposal["partner_id"], proposal["payout_minor"]) == ("old", 2_000)
    assert proposal["sources"] == [{"kind": "invoice", "ref": "inv-1", "amount_minor": 200_000,
                                    "partner_id": "sub"}]
    approved = await svc.client.post(f"/v1/settlements/{proposal['id']}/approve", headers=approver)
    assert approved.status_code == 200, approved.text

    await parent_change(feed, "sub", "new", "2026-03-01")
    await feed.invoice("inv-late", "sub", [("tools", 50_000)], issued_on="2026-02-27")  # before the change
    await feed.invoice("inv-2", "sub", [("tools", 400_000)], issued_on="2026-03-05")
    old = await accrual(svc, finance, program, "old")
    assert [s["ref"] for s in old["sources"]] == ["inv-1", "inv-late"]
    assert (old["basis_minor"], old["settled_minor"]) == (250_000, 2_000)
    new = await accrual(svc, finance, program, "new")
    assert [(s["ref"], s["partner_id"]) for s in new["sources"]] == [("inv-2", "sub")]
    assert new["accrued_minor"] == 4_000
    settlement = (await svc.client.get(f"/v1/settlements/{proposal['id']}", headers=finance)).json()
    assert (settlement["status"], settlement["payout_minor"]) == ("approved", 2_000)


# -- co-op fund ------------------------------------------------------------------------------


async def file(svc: RunningService, headers: dict[str, str], program: str, amount: int,
               **extra: Any) -> Any:
    return await svc.client.post("/v1/coop-claims", headers=headers, json={
        "program_id": program, "amount_minor": amount, "description": "spring flyers",
        "evidence_ref": "s3://evidence/flyers.pdf", **extra})


async def test_a_coop_fund_accrues_its_share_and_pays_matched_claims_up_to_its_balance(
        svc: RunningService) -> None:
    finance, second = await issue_key(svc, "finance"), await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    partner = await issue_key(svc, "partner", "p1")
    program = await publish(svc, finance, coop_body())
    await feed.invoice("inv-1", "p1", [("tools", 1_000_000)])
    await feed.credit_note("cn-1", "p1", [("tools", 100_000)], order_id="ord-inv-1")
    fund = (await svc.client.get("/v1/coop-funds", params={"partner_id": "p1"}, headers=partner)).json()
    [only] = fund["items"]
    assert (only["accrued_minor"], only["balance_minor"], only["status"]) == (18_000, 18_000, "open")

    first = await file(svc, partner, program, 20_000)
    assert first.status_code == 201, first.text
    claim = first.json()
    assert (claim["status"], claim["partner_id"], claim["approved_minor"]) == ("filed", "p1", 0)
    approved = await svc.client.post(f"/v1/coop-claims/{claim['id']}/approve", headers=finance)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["matched_minor"], approved.json()["approved_minor"]) == (10_000, 10_000)

    capped = (await file(svc, partner, program, 30_000)).json()  # matched 15,000; 8,000 left
    body = (await svc.client.post(f"/v1/coop-claims/{capped['id']}/approve", headers=second)).json()
    assert (body["status"], body["matched_minor"], body["approved_minor"]) == ("approved", 15_000, 8_000)
    empty = (await file(svc, partner, program, 1_000)).json()
    refused = await svc.client.post(f"/v1/coop-claims/{empty['id']}/approve", headers=finance)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/coop-fund-empty")
    [fund_after] = (await svc.client.get("/v1/coop-funds", headers=finance)).json()["items"]
    assert (fund_after["paid_minor"], fund_after["balance_minor"], fund_after["pending_claims"]) == (
        18_000, 0, 1)
    payouts = await stored_events(svc, "CoopClaimApproved")
    assert [(e["claim_id"], e["approved_minor"]) for e in payouts] == [
        (claim["id"], 10_000), (capped["id"], 8_000)]


async def test_the_filer_may_not_decide_and_a_decision_is_final(svc: RunningService) -> None:
    finance, second = await issue_key(svc, "finance"), await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, finance, coop_body())
    await feed.invoice("inv-1", "p1", [("tools", 1_000_000)])
    missing = await file(svc, finance, program, 1_000)
    assert missing.status_code == 422  # finance names the partner it files for
    claim = (await file(svc, finance, program, 1_000, partner_id="p1")).json()
    for action, body in (("approve", None), ("reject", {"reason": "mine"})):
        own = await svc.client.post(f"/v1/coop-claims/{claim['id']}/{action}", headers=finance, json=body)
        assert own.status_code == 403 and own.json()["type"].endswith("/same-approver"), own.text
    rejected = await svc.client.post(f"/v1/coop-claims/{claim['id']}/reject", headers=second,
                                     json={"reason": "no proof of placement"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "no proof of placement"
    again = await svc.client.post(f"/v1/coop-claims/{claim['id']}/approve", headers=second)
    assert again.status_code == 409 and again.json()["type"].endswith("/coop-claim-not-decidable")
    assert await stored_events(svc, "CoopClaimApproved") == []


async def test_claims_are_partner_scoped(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    await feed.partner("p2")
    p1, p2 = await issue_key(svc, "partner", "p1"), await issue_key(svc, "partner", "p2")
    program = await publish(svc, finance, coop_body())
    claim = (await file(svc, p1, program, 1_000)).json()
    assert (await svc.client.get(f"/v1/coop-claims/{claim['id']}", headers=p2)).status_code == 404
    assert (await svc.client.get(f"/v1/coop-claims/{claim['id']}", headers=p1)).status_code == 200
    assert (await svc.client.get("/v1/coop-claims", headers=p2)).json()["items"] == []
    assert (await svc.client.get("/v1/coop-claims", params={"partner_id": "p1"}, headers=p2)).json()[
        "items"] == []
    assert (await svc.client.get("/v1/coop-funds", headers=p2)).json()["items"] == []
    other = await file(svc, p2, program, 1_000, partner_id="p1")
    assert other.status_code == 404
    assert (await svc.client.post(f"/v1/coop-claims/{claim['id']}/approve", headers=p2)).status_code == 403
    volume = await publish(svc, finance, program_body())
    assert (await file(svc, p1, volume, 1_000)).status_code == 409  # not a co-op program
    closed = await svc.client.post(f"/v1/programs/{program}/close", headers=finance)
    assert closed.status_code == 409 and closed.json()["type"].endswith("/coop-program-not-settled")


async def test_unused_funds_expire_and_later_claims_are_refused(svc: RunningService) -> None:
    finance, second = await issue_key(svc, "finance"), await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    partner = await issue_key(svc, "partner", "p1")
    program = await publish(svc, finance, coop_body(expires_on="2026-04-30"))
    await feed.invoice("inv-1", "p1", [("tools", 1_000_000)])  # fund: 20,000
    paid = (await file(svc, partner, program, 10_000)).json()
    await svc.client.post(f"/v1/coop-claims/{paid['id']}/approve", headers=finance)
    pending = (await file(svc, partner, program, 4_000)).json()
    assert await expire_funds(svc.ctx, date(2026, 4, 30)) == []  # the last day still counts
    assert await expire_funds(svc.ctx, date(2026, 5, 1)) == [(program, "p1")]
    assert await expire_funds(svc.ctx, date(2026, 5, 2)) == []  # once
    [expiry] = await stored_events(svc, "CoopFundExpired")
    assert (expiry["expired_minor"], expiry["expires_on"]) == (15_000, "2026-04-30")
    [fund] = (await svc.client.get("/v1/coop-funds", headers=partner)).json()["items"]
    assert (fund["status"], fund["expired_minor"], fund["balance_minor"]) == ("expired", 15_000, 0)

    svc.ctx.clock = lambda: datetime(2026, 5, 1, 9, tzinfo=UTC)
    late = await file(svc, partner, program, 1_000)
    assert late.status_code == 409 and late.json()["type"].endswith("/coop-fund-expired")
    too_late = await svc.client.post(f"/v1/coop-claims/{pending['id']}/approve", headers=second)
    assert too_late.status_code == 409 and too_late.json()["type"].endswith("/coop-fund-expired")
    rejected = await svc.client.post(f"/v1/coop-claims/{pending['id']}/reject", headers=second,
                                     json={"reason": "fund expired"})
    assert rejected.status_code == 200


async def test_a_coop_program_names_only_its_fund_rule(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    for body in (coop_body() | {"tiers": [{"from_minor": 0, "rate_bp": 1}]},
                 coop_body(expires_on="2026-03-30"),
                 {**coop_body(), "coop": None},
                 program_body(coop={"share_bp": 1, "match_bp": 1, "expires_on": "2026-06-30"}),
                 program_body(rollup="grandparent"), program_body(basis=None)):
        response = await svc.client.post("/v1/programs", json=body, headers=finance)
        assert response.status_code == 422, (body, response.text)
    published = (await svc.client.post("/v1/programs", json=coop_body(), headers=finance)).json()
    assert (published["kind"], published["coop"]["match_bp"], published["tiers"]) == (
        "coop", 5000, [{"from_minor": 0, "rate_bp": 200}])


async def test_rebuilding_gives_the_claim_and_fund_documents_the_commands_wrote(
        svc: RunningService) -> None:
    finance, second = await issue_key(svc, "finance"), await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    partner = await issue_key(svc, "partner", "p1")
    program = await publish(svc, finance, coop_body())
    await feed.invoice("inv-1", "p1", [("tools", 1_000_000)])
    paid = (await file(svc, partner, program, 10_000)).json()
    await svc.client.post(f"/v1/coop-claims/{paid['id']}/approve", headers=finance)
    rejected = (await file(svc, partner, program, 2_000)).json()
    await svc.client.post(f"/v1/coop-claims/{rejected['id']}/reject", headers=second,
                          json={"reason": "dup"})
    await file(svc, partner, program, 3_000)
    await feed.credit_note("cn-coop", "p1", [], source_kind="coop", source_ref=paid["id"],
                           amount_minor=5_000)
    kinds = (views.PROGRAM, views.ACCRUAL, views.CLAIM)
    live = await documents_of(svc.ctx.db, kinds)
    assert sorted(row[3] for row in live if row[0] == views.CLAIM) == ["approved", "filed", "rejected"]
    assert any(row[5].get("credit_note_id") == "cn-coop" for row in live)

    await rebuild_read_models(svc.ctx.db, default_registry())

    assert await documents_of(svc.ctx.db, kinds) == live
