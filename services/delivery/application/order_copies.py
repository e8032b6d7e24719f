"""Delivery's copy of each order, kept from the orders service's events (document ``order-copy``).

Delivery knows an order only through ``OrderPlaced`` (its lines by sku and
quantity, its partner, its placement time and correlation id) and its later
status events; it never calls the orders service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.orders import OrderApproved, OrderPlaced
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.commands import Unit
from services.delivery.domain.errors import OrderNotFound

ORDER_COPY = "order-copy"


async def get_order(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, ORDER_COPY, order_id)


async def order_seen_by(conn: AsyncConnection, principal: Principal, order_id: str) -> dict[str, Any]:
    """The order copy, or 404 when unknown or another partner's."""
    return await documents.get_visible(conn, ORDER_COPY, order_id, principal,
                                       OrderNotFound(f"order {order_id} not found"))


async def save_order(conn: AsyncConnection, order: dict[str, Any]) -> None:
    await documents.put(conn, ORDER_COPY, order["order_id"], order,
                        partner_id=order["partner_id"], status=order["status"])


def read_ahead(events: Sequence[DomainEvent]) -> list[documents.Key]:
    """The copies of the orders a consumer batch places and approves, read ahead in one statement
    (``libs.runtime.commands.reactions``). Only this consumer writes the copy of an order being
    placed or approved (a return needs a dispatched shipment, which needs the approval
    handled), so the batch's view is the stored one."""
    return [(ORDER_COPY, event.order_id) for event in events
            if isinstance(event, OrderPlaced | OrderApproved)]


async def order_of(unit: Unit, order_id: str) -> dict[str, Any] | None:
    """The order copy as a reaction sees it (in a consumer batch, read ahead: ``read_ahead``)."""
    return await unit.document(ORDER_COPY, order_id)


async def keep_order(unit: Unit, order: dict[str, Any]) -> None:
    """Write the order copy (the batch's later reactions see it)."""
    await save_order(unit.conn, order)
    unit.document_written(ORDER_COPY, order["order_id"], order)


async def update_order(unit: Unit, order_id: str, **changes: Any) -> dict[str, Any] | None:
    order = await order_of(unit, order_id)
    if order is None:
        return None
    order = {**order, **changes}
    await keep_order(unit, order)
    return order
