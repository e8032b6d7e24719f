"""Delivery's reactions to the orders service's events, in one visible table.

Every reaction appends with ``delivery.meta`` (the order's correlation id flows
on) and deterministic event ids, in the consumer's transaction. Each one checks
the aggregate's state first, so a fact seen again changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial

from libs.events.orders import OrderApproved, OrderCancelled, OrderPlaced, OrderRejected
from libs.messaging.consumer import Delivery, Handler
from libs.runtime.host import ServiceContext
from services.delivery.application.allocations import allocate_placed_order, release_order
from services.delivery.application.order_copies import get_order, save_order, update_order
from services.delivery.application.shipments import cancel_shipment_of, create_shipment
from services.delivery.domain.quantities import as_lines, tally


async def when_order_placed_allocate_stock(ctx: ServiceContext, delivery: Delivery) -> None:
    """Keep the order's lines (by sku) and allocate all of them, or backorder the order."""
    event = delivery.event
    assert isinstance(event, OrderPlaced)
    order = await get_order(delivery.conn, event.order_id)
    if order is None:
        order = {
            "order_id": event.order_id, "partner_id": event.partner_id, "status": "placed",
            "lines": [line.model_dump() for line in as_lines(tally(event.lines))],
            "arrival": delivery.envelope.occurred_at,
            "correlation_id": str(delivery.envelope.correlation_id),
            "shipment_id": None, "return_ids": [],
        }
        await save_order(delivery.conn, order)
    await allocate_placed_order(ctx, delivery.conn, order, delivery.meta,
                                delivery.event_ids(1, "allocation"))


async def when_order_approved_create_shipment(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, OrderApproved)
    await create_shipment(ctx, delivery.conn, event.order_id, delivery.meta,
                          delivery.event_ids(2, "shipment"))


async def when_order_closed_release_stock(ctx: ServiceContext, delivery: Delivery) -> None:
    """A cancelled or rejected order gives back its unshipped stock and its shipment is cancelled."""
    event = delivery.event
    assert isinstance(event, OrderCancelled | OrderRejected)
    status = "cancelled" if isinstance(event, OrderCancelled) else "rejected"
    await release_order(ctx, delivery.conn, event.order_id, delivery.meta,
                        delivery.event_ids(1, "release"))
    await cancel_shipment_of(delivery.conn, event.order_id)
    await update_order(delivery.conn, event.order_id, status=status)


Reaction = Callable[[ServiceContext, Delivery], Awaitable[None]]

REACTIONS: Mapping[str, Reaction] = {
    OrderPlaced.TYPE: when_order_placed_allocate_stock,
    OrderApproved.TYPE: when_order_approved_create_shipment,
    OrderCancelled.TYPE: when_order_closed_release_stock,
    OrderRejected.TYPE: when_order_closed_release_stock,
}


def handlers(ctx: ServiceContext) -> dict[str, Handler]:
    """The reaction table bound to the service's context."""
    return {event_type: partial(reaction, ctx) for event_type, reaction in REACTIONS.items()}
