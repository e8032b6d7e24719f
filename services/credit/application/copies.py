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
from libs.runtime.commands import Unit
from libs.store.sql import Statement

PARTNER = "partner-copy"
ORDER = "order-copy"


async def keep_partner(unit: Unit, event: PartnerRegistered) -> None:
    await unit.put_document(PARTNER, event.partner_id, {
        "partner_id": event.partner_id, "name": event.name, "region": event.region, "tier": event.tier,
        "status": "applied", "currency": event.currency,
    }, partner_id=event.partner_id, status="applied")


async def partner(unit: Unit, partner_id: str) -> dict[str, Any] | None:
    return await unit.document(PARTNER, partner_id)


async def update_partner(unit: Unit, partner_id: str, **changes: Any) -> None:
    """Change fields of a partner copy (a partner credit never saw registered is ignored)."""
    body = await partner(unit, partner_id)
    if body is None:
        return
    body.update(changes)
    await unit.put_document(PARTNER, partner_id, body, partner_id=partner_id, status=body["status"])


async def keep_order(unit: Unit, event: OrderPlaced) -> None:
    if await order(unit, event.order_id) is not None:
        return
    await unit.put_document(ORDER, event.order_id, {
        "order_id": event.order_id, "partner_id": event.partner_id, "total_minor": event.total_minor,
        "currency": event.currency, "payment_kind": event.payment_kind,
        "lines": [line.model_dump(mode="json") for line in event.lines], "cancelled": False,
    }, partner_id=event.partner_id, status="placed")


async def order(unit: Unit, order_id: str) -> dict[str, Any] | None:
    return await unit.document(ORDER, order_id)


async def mark_order_cancelled(unit: Unit, order_id: str) -> dict[str, Any] | None:
    body = await order(unit, order_id)
    if body is None or body["cancelled"]:
        return None
    body["cancelled"] = True
    await unit.put_document(ORDER, order_id, body, partner_id=body["partner_id"], status="cancelled")
    marked: dict[str, set[str]] | None = unit.kept_for_batch(_MARKED_IN_BATCH, dict)
    if marked is not None:
        marked.setdefault(body["partner_id"], set()).add(order_id)
    return body


_CANCELLED = Statement("SELECT id FROM documents WHERE kind = $1 AND partner_id = $2 AND status = $3")
"""Every credit decision loads it (``libs.store.sql.Statement``: straight to the driver)."""


async def cancelled_orders(conn: AsyncConnection, partner_id: str) -> frozenset[str]:
    """The partner's orders cancelled by the orders service: they hold no exposure or advance."""
    rows = await _CANCELLED.fetch(conn, ORDER, partner_id, "cancelled")
    return frozenset(row[0] for row in rows)


_READ_IN_BATCH = "credit:cancelled orders read"
_MARKED_IN_BATCH = "credit:orders marked cancelled"
"""Keys of a consumer batch's ``{partner id: cancelled orders}`` as read, and as marked since."""


async def cancelled(unit: Unit, partner_id: str) -> frozenset[str]:
    """``cancelled_orders`` for a decision on the partner's account (its lock held).

    A consumer batch reads them once per account, and adds the orders it marked
    cancelled itself (its order copies are written when it ends): an order is marked
    cancelled only under the account's lock, which the batch holds from its first
    decision on the account to its commit, and never unmarked.
    """
    read: dict[str, frozenset[str]] | None = unit.kept_for_batch(_READ_IN_BATCH, dict)
    marked: dict[str, set[str]] | None = unit.kept_for_batch(_MARKED_IN_BATCH, dict)
    if read is None or marked is None:
        return await cancelled_orders(unit.conn, partner_id)
    if partner_id not in read:
        read[partner_id] = await cancelled_orders(unit.conn, partner_id)
    found = read[partner_id]
    return found | marked[partner_id] if partner_id in marked else found
