"""Stock is never promised twice: concurrent allocations, receipts and dispatches (both databases)."""

from __future__ import annotations

import asyncio

from tests.delivery.support import WAREHOUSE, FakePublisher, book, delivery_events, dispatch, shipped_order
from tests.service_support import RunningService


async def test_concurrent_orders_never_share_the_same_stock(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await book(svc, "A", 5)
    await asyncio.gather(*(orders.place(f"o{i}", {"A": 5}) for i in range(4)))
    outcomes = [(await delivery_events(svc, f"allocation-o{i}"))[-1]["type"] for i in range(4)]
    assert sorted(outcomes) == ["StockAllocated"] + ["StockBackordered"] * 3
    stock = (await svc.client.get("/v1/stock/A", headers=WAREHOUSE)).json()
    assert (stock["on_hand"], stock["allocated"]) == (5, 5)


async def test_an_order_placed_while_stock_arrives_is_not_left_waiting(
    svc: RunningService, orders: FakePublisher,
) -> None:
    await asyncio.gather(orders.place("o1", {"A": 3}), book(svc, "A", 3))
    assert (await delivery_events(svc, "allocation-o1"))[-1]["type"] == "StockAllocated"


async def test_concurrent_dispatches_ship_what_remains_once(
    svc: RunningService, orders: FakePublisher,
) -> None:
    sid = (await shipped_order(svc, orders, "o1", {"A": 4}))["id"]
    answers = await asyncio.gather(*(dispatch(svc, sid, {"A": 4}) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    stock = (await svc.client.get("/v1/stock/A", headers=WAREHOUSE)).json()
    assert (stock["on_hand"], stock["allocated"]) == (0, 0)
