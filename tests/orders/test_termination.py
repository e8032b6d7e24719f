"""A terminated partner's orders that have not shipped completely are cancelled, once.

Foreign events are appended to a scratch store and fed to the orders consumer (as in
``test_reactions``); the orders are placed over HTTP.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from libs.events.credit import FundsReviewPassed
from libs.events.delivery import StockAllocated, StockBackordered
from libs.events.partners import PartnerTerminated
from libs.messaging.consumer import Outcome
from libs.messaging.inbox import Delivery
from libs.runtime import documents
from libs.runtime.commands import react
from libs.store.schema import events as events_table
from services.orders.application.handlers import REACTIONS
from services.orders.application.orders import PARTNER_COPY
from tests.orders.support import Publisher, add_product, place
from tests.orders.test_reactions import dispatch, funds, qty, read, stream_types
from tests.service_support import RunningService


def approved(oid: str) -> list[Any]:
    return [StockAllocated(order_id=oid, lines=qty(A=3, B=1)),
            funds(oid, FundsReviewPassed, how="within_limit")]


async def event_count(svc: RunningService) -> int:
    async with svc.ctx.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events_table))).scalar_one())


async def test_terminating_a_partner_cancels_its_unshipped_orders_once(
        svc: RunningService, publisher: Publisher) -> None:
    await publisher.partner("p1")
    await publisher.partner("p2")
    await add_product(svc, "A", 100)
    await add_product(svc, "B", 200)
    p1 = await publisher.key("partner", "p1")
    orders = {name: (await place(svc, p1, ("A", 3), ("B", 1)))["id"]
              for name in ("placed", "backordered", "confirmed", "approved", "partial", "shipped")}
    other = (await place(svc, await publisher.key("partner", "p2"), ("A", 3), ("B", 1)))["id"]
    await publisher.emit("stock-A", StockBackordered(order_id=orders["backordered"], lines=qty(A=3)))
    await publisher.emit("stock-A", StockAllocated(order_id=orders["confirmed"], lines=qty(A=3, B=1)))
    for name in ("approved", "partial", "shipped"):
        await publisher.emit(f"funds-{orders[name]}", *approved(orders[name]))
    await publisher.emit(f"funds-{other}", *approved(other))
    await publisher.emit("shipment-s1", dispatch(orders["partial"], "d1", False, A=1))
    await publisher.emit("shipment-s2", dispatch(orders["shipped"], "d2", True, A=3, B=1))

    [outcome] = await publisher.emit("partner-p1", PartnerTerminated(partner_id="p1", reason="fraud"))
    assert outcome is Outcome.APPLIED
    for name in ("placed", "backordered", "confirmed", "approved", "partial"):
        order = await read(svc, orders[name])
        assert (order["status"], order["cancel_reason"]) == ("cancelled", "partner terminated: fraud"), name
        assert order["history"][-1]["event"] == "OrderCancelled"
    partial = await read(svc, orders["partial"])
    assert [(line["sku"], line["shipped_qty"]) for line in partial["lines"]] == [("A", 1), ("B", 0)]
    assert (await read(svc, orders["shipped"]))["status"] == "shipped"
    assert (await read(svc, other))["status"] == "approved"

    # each cancellation is caused by the termination, with an id derived from it and the order
    terminated = publisher.sent[-1]
    cancelled = (await svc.ctx.store.load(f"order-{orders['approved']}"))[-1]
    assert cancelled.causation_id == terminated.event_id
    assert cancelled.correlation_id == terminated.correlation_id
    delivery = Delivery(None, terminated, PartnerTerminated(partner_id="p1", reason="fraud"),  # type: ignore[arg-type]
                        svc.consumer.name)
    assert cancelled.event_id == delivery.event_ids(1, f"terminated:{orders['approved']}")[0]

    # redelivered: the inbox answers duplicate; run again past the inbox: nothing new either
    before = await event_count(svc)
    assert await svc.consumer.handle(terminated) is Outcome.DUPLICATE
    async with svc.ctx.db.transaction() as conn:
        await react(svc.ctx, REACTIONS["PartnerTerminated"], Delivery(
            conn, terminated, svc.ctx.registry.decode(terminated), svc.consumer.name))
    assert await event_count(svc) == before
    assert (await stream_types(svc, orders["approved"])).count("OrderCancelled") == 1

    # a late fact for a cancelled order changes nothing
    await publisher.emit(f"funds-{orders['confirmed']}", funds(orders["confirmed"], FundsReviewPassed,
                                                               how="within_limit"))
    assert (await read(svc, orders["confirmed"]))["status"] == "cancelled"
    assert await event_count(svc) == before


async def test_a_partner_with_many_orders_is_terminated_in_one_reaction(
        svc: RunningService, publisher: Publisher) -> None:
    await publisher.partner("p1")
    await add_product(svc, "A", 100)
    p1 = await publisher.key("partner", "p1")
    ids = [(await place(svc, p1, ("A", 1)))["id"] for _ in range(120)]
    [outcome] = await publisher.emit("partner-p1", PartnerTerminated(partner_id="p1", reason="closed"))
    assert outcome is Outcome.APPLIED
    listed = (await svc.client.get("/v1/orders", params={"partner_id": "p1", "status": "cancelled",
                                                         "limit": 200}, headers=p1)).json()
    assert sorted(item["id"] for item in listed["items"]) == sorted(ids)
    assert {item["cancel_reason"] for item in listed["items"]} == {"partner terminated: closed"}


async def test_an_order_the_termination_did_not_see_is_cancelled_at_its_first_move(
        svc: RunningService, publisher: Publisher) -> None:
    """The PostgreSQL race, set up by hand: the order committed after the termination looked."""
    await publisher.partner("p1")
    await add_product(svc, "A", 100)
    await add_product(svc, "B", 200)
    p1 = await publisher.key("partner", "p1")
    allocated, backordered = [(await place(svc, p1, ("A", 3), ("B", 1)))["id"] for _ in range(2)]
    async with svc.ctx.db.transaction() as conn:  # the copy says terminated; the orders stayed open
        copy = await documents.get(conn, PARTNER_COPY, "p1")
        assert copy is not None
        await documents.put(conn, PARTNER_COPY, "p1", {**copy, "status": "terminated"},
                            partner_id="p1", status="terminated")
    await publisher.emit("stock-A", StockAllocated(order_id=allocated, lines=qty(A=3, B=1)),
                         StockBackordered(order_id=backordered, lines=qty(A=3)))
    for order_id in (allocated, backordered):
        order = await read(svc, order_id)
        assert (order["status"], order["cancel_reason"]) == ("cancelled", "partner terminated")
