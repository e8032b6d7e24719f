"""Delivery's copy of each order, kept from the orders service's events (document ``order-copy``).

Delivery knows an order only through ``OrderPlaced`` (its lines by sku and
quantity, its partner, its placement time and correlation id) and its later
status events; it never calls the orders service.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

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


_AHEAD = "services.delivery.order_copies:ahead"
"""Key of a consumer batch's order copies (``BatchWork.shared``): ``{order id: copy or None}``."""


async def order_of(unit: Unit, order_id: str) -> dict[str, Any] | None:
    """The order copy as a reaction sees it.

    In a consumer batch the copies of every order the batch's placements and approvals
    name are read once, in one statement, at the first reaction that asks for one; the
    batch's own writes (``keep_order``) keep them current. Only this consumer writes the
    copy of an order being placed or approved (a return needs a dispatched shipment,
    which needs the approval handled), so the batch's view is the stored one. Another
    order is read when first asked for. Outside a batch (a command) it is read.
    """
    work = unit.delivery.work if unit.delivery is not None else None
    if work is None:
        return await get_order(unit.conn, order_id)
    known: dict[str, dict[str, Any] | None] = work.shared(_AHEAD, dict)
    if order_id not in known:
        wanted = {order_id} | {event.order_id for event in work.events
                               if isinstance(event, OrderPlaced | OrderApproved)} - known.keys()
        found = await documents.get_many(unit.conn, ((ORDER_COPY, wanted_id) for wanted_id in wanted))
        known.update({wanted_id: found.get((ORDER_COPY, wanted_id)) for wanted_id in wanted})
    return known[order_id]


async def keep_order(unit: Unit, order: dict[str, Any]) -> None:
    """Write the order copy (and keep it as the batch's, in a consumer batch)."""
    await save_order(unit.conn, order)
    work = unit.delivery.work if unit.delivery is not None else None
    if work is not None and _AHEAD in work:
        known: dict[str, dict[str, Any] | None] = work.shared(_AHEAD, dict)
        known[order["order_id"]] = order


async def update_order(unit: Unit, order_id: str, **changes: Any) -> dict[str, Any] | None:
    order = await order_of(unit, order_id)
    if order is None:
        return None
    order = {**order, **changes}
    await keep_order(unit, order)
    return order
