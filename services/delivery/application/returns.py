"""Returns: requested against what an order had dispatched, received into inspection, inspected.

Inspection restocks or scraps each unit; an exchange then gets a replacement
shipment and a repair a shipment of its repaired units, both with the order's
correlation id so they join the order's timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.values import ReturnKind
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.commands import Loaded, Unit
from libs.runtime.ids import new_id
from services.delivery.application import ledger
from services.delivery.application.allocations import serve_backorders
from services.delivery.application.order_copies import get_order, order_seen_by, update_order
from services.delivery.application.return_records import RETURN_STREAM
from services.delivery.application.shipments import SHIPMENT_STREAM
from services.delivery.application.views import RETURN
from services.delivery.domain.errors import ReturnNotFound
from services.delivery.domain.quantities import Tally, plus
from services.delivery.domain.returns import (
    SENT_BACK,
    GoodsReturn,
    Outcome,
    decide_inspection,
    decide_receipt_of_return,
    decide_request,
    goods_sent_back,
)
from services.delivery.domain.shipment import decide_creation

Doc = dict[str, Any]


async def return_seen_by(conn: AsyncConnection, principal: Principal, return_id: str) -> Doc:
    """The return document, or 404 when unknown or another partner's."""
    return await documents.get_visible(conn, RETURN, return_id, principal,
                                       ReturnNotFound(f"return {return_id} not found"))


async def request_return(unit: Unit, *, order_id: str, lines: Mapping[str, int], reason: str,
                         kind: ReturnKind) -> Doc:
    """Ask to return goods of an order: at most what was dispatched and not returned yet."""
    conn = unit.conn
    assert unit.principal is not None
    await ledger.hold_lock(conn, f"o2c.delivery.returns:{order_id}")
    order = await order_seen_by(conn, unit.principal, order_id)
    dispatched: Tally = {}
    if order.get("shipment_id"):
        shipment = await unit.load(SHIPMENT_STREAM, order["shipment_id"])
        dispatched = dict(shipment.state.dispatched)
    claimed: Tally = {}
    for earlier_id in order.get("return_ids", []):
        earlier = await unit.load(RETURN_STREAM, earlier_id)
        claimed = plus(claimed, earlier.state.claimed)
    return_id = new_id("ret")
    new = decide_request(return_id=return_id, order_id=order_id, partner_id=order["partner_id"],
                         lines=lines, reason=reason, kind=kind, dispatched=dispatched,
                         claimed=claimed)
    meta = EventMetadata(actor=unit.actor, correlation_id=uuid.UUID(order["correlation_id"]))
    saved = await unit.save(Loaded(RETURN_STREAM, return_id, GoodsReturn(), 0), new, meta=meta)
    await update_order(unit, order_id, return_ids=[*order.get("return_ids", []), return_id])
    assert saved.document is not None
    return saved.document


async def _existing(unit: Unit, return_id: str) -> Loaded[str, GoodsReturn]:
    loaded = await unit.load(RETURN_STREAM, return_id)
    if not loaded.state.return_id:
        raise ReturnNotFound(f"return {return_id} not found")
    return loaded


async def _order_meta(unit: Unit, order_id: str) -> EventMetadata:
    order = await get_order(unit.conn, order_id)
    correlation = uuid.UUID(order["correlation_id"]) if order else uuid.uuid4()
    return EventMetadata(actor=unit.actor, correlation_id=correlation)


async def receive_return(unit: Unit, return_id: str, lines: Mapping[str, int]) -> Doc:
    """The returned goods arrived at the inspection location: not sellable until inspected."""
    await ledger.hold_lock(unit.conn)
    loaded = await _existing(unit, return_id)
    new = decide_receipt_of_return(loaded.state, lines, unit.today())
    saved = await unit.save(loaded, new, meta=await _order_meta(unit, loaded.state.order_id))
    await ledger.record(unit, new)
    assert saved.document is not None
    return saved.document


async def inspect_return(unit: Unit, return_id: str, outcomes: Mapping[str, Outcome]) -> Doc:
    """Inspect every received unit: restocked units become sellable (and may serve the backorder
    queue), scrapped ones leave the books; an exchange or repair gets its shipment back."""
    await ledger.hold_lock(unit.conn)
    loaded = await _existing(unit, return_id)
    state = loaded.state
    shipment_id = new_id("shp") if state.kind in SENT_BACK else None
    new = decide_inspection(state, outcomes, unit.today(), shipment_id)
    meta = await _order_meta(unit, state.order_id)
    saved = await unit.save(loaded, new, meta=meta)
    await ledger.record(unit, new)
    if shipment_id is not None:
        shipment = await unit.load(SHIPMENT_STREAM, shipment_id)
        purpose, _ = SENT_BACK[state.kind]
        await unit.save(shipment, decide_creation(
            shipment.state, shipment_id, state.order_id, state.partner_id, goods_sent_back(state),
            purpose=purpose, return_id=state.return_id), meta=meta)
    if any(outcome.restock for outcome in outcomes.values()):
        await serve_backorders(unit, saved.stored[-1].event_id)
    assert saved.document is not None
    return saved.document


async def return_page(
    conn: AsyncConnection, principal: Principal, *, order_id: str | None, status: str | None,
    partner_id: str | None, cursor: str | None, limit: int,
) -> Doc:
    """Returns, forced to the caller's own when it is a partner key."""
    return await documents.page(
        conn, RETURN, partner_id=principal.scoped(partner_id),
        status=status, cursor=cursor, limit=limit, ref_id=order_id or None)
