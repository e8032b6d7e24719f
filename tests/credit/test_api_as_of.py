"""``GET /v1/accounts/{id}?as_of=``: the account as the books stood, equal to the statement that day."""

from __future__ import annotations

from datetime import timedelta

from tests.credit.support import TODAY, Feed, ok, pay
from tests.service_support import RunningService


async def test_account_as_of_a_day_matches_the_statement_for_that_day(
    svc: RunningService, feed: Feed
) -> None:
    await feed.register("p1", limit=10_000, term=30)
    finance, own, other = await feed.key("finance"), await feed.key("partner", "p1"), await feed.key(
        "partner", "p2")
    await feed.order("o1", "p1", 6_000)
    await feed.dispatch("o1", {"SKU-1": 5}, on=TODAY - timedelta(days=40))  # 3_000, due TODAY-10
    # recorded today, received 25 days ago: it counts on its date
    ok(await pay(svc, finance, "p1", 1_000, bank_ref="B-1", received_on=TODAY - timedelta(days=25)), 201)
    await feed.dispatch("o1", {"SKU-1": 5}, on=TODAY - timedelta(days=5))  # 3_000, due TODAY+25

    async def at(day: int) -> tuple[dict, int]:
        on = str(TODAY - timedelta(days=day))
        account = ok(await svc.client.get("/v1/accounts/p1", headers=own, params={"as_of": on}))
        statement = ok(await svc.client.get("/v1/statements/p1", headers=finance,
                                            params={"from": on, "to": on}))
        return account, statement["closing_minor"]

    account, closing = await at(30)
    assert (account["balance_minor"], account["open_invoices_minor"], account["overdue_minor"],
            account["as_of"]) == (3_000, 3_000, 0, str(TODAY - timedelta(days=30)))
    assert closing == 3_000
    account, closing = await at(20)
    assert (account["balance_minor"], account["open_invoices_minor"], account["overdue_minor"]) == (
        2_000, 2_000, 0)
    assert closing == 2_000
    account, closing = await at(3)   # the first invoice fell due 7 days before
    assert (account["balance_minor"], account["open_invoices_minor"], account["overdue_minor"]) == (
        5_000, 5_000, 2_000)
    assert closing == 5_000
    account, closing = await at(41)  # before anything happened
    assert (account["balance_minor"], account["exposure_minor"], closing) == (0, 0, 0)
    now = ok(await svc.client.get("/v1/accounts/p1", headers=finance))
    assert "as_of" not in now and now["balance_minor"] == 5_000
    assert (await svc.client.get("/v1/accounts/p1", headers=other,
                                 params={"as_of": str(TODAY)})).status_code == 404
    assert (await svc.client.get("/v1/accounts/p1", headers=finance,
                                 params={"as_of": "2026-02-30"})).status_code == 422
