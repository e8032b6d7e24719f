"""Shipments: created for approved orders, dispatched in parts, delivered, cancelled with the order.

Dispatches and deliveries are appended with the order's correlation id, so
the invoices and status changes they cause join the order's timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.runtime import documents
from libs.runtime.aggregate import load
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.delivery.application import ledger
from services.delivery.application.allocations import allocation_stream
from services.delivery.application.order_copies import get_order, update_order
from services.delivery.application.views import SHIPMENT, cancel_shipment, project_shipment
from services.delivery.domain.allocation import RELEASED, Allocation, evolve_allocation
from services.delivery.domain.errors import ShipmentNotFound
from services.delivery.domain.quantities import from_json
from services.delivery.domain.shipment import (
    Shipment,
    decide_creation,
    decide_delivery,
    decide_dispatch,
    evolve_shipment,
)

Doc = dict[str, Any]


def shipment_stream(shipment_id: str) -> str:
    return f"shipment-{shipment_id}"


async def load_shipment(
    ctx: ServiceContext, conn: AsyncConnection, shipment_id: str
) -> tuple[Shipment, int]:
    return await load(conn, ctx.store, ctx.registry, shipment_stream(shipment_id), Shipment(),
                      evolve_shipment)


async def shipment_seen_by(conn: AsyncConnection, principal: Principal, shipment_id: str) -> Doc:
    """The shipment document, or 404 when unknown or another partner's."""
    return await documents.get_visible(conn, SHIPMENT, shipment_id, principal,
                                       ShipmentNotFound(f"shipment {shipment_id} not found"))


async def _append(
    ctx: ServiceContext, conn: AsyncConnection, shipment_id: str, version: int,
    new: Sequence[DomainEvent], meta: EventMetadata, event_ids: Sequence[uuid.UUID] | None = None,
) -> Doc:
    """Append to the shipment's stream and project its document in the same transaction."""
    await ctx.store.append(shipment_stream(shipment_id), SHIPMENT, version, new, meta, conn=conn,
                           event_ids=event_ids)
    doc = await documents.get(conn, SHIPMENT, shipment_id)
    for event in new:
        doc = project_shipment(doc, event)
    if doc is None:
        raise LookupError(f"shipment {shipment_id} has no document")
    await save_shipment(conn, doc)
    return doc


async def save_shipment(conn: AsyncConnection, doc: Doc) -> None:
    await documents.put(conn, SHIPMENT, doc["id"], doc, partner_id=doc["partner_id"],
                        status=doc["status"], ref_id=doc["order_id"])


async def create_shipment(
    ctx: ServiceContext, conn: AsyncConnection, order_id: str, meta: EventMetadata,
    event_ids: Sequence[uuid.UUID],
) -> None:
    """An approved order gets one shipment (``pending``) with the lines it was placed with."""
    order = await get_order(conn, order_id)
    if order is None:
        raise LookupError(f"OrderApproved for {order_id} before its OrderPlaced")
    if order.get("shipment_id"):
        return  # the approval was handled already
    shipment_id = new_id("shp", event_ids[0])
    state, version = await load_shipment(ctx, conn, shipment_id)
    new = decide_creation(state, shipment_id, order_id, order["partner_id"],
                          from_json(order["lines"]))
    await _append(ctx, conn, shipment_id, version, new, meta, event_ids[1:1 + len(new)])
    await update_order(conn, order_id, shipment_id=shipment_id, status="approved")


def _order_meta(actor: str, order: Doc | None) -> EventMetadata:
    if order is None:
        return EventMetadata(actor=actor)
    return EventMetadata(actor=actor, correlation_id=uuid.UUID(order["correlation_id"]))


async def dispatch(
    ctx: ServiceContext, conn: AsyncConnection, actor: str, shipment_id: str, *,
    lines: Mapping[str, int], carrier: str, tracking_no: str,
) -> Doc:
    """Ship ``lines`` out of what remains; the allocated stock leaves on hand."""
    await ledger.hold_lock(conn)
    state, version = await load_shipment(ctx, conn, shipment_id)
    if not state.exists:
        raise ShipmentNotFound(f"shipment {shipment_id} not found")
    allocation, _ = await load(conn, ctx.store, ctx.registry, allocation_stream(state.order_id),
                               Allocation(), evolve_allocation)
    new = decide_dispatch(state, lines=lines, carrier=carrier, tracking_no=tracking_no,
                          dispatch_id=new_id("dsp"), today=ctx.today(),
                          cancelled=allocation.status == RELEASED)
    order = await get_order(conn, state.order_id)
    doc = await _append(ctx, conn, shipment_id, version, new, _order_meta(actor, order))
    await ledger.record(conn, new)
    return doc


async def deliver(
    ctx: ServiceContext, conn: AsyncConnection, actor: str, shipment_id: str, *,
    delivered_at: datetime, signed_by: str,
) -> Doc:
    """Record proof of delivery of a completely dispatched shipment."""
    state, version = await load_shipment(ctx, conn, shipment_id)
    if not state.exists:
        raise ShipmentNotFound(f"shipment {shipment_id} not found")
    new = decide_delivery(state, delivered_at, signed_by)
    order = await get_order(conn, state.order_id)
    return await _append(ctx, conn, shipment_id, version, new, _order_meta(actor, order))


async def cancel_shipment_of(conn: AsyncConnection, order_id: str) -> None:
    """A cancelled or rejected order's shipment (if any) will not ship."""
    order = await get_order(conn, order_id)
    if order is None or not order.get("shipment_id"):
        return
    doc = await documents.get(conn, SHIPMENT, order["shipment_id"])
    if doc is not None:
        await save_shipment(conn, cancel_shipment(doc))


async def shipment_page(
    conn: AsyncConnection, principal: Principal, *, order_id: str | None, status: str | None,
    partner_id: str | None, cursor: str | None, limit: int,
) -> Doc:
    """Shipments, forced to the caller's own when it is a partner key."""
    return await documents.page(
        conn, SHIPMENT, partner_id=principal.scoped(partner_id),
        status=status, cursor=cursor, limit=limit, ref_id=order_id or None)
