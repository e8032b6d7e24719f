"""Credit's local copies of other services' facts: partners (for invoices) and orders (for prices).

- partner copy: name, region, tier, status and currency, kept from the partners events;
- order copy: the priced lines and total of ``OrderPlaced``, and whether the order
  was cancelled (status ``cancelled``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.orders import OrderPlaced
from libs.events.partners import PartnerRegistered
from libs.runtime import documents
from libs.store.sql import Statement

PARTNER = "partner-copy"
ORDER = "order-copy"


async def keep_partner(conn: AsyncConnection, event: PartnerRegistered) -> None:
    await documents.put(conn, PARTNER, event.partner_id, {
        "partner_id": event.partner_id, "name": event.name, "region": event.region, "tier": event.tier,
        "status": "applied", "currency": event.currency,
    }, partner_id=event.partner_id, status="applied")


async def partner(conn: AsyncConnection, partner_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, PARTNER, partner_id)


async def update_partner(conn: AsyncConnection, partner_id: str, **changes: Any) -> None:
    """Change fields of a partner copy (a partner credit never saw registered is ignored)."""
    body = await partner(conn, partner_id)
    if body is None:
        return
    body.update(changes)
    await documents.put(conn, PARTNER, partner_id, body, partner_id=partner_id, status=body["status"])


async def keep_order(conn: AsyncConnection, event: OrderPlaced) -> None:
    if await order(conn, event.order_id) is not None:
        return
    await documents.put(conn, ORDER, event.order_id, {
        "order_id": event.order_id, "partner_id": event.partner_id, "total_minor": event.total_minor,
        "currency": event.currency, "payment_kind": event.payment_kind,
        "lines": [line.model_dump(mode="json") for line in event.lines], "cancelled": False,
    }, partner_id=event.partner_id, status="placed")


async def order(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, ORDER, order_id)


async def mark_order_cancelled(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    body = await order(conn, order_id)
    if body is None or body["cancelled"]:
        return None
    body["cancelled"] = True
    await documents.put(conn, ORDER, order_id, body, partner_id=body["partner_id"], status="cancelled")
    return body


_CANCELLED = Statement("SELECT id FROM documents WHERE kind = $1 AND partner_id = $2 AND status = $3")
"""Every credit decision loads it (``libs.store.sql.Statement``: straight to the driver)."""


async def cancelled_orders(conn: AsyncConnection, partner_id: str) -> frozenset[str]:
    """The partner's orders cancelled by the orders service: they hold no exposure or advance."""
    rows = await _CANCELLED.fetch(conn, ORDER, partner_id, "cancelled")
    return frozenset(row[0] for row in rows)
