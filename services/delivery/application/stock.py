"""Goods receipts: book stock in, then serve the backorder queue with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import delivery as dl
from libs.events.base import EventMetadata
from libs.runtime import documents
from libs.runtime.aggregate import load
from libs.runtime.host import ServiceContext
from libs.store.snapshots import SnapshotPolicy, save_if_due
from services.delivery.application import ledger
from services.delivery.application.allocations import serve_backorders
from services.delivery.domain.errors import SkuNotStocked
from services.delivery.domain.stock import (
    STOCK_ITEM_SHAPE,
    StockItem,
    decide_receipt,
    decode_stock_item,
    encode_stock_item,
    evolve_stock_item,
)

SNAPSHOTS: SnapshotPolicy[StockItem] = SnapshotPolicy(
    STOCK_ITEM_SHAPE, [dl.StockReceived], encode_stock_item, decode_stock_item,
    size=lambda item: len(item.references))
"""A sku's receipts stream lives as long as the sku: loads start from a snapshot."""


def stock_stream(sku: str) -> str:
    return f"stock-{sku}"


async def receive_stock(
    ctx: ServiceContext, conn: AsyncConnection, actor: str, sku: str, qty: int, reference: str
) -> dict[str, Any]:
    """Book a receipt (``reference`` unique per sku); queued orders it covers are allocated.

    Answers the receipt with the sku's new level and the orders allocated from the queue.
    """
    await ledger.hold_lock(conn)
    state, version = await load(conn, ctx.store, ctx.registry, stock_stream(sku), StockItem(),
                                evolve_stock_item, snapshots=SNAPSHOTS)
    new = decide_receipt(state, sku, qty, reference)
    stored = await ctx.store.append(stock_stream(sku), "stock", version, new,
                                    EventMetadata(actor=actor), conn=conn)
    for event in new:
        state = evolve_stock_item(state, event)
    await save_if_due(conn, stock_stream(sku), state, version + len(new), SNAPSHOTS)
    await ledger.record(conn, new)
    served = await serve_backorders(ctx, conn, stored[-1].event_id, actor=f"system:{ctx.name}")
    level = (await ledger.levels(conn, [sku]))[sku]
    return {"sku": sku, "qty": qty, "reference": reference, "received_on": ctx.today().isoformat(),
            **level.as_dict(), "allocated_orders": served}


async def stock_of(conn: AsyncConnection, sku: str) -> dict[str, Any]:
    body = await documents.get(conn, ledger.STOCK, sku)
    if body is None:
        raise SkuNotStocked(f"no stock was ever received for sku {sku!r}")
    return body


async def stock_page(
    conn: AsyncConnection, *, sku: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    if sku is not None:
        body = await documents.get(conn, ledger.STOCK, sku)
        return {"items": [body] if body else [], "next_cursor": None}
    return await documents.page(conn, ledger.STOCK, cursor=cursor, limit=limit)
