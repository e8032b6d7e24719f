"""Shipments: created for approved orders, dispatched in parts, delivered, cancelled with the order.

Dispatches and deliveries are appended with the order's correlation id, so
the invoices and status changes they cause join the order's timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.delivery import ShipmentDispatched
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.commands import Aggregate, Loaded, Unit, folded_document
from libs.runtime.ids import new_id
from libs.store.snapshots import SnapshotPolicy
from libs.telemetry import context
from services.delivery.application import ledger
from services.delivery.application.allocations import ALLOCATION_STREAM
from services.delivery.application.order_copies import get_order, keep_order, order_of
from services.delivery.application.return_records import note_goods_dispatched
from services.delivery.application.views import SHIPMENT, cancel_shipment, project_shipment
from services.delivery.domain.allocation import RELEASED
from services.delivery.domain.errors import ShipmentNotFound
from services.delivery.domain.quantities import from_json
from services.delivery.domain.shipment import (
    Shipment,
    decide_creation,
    decide_delivery,
    decide_dispatch,
    evolve_shipment,
)
from services.delivery.domain.stock import available_of

Doc = dict[str, Any]


def shipment_stream(shipment_id: str) -> str:
    return f"shipment-{shipment_id}"


SHIPMENT_STREAM: Aggregate[str, Shipment] = Aggregate(
    stream_type=SHIPMENT, stream_id=shipment_stream, initial=lambda shipment_id: Shipment(),
    evolve=evolve_shipment,
    project=folded_document(SHIPMENT, lambda doc, event, unit: project_shipment(doc, event),
                            ref="order_id"),
    snapshots=SnapshotPolicy.in_memory(SHIPMENT))


async def shipment_seen_by(conn: AsyncConnection, principal: Principal, shipment_id: str) -> Doc:
    """The shipment document, or 404 when unknown or another partner's."""
    return await documents.get_visible(conn, SHIPMENT, shipment_id, principal,
                                       ShipmentNotFound(f"shipment {shipment_id} not found"))


async def save_shipment(conn: AsyncConnection, doc: Doc) -> None:
    await documents.put(conn, SHIPMENT, doc["id"], doc, partner_id=doc["partner_id"],
                        status=doc["status"], ref_id=doc["order_id"])


async def create_shipment(unit: Unit, order_id: str) -> None:
    """An approved order gets one shipment (``pending``) with the lines it was placed with."""
    order = await order_of(unit, order_id)
    if order is None:
        raise LookupError(f"OrderApproved for {order_id} before its OrderPlaced")
    if order.get("shipment_id"):
        return  # the approval was handled already
    event_ids = unit.event_ids(2, "shipment")
    shipment_id = new_id("shp", event_ids[0] if event_ids else None)
    loaded = await unit.load(SHIPMENT_STREAM, shipment_id)
    new = decide_creation(loaded.state, shipment_id, order_id, order["partner_id"],
                          from_json(order["lines"]))
    await unit.save(loaded, new, event_ids=event_ids[1:1 + len(new)] if event_ids else None)
    await keep_order(unit, {**order, "shipment_id": shipment_id, "status": "approved"})


def _order_meta(actor: str, order: Doc | None) -> EventMetadata:
    if order is None:
        return EventMetadata(actor=actor, correlation_id=context.correlation())
    return EventMetadata(actor=actor, correlation_id=uuid.UUID(order["correlation_id"]))


async def _existing(unit: Unit, shipment_id: str) -> Loaded[str, Shipment]:
    loaded = await unit.load(SHIPMENT_STREAM, shipment_id)
    if not loaded.state.exists:
        raise ShipmentNotFound(f"shipment {shipment_id} not found")
    return loaded


async def _cancelled(unit: Unit, shipment: Shipment) -> bool:
    """Whether the order of a sale shipment was cancelled or rejected (a return's never is)."""
    if shipment.purpose != "sale":
        return False
    allocation = await unit.load(ALLOCATION_STREAM, shipment.order_id)
    return allocation.state.status == RELEASED


async def dispatch(unit: Unit, shipment_id: str, *, lines: Mapping[str, int], carrier: str,
                   tracking_no: str) -> Doc:
    """Ship ``lines`` out of what remains; the allocated stock leaves on hand (a replacement:
    available stock; repaired goods: the inspection location).

    A sale's dispatch holds only its shipment's lock (``ledger``'s docstring); the others
    change what is available and hold the stock lock too."""
    await ledger.hold_shipment(unit.conn, shipment_id)
    loaded = await _existing(unit, shipment_id)
    if loaded.state.purpose != "sale":
        await ledger.hold_lock(unit.conn)
    available = (available_of(await ledger.levels(unit, lines))
                 if loaded.state.purpose == "replacement" else None)
    new = decide_dispatch(loaded.state, lines=lines, carrier=carrier, tracking_no=tracking_no,
                          dispatch_id=new_id("dsp"), today=unit.today(),
                          cancelled=await _cancelled(unit, loaded.state), available=available)
    order = await get_order(unit.conn, loaded.state.order_id)
    meta = _order_meta(unit.actor, order)
    saved = await unit.save(loaded, new, meta=meta)
    await ledger.record(unit, new)
    for event in new:
        if isinstance(event, ShipmentDispatched):
            await note_goods_dispatched(unit, event, meta)
    assert saved.document is not None
    return saved.document


async def deliver(unit: Unit, shipment_id: str, *, delivered_at: datetime, signed_by: str) -> Doc:
    """Record proof of delivery of a completely dispatched shipment."""
    loaded = await _existing(unit, shipment_id)
    new = decide_delivery(loaded.state, delivered_at, signed_by)
    order = await get_order(unit.conn, loaded.state.order_id)
    saved = await unit.save(loaded, new, meta=_order_meta(unit.actor, order))
    assert saved.document is not None
    return saved.document


async def cancel_shipment_of(unit: Unit, order_id: str) -> None:
    """A cancelled or rejected order's shipment (if any) will not ship."""
    order = await order_of(unit, order_id)
    if order is None or not order.get("shipment_id"):
        return
    doc = await documents.get(unit.conn, SHIPMENT, order["shipment_id"])
    if doc is not None:
        await save_shipment(unit.conn, cancel_shipment(doc))


async def shipment_page(
    conn: AsyncConnection, principal: Principal, *, order_id: str | None, status: str | None,
    partner_id: str | None, cursor: str | None, limit: int,
) -> Doc:
    """Shipments, forced to the caller's own when it is a partner key."""
    return await documents.page(
        conn, SHIPMENT, partner_id=principal.scoped(partner_id),
        status=status, cursor=cursor, limit=limit, ref_id=order_id or None)
