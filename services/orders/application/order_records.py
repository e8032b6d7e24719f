"""Loading an order from its stream and rendering its document (a pure function of the stream).

The document adds to the aggregate state what only the envelopes know: when the
order was placed and the history of its status changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import Envelope
from libs.runtime import documents
from libs.runtime.host import ServiceContext
from services.orders.domain.order import Order, evolve

ORDER = "order"


def order_stream(order_id: str) -> str:
    return f"order-{order_id}"


@dataclass(frozen=True)
class OrderRecord:
    order: Order = field(default_factory=Order)
    version: int = 0
    placed_at: str = ""
    updated_at: str = ""
    history: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def folded(self, envelope: Envelope, event: DomainEvent) -> OrderRecord:
        order = evolve(self.order, event)
        history = self.history
        if order.status != self.order.status:
            history = (*history, {"status": order.status, "at": envelope.occurred_at,
                                  "event": envelope.event_type})
        return replace(self, order=order, version=envelope.stream_version,
                       placed_at=self.placed_at or envelope.occurred_at,
                       updated_at=envelope.occurred_at, history=history)


async def load_order(ctx: ServiceContext, conn: AsyncConnection, order_id: str) -> OrderRecord:
    record = OrderRecord()
    for envelope in await ctx.store.load(order_stream(order_id), conn=conn):
        record = record.folded(envelope, ctx.registry.decode(envelope))
    return record


async def save_order(
    ctx: ServiceContext, conn: AsyncConnection, record: OrderRecord, order_id: str,
    events: Sequence[DomainEvent], meta: EventMetadata, event_ids: Sequence[Any] | None = None,
) -> OrderRecord:
    """Append ``events`` at the record's version, then write the document in the same transaction."""
    stored = await ctx.store.append(order_stream(order_id), "order", record.version, events, meta,
                                    conn=conn, event_ids=event_ids)
    for envelope, event in zip(stored, events, strict=True):
        record = record.folded(envelope, event)
    order = record.order
    await documents.put(conn, ORDER, order.order_id, order_document(record),
                        partner_id=order.partner_id, status=order.status, version=record.version)
    return record


def order_document(record: OrderRecord) -> dict[str, Any]:
    order = record.order
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
        "hold_reason": order.hold_reason if order.status == "credit_hold" else None,
        "cancel_reason": order.closing_reason if order.status == "cancelled" else None,
        "reject_reason": order.closing_reason if order.status == "rejected" else None,
        "placed_at": record.placed_at, "updated_at": record.updated_at,
        "history": list(record.history),
    }
