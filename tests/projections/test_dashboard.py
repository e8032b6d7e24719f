"""The finance dashboard: self-contained HTML, the key as header, ?token= or cookie."""

from __future__ import annotations

from datetime import date

from libs.events import rebates
from libs.store.database import Database
from services.projections.api.dashboard_page import money
from tests.projections.support import accrued, credit_note, invoice, projections, registered
from tests.service_support import ADMIN


def test_money_is_formatted_exactly() -> None:
    assert [money(v) for v in (0, 5, 123456, -100050)] == ["0.00", "0.05", "1,234.56", "-1,000.50"]


async def test_dashboard_renders_with_the_token(db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1", region="north<east>")])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 1),
                                               due_on=date(2025, 1, 31),
                                               lines=[("A", 1, 123456)], region="north<east>")])
        await feed.emit("credit-note-c1", [credit_note("c1", "p1", 4321, kind="rebate",  # on account
                                                       issued_on=date(2025, 2, 1))])
        await feed.emit("program-r1", [rebates.ProgramPublished(
            program_id="r1", name="Spring push", starts_on=date(2025, 1, 1),
            ends_on=date(2025, 3, 31), basis="invoiced", mode="retroactive",
            tiers=[{"from_minor": 0, "rate_bp": 100}], published_by="f1")])  # type: ignore[list-item]
        await feed.emit("accrual-r1-p1", [accrued("r1", "p1", 7777)])
        finance = await feed.key("finance")
        secret = finance["Authorization"].split(" ", 1)[1]
        client = feed.svc.client
        answer = await client.get(f"/dashboard?token={secret}&as_of=2025-03-01")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        page = answer.text
        for expected in ("Receivables aging", "Sales by region", "Rebates accrued vs settled",
                         "1,234.56", "Spring push", "77.77", "north&lt;east&gt;",
                         "On account", "43.21", "1,191.35"):  # total = 1,234.56 - 43.21 on account
            assert expected in page, expected
        assert "<script" not in page and "http://" not in page and "https://" not in page
        assert "o2c_token" in answer.headers["set-cookie"]
        client.cookies.set("o2c_token", secret)
        assert (await client.get("/dashboard")).status_code == 200
        client.cookies.clear()
        assert (await client.get("/dashboard", headers=finance)).status_code == 200
        assert (await client.get("/dashboard", headers=await feed.key("auditor"))).status_code == 200
        assert (await client.get("/dashboard")).status_code == 401
        assert (await client.get("/dashboard?token=wrong")).status_code == 401
        for refused in (await feed.key("partner", "p1"), await feed.key("sales"), ADMIN):
            assert (await client.get("/dashboard", headers=refused)).status_code == 403
        assert (await client.get("/dashboard?as_of=2025-99-01", headers=finance)).status_code == 422


async def test_dashboard_answers_are_never_cached_nor_sent_as_referer(db: Database) -> None:
    async with projections(db) as feed:
        finance = await feed.key("finance")
        secret = finance["Authorization"].split(" ", 1)[1]
        client = feed.svc.client
        answers = [await client.get("/dashboard"),
                   await client.get(f"/dashboard?token={secret}"),
                   await client.get("/dashboard", headers=finance),
                   await client.get("/dashboard", headers=await feed.key("sales")),
                   await client.get("/dashboard?as_of=0", headers=finance),
                   await client.get("/v1/views/receivables/aging", headers=finance)]
        assert [a.status_code for a in answers] == [401, 200, 200, 403, 422, 200]
        for answer in answers:
            assert answer.headers["cache-control"] == "no-store", answer.request.url
            assert answer.headers["referrer-policy"] == "no-referrer", answer.request.url
