"""The reports and the partner 360 ``as_of`` against hand-worked figures, on both databases.

The books (p1, gold/east, credit limit 5 000.00; p2, silver/west, nothing sold):

| fact | day | amount |
|---|---|---|
| agreement, target 10 000.00 | 2025-01-01..2025-12-31 | |
| invoice i0 (unpaid), due 2024-03-11 | 2024-02-10 | 1 000.00 |
| order o1 placed | 2025-02-01 | |
| invoice i1 of o1, due 03-07 | 2025-02-05 | 2 000.00 |
| order o2 placed | 2025-02-20 | |
| rebate accrued (running total) | 2025-02-10 | 50.00 |
| payment 2 000.00 to i1, i1 paid | 2025-03-01 | |
| invoice i2 of o2, due 03-31 | 2025-03-01 | 500.00 |
| territory violation | 2025-03-02 | |
| invoice i3, due 04-09 | 2025-03-10 | 300.00 |
| return credit note on o1 | 2025-03-15 | 200.00 |
| order o3 placed; rebate accrued | 2025-03-20 | 80.00 |
| settlement 80.00 proposed, approved | 2025-03-25/26 | |
| payment 500.00 to i2, i2 paid (late) | 2025-04-10 | |
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from libs.events import credit, orders, partners, rebates
from libs.events.base import DomainEvent
from libs.store.database import Database
from services.projections.application.replay import rebuild_read_models
from tests.projections.support import Feed, credit_note, invoice, placed, projections, registered


def on(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def paid(invoice_id: str, payment_id: str, amount: int, day: date, *, on_time: bool) -> list[DomainEvent]:
    return [credit.PaymentReceived(payment_id=payment_id, partner_id="p1", amount_minor=amount,
                                   bank_ref=f"b-{payment_id}", received_on=day),
            credit.PaymentApplied(payment_id=payment_id, invoice_id=invoice_id, partner_id="p1",
                                  amount_minor=amount, applied_on=day),
            credit.InvoicePaid(invoice_id=invoice_id, partner_id="p1", paid_on=day, on_time=on_time)]


def accrued(total: int) -> DomainEvent:
    return rebates.RebateAccrued(
        program_id="prog1", partner_id="p1",
        source={"kind": "invoice", "ref": "i1", "amount_minor": 1},  # type: ignore[arg-type]
        basis_minor=total * 10, accrued_minor=total, tier_rate_bp=1000)


async def the_books(feed: Feed) -> None:
    await feed.emit("partner-p1", [registered("p1"), partners.AgreementSigned(
        partner_id="p1", agreement_id="a1", kind="annual", starts_on=date(2025, 1, 1),
        ends_on=date(2025, 12, 31), annual_target_minor=1_000_000, status_after="active")],
        at=on(date(2024, 1, 5)))
    await feed.emit("partner-p2", [registered("p2", tier="silver", region="west")])
    await feed.emit("account-p1", [credit.AccountOpened(
        partner_id="p1", kind="credit", credit_limit_minor=500_000, term_days=30)])
    await feed.emit("invoice-i0", [invoice("i0", "o0", "p1", issued_on=date(2024, 2, 10),
                                           due_on=date(2024, 3, 11), lines=[("A", 1, 100_000)])],
                    at=on(date(2024, 2, 10)))
    await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 100_000)])], at=on(date(2025, 2, 1)))
    await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 2, 5),
                                           due_on=date(2025, 3, 7), lines=[("A", 2, 100_000)])],
                    at=on(date(2025, 2, 5)))
    await feed.emit("rebates-prog1-p1", [accrued(5_000)], at=on(date(2025, 2, 10)))
    await feed.emit("order-o2", [placed("o2", "p1", [("B", 1, 50_000)])], at=on(date(2025, 2, 20)))
    await feed.emit("account-p1", paid("i1", "pay1", 200_000, date(2025, 3, 1), on_time=True),
                    at=on(date(2025, 3, 1)))
    await feed.emit("invoice-i2", [invoice("i2", "o2", "p1", issued_on=date(2025, 3, 1),
                                           due_on=date(2025, 3, 31), lines=[("B", 1, 50_000)])])
    await feed.emit("order-v1", [orders.TerritoryViolationRecorded(
        partner_id="p1", partner_ref="PO-x", region="north", territories=["east"])],
        at=on(date(2025, 3, 2)))
    await feed.emit("invoice-i3", [invoice("i3", "o9", "p1", issued_on=date(2025, 3, 10),
                                           due_on=date(2025, 4, 9), lines=[("C", 1, 30_000)])],
                    at=on(date(2025, 3, 10)))
    await feed.emit("credit-note-c1", [credit_note("c1", "p1", 20_000, order_id="o1",
                                                   issued_on=date(2025, 3, 15), lines=[("A", 1, 20_000)])],
                    at=on(date(2025, 3, 15)))
    await feed.emit("order-o3", [placed("o3", "p1", [("A", 1, 1_000)])], at=on(date(2025, 3, 20)))
    await feed.emit("rebates-prog1-p1", [accrued(8_000)])
    await feed.emit("settlement-s1", [rebates.SettlementProposed(
        settlement_id="s1", program_id="prog1", partner_id="p1", final_minor=8_000,
        already_settled_minor=0, payout_minor=8_000, sources=[], proposed_by="finance:f1")],
        at=on(date(2025, 3, 25)))
    await feed.emit("settlement-s1", [rebates.SettlementApproved(
        settlement_id="s1", program_id="prog1", partner_id="p1", payout_minor=8_000,
        approved_by="finance:f2")], at=on(date(2025, 3, 26)))
    await feed.emit("account-p1", paid("i2", "pay2", 50_000, date(2025, 4, 10), on_time=False),
                    at=on(date(2025, 4, 10)))


async def get(feed: Feed, path: str, headers: dict[str, str], status: int = 200) -> Any:
    answer = await feed.svc.client.get(path, headers=headers)
    assert answer.status_code == status, answer.text
    return answer.json()


async def test_scorecard_against_the_previous_year(db: Database) -> None:
    async with projections(db) as feed:
        await the_books(feed)
        sales = await feed.key("sales")
        report = await get(feed, "/v1/views/scorecards?from=2025-01-01&to=2025-03-31"
                                 "&compare=previous_year&partner_id=p1", sales)
        assert (report["compare_from"], report["compare_to"]) == ("2024-01-01", "2024-03-31")
        [row] = report["items"]
        assert {key: row[key] for key in (
            "target_minor", "invoiced_minor", "returned_minor", "sales_minor", "attainment_bp",
            "orders", "invoices_due", "invoices_on_time", "on_time_bp", "invoices_paid",
            "days_to_pay_avg", "returns_rate_bp", "violations", "currency")} == {
            "target_minor": 1_000_000, "invoiced_minor": 280_000, "returned_minor": 20_000,
            "sales_minor": 260_000,
            "attainment_bp": 2600,      # 260 000 / 1 000 000
            "orders": 3,                # o1, o2, o3 placed in the quarter
            "invoices_due": 2,          # i1 (03-07), i2 (03-31)
            "invoices_on_time": 1,      # i1 paid 03-01; i2 unpaid at 03-31
            "on_time_bp": 5000,
            "invoices_paid": 1, "days_to_pay_avg": 24,   # i1: 02-05 -> 03-01
            "returns_rate_bp": 714,     # 20 000 / 280 000 = 714.29 bp
            "violations": 1, "currency": "CNY"}
        assert {key: row[f"previous_{key}"] for key in (
            "target_minor", "sales_minor", "attainment_bp", "orders", "invoices_due", "on_time_bp",
            "days_to_pay_avg", "violations")} == {
            "target_minor": None, "sales_minor": 100_000, "attainment_bp": None, "orders": 0,
            "invoices_due": 1, "on_time_bp": 0, "days_to_pay_avg": None, "violations": 0}
        assert row["sales_growth_bp"] == 16_000   # (260 000 - 100 000) / 100 000

        # the quarter before: i0 fell due (2024-03-11) long before; nothing else
        previous = (await get(feed, "/v1/views/scorecards?from=2025-01-01&to=2025-03-31"
                                    "&compare=previous_period&partner_id=p1", sales))["items"][0]
        assert (previous["previous_sales_minor"], previous["sales_growth_bp"]) == (0, None)

        # a partner key: its own row, whatever it asks; another partner's id is 404
        own = await feed.key("partner", "p1")
        assert [r["partner_id"] for r in (await get(
            feed, "/v1/views/scorecards?from=2025-01-01&to=2025-03-31", own))["items"]] == ["p1"]
        await get(feed, "/v1/views/scorecards?partner_id=p2", own, 404)
        west = await get(feed, "/v1/views/scorecards?from=2025-01-01&to=2025-03-31&region=west", sales)
        assert [r["partner_id"] for r in west["items"]] == ["p2"]
        for bad in ("compare=last_week", "from=2025-04-01&to=2025-03-01",
                    "to=2025-03-31&as_of=2025-03-30"):
            await get(feed, f"/v1/views/scorecards?{bad}", sales, 422)


async def test_sales_growth_against_the_same_period_last_year(db: Database) -> None:
    async with projections(db) as feed:
        await the_books(feed)
        finance = await feed.key("finance")
        report = await get(feed, "/v1/views/sales?group_by=region&from=2025-01-01&to=2025-03-31"
                                 "&compare=previous_year", finance)
        assert [(r["key"], r["amount_minor"], r["previous_amount_minor"], r["growth_bp"])
                for r in report["items"]] == [("east", 260_000, 100_000, 16_000)]
        assert (report["total_minor"], report["previous_total_minor"], report["growth_bp"]) == (
            260_000, 100_000, 16_000)
        by_month = await get(feed, "/v1/views/sales?group_by=month&from=2025-01-01&to=2025-03-31"
                                   "&compare=previous_year", finance)
        assert [(r["key"], r["amount_minor"], r["previous_amount_minor"], r["growth_bp"])
                for r in by_month["items"]] == [("2025-02", 200_000, 100_000, 10_000),
                                                ("2025-03", 60_000, 0, None)]
        assert (await get(feed, "/v1/views/sales?group_by=region&region=west", finance))["items"] == []
        as_of = await get(feed, "/v1/views/sales?group_by=region&from=2025-01-01&as_of=2025-03-31"
                                "&compare=previous_year", finance)
        assert (as_of["to"], as_of["growth_bp"]) == ("2025-03-31", 16_000)
        for bad in ("group_by=month&from=2025-01-01&to=2025-03-31&compare=previous_period",
                    "group_by=region&compare=previous_year",
                    "group_by=region&to=2025-03-31&as_of=2025-03-30"):
            await get(feed, f"/v1/views/sales?{bad}", finance, 422)


async def test_partner_360_as_of_a_past_day(db: Database) -> None:
    async with projections(db) as feed:
        await the_books(feed)
        sales = await feed.key("sales")
        then = await get(feed, "/v1/views/partners/p1?as_of=2025-03-05", sales)
        assert {key: then[key] for key in (
            "invoiced_minor", "received_minor", "credit_notes_minor", "balance_minor",
            "open_invoices_minor", "overdue_minor", "exposure_minor", "sales_minor", "as_of")} == {
            "invoiced_minor": 350_000, "received_minor": 200_000, "credit_notes_minor": 0,
            "balance_minor": 150_000,                 # i0 + i2 open
            "open_invoices_minor": 150_000, "overdue_minor": 100_000,   # i0 only
            "exposure_minor": 150_000, "sales_minor": 350_000, "as_of": "2025-03-05"}
        assert then["orders"]["count"] == 2           # o3 came on 03-20
        assert then["rebates"] == {"accrued_minor": 5_000, "settled_minor": 0}
        now = await get(feed, "/v1/views/partners/p1", sales)
        assert (now["balance_minor"], now["orders"]["count"], now["rebates"]) == (
            380_000 - 250_000 - 20_000, 3, {"accrued_minor": 8_000, "settled_minor": 8_000})
        await get(feed, "/v1/views/partners/p1?as_of=2023-12-31", sales, 404)
        other = await feed.key("partner", "p2")
        await get(feed, "/v1/views/partners/p1?as_of=2025-03-05", other, 404)


async def test_utilisation_dso_rebates_and_aging(db: Database) -> None:
    async with projections(db) as feed:
        await the_books(feed)
        finance = await feed.key("finance")
        report = await get(feed, "/v1/views/credit-utilisation?as_of=2025-03-31&partner_id=p1", finance)
        [row] = report["items"]
        assert (report["from"], report["to"]) == ("2025-01-01", "2025-03-31")   # 90 days
        assert {key: row[key] for key in (
            "terms", "credit_limit_minor", "exposure_minor", "available_minor", "utilisation_bp",
            "receivables_minor", "invoiced_minor", "days", "dso_days")} == {
            "terms": "credit", "credit_limit_minor": 500_000,
            "exposure_minor": 180_000,               # i0 + i2 (paid 04-10) + i3
            "available_minor": 320_000, "utilisation_bp": 3600,
            "receivables_minor": 180_000, "invoiced_minor": 280_000, "days": 90,
            "dso_days": 58}                          # 180 000 / 280 000 x 90 = 57.86
        await get(feed, "/v1/views/credit-utilisation?compare=previous_year", finance, 422)

        rebates_then = await get(feed, "/v1/views/rebates?as_of=2025-03-21", finance)
        assert [(r["program_id"], r["partner_id"], r["accrued_minor"], r["settled_minor"],
                 r["outstanding_minor"]) for r in rebates_then["items"]] == [("prog1", "p1", 8_000, 0, 8_000)]
        rebates_end = await get(feed, "/v1/views/rebates?as_of=2025-03-31&program_id=prog1", finance)
        assert [(r["accrued_minor"], r["settled_minor"], r["outstanding_minor"])
                for r in rebates_end["programs"]] == [(8_000, 8_000, 0)]
        await get(feed, "/v1/views/rebates?compare=previous_period", finance, 422)

        aging = await get(feed, "/v1/views/receivables/aging?as_of=2025-03-31", finance)
        assert aging["buckets"] == ["current_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor",
                                    "d90_plus_minor"]
        # open 180_000; the credit note c1 (20_000, for the paid i1) waits on account:
        # total = buckets - on account = the balance (380_000 - 200_000 - 20_000)
        assert [(r["partner_id"], r["current_minor"], r["d90_plus_minor"], r["on_account_minor"],
                 r["total_minor"]) for r in aging["items"]] == [("p1", 80_000, 100_000, 20_000, 160_000)]
        by_issue = await get(feed, "/v1/views/receivables/aging?as_of=2025-03-31&basis=invoice"
                                   "&buckets=15,400", finance)
        assert by_issue["totals"] == {"d0_15_minor": 0, "d16_400_minor": 80_000, "d400_plus_minor": 100_000,
                                      "on_account_minor": 20_000, "total_minor": 160_000}
        for day in ("2025-03-31", "2025-04-10"):
            [row] = (await get(feed, f"/v1/views/receivables/aging?as_of={day}", finance))["items"]
            seen = await get(feed, f"/v1/views/partners/p1?as_of={day}", finance)
            assert row["total_minor"] == seen["balance_minor"], day
        assert row["total_minor"] == 110_000  # 2025-04-10: i2 paid, i0 and i3 open, c1 on account
        for bad in ("buckets=60,30", "buckets=x", "buckets=0", "basis=paid", "compare=previous_year"):
            await get(feed, f"/v1/views/receivables/aging?{bad}", finance, 422)
        partner = await feed.key("partner", "p1")
        for path in ("credit-utilisation", "rebates", "receivables/aging"):
            await get(feed, f"/v1/views/{path}", partner, 403)


async def test_the_reports_answer_the_same_after_a_rebuild_from_the_archive(db: Database) -> None:
    async with projections(db) as feed:
        await the_books(feed)
        finance = await feed.key("finance")
        paths = ("/v1/views/scorecards?from=2025-01-01&to=2025-03-31&compare=previous_year",
                 "/v1/views/sales?group_by=month&from=2025-01-01&to=2025-03-31&compare=previous_year",
                 "/v1/views/credit-utilisation?as_of=2025-03-31", "/v1/views/rebates?as_of=2025-03-21",
                 "/v1/views/receivables/aging?as_of=2025-03-31&buckets=15,400&basis=invoice",
                 "/v1/views/partners/p1?as_of=2025-03-05")
        before = [await get(feed, path, finance) for path in paths]
        assert before[0]["items"][0]["sales_minor"] == 260_000
        assert await rebuild_read_models(db, feed.svc.ctx.registry) > 0
        assert [await get(feed, path, finance) for path in paths] == before
