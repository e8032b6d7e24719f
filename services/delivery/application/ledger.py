"""The stock ledger: each sku's on-hand and allocated quantities, and the lock that guards them.

Every fact that moves a sku's quantities (receipt, allocation, release,
dispatch, received or inspected return) is appended in a transaction that first takes the
stock lock and then updates the sku's ``stock`` document in the same
transaction. The lock makes "read what is available, decide, append" atomic
across the many streams an allocation touches (every sku of an order, the
backorder queue); the documents are a cache of those events (``o2c replay``).

SQLite serialises writers already; on PostgreSQL the lock is a transaction-level
advisory lock (released at commit or rollback). It takes no transaction id, so
the store's commit-order check is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.runtime.commands import Unit
from libs.runtime.documents import Documents
from libs.store.sql import Statement, hold_once
from services.delivery.domain.stock import StockLevel, movements_of

STOCK = "stock"
STOCK_LOCK = "o2c.delivery.stock-ledger"
_LOCK = Statement("SELECT pg_advisory_xact_lock(hashtext($1))")
"""Taken by every stock movement: straight to the driver (``libs.store.sql.Statement``)."""


async def hold_lock(conn: AsyncConnection, name: str = STOCK_LOCK) -> None:
    """Wait for and hold ``name`` until this transaction ends (PostgreSQL; SQLite needs none).

    Taken once per transaction (``hold_once``): a consumer batch's reactions share it."""
    if conn.dialect.name == "postgresql":
        await hold_once(conn, _LOCK, name)


def _book(unit: Unit) -> tuple[Documents, bool]:
    """The stock documents this unit reads and moves, and whether they are the batch's.

    A consumer batch's reactions share the batch's documents (``Unit.batch_documents``):
    a sku is read once, an allocation's level is not read back to move it, and the moved
    levels are written with the batch's other documents in one upsert before the commit.
    That is exact because every mover holds the stock lock, held until the transaction
    ends (``hold_lock``): nobody else moves a level meanwhile (SQLite: one writer at a
    time). A command (no batch) gets a unit of its own, written when it moves the ledger.
    """
    shared = unit.batch_documents()
    return (shared, True) if shared is not None else (Documents(unit.conn, lock=False), False)


async def levels(unit: Unit, skus: Iterable[str]) -> dict[str, StockLevel]:
    """The ledger entry of each sku (zero for a sku never received)."""
    return await _levels(_book(unit)[0], skus)


async def _levels(book: Documents, skus: Iterable[str]) -> dict[str, StockLevel]:
    wanted = list(dict.fromkeys(skus))
    await book.load({(STOCK, sku): None for sku in wanted})  # the unread ones, in one statement
    found: dict[str, StockLevel] = {}
    for sku in wanted:
        body = await book.get(STOCK, sku)
        found[sku] = (StockLevel(sku, body["on_hand"], body["allocated"],
                                 body.get("in_inspection", 0)) if body
                      else StockLevel(sku))
    return found


async def record(unit: Unit, events: Iterable[DomainEvent]) -> None:
    """Move the ledger by every fact in ``events`` that moves stock (``domain.stock.movements_of``)."""
    book, shared = _book(unit)
    for event in events:
        for quantities, move in movements_of(event):
            current = await _levels(book, quantities)
            for sku, level in current.items():
                if quantities[sku]:
                    moved = move(level, quantities[sku])
                    book.put(STOCK, moved.sku, moved.as_dict())
    if not shared:
        await book.flush()
