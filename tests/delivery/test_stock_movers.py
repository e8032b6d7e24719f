"""Movers of one sku at once: nothing lost, and a sale's dispatch does not queue behind the stock lock.

On PostgreSQL a sale's dispatch holds only its shipment's lock, and every mover writes its
change as an increment of the stored level (``services.delivery.application.ledger``).
"""

from __future__ import annotations

import asyncio

from services.delivery.application import ledger
from tests.delivery.support import (
    WAREHOUSE,
    FakePublisher,
    assert_ledger_is_the_fold,
    book,
    delivery_events,
    dispatch,
    shipped_order,
)
from tests.service_support import RunningService


async def _level(svc: RunningService, sku: str) -> tuple[int, int, int]:
    body = (await svc.client.get(f"/v1/stock/{sku}", headers=WAREHOUSE)).json()
    return body["on_hand"], body["allocated"], body["available"]


async def test_a_sale_dispatch_ships_while_the_stock_lock_is_held_and_a_receipt_waits(
    pg_svc: RunningService,
) -> None:
    svc, orders = pg_svc, FakePublisher(pg_svc)
    shipment = await shipped_order(svc, orders, "o1", {"A": 4})
    assert await _level(svc, "A") == (4, 4, 0)
    async with svc.ctx.db.transaction() as conn:
        await ledger.hold_lock(conn)  # as an allocation batch would, until its commit
        receipt = asyncio.ensure_future(book(svc, "A", 3))
        shipped = await asyncio.wait_for(dispatch(svc, shipment["id"], {"A": 4}), 10)
        assert shipped.status_code == 200, shipped.text
        await asyncio.sleep(0.3)
        assert not receipt.done()  # it changes what is available: it waits for the lock
    assert (await asyncio.wait_for(receipt, 10)).status_code == 201
    assert await _level(svc, "A") == (3, 0, 3)
    await assert_ledger_is_the_fold(svc)


async def test_dispatches_receipts_and_allocations_of_one_sku_at_once_lose_no_change(
    svc: RunningService, orders: FakePublisher,
) -> None:
    shipments = [await shipped_order(svc, orders, f"s{n}", {"A": 2, "B": 1}) for n in range(4)]
    await book(svc, "A", 10)
    answers = await asyncio.gather(
        *(dispatch(svc, shipment["id"], {"A": 2, "B": 1}) for shipment in shipments),
        *(book(svc, "A", 1) for _ in range(3)),
        *(orders.place(f"n{n}", {"A": 3}) for n in range(4)),
    )
    assert [a.status_code for a in answers[:7]] == [200] * 4 + [201] * 3
    allocated = [(await delivery_events(svc, f"allocation-n{n}"))[-1]["type"] for n in range(4)]
    assert sorted(allocated) == ["StockAllocated"] * 4  # 13 available, 12 asked
    assert await _level(svc, "A") == (13, 12, 1)
    assert await _level(svc, "B") == (0, 0, 0)
    await assert_ledger_is_the_fold(svc)


async def test_a_cancellation_racing_a_dispatch_releases_only_what_did_not_ship(
    svc: RunningService, orders: FakePublisher,
) -> None:
    shipments = [await shipped_order(svc, orders, f"o{n}", {"A": 2}) for n in range(6)]
    answers = await asyncio.gather(*(step for n, shipment in enumerate(shipments) for step in (
        dispatch(svc, shipment["id"], {"A": 2}), orders.cancel(f"o{n}"))))
    shipped = sum(1 for answer in answers[::2] if answer.status_code == 200)
    assert all(answer.status_code in (200, 409) for answer in answers[::2])
    released = [[line["qty"] for line in event["lines"]]
                for n in range(6) for event in await delivery_events(svc, f"allocation-o{n}")
                if event["type"] == "StockReleased"]
    assert len(released) == 6 and sum(map(sum, released)) == 2 * (6 - shipped)
    assert await _level(svc, "A") == (12 - 2 * shipped, 0, 12 - 2 * shipped)
    await assert_ledger_is_the_fold(svc)
