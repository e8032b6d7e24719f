"""Delivery's copy of each order, kept from the orders service's events (document ``order-copy``).

Delivery knows an order only through ``OrderPlaced`` (its lines by sku and
quantity, its partner, its placement time and correlation id) and its later
status events; it never calls the orders service.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.runtime import documents
from libs.runtime.auth import Principal
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


async def update_order(conn: AsyncConnection, order_id: str, **changes: Any) -> dict[str, Any] | None:
    order = await get_order(conn, order_id)
    if order is None:
        return None
    order.update(changes)
    await save_order(conn, order)
    return order
