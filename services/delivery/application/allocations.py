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
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.events.delivery import StockAllocated, StockBackordered, StockReleased
from libs.runtime import commands, documents
from libs.runtime.aggregate import load
from libs.runtime.commands import Aggregate, Unit
from libs.store.snapshots import SnapshotPolicy
from services.delivery.application import ledger
from services.delivery.application.order_copies import order_of
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


@dataclass(frozen=True)
class Loaded(commands.Loaded[str, Allocation]):
    """An order's allocation, with the order copy its document starts from."""

    order: dict[str, Any] | None = None


async def _move_ledger_and_document(unit: Unit, loaded: Loaded, new: Sequence[DomainEvent],
                                    before: Allocation) -> None:
    """Move the ledger and the allocation document by the appended events.

    A stream these events began has no document yet: it is not looked for."""
    order = loaded.order
    assert order is not None
    doc = (await documents.get(unit.conn, ALLOCATION, order["order_id"])
           if loaded.version > len(new) else None) or {
        "order_id": order["order_id"], "partner_id": order["partner_id"], "lines": order["lines"],
        "arrival": order["arrival"], "correlation_id": order["correlation_id"], "missing": []}
    await ledger.record(unit, new)
    for event in new:
        if isinstance(event, StockAllocated):
            doc.update(status=ALLOCATED, missing=[])
        elif isinstance(event, StockBackordered):
            doc.update(status=BACKORDERED, missing=[line.model_dump() for line in event.lines])
        elif isinstance(event, StockReleased):
            doc.update(status=RELEASED, released=[line.model_dump() for line in event.lines])
    await documents.put(unit.conn, ALLOCATION, order["order_id"], doc, partner_id=order["partner_id"],
                        status=doc["status"])


ALLOCATION_STREAM: Aggregate[str, Allocation] = Aggregate(
    stream_type=ALLOCATION, stream_id=allocation_stream, initial=lambda order_id: Allocation(),
    evolve=evolve_allocation, project=_move_ledger_and_document,
    snapshots=SnapshotPolicy.in_memory(ALLOCATION))


async def _load(unit: Unit, order: dict[str, Any]) -> Loaded:
    loaded = await unit.load(ALLOCATION_STREAM, order["order_id"])
    return Loaded(ALLOCATION_STREAM, loaded.key, loaded.state, loaded.version, head=loaded.head,
                  order=order)


async def allocate_placed_order(unit: Unit, order: dict[str, Any]) -> None:
    """All lines of a new order, or a backorder listing what is missing."""
    await ledger.hold_lock(unit.conn)
    loaded = await _load(unit, order)
    needed = needed_of(order)
    available = available_of(await ledger.levels(unit, needed))
    new = decide_on_placement(loaded.state, order["order_id"], needed, available)
    await unit.save(loaded, new, salt="allocation")


async def _queue(conn: AsyncConnection) -> list[dict[str, Any]]:
    queued: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await documents.page(conn, ALLOCATION, status=BACKORDERED, cursor=cursor,
                                    limit=documents.MAX_LIMIT)
        queued.extend(page["items"])
        if not (cursor := page["next_cursor"]):
            return queued


async def serve_backorders(unit: Unit, cause_id: uuid.UUID) -> list[str]:
    """Allocate the queued orders that stock now covers, in arrival order (caller holds the lock).

    Returns the ids of the orders allocated.
    """
    conn = unit.conn
    waiting = {doc["order_id"]: doc for doc in await _queue(conn)}
    if not waiting:
        return []
    queue = [QueuedOrder(doc["order_id"], doc["arrival"], frozen(needed_of(doc)))
             for doc in waiting.values()]
    skus = {sku for queued in queue for sku, _ in queued.needed}
    served: list[str] = []
    for queued in serve_in_arrival_order(queue, available_of(await ledger.levels(unit, skus))):
        order = waiting[queued.order_id]
        loaded = await _load(unit, order)
        needed = dict(queued.needed)
        new = decide_from_backorder(loaded.state, needed, available_of(await ledger.levels(unit, needed)))
        if not new:
            continue
        meta = EventMetadata(actor=f"system:{unit.ctx.name}",
                             correlation_id=uuid.UUID(order["correlation_id"]), causation_id=cause_id)
        ids = [uuid.uuid5(cause_id, f"backorder-served:{queued.order_id}")]
        await unit.save(loaded, new, event_ids=ids, meta=meta)
        served.append(queued.order_id)
    return served


async def release_order(unit: Unit, order_id: str) -> list[str]:
    """Release a cancelled or rejected order's unshipped stock, then serve the queue with it.

    Returns the ids of backordered orders the freed stock allocated.
    """
    conn, ctx = unit.conn, unit.ctx
    await ledger.hold_lock(conn)
    order = await order_of(unit, order_id)
    if order is None:
        return []
    if order.get("shipment_id"):  # a dispatch of it ships before or not at all
        await ledger.hold_shipment(conn, order["shipment_id"])
    loaded = await _load(unit, order)
    dispatched: Tally = {}
    if order.get("shipment_id"):
        shipment, _ = await load(conn, ctx.store, ctx.registry, f"shipment-{order['shipment_id']}",
                                 Shipment(), evolve_shipment)
        dispatched = dict(shipment.dispatched)
    new = decide_release(loaded.state, order_id, dispatched)
    if not new:
        return []
    released = await unit.save(loaded, new, salt="release")
    if any(line.qty for event in new if isinstance(event, StockReleased) for line in event.lines):
        return await serve_backorders(unit, released.stored[-1].event_id)
    return []
