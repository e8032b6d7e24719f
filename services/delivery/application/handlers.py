"""Delivery's reactions to the orders service's events, in one visible table.

Every reaction is a ``Unit`` of the one command path (``libs.runtime.commands``):
it appends with the delivery's metadata (the order's correlation id flows on)
and deterministic event ids, in the consumer's transaction. Each one checks
the aggregate's state first, so a fact seen again changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.events.orders import OrderApproved, OrderCancelled, OrderPlaced, OrderRejected
from libs.messaging.consumer import Handler
from libs.runtime.commands import Reaction, Unit, reactions
from libs.runtime.host import ServiceContext
from services.delivery.application import order_copies
from services.delivery.application.allocations import allocate_placed_order, release_order
from services.delivery.application.order_copies import keep_order, order_of, update_order
from services.delivery.application.shipments import cancel_shipment_of, create_shipment
from services.delivery.domain.quantities import as_lines, tally


async def when_order_placed_allocate_stock(unit: Unit, event: Any) -> None:
    """Keep the order's lines (by sku) and allocate all of them, or backorder the order."""
    assert isinstance(event, OrderPlaced)
    order = await order_of(unit, event.order_id)
    if order is None:
        order = {
            "order_id": event.order_id, "partner_id": event.partner_id, "status": "placed",
            "lines": [line.model_dump() for line in as_lines(tally(event.lines))],
            "arrival": unit.envelope.occurred_at,
            "correlation_id": str(unit.envelope.correlation_id),
            "shipment_id": None, "return_ids": [],
        }
        await keep_order(unit, order)
    await allocate_placed_order(unit, order)


async def when_order_approved_create_shipment(unit: Unit, event: Any) -> None:
    assert isinstance(event, OrderApproved)
    await create_shipment(unit, event.order_id)


async def when_order_closed_release_stock(unit: Unit, event: Any) -> None:
    """A cancelled or rejected order gives back its unshipped stock and its shipment is cancelled."""
    assert isinstance(event, OrderCancelled | OrderRejected)
    status = "cancelled" if isinstance(event, OrderCancelled) else "rejected"
    await release_order(unit, event.order_id)
    await cancel_shipment_of(unit, event.order_id)
    await update_order(unit, event.order_id, status=status)


REACTIONS: Mapping[str, Reaction] = {
    OrderPlaced.TYPE: when_order_placed_allocate_stock,
    OrderApproved.TYPE: when_order_approved_create_shipment,
    OrderCancelled.TYPE: when_order_closed_release_stock,
    OrderRejected.TYPE: when_order_closed_release_stock,
}


def handlers(ctx: ServiceContext) -> dict[str, Handler]:
    """The reaction table bound to the service's context."""
    return reactions(ctx, REACTIONS, read_ahead=order_copies.read_ahead)
