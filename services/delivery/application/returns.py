"""Returns: requested against what an order had dispatched, received back into stock."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.events.values import ReturnKind
from libs.runtime import documents
from libs.runtime.aggregate import load
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.delivery.application import ledger
from services.delivery.application.allocations import serve_backorders
from services.delivery.application.order_copies import get_order, order_seen_by, update_order
from services.delivery.application.shipments import load_shipment
from services.delivery.application.views import RETURN, project_return
from services.delivery.domain.errors import ReturnNotFound
from services.delivery.domain.quantities import Tally, plus
from services.delivery.domain.returns import (
    GoodsReturn,
    decide_receipt_of_return,
    decide_request,
    evolve_return,
)

Doc = dict[str, Any]


def return_stream(return_id: str) -> str:
    return f"return-{return_id}"


async def _load(ctx: ServiceContext, conn: AsyncConnection, return_id: str) -> tuple[GoodsReturn, int]:
    return await load(conn, ctx.store, ctx.registry, return_stream(return_id), GoodsReturn(),
                      evolve_return)


async def return_seen_by(conn: AsyncConnection, principal: Principal, return_id: str) -> Doc:
    """The return document, or 404 when unknown or another partner's."""
    return await documents.get_visible(conn, RETURN, return_id, principal,
                                       ReturnNotFound(f"return {return_id} not found"))


async def _append(
    ctx: ServiceContext, conn: AsyncConnection, return_id: str, version: int,
    new: list[DomainEvent], meta: EventMetadata,
) -> tuple[Doc, uuid.UUID]:
    """Append to the return's stream and project its document; answers it and the last event id."""
    stored = await ctx.store.append(return_stream(return_id), RETURN, version, new, meta, conn=conn)
    doc = await documents.get(conn, RETURN, return_id)
    for event in new:
        doc = project_return(doc, event, ctx.today().isoformat())
    if doc is None:
        raise LookupError(f"return {return_id} has no document")
    await documents.put(conn, RETURN, return_id, doc, partner_id=doc["partner_id"],
                        status=doc["status"], ref_id=doc["order_id"])
    return doc, stored[-1].event_id


async def request_return(
    ctx: ServiceContext, conn: AsyncConnection, principal: Principal, *, order_id: str,
    lines: Mapping[str, int], reason: str, kind: ReturnKind,
) -> Doc:
    """Ask to return goods of an order: at most what was dispatched and not returned yet."""
    await ledger.hold_lock(conn, f"o2c.delivery.returns:{order_id}")
    order = await order_seen_by(conn, principal, order_id)
    dispatched: Tally = {}
    if order.get("shipment_id"):
        shipment, _ = await load_shipment(ctx, conn, order["shipment_id"])
        dispatched = dict(shipment.dispatched)
    claimed: Tally = {}
    for earlier_id in order.get("return_ids", []):
        earlier, _ = await _load(ctx, conn, earlier_id)
        claimed = plus(claimed, earlier.claimed)
    return_id = new_id("ret")
    new = decide_request(return_id=return_id, order_id=order_id, partner_id=order["partner_id"],
                         lines=lines, reason=reason, kind=kind, dispatched=dispatched,
                         claimed=claimed)
    meta = EventMetadata(actor=principal.actor, correlation_id=uuid.UUID(order["correlation_id"]))
    doc, _ = await _append(ctx, conn, return_id, 0, new, meta)
    await update_order(conn, order_id, return_ids=[*order.get("return_ids", []), return_id])
    return doc


async def receive_return(
    ctx: ServiceContext, conn: AsyncConnection, actor: str, return_id: str, lines: Mapping[str, int]
) -> Doc:
    """The returned goods arrived: they go back on hand, and may serve the backorder queue."""
    await ledger.hold_lock(conn)
    state, version = await _load(ctx, conn, return_id)
    if not state.return_id:
        raise ReturnNotFound(f"return {return_id} not found")
    new = decide_receipt_of_return(state, lines, ctx.today())
    order = await get_order(conn, state.order_id)
    correlation = uuid.UUID(order["correlation_id"]) if order else uuid.uuid4()
    doc, received_id = await _append(ctx, conn, return_id, version, new,
                                     EventMetadata(actor=actor, correlation_id=correlation))
    await ledger.record(conn, new)
    await serve_backorders(ctx, conn, received_id, actor=f"system:{ctx.name}")
    return doc


async def return_page(
    conn: AsyncConnection, principal: Principal, *, order_id: str | None, status: str | None,
    partner_id: str | None, cursor: str | None, limit: int,
) -> Doc:
    """Returns, forced to the caller's own when it is a partner key."""
    return await documents.page(
        conn, RETURN, partner_id=principal.scoped(partner_id),
        status=status, cursor=cursor, limit=limit, ref_id=order_id or None)
