"""Reactions: other services' events move an order's status (guarded by its state) and keep the
partner copy current. Foreign events are appended to a scratch store and fed to the consumer."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from libs.events.credit import (
    FundsReviewPassed,
    OrderAwaitingPrepayment,
    OrderPutOnHold,
    OrderRejectedByFinance,
    TermsChanged,
)
from libs.events.delivery import ShipmentDelivered, ShipmentDispatched, StockAllocated, StockBackordered
from libs.events.partners import (
    PartnerCategoriesChanged,
    PartnerReinstated,
    PartnerSuspended,
    PartnerTerritoriesChanged,
    PartnerTierChanged,
)
from libs.events.values import SkuQty
from libs.messaging.consumer import Outcome
from tests.orders.support import Publisher, add_product, order_body, place, publish_prices
from tests.service_support import ADMIN, RunningService


@pytest.fixture
async def order(svc: RunningService, publisher: Publisher) -> dict[str, Any]:
    """An order of p1 for 3 x A and 1 x B, placed by the partner."""
    await publisher.partner("p1")
    await add_product(svc, "A", 100)
    await add_product(svc, "B", 200)
    return await place(svc, await publisher.key("partner", "p1"), ("A", 3), ("B", 1))


def qty(**lines: int) -> list[SkuQty]:
    return [SkuQty(sku=sku, qty=n) for sku, n in lines.items()]


def funds(order_id: str, event: type, **more: Any) -> Any:
    return event(order_id=order_id, partner_id="p1", amount_minor=500, **more)


def dispatch(order_id: str, dispatch_id: str, complete: bool, **lines: int) -> ShipmentDispatched:
    return ShipmentDispatched(
        shipment_id="shp_1", order_id=order_id, partner_id="p1", dispatch_id=dispatch_id,
        lines=qty(**lines), carrier="SF", tracking_no=f"T-{dispatch_id}",
        dispatched_on=date(2026, 4, 2), remaining=[], complete=complete)


async def read(svc: RunningService, order_id: str) -> dict[str, Any]:
    return (await svc.client.get(f"/v1/orders/{order_id}", headers=ADMIN)).json()


async def stream_types(svc: RunningService, order_id: str) -> list[str]:
    return [e.event_type for e in await svc.ctx.store.load(f"order-{order_id}")]


async def test_an_order_walks_the_whole_chain(svc: RunningService, publisher: Publisher,
                                              order: dict[str, Any]) -> None:
    oid = order["id"]
    correlation = uuid.uuid4()
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)),
                         correlation_id=correlation)
    assert (await read(svc, oid))["status"] == "confirmed"
    await publisher.emit(f"funds-{oid}", funds(oid, FundsReviewPassed, how="within_limit"))
    assert (await read(svc, oid))["status"] == "approved"
    await publisher.emit("shipment-shp_1", dispatch(oid, "d1", False, A=1))
    partial = await read(svc, oid)
    assert partial["status"] == "partially_shipped"
    assert [(line["sku"], line["shipped_qty"]) for line in partial["lines"]] == [("A", 1), ("B", 0)]
    cancel = await svc.client.post(f"/v1/orders/{oid}/cancel", json={"reason": "late"}, headers=ADMIN)
    assert cancel.status_code == 409 and cancel.json()["type"].endswith("/order-not-cancellable")
    await publisher.emit("shipment-shp_1", dispatch(oid, "d2", True, A=2, B=1),
                         ShipmentDelivered(shipment_id="shp_1", order_id=oid, partner_id="p1",
                                           delivered_at=datetime(2026, 4, 3, tzinfo=UTC),
                                           signed_by="Li Wei"))
    done = await read(svc, oid)
    assert done["status"] == "delivered"
    assert [(line["sku"], line["shipped_qty"]) for line in done["lines"]] == [("A", 3), ("B", 1)]
    assert [h["status"] for h in done["history"]] == [
        "placed", "confirmed", "approved", "partially_shipped", "shipped", "delivered"]
    assert await stream_types(svc, oid) == [
        "OrderPlaced", "OrderConfirmed", "OrderApproved", "OrderPartiallyShipped", "OrderShipped",
        "OrderDelivered"]
    confirmed = (await svc.ctx.store.load(f"order-{oid}"))[1]
    assert confirmed.correlation_id == correlation and confirmed.actor == "system:orders"
    allocated = next(e for e in publisher.sent if e.event_type == "StockAllocated")
    assert confirmed.causation_id == allocated.event_id
    shipped = (await svc.ctx.store.load(f"order-{oid}"))[4].payload()
    assert shipped == {"order_id": oid, "dispatch_id": "d2",
                       "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}


async def test_a_backordered_order_is_confirmed_when_stock_arrives(
        svc: RunningService, publisher: Publisher, order: dict[str, Any]) -> None:
    oid = order["id"]
    await publisher.emit("stock-A", StockBackordered(order_id=oid, lines=qty(A=3)))
    assert (await read(svc, oid))["status"] == "backordered"
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)))
    assert (await read(svc, oid))["status"] == "confirmed"


async def test_a_held_order_is_released_and_a_rejected_one_stays_rejected(
        svc: RunningService, publisher: Publisher, order: dict[str, Any]) -> None:
    oid = order["id"]
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)))
    await publisher.emit(f"funds-{oid}", funds(oid, OrderPutOnHold, reason="over_limit"))
    held = await read(svc, oid)
    assert (held["status"], held["hold_reason"]) == ("credit_hold", "over_limit")
    await publisher.emit(f"funds-{oid}", funds(oid, OrderAwaitingPrepayment))
    assert (await read(svc, oid))["status"] == "awaiting_funds"
    await publisher.emit(f"funds-{oid}", OrderRejectedByFinance(
        order_id=oid, partner_id="p1", reason="no funds", rejected_by="finance:k1"))
    rejected = await read(svc, oid)
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "no funds")
    await publisher.emit(f"funds-{oid}", funds(oid, FundsReviewPassed, how="released"))
    assert (await read(svc, oid))["status"] == "rejected"
    cancel = await svc.client.post(f"/v1/orders/{oid}/cancel", json={"reason": "x"}, headers=ADMIN)
    assert cancel.status_code == 409


async def test_late_facts_for_a_cancelled_order_change_nothing(
        svc: RunningService, publisher: Publisher, order: dict[str, Any]) -> None:
    oid = order["id"]
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)))
    await svc.client.post(f"/v1/orders/{oid}/cancel", json={"reason": "changed mind"}, headers=ADMIN)
    outcomes = await publisher.emit(f"funds-{oid}", funds(oid, FundsReviewPassed, how="within_limit"))
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)))
    assert outcomes == [Outcome.APPLIED]
    assert (await read(svc, oid))["status"] == "cancelled"
    assert await stream_types(svc, oid) == ["OrderPlaced", "OrderConfirmed", "OrderCancelled"]


async def test_a_redelivered_or_repeated_fact_is_applied_once(
        svc: RunningService, publisher: Publisher, order: dict[str, Any]) -> None:
    oid = order["id"]
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)))
    await publisher.emit(f"funds-{oid}", funds(oid, FundsReviewPassed, how="within_limit"))
    await publisher.emit("shipment-shp_1", dispatch(oid, "d1", False, A=1))
    assert await svc.consumer.handle(publisher.sent[-1]) == Outcome.DUPLICATE
    await publisher.emit("shipment-shp_1", dispatch(oid, "d1", False, A=1))  # same dispatch, new event
    assert (await read(svc, oid))["lines"][0]["shipped_qty"] == 1
    assert (await stream_types(svc, oid)).count("OrderPartiallyShipped") == 1


async def test_a_returns_shipment_neither_ships_nor_delivers_the_order(
    svc: RunningService, publisher: Publisher, order: dict[str, Any],
) -> None:
    """Only a sale's dispatch ships the order: a replacement (or repaired unit) going back to the
    partner leaves a partly shipped order partly shipped, and its delivery delivers nothing."""
    oid = order["id"]
    await publisher.emit("stock-A", StockAllocated(order_id=oid, lines=qty(A=3, B=1)))
    await publisher.emit(f"funds-{oid}", funds(oid, FundsReviewPassed, how="within_limit"))
    await publisher.emit("shipment-shp_1", dispatch(oid, "d1", False, A=1))
    for purpose in ("replacement", "repair"):
        back = dispatch(oid, f"d-{purpose}", True, A=2, B=1).model_copy(update={
            "shipment_id": f"shp_{purpose}", "purpose": purpose, "return_id": "ret_1"})
        await publisher.emit(f"shipment-shp_{purpose}", back, ShipmentDelivered(
            shipment_id=f"shp_{purpose}", order_id=oid, partner_id="p1",
            delivered_at=datetime(2026, 4, 3, tzinfo=UTC), signed_by="Li Wei", purpose=purpose,
            return_id="ret_1"))
    after = await read(svc, oid)
    assert after["status"] == "partially_shipped"
    assert [(line["sku"], line["shipped_qty"]) for line in after["lines"]] == [("A", 1), ("B", 0)]
    assert (await stream_types(svc, oid))[-1] == "OrderPartiallyShipped"


async def test_facts_about_unknown_orders_are_ignored(svc: RunningService, publisher: Publisher) -> None:
    outcomes = await publisher.emit("stock-A", StockAllocated(order_id="ord_ghost", lines=qty(A=1)))
    assert outcomes == [Outcome.APPLIED]
    assert await svc.ctx.store.load("order-ord_ghost") == []


async def test_the_partner_copy_follows_the_partners_events(svc: RunningService,
                                                            publisher: Publisher) -> None:
    await publisher.partner("p1", tier="gold", territories=("east",), categories=("pumps",))
    await add_product(svc, "A", 1000)
    await add_product(svc, "V", 1000, category="valves")
    await publish_prices(svc, "silver", "2020-01-01", 1000)
    partner = await publisher.key("partner", "p1")

    async def attempt(*lines: tuple[str, int], region: str = "east") -> Any:
        return await svc.client.post("/v1/orders", json=order_body(*lines, region=region), headers=partner)

    await publisher.emit("partner-p1", PartnerSuspended(partner_id="p1", reason="audit"))
    assert (await attempt(("A", 1))).json()["type"].endswith("/partner-not-active")
    await publisher.emit("partner-p1", PartnerReinstated(partner_id="p1", status_after="active"),
                         PartnerTerritoriesChanged(partner_id="p1", territories=["west"]))
    assert (await attempt(("A", 1))).json()["type"].endswith("/territory-violation")
    assert (await attempt(("V", 1), region="west")).json()["type"].endswith("/category-not-authorised")
    await publisher.emit("partner-p1", PartnerCategoriesChanged(partner_id="p1", categories=[]),
                         PartnerTierChanged(partner_id="p1", from_tier="gold", to_tier="silver"),
                         TermsChanged(partner_id="p1", kind="prepaid", credit_limit_minor=0,
                                      term_days=0))
    placed = await attempt(("V", 1), region="west")
    assert placed.status_code == 201 and placed.json()["lines"][0]["unit_price_minor"] == 900
    assert placed.json()["payment_kind"] == "prepaid"
