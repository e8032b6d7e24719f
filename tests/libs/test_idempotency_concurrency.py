"""Concurrent requests with one Idempotency-Key all get the first answer, on both databases.

Twenty identical creating POSTs race through the real app on the real database: the
command runs once, every request answers the same status and body, one effect is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from libs.store.database import Database
from libs.store.migrate import migrate
from services.credit.app import SPEC as CREDIT
from services.delivery.app import SPEC as DELIVERY
from services.orders.app import SPEC as ORDERS
from services.partners.app import SPEC as PARTNERS
from tests.credit.support import Feed, fix_clock
from tests.delivery.support import FakePublisher
from tests.orders.support import Publisher, add_product, on_day, order_body
from tests.partners.support import partner_body
from tests.service_support import ADMIN, running

RACERS = 20


async def race(post: Callable[[], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(post() for _ in range(RACERS))))


def same_first_answer(responses: list[httpx.Response], status: int) -> dict[str, Any]:
    """Every response is ``status`` with one and the same body; that body."""
    answers = {(r.status_code, r.text) for r in responses}
    assert len(answers) == 1, sorted(answers)[:3]
    assert responses[0].status_code == status, responses[0].text
    return responses[0].json()


async def test_concurrent_same_key_payments_replay_the_first_201(db: Database) -> None:
    async with running(CREDIT, db) as credit:
        fix_clock(credit)
        feed = Feed(credit)
        await feed.register("p1")
        headers = await feed.key("finance") | {"Idempotency-Key": "pay-once"}
        body = {"partner_id": "p1", "amount_minor": 5_000, "bank_ref": "BANK-1",
                "received_on": "2026-03-01"}
        responses = await race(lambda: credit.client.post("/v1/payments", json=body, headers=headers))
        payment = same_first_answer(responses, 201)
        listed = (await credit.client.get("/v1/payments", headers=headers)).json()["items"]
        assert [p["id"] for p in listed] == [payment["id"]]
        account = (await credit.client.get("/v1/accounts/p1", headers=headers)).json()
        assert account["advance_minor"] == 5_000


async def test_concurrent_same_key_orders_replay_the_first_201(db: Database, tmp_path: Path) -> None:
    scratch = Database(f"sqlite:///{tmp_path / 'foreign.db'}")
    await migrate(scratch)
    try:
        async with running(ORDERS, db) as orders:
            publisher = Publisher(scratch, orders)
            await publisher.partner("p1")
            await add_product(orders, "P-1", 1_000)
            on_day(orders, date(2026, 4, 1))
            headers = await publisher.key("partner", "p1") | {"Idempotency-Key": "order-once"}
            body = order_body(("P-1", 2))
            responses = await race(lambda: orders.client.post("/v1/orders", json=body, headers=headers))
            order = same_first_answer(responses, 201)
            listed = (await orders.client.get("/v1/orders", headers=headers)).json()["items"]
            assert [o["id"] for o in listed] == [order["id"]]
    finally:
        await scratch.dispose()


async def test_concurrent_same_key_stock_receipts_book_once(db: Database) -> None:
    async with running(DELIVERY, db) as delivery:
        await FakePublisher(delivery).issue_key("warehouse", secret="wh")
        headers = {"Authorization": "Bearer wh", "Idempotency-Key": "receipt-once"}
        body = {"sku": "A", "qty": 5, "reference": "DN-1"}
        responses = await race(lambda: delivery.client.post("/v1/stock/receipts", json=body,
                                                            headers=headers))
        same_first_answer(responses, 201)
        stock = (await delivery.client.get("/v1/stock/A", headers=headers)).json()
        assert stock["on_hand"] == 5


async def test_concurrent_same_key_registrations_register_once(db: Database) -> None:
    async with running(PARTNERS, db) as partners:
        headers = ADMIN | {"Idempotency-Key": "register-once"}
        responses = await race(lambda: partners.client.post("/v1/partners", json=partner_body(),
                                                            headers=headers))
        partner = same_first_answer(responses, 201)
        listed = (await partners.client.get("/v1/partners", headers=ADMIN)).json()["items"]
        assert [p["id"] for p in listed] == [partner["id"]]
