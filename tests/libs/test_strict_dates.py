"""Dates in HTTP input are ``YYYY-MM-DD`` within a sane range, in bodies and queries (both databases)."""

from __future__ import annotations

from typing import Any

import pytest

from libs.runtime.params import EARLIEST_DATE, LATEST_DATE
from libs.store.database import Database
from services.credit.app import SPEC as CREDIT
from services.orders.app import SPEC as ORDERS
from tests.credit.support import Feed, fix_clock
from tests.service_support import ADMIN, running

NOT_DATES: list[Any] = [
    0,                          # read as 1970-01-01 by a lax parser
    20260301,
    "2026-03-01T00:00:00Z",     # a timestamp is not a date
    "2026-03-01 00:00",
    "2026-W09-7",
    "2026-02-30",
    "9999-12-31",               # out of range
    "1970-01-01",
    "2101-01-01",
]


def assert_names_field(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/validation")
    assert field in [e["field"] for e in problem["errors"]], problem


@pytest.mark.parametrize("received_on", NOT_DATES)
async def test_a_payment_date_is_strict(db: Database, received_on: Any) -> None:
    async with running(CREDIT, db) as credit:
        fix_clock(credit)
        feed = Feed(credit)
        await feed.register("p1")
        finance = await feed.key("finance")
        response = await credit.client.post("/v1/payments", headers=finance, json={
            "partner_id": "p1", "amount_minor": 100, "bank_ref": "B1", "received_on": received_on})
        assert_names_field(response, "received_on")
        statement = await credit.client.get("/v1/statements/p1", headers=finance,
                                             params={"from": str(received_on)})
        assert_names_field(statement, "query.from")


async def test_the_range_ends_are_dates_like_any_other(db: Database) -> None:
    async with running(CREDIT, db) as credit:
        fix_clock(credit)
        feed = Feed(credit)
        await feed.register("p1")
        finance = await feed.key("finance")
        for day in (EARLIEST_DATE, LATEST_DATE):
            statement = await credit.client.get("/v1/statements/p1", headers=finance,
                                                params={"from": str(EARLIEST_DATE), "to": str(day)})
            assert statement.status_code == 200, statement.text


@pytest.mark.parametrize("effective_from", [0, "2026-01-01T00:00:00Z", "9999-12-31"])
async def test_every_service_uses_the_same_strict_date(db: Database, effective_from: Any) -> None:
    async with running(ORDERS, db) as orders:
        response = await orders.client.put("/v1/price-lists/gold", headers=ADMIN, json={
            "effective_from": effective_from, "discount_bp": 100})
        assert_names_field(response, "effective_from")
