"""The partner 360's channel: sub-dealers' sales by the parent on each sale's date, co-op funds."""

from __future__ import annotations

from datetime import UTC, date, datetime

from libs.events import partners, rebates
from libs.store.database import Database
from tests.projections.support import accrued, credit_note, invoice, projections, registered


async def test_the_360_shows_own_and_sub_dealer_sales_and_the_coop_fund(db: Database) -> None:
    async with projections(db) as feed:
        feed.svc.ctx.clock = lambda: datetime(2025, 6, 1, tzinfo=UTC)
        await feed.emit("partner-m", [registered("m")])
        await feed.emit("partner-n", [registered("n")])
        sub = registered("s").model_copy(update={"parent_id": "m"})
        await feed.emit("partner-s", [sub])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "m", issued_on=date(2025, 1, 10),
                                               due_on=date(2025, 2, 9), lines=[("A", 1, 1_000_000)])])
        await feed.emit("invoice-i2", [invoice("i2", "o2", "s", issued_on=date(2025, 2, 10),
                                               due_on=date(2025, 3, 9), lines=[("A", 1, 300_000)])])
        await feed.emit("credit-note-c1", [credit_note("c1", "s", 50_000, order_id="o2",
                                                       issued_on=date(2025, 2, 20))])
        await feed.emit("partner-s", [partners.PartnerParentChanged(
            partner_id="s", from_parent_id="m", to_parent_id="n", effective_from=date(2025, 3, 1))])
        await feed.emit("invoice-i3", [invoice("i3", "o3", "s", issued_on=date(2025, 3, 5),
                                               due_on=date(2025, 4, 4), lines=[("A", 1, 70_000)])])
        await feed.emit("program-c", [rebates.ProgramPublished(
            program_id="c", name="co-op", starts_on=date(2025, 1, 1), ends_on=date(2025, 12, 31),
            basis="invoiced", mode="retroactive", tiers=[{"from_minor": 0, "rate_bp": 200}],  # type: ignore[list-item]
            published_by="f", kind="coop",
            coop={"share_bp": 200, "match_bp": 5000, "expires_on": date(2026, 1, 31)})])  # type: ignore[arg-type]
        await feed.emit("rebate-c-m", [
            accrued("c", "m", 20_000),
            rebates.CoopClaimFiled(claim_id="k1", program_id="c", partner_id="m", amount_minor=30_000,
                                   description="ads", evidence_ref="e1", filed_by="m",
                                   filed_on=date(2025, 4, 1)),
            rebates.CoopClaimApproved(claim_id="k1", program_id="c", partner_id="m", claimed_minor=30_000,
                                      matched_minor=15_000, approved_minor=15_000, approved_by="f2",
                                      approved_on=date(2025, 4, 2)),
            rebates.CoopClaimFiled(claim_id="k2", program_id="c", partner_id="m", amount_minor=1_000,
                                   description="ads", evidence_ref="e2", filed_by="m",
                                   filed_on=date(2025, 4, 3))])
        await feed.emit("rebate-v-m", [accrued("v", "m", 700)])
        await feed.emit("partner-q", [registered("q")])
        await feed.emit("rebate-c-q", [accrued("c", "q", 3_000)])  # accrued, never claimed against

        finance = await feed.key("finance")
        master = (await feed.svc.client.get("/v1/views/partners/m", headers=finance)).json()
        assert master["sales"] == {"own_minor": 1_000_000, "sub_dealers_minor": 250_000,
                                   "total_minor": 1_250_000, "sub_dealers": [
                                       {"partner_id": "s", "name": "Partner s", "sales_minor": 250_000}]}
        assert master["rebates"]["accrued_minor"] == 700  # the co-op fund is not a rebate accrual
        assert master["coop"]["balance_minor"] == 5_000 and master["coop"]["paid_minor"] == 15_000
        [fund] = master["coop"]["funds"]
        assert [(c["claim_id"], c["status"], c["approved_minor"]) for c in fund["claims"]] == [
            ("k1", "approved", 15_000), ("k2", "filed", 0)]
        unclaimed = (await feed.svc.client.get("/v1/views/partners/q", headers=finance)).json()["coop"]
        assert (unclaimed["balance_minor"], unclaimed["paid_minor"]) == (3_000, 0)
        report = (await feed.svc.client.get("/v1/views/coop-funds", headers=finance)).json()
        assert [(r["partner_id"], r["program_id"], r["accrued_minor"], r["paid_minor"], r["balance_minor"],
                 r["claims"], r["pending_claims"], r["status"]) for r in report["items"]] == [
            ("m", "c", 20_000, 15_000, 5_000, 2, 1, "open"), ("q", "c", 3_000, 0, 3_000, 0, 0, "open")]
        assert report["totals"] == {"accrued_minor": 23_000, "paid_minor": 15_000, "expired_minor": 0,
                                    "balance_minor": 8_000}
        only_q = (await feed.svc.client.get("/v1/views/coop-funds", params={"partner_id": "q"},
                                            headers=finance)).json()
        assert [r["partner_id"] for r in only_q["items"]] == ["q"]
        partner = await feed.key("partner", partner_id="m")
        assert (await feed.svc.client.get("/v1/views/coop-funds", headers=partner)).status_code == 403
        secret = finance["Authorization"].split(" ", 1)[1]
        signed = await feed.svc.client.post("/dashboard/sign-in", data={"key": secret})
        session = signed.headers["set-cookie"].split(";", 1)[0]
        page = (await feed.svc.client.get("/dashboard", headers={"Cookie": session})).text
        assert "Co-op advertising funds" in page
        assert 'data-figure="coop-funds-m-balance_minor">50.00<' in page
        assert 'data-figure="coop-funds-q-balance_minor">30.00<' in page
        new = (await feed.svc.client.get("/v1/views/partners/n", headers=finance)).json()
        assert new["sales"]["sub_dealers"] == [
            {"partner_id": "s", "name": "Partner s", "sales_minor": 70_000}]
        assert new["parent_id"] is None
        sub_view = (await feed.svc.client.get("/v1/views/partners/s", headers=finance)).json()
        assert sub_view["parent_id"] == "n" and sub_view["sales"]["sub_dealers_minor"] == 0

        await feed.emit("rebate-c-m", [rebates.CoopFundExpired(program_id="c", partner_id="m",
                                                               expired_minor=5_000,
                                                               expires_on=date(2026, 1, 31))])
        expired = (await feed.svc.client.get("/v1/views/partners/m", headers=finance)).json()["coop"]
        assert (expired["balance_minor"], expired["expired_minor"]) == (0, 5_000)
        assert expired["funds"][0]["expired_on"] == "2026-01-31"
