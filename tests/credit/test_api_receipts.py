"""Receipt dates over HTTP, on both databases: never in the future, never before the account
opened, backdated within the window and then applied as of their date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.credit.support import TODAY, Feed, account, invoices, ok, pay, types
from tests.service_support import RunningService


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.fixture
async def finance(feed: Feed) -> dict[str, str]:
    await feed.register("p1", limit=100_000, term=10)  # opened 60 days ago
    await feed.register("p2", limit=100_000, term=10, days_ago=0)  # opened today
    return await feed.key("finance")


def refused(response_status: int, problem: dict[str, object], words: str) -> None:
    assert response_status == 422, problem
    assert str(problem["type"]).endswith("/bad-received-on"), problem
    assert words in str(problem["detail"]), problem


async def test_a_future_dated_receipt_is_refused_and_changes_nothing(
    svc: RunningService, feed: Feed, finance: dict[str, str]
) -> None:
    await feed.order("o1", "p1", 1_000)
    await feed.ship_all("o1", on=days_ago(5))
    before = await types(svc, "p1")
    answer = await pay(svc, finance, "p1", 1_000, bank_ref="FUTURE", received_on=date(2030, 1, 1))
    assert answer.headers["content-type"].startswith("application/problem+json")
    refused(answer.status_code, answer.json(), "received_on 2030-01-01 is after today (2026-03-10)")
    tomorrow = await pay(svc, finance, "p1", 1_000, bank_ref="FUTURE", received_on=TODAY + timedelta(days=1))
    refused(tomorrow.status_code, tomorrow.json(), "after today")
    assert await types(svc, "p1") == before
    [invoice] = await invoices(svc, finance, "p1")
    assert (invoice["status"], invoice["paid_on"], invoice["open_minor"]) == ("open", None, 1_000)
    assert (await account(svc, finance, "p1"))["balance_minor"] == 1_000
    assert ok(await svc.client.get("/v1/payments", headers=finance))["items"] == []
    ok(await pay(svc, finance, "p1", 1_000, bank_ref="FUTURE", received_on=TODAY), 201)  # ref still free


async def test_a_receipt_before_the_account_opened_is_refused(
    svc: RunningService, finance: dict[str, str]
) -> None:
    answer = await pay(svc, finance, "p2", 500, received_on=date(2019, 6, 1))
    refused(answer.status_code, answer.json(),
            "received_on 2019-06-01 is before the account of partner 'p2' opened (2026-03-10)")
    yesterday = await pay(svc, finance, "p2", 500, received_on=days_ago(1))
    refused(yesterday.status_code, yesterday.json(), "opened (2026-03-10)")
    statement = ok(await svc.client.get("/v1/statements/p2", headers=finance,
                                        params={"from": "2019-01-01", "to": str(TODAY)}))
    assert (statement["opening_minor"], statement["lines"], statement["closing_minor"]) == (0, [], 0)
    ok(await pay(svc, finance, "p2", 500, received_on=TODAY), 201)


async def test_a_receipt_older_than_the_window_is_refused(
    svc: RunningService, finance: dict[str, str]
) -> None:
    answer = await pay(svc, finance, "p1", 500, received_on=days_ago(31))
    refused(answer.status_code, answer.json(), "received_on 2026-02-07 is more than 30 days back; "
                                               "the earliest date accepted today is 2026-02-08")
    body = ok(await pay(svc, finance, "p1", 500, received_on=days_ago(30)), 201)
    assert body["received_on"] == "2026-02-08"


async def test_a_backdated_receipt_is_applied_as_of_its_date(
    svc: RunningService, feed: Feed, finance: dict[str, str]
) -> None:
    await feed.order("o1", "p1", 3_000)
    await feed.dispatch("o1", {"SKU-1": 5}, on=days_ago(20))  # 1_500, due 10 days ago
    await feed.dispatch("o1", {"SKU-1": 5}, on=days_ago(4), complete=True)  # 1_500, due in 6 days
    assert (await account(svc, finance, "p1"))["overdue_minor"] == 1_500
    # received 12 days ago, recorded today: it paid the first invoice two days before its due date
    # and waited as advance until the second was issued
    ok(await pay(svc, finance, "p1", 2_000, bank_ref="LATE-ENTRY", received_on=days_ago(12)), 201)
    first, second = await invoices(svc, finance, "p1")
    assert (first["status"], first["paid_on"], first["on_time"]) == ("paid", str(days_ago(12)), True)
    assert (second["status"], second["paid_minor"], second["open_minor"]) == ("open", 500, 1_000)
    figures = await account(svc, finance, "p1")
    assert (figures["balance_minor"], figures["overdue_minor"], figures["exposure_minor"]) == (
        1_000, 0, 1_000)
    whole = {"from": str(days_ago(30)), "to": str(TODAY)}
    statement = ok(await svc.client.get("/v1/statements/p1", headers=finance, params=whole))
    assert [(x["date"], x["kind"], x["debit_minor"], x["credit_minor"]) for x in statement["lines"]] == [
        (str(days_ago(20)), "invoice", 1_500, 0),
        (str(days_ago(12)), "payment", 0, 2_000),
        (str(days_ago(4)), "invoice", 1_500, 0),
    ]
    assert statement["closing_minor"] == figures["balance_minor"]
    at = ok(await svc.client.get("/v1/statements/p1", headers=finance,
                                 params={"from": str(days_ago(30)), "to": str(days_ago(12))}))
    assert at["closing_minor"] == 1_500 - 2_000
    ok(await pay(svc, finance, "p1", 1_000, bank_ref="LATER", received_on=days_ago(1)), 201)
    _, second = await invoices(svc, finance, "p1")
    assert (second["status"], second["paid_on"], second["on_time"]) == ("paid", str(days_ago(1)), True)
    # a receipt dated after the due date paid late, however soon it is recorded
    await feed.order("o2", "p1", 700)
    await feed.ship_all("o2", on=days_ago(25))  # due 15 days ago
    ok(await pay(svc, finance, "p1", 700, bank_ref="LATEST", received_on=days_ago(3)), 201)
    late = [i for i in await invoices(svc, finance, "p1") if i["order_id"] == "o2"]
    assert [(i["paid_on"], i["on_time"]) for i in late] == [(str(days_ago(3)), False)]
