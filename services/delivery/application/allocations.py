"""Allocating stock to orders, serving the backorder queue and releasing stock.

The rules are in ``domain.allocation``; here they run under the stock lock,
append to ``allocation-<order_id>`` with the expected version and move the
ledger and the ``allocation`` document in the same transaction.

Allocations made later for a backordered order carry the **order's**
correlation id (kept from ``OrderPlaced``), caused by the fact that made room,
so the order's confirmation and everything after it stay in its timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.events.delivery import StockAllocated, StockBackordered, StockReleased
from libs.runtime import documents
from libs.runtime.aggregate import load
from libs.runtime.host import ServiceContext
from services.delivery.application import ledger
from services.delivery.application.order_copies import get_order
from services.delivery.domain.allocation import (
    ALLOCATED,
    BACKORDERED,
    RELEASED,
    Allocation,
    QueuedOrder,
    decide_from_backorder,
    decide_on_placement,
    decide_release,
    evolve_allocation,
    serve_in_arrival_order,
)
from services.delivery.domain.quantities import Tally, from_json, frozen
from services.delivery.domain.shipment import Shipment, evolve_shipment
from services.delivery.domain.stock import available_of

ALLOCATION = "allocation"


def allocation_stream(order_id: str) -> str:
    return f"allocation-{order_id}"


def needed_of(order: dict[str, Any]) -> Tally:
    return from_json(order["lines"])


async def _load(ctx: ServiceContext, conn: AsyncConnection, order_id: str) -> tuple[Allocation, int]:
    return await load(conn, ctx.store, ctx.registry, allocation_stream(order_id), Allocation(),
                      evolve_allocation)


async def _append(
    ctx: ServiceContext, conn: AsyncConnection, order: dict[str, Any], version: int,
    new: Sequence[DomainEvent], meta: EventMetadata, event_ids: Sequence[uuid.UUID],
) -> uuid.UUID:
    """Append, then move the ledger and the allocation document accordingly."""
    stored = await ctx.store.append(allocation_stream(order["order_id"]), ALLOCATION, version, new,
                                    meta, conn=conn, event_ids=event_ids)
    doc = await documents.get(conn, ALLOCATION, order["order_id"]) or {
        "order_id": order["order_id"], "partner_id": order["partner_id"], "lines": order["lines"],
        "arrival": order["arrival"], "correlation_id": order["correlation_id"], "missing": []}
    await ledger.record(conn, new)
    for event in new:
        if isinstance(event, StockAllocated):
            doc.update(status=ALLOCATED, missing=[])
        elif isinstance(event, StockBackordered):
            doc.update(status=BACKORDERED, missing=[line.model_dump() for line in event.lines])
        elif isinstance(event, StockReleased):
            doc.update(status=RELEASED, released=[line.model_dump() for line in event.lines])
    await documents.put(conn, ALLOCATION, order["order_id"], doc, partner_id=order["partner_id"],
                        status=doc["status"])
    return stored[-1].event_id


async def allocate_placed_order(
    ctx: ServiceContext, conn: AsyncConnection, order: dict[str, Any], meta: EventMetadata,
    event_ids: Sequence[uuid.UUID],
) -> None:
    """All lines of a new order, or a backorder listing what is missing."""
    await ledger.hold_lock(conn)
    state, version = await _load(ctx, conn, order["order_id"])
    needed = needed_of(order)
    available = available_of(await ledger.levels(conn, needed))
    new = decide_on_placement(state, order["order_id"], needed, available)
    if new:
        await _append(ctx, conn, order, version, new, meta, event_ids[:len(new)])


async def _queue(conn: AsyncConnection) -> list[dict[str, Any]]:
    queued: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await documents.page(conn, ALLOCATION, status=BACKORDERED, cursor=cursor,
                                    limit=documents.MAX_LIMIT)
        queued.extend(page["items"])
        if not (cursor := page["next_cursor"]):
            return queued


async def serve_backorders(
    ctx: ServiceContext, conn: AsyncConnection, cause_id: uuid.UUID, actor: str
) -> list[str]:
    """Allocate the queued orders that stock now covers, in arrival order (caller holds the lock).

    Returns the ids of the orders allocated.
    """
    waiting = {doc["order_id"]: doc for doc in await _queue(conn)}
    if not waiting:
        return []
    queue = [QueuedOrder(doc["order_id"], doc["arrival"], frozen(needed_of(doc)))
             for doc in waiting.values()]
    skus = {sku for queued in queue for sku, _ in queued.needed}
    served: list[str] = []
    for queued in serve_in_arrival_order(queue, available_of(await ledger.levels(conn, skus))):
        order = waiting[queued.order_id]
        state, version = await _load(ctx, conn, queued.order_id)
        needed = dict(queued.needed)
        new = decide_from_backorder(state, needed, available_of(await ledger.levels(conn, needed)))
        if not new:
            continue
        meta = EventMetadata(actor=actor, correlation_id=uuid.UUID(order["correlation_id"]),
                             causation_id=cause_id)
        ids = [uuid.uuid5(cause_id, f"backorder-served:{queued.order_id}")]
        await _append(ctx, conn, order, version, new, meta, ids)
        served.append(queued.order_id)
    return served


async def release_order(
    ctx: ServiceContext, conn: AsyncConnection, order_id: str, meta: EventMetadata,
    event_ids: Sequence[uuid.UUID],
) -> list[str]:
    """Release a cancelled or rejected order's unshipped stock, then serve the queue with it.

    Returns the ids of backordered orders the freed stock allocated.
    """
    await ledger.hold_lock(conn)
    order = await get_order(conn, order_id)
    if order is None:
        return []
    state, version = await _load(ctx, conn, order_id)
    dispatched: Tally = {}
    if order.get("shipment_id"):
        shipment, _ = await load(conn, ctx.store, ctx.registry, f"shipment-{order['shipment_id']}",
                                 Shipment(), evolve_shipment)
        dispatched = dict(shipment.dispatched)
    new = decide_release(state, order_id, dispatched)
    if not new:
        return []
    released_id = await _append(ctx, conn, order, version, new, meta, event_ids[:len(new)])
    if any(line.qty for event in new if isinstance(event, StockReleased) for line in event.lines):
        return await serve_backorders(ctx, conn, released_id, meta.actor)
    return []
