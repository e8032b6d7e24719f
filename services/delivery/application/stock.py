"""Goods receipts: book stock in, then serve the backorder queue with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import delivery as dl
from libs.runtime import documents
from libs.runtime.commands import Aggregate, Unit
from libs.store.snapshots import SnapshotPolicy
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


def stock_stream(sku: str) -> str:
    return f"stock-{sku}"


SNAPSHOTS: SnapshotPolicy[StockItem] = SnapshotPolicy(
    STOCK_ITEM_SHAPE, [dl.StockReceived], encode_stock_item, decode_stock_item,
    size=lambda item: len(item.references))
"""A sku's receipts stream lives as long as the sku: loads start from a snapshot."""

STOCK_ITEM: Aggregate[str, StockItem] = Aggregate(
    stream_type="stock", stream_id=stock_stream, initial=lambda sku: StockItem(),
    evolve=evolve_stock_item, snapshots=SNAPSHOTS)
"""A sku's receipts (its references); the ledger is moved by ``ledger.record``."""


async def receive_stock(unit: Unit, sku: str, qty: int, reference: str) -> dict[str, Any]:
    """Book a receipt (``reference`` unique per sku); queued orders it covers are allocated.

    Answers the receipt with the sku's new level and the orders allocated from the queue.
    """
    await ledger.hold_lock(unit.conn)
    loaded = await unit.load(STOCK_ITEM, sku)
    new = decide_receipt(loaded.state, sku, qty, reference)
    saved = await unit.save(loaded, new)
    await ledger.record(unit, new)
    served = await serve_backorders(unit, saved.stored[-1].event_id)
    level = (await ledger.levels(unit, [sku]))[sku]
    return {"sku": sku, "qty": qty, "reference": reference, "received_on": unit.today().isoformat(),
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
