"""An approved co-op claim becomes a credit note on the partner's account, once (both databases)."""

from __future__ import annotations

from datetime import date

from libs.events.rebates import CoopClaimApproved
from tests.credit.support import TODAY, Feed, account, ok, types
from tests.service_support import RunningService


async def coop_claim_approved(feed: Feed, partner_id: str, approved: int, claim_id: str = "clm_1") -> None:
    await feed.emit(f"rebate-prg_c-{partner_id}", CoopClaimApproved(
        claim_id=claim_id, program_id="prg_c", partner_id=partner_id, claimed_minor=2 * approved + 10,
        matched_minor=approved + 5, approved_minor=approved, approved_by="finance:k2",
        approved_on=date(2026, 3, 1)), "rebate")


async def test_an_approved_coop_claim_is_a_credit_note_in_the_statement(
        svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=100_000, term=30)
    await feed.register("p2", limit=100_000, term=30)
    finance = await feed.key("finance")
    p1, p2 = await feed.key("partner", "p1"), await feed.key("partner", "p2")
    await feed.order("o1", "p1", 30_000)
    await feed.ship_all("o1")
    await coop_claim_approved(feed, "p1", 9_000)
    await coop_claim_approved(feed, "p1", 9_000)  # redelivered: one note
    assert (await types(svc, "p1")).count("CreditNoteIssued") == 1
    [note] = ok(await svc.client.get("/v1/credit-notes", headers=p1))["items"]
    assert {k: note[k] for k in ("partner_id", "amount_minor", "source", "issued_on")} == {
        "partner_id": "p1", "amount_minor": 9_000, "source": "coop", "issued_on": str(TODAY)}
    assert note["reason"] == "co-op claim clm_1 (program prg_c)"
    assert ok(await svc.client.get("/v1/credit-notes", headers=p2))["items"] == []
    statement = ok(await svc.client.get("/v1/statements/p1", headers=finance,
                                        params={"from": str(TODAY), "to": str(TODAY)}))
    assert [(x["kind"], x["debit_minor"], x["credit_minor"]) for x in statement["lines"]] == [
        ("invoice", 30_000, 0), ("credit_note", 0, 9_000)]
    assert statement["closing_minor"] == 21_000
    assert (await account(svc, finance, "p1"))["balance_minor"] == 21_000
