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
from libs.runtime import documents
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


async def levels(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, StockLevel]:
    """The ledger entry of each sku (zero for a sku never received)."""
    wanted = list(dict.fromkeys(skus))
    bodies = await documents.get_many(conn, ((STOCK, sku) for sku in wanted))  # one statement
    found: dict[str, StockLevel] = {}
    for sku in wanted:
        body = bodies.get((STOCK, sku))
        found[sku] = (StockLevel(sku, body["on_hand"], body["allocated"],
                                 body.get("in_inspection", 0)) if body
                      else StockLevel(sku))
    return found


async def save(conn: AsyncConnection, changed: Iterable[StockLevel]) -> None:
    for level in changed:
        await documents.put(conn, STOCK, level.sku, level.as_dict())


async def record(conn: AsyncConnection, events: Iterable[DomainEvent]) -> None:
    """Move the ledger by every fact in ``events`` that moves stock (``domain.stock.movements_of``)."""
    for event in events:
        for quantities, move in movements_of(event):
            current = await levels(conn, quantities)
            await save(conn, [move(level, quantities[sku]) for sku, level in current.items()
                              if quantities[sku]])
