"""An order as an aggregate (stream ``order-<id>``) and its document.

``ORDER`` describes the stream to the one command path (``libs.runtime.commands``).
The document adds to the aggregate state what only the envelopes know: when the
order was placed and the history of its status changes. Each save extends it
from the envelopes it appended, so it stays a pure function of the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.runtime import documents
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.store.schema import documents as documents_table
from libs.store.snapshots import SnapshotPolicy
from services.orders.domain.order import OPEN, Order, evolve

ORDER = "order"

LoadedOrder = Loaded[str, Order]


def order_stream(order_id: str) -> str:
    return f"order-{order_id}"


async def _write_document(unit: Unit, loaded: LoadedOrder, events: Sequence[DomainEvent], before: Order
                          ) -> dict[str, Any]:
    """The order's document after ``events``: its state, and its timeline from their envelopes."""
    previous = await unit.document_before(loaded, ORDER) if before.exists else None
    placed_at = previous["placed_at"] if previous else loaded.stored[0].occurred_at
    history: list[dict[str, str]] = list(previous["history"]) if previous else []
    order = before
    for event, envelope in zip(events, loaded.stored, strict=True):
        status = order.status
        order = evolve(order, event)
        if order.status != status:
            history.append({"status": order.status, "at": envelope.occurred_at,
                            "event": envelope.event_type})
    body = order_document(loaded.state, placed_at, loaded.stored[-1].occurred_at, history)
    await documents.put(unit.conn, ORDER, loaded.key, body, partner_id=loaded.state.partner_id,
                        status=loaded.state.status, version=loaded.version)
    return body


ORDER_STREAM: Aggregate[str, Order] = Aggregate(
    stream_type=ORDER, stream_id=order_stream, initial=lambda order_id: Order(), evolve=evolve,
    project=_write_document, document=ORDER, snapshots=SnapshotPolicy.in_memory(ORDER))
"""Remembered in the process (no stored snapshot): the reactions to what credit and delivery did
with an order load it soon after its last save, and fold only what came after."""


def order_document(order: Order, placed_at: str, updated_at: str, history: list[dict[str, str]]
                   ) -> dict[str, Any]:
    return {
        "id": order.order_id, "partner_id": order.partner_id, "partner_ref": order.partner_ref,
        "status": order.status,
        "lines": [{"sku": line.sku, "qty": line.qty, "category": line.category,
                   "unit_price_minor": line.unit_price_minor,
                   "line_total_minor": line.line_total_minor, "shipped_qty": line.shipped_qty}
                  for line in order.lines],
        "total_minor": order.total_minor, "currency": order.currency,
        "ship_to": {"region": order.ship_to_region, "address": order.ship_to_address},
        "payment_kind": order.payment_kind,
        "price_list_version": order.price_list_version, "deal_id": order.deal_id,
        "hold_reason": order.hold_reason if order.status == "credit_hold" else None,
        "cancel_reason": order.closing_reason if order.status == "cancelled" else None,
        "reject_reason": order.closing_reason if order.status == "rejected" else None,
        "placed_at": placed_at, "updated_at": updated_at, "history": history,
    }


async def open_order_ids(conn: AsyncConnection, partner_id: str) -> list[str]:
    """The partner's orders not shipped completely nor closed, oldest id first: read from the
    documents' indexed ``(kind, partner_id, status)`` columns, never by reading every order."""
    rows = await conn.execute(select(documents_table.c.id).where(
        documents_table.c.kind == ORDER, documents_table.c.partner_id == partner_id,
        documents_table.c.status.in_(OPEN)).order_by(documents_table.c.id))
    return [row[0] for row in rows]
