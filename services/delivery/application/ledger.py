"""The stock ledger: each sku's on-hand and allocated quantities, and the locks that guard them.

Every fact that moves a sku's quantities (receipt, allocation, release,
dispatch, received or inspected return) updates the sku's ``stock`` document in
the transaction that appends it; the documents are a cache of those events
(``o2c replay``).

SQLite serialises writers already. On PostgreSQL two transaction-level advisory
locks (released at commit or rollback; they take no transaction id, so the
store's commit-order check is unaffected) and the way the documents are written
keep the ledger exact without putting every mover in one queue:

- **The stock lock** (``hold_lock``) makes "read what is available, decide,
  append" atomic across the many streams an allocation touches (every sku of an
  order, the backorder queue). Everything that changes what is *available*
  takes it: allocations, releases, receipts, returns, and dispatches other than
  a sale's.
- **A sale's dispatch does not take it.** Shipping allocated goods lowers on-hand
  and allocated by the same quantity, so it changes no sku's available quantity
  and no decision taken under the stock lock. It takes only its **shipment's
  lock** (``hold_shipment``), which a release of the order takes as well (after
  the stock lock): a cancelled order's stock is released either before the
  dispatch (which then refuses) or after it (releasing what did not ship).
  Measured: with every dispatch behind the stock lock, a dispatch waited 136 ms
  on average on PostgreSQL behind the consumer's allocation batches
  (``docs/benchmarks.md``).
- **The documents are moved, not rewritten.** On PostgreSQL a mover writes each
  sku's change (on-hand, allocated, in inspection) as an increment of the stored
  row, rows in sku order; a consumer batch and a dispatch write all theirs in one
  statement. A sale's dispatch and an allocation may then move one sku at once and
  neither loses the other's change; a transaction that also reads levels (under the
  stock lock) sees every available quantity exactly. A command that moves stock in
  several statements (a receipt serving the backorder queue) can still lock two
  skus in the opposite order to a dispatch; PostgreSQL ends one of the two and the
  command path runs it again (``libs.runtime.aggregate.retry_on_conflict``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.runtime.commands import Unit
from libs.runtime.documents import Documents
from libs.store.sql import Statement, hold_once
from services.delivery.domain.stock import StockLevel, movements_of

STOCK = "stock"
STOCK_LOCK = "o2c.delivery.stock-ledger"
_LOCK = Statement("SELECT pg_advisory_xact_lock(hashtext($1))")
"""Taken by every stock movement but a sale's dispatch: straight to the driver
(``libs.store.sql.Statement``)."""


def _level_json(on_hand: str, allocated: str, in_inspection: str, sku: str) -> str:
    """SQL for a level's document, byte for byte ``canonical_json(StockLevel.as_dict())``."""
    return ("format('{\"allocated\":%s,\"available\":%s,\"in_inspection\":%s,\"on_hand\":%s,"
            f"\"sku\":%s}}', {allocated}, ({on_hand}) - ({allocated}), {in_inspection}, {on_hand}, "
            f"to_json({sku}::text))")


def _stored(field: str, body: str) -> str:
    return f"COALESCE(({body}::jsonb ->> '{field}')::bigint, 0)"


def _sum(field: str) -> str:
    """The stored level's ``field`` plus the change's (the new row's body)."""
    return f"{_stored(field, 'documents.body')} + {_stored(field, 'excluded.body')}"


_MOVE = Statement(
    "INSERT INTO documents (kind, id, partner_id, status, ref_id, body, version, updated_at) "
    "SELECT $1, m.sku, NULL, NULL, NULL, "
    + _level_json("m.on_hand", "m.allocated", "m.in_inspection", "m.sku") + ", 0, $6 "
    "FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) "
    "AS m(sku, on_hand, allocated, in_inspection) ORDER BY m.sku "
    "ON CONFLICT (kind, id) DO UPDATE SET updated_at = excluded.updated_at, body = "
    + _level_json(_sum("on_hand"), _sum("allocated"), _sum("in_inspection"), "documents.id"),
    deferrable=True)
"""PostgreSQL: add each sku's change to its stored level (a new sku starts at zero), rows in
sku order. A new row's body is the change itself, which the update adds to the stored one."""


class _Moves:
    """The stock changes of one transaction (PostgreSQL), written together by ``flush``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.changes: dict[str, list[int]] = {}

    def add(self, sku: str, before: StockLevel, after: StockLevel) -> None:
        change = self.changes.setdefault(sku, [0, 0, 0])
        change[0] += after.on_hand - before.on_hand
        change[1] += after.allocated - before.allocated
        change[2] += after.in_inspection - before.in_inspection

    async def flush(self) -> int:
        moved = sorted(self.changes.items())
        self.changes = {}
        if moved:
            await _MOVE.execute(self.conn, STOCK, [sku for sku, _ in moved],
                                *([change[n] for _, change in moved] for n in range(3)),
                                format_timestamp(utc_now()))
        return len(moved)


_MOVES_IN_BATCH = object()
"""``Unit.kept_for_batch`` key: a consumer batch's stock changes, written after its last handler."""


async def hold_lock(conn: AsyncConnection, name: str = STOCK_LOCK) -> None:
    """Wait for and hold ``name`` until this transaction ends (PostgreSQL; SQLite needs none).

    Taken once per transaction (``hold_once``): a consumer batch's reactions share it."""
    if conn.dialect.name == "postgresql":
        await hold_once(conn, _LOCK, name)


async def hold_shipment(conn: AsyncConnection, shipment_id: str) -> None:
    """Wait for and hold the lock of one shipment until this transaction ends (PostgreSQL):
    a sale's dispatch and the release of its order take turns (the module's docstring).
    A holder of the stock lock takes it after that lock, never before."""
    await hold_lock(conn, f"o2c.delivery.shipment:{shipment_id}")


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
    moves: _Moves | None = None
    if unit.conn.dialect.name == "postgresql":
        moves = (unit.kept_for_batch(_MOVES_IN_BATCH, lambda: _Moves(unit.conn), flush=_Moves.flush)
                 or _Moves(unit.conn))
    for event in events:
        for quantities, move in movements_of(event):
            if moves is not None and not shared:
                for sku, qty in quantities.items():  # a change needs no read: moves are linear
                    if qty:
                        moves.add(sku, StockLevel(sku), move(StockLevel(sku), qty))
                continue
            current = await _levels(book, quantities)
            for sku, level in current.items():
                if quantities[sku]:
                    moved = move(level, quantities[sku])
                    if moves is None:
                        book.put(STOCK, moved.sku, moved.as_dict())
                    else:  # the batch reads it as moved; the table gets the change
                        book.written(STOCK, moved.sku, moved.as_dict())
                        moves.add(sku, level, moved)
    if moves is not None and not shared:
        await moves.flush()
    elif not shared:
        await book.flush()
