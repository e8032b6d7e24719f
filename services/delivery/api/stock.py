"""``/v1/stock``: goods receipts and stock levels, for the warehouse only (API.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.params import Cursor, PathId, QueryText
from services.delivery.api.deps import Ctx, Limit, Warehouse
from services.delivery.api.schemas import ReceiptOut, StockOut, StockPage, StockReceiptIn
from services.delivery.application.stock import receive_stock, stock_of, stock_page

router = APIRouter(prefix="/v1/stock", tags=["stock"])


@router.post("/receipts", status_code=201, response_model=ReceiptOut)
async def book_receipt(body: StockReceiptIn, _: Warehouse, command: IdempotentCommand) -> Response:
    """Book goods in. ``reference`` is unique per sku: booking it again answers 409
    ``duplicate-reference``. Backordered orders the new stock covers completely are
    allocated at once, in arrival order (``allocated_orders``)."""
    return await command.run(lambda unit: receive_stock(unit, body.sku, body.qty, body.reference), body)


@router.get("", response_model=StockPage)
async def list_stock(
    ctx: Ctx, _: Warehouse, sku: QueryText = None, limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Per sku: ``on_hand``, ``allocated`` (reserved for confirmed orders) and ``available``."""
    async with ctx.db.read() as conn:
        return await stock_page(conn, sku=sku, cursor=cursor, limit=limit)


@router.get("/{sku}", response_model=StockOut)
async def get_stock(sku: PathId, ctx: Ctx, _: Warehouse) -> dict[str, Any]:
    """A sku's stock: on hand, allocated, available and in inspection (warehouse)."""
    async with ctx.db.read() as conn:
        return await stock_of(conn, sku)
