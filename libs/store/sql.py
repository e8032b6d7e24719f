"""Small dialect-aware SQL helpers, and statements sent straight to the driver (``Statement``)."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import await_only, greenlet_spawn


def pairs_in(first: Any, second: Any, pairs: Sequence[tuple[Any, Any]]) -> ColumnElement[bool]:
    """``(first, second) IN pairs`` as an OR of equalities: each pair an index search.

    SQLite plans a row-value ``IN`` as a scan (of the table, or of everything after an
    equality prefix), which grows with the table; the OR form is one index search per pair.
    """
    return or_(*(and_(first == a, second == b) for a, b in pairs))


async def upsert(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    keys: Sequence[str],
) -> None:
    """Insert rows, or update the non-key columns of the rows that already exist."""
    rows = [values] if isinstance(values, Mapping) else list(values)
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table)
    updates = {name: stmt.excluded[name] for name in rows[0] if name not in keys}
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
    await conn.execute(stmt, rows)


async def insert_ignoring_duplicates(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any]
) -> bool:
    """Insert one row unless its key exists; True when inserted."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = await conn.execute(insert(table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


async def insert_many_ignoring_duplicates(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows in one statement, skipping those whose key exists."""
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(table).on_conflict_do_nothing(), list(rows))


async def driver_of(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (PostgreSQL), inside ``conn``'s transaction.

    For bulk statements SQLAlchemy would only slow down (arrays, whole pages).
    SQLAlchemy begins its transaction at the first statement, so one is sent
    first when none was (not on a connection outside transactions, ``Database.read``).
    Writes ``conn`` still holds back (``DEFERRED``) are sent first.
    """
    await send_deferred(conn)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    adapter: Any = raw.dbapi_connection
    if conn.in_transaction() and not driver.is_in_transaction() and not adapter.autocommit:
        await conn.execute(text("SELECT 1"))
    return driver


_PLACEHOLDER = re.compile(r"\$(\d+)")
_TARGET = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)

DEFERRED = "o2c.deferred_writes"
"""Key in a connection's ``info``: the writes its open transaction holds back, to send them
with its next statement (``Statement(deferrable=True)``). Only a transaction that sends
what is left before its ``COMMIT`` sets it (``libs.store.database.Database.transaction``)."""


def sqlite_in(first: int, count: int) -> str:
    """``IN (?first, ..., ?first+count-1)``: a list of values in a SQLite ``Statement`` (PostgreSQL
    takes one array, ``= ANY($n::text[])``, so its text does not change with the count)."""
    return "IN (" + ", ".join(f"?{n}" for n in range(first, first + count)) + ")"


def row_placeholders(count: int, width: int) -> str:
    """``($1, $2), ($3, $4)`` for ``count`` rows of ``width`` values: a multi-row ``VALUES``."""
    return ", ".join("(" + ", ".join(f"${row * width + column + 1}" for column in range(width)) + ")"
                     for row in range(count))


class Statement:
    """A statement sent straight to the driver, inside the caller's SQLAlchemy transaction.

    The hot statements of the one command path (the ``Idempotency-Key`` claim and answer,
    the store's append, the documents a command reads and writes) run on every command of
    every service. Through SQLAlchemy Core each cost more CPU than the database spent on it
    (execution context, parameter and result processing, a greenlet switch): about a
    quarter of the orders process's CPU per ``POST /v1/orders`` (``docs/benchmarks.md``).
    Here the text is written once, with PostgreSQL's ``$1`` placeholders (SQLite gets
    ``?1``), and sent with plain values: asyncpg prepares it once per connection, SQLite's
    module caches it. What SQLAlchemy still does around it:

    - the transaction: the statement runs in the connection's open transaction (begun
      first when there is none, as SQLAlchemy's autobegin would);
    - ``before_cursor_execute`` listeners hear it (statement counts, logging);
    - a failure is raised as SQLAlchemy raises it (``DBAPIError`` subclasses, a lost
      connection invalidated), so the outage and retry rules see no difference.

    Values are the driver's: on SQLite a ``Uuid`` column holds the 32-digit hex
    (``sqlite_uuid``), as SQLAlchemy stores it.

    ``deferrable``: a write nobody reads an answer of (a document's upsert, the
    ``Idempotency-Key`` claim, the inbox rows). On PostgreSQL
    every statement is a round trip, and asyncpg sends one statement per round trip; in
    a transaction of ``Database.transaction`` such a write is held back and sent with the
    transaction's next statement, in front of it as a data-modifying ``WITH`` (one round
    trip for both), or before its ``COMMIT``. It is sent on its own first when the next
    statement names its table (it would not see the write: one statement reads one
    snapshot), and before any statement SQLAlchemy sends or ``driver_of`` hands out the
    driver. Its failure is raised by the statement that carried it, in the same
    transaction, which then rolls back as it would have. Several writes are held together
    when they touch different tables and none reads another's (a consumer batch's
    documents and its inbox rows, carried by its heads' upsert): each becomes a ``WITH`` of
    the carrier, and before the ``COMMIT`` the last carries the others.

    ``apart``: a read that names a table such writes change, but never meets the rows they
    change (rebates' program lookups read only program documents, which no reaction
    writes): it carries a held write all the same.

    ``rows``: the keys of the rows a statement changes (a deferrable write) or reads (a read
    of such a write's table), from its values. A read that declares them carries the held
    writes that declare theirs when they share none (a load reading its aggregate's document
    beside its events, behind the previous reaction's write of another document).
    """

    __slots__ = ("apart", "postgresql", "rows", "sqlite", "target")

    def __init__(self, postgresql: str, *, sqlite: str | None = None, deferrable: bool = False,
                 apart: bool = False, rows: Callable[[tuple[Any, ...]], Iterable[Hashable]] | None = None
                 ) -> None:
        self.postgresql = postgresql
        self.apart = apart
        self.rows = rows
        self.sqlite = sqlite if sqlite is not None else _PLACEHOLDER.sub(r"?\1", postgresql)
        self.target: re.Pattern[str] | None = None
        """The table a deferrable write changes, as a word to look for in a carrier's text."""
        if deferrable:
            found = _TARGET.match(postgresql)
            if found is None:
                raise ValueError("only an INSERT, UPDATE or DELETE can be deferred")
            self.target = re.compile(rf"\b{found.group(1)}\b", re.IGNORECASE)

    async def fetch(self, conn: AsyncConnection, *args: Any) -> Sequence[Sequence[Any]]:
        """The rows the statement answers (tuples, or asyncpg records: index them)."""
        return await _on_driver(conn, self, args, True)

    async def execute(self, conn: AsyncConnection, *args: Any) -> None:
        if self.target is not None:
            held: list[tuple[Statement, tuple[Any, ...]]] | None = conn.info.get(DEFERRED)
            if held is not None:
                if any(_meets(write, self) for write, _ in held):
                    await send_deferred(conn)
                held.append((self, args))
                return
        await _on_driver(conn, self, args, False)


async def send_deferred(conn: AsyncConnection) -> None:
    """Send the writes ``conn``'s transaction still holds back (before a ``COMMIT``, say)."""
    if conn.sync_connection is not None:
        await _send_held(conn.sync_connection)


async def _send_held(sync: Connection) -> None:
    """Send the held writes: the last carrying those before it (they change other tables), or
    one by one when it cannot."""
    held = sync.info.get(DEFERRED)
    if held:
        sending = list(held)
        held.clear()
        (last, last_args), before = sending[-1], sending[:-1]
        carried = _carried(before, last.postgresql, last_args, False) if before else None
        if carried is not None:
            await _send(sync, *carried, False)
            return
        for statement, args in sending:
            await _send(sync, statement.postgresql, args, False)


def _carried(held: list[tuple[Statement, tuple[Any, ...]]], sql: str, args: tuple[Any, ...],
             apart: bool) -> tuple[str, tuple[Any, ...]] | None:
    """``sql`` with the held-back writes in front of it, and all their values; None when ``sql``
    cannot carry them."""
    fused = _fused(tuple((write, len(write_args)) for write, write_args in held), sql, apart)
    if fused is None:
        return None
    return fused, (*(value for _, write_args in held for value in write_args), *args)


def _apart(read: Statement, args: tuple[Any, ...], held: list[tuple[Statement, tuple[Any, ...]]]) -> bool:
    """Whether ``read`` meets none of the rows the held writes change: both declare them
    (``Statement``'s ``rows``) and they share none."""
    if read.rows is None or any(write.rows is None for write, _ in held):
        return False
    reads = set(read.rows(args))
    return not any(reads.intersection(write.rows(write_args))  # type: ignore[misc]
                   for write, write_args in held)


def _meets(held: Statement, write: Statement) -> bool:
    """Whether two deferrable writes may not be held together: one statement would run them
    both, and neither sees the other's change (one snapshot), so they must not touch one
    table (two writes could hit one row) and neither may read the other's."""
    assert held.target is not None and write.target is not None
    return bool(held.target.search(write.postgresql) or write.target.search(held.postgresql))


def _moved(sql: str, shift: int) -> str:
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + shift}", sql) if shift else sql


@functools.lru_cache(maxsize=256)
def _fused(writes: tuple[tuple[Statement, int], ...], sql: str, apart: bool) -> str | None:
    """``writes`` (each with its count of values) as data-modifying ``WITH``s in front of
    ``sql``, each one's placeholders moved past the values before it; built once per shape.
    None when ``sql`` names a write's table (unless ``apart``) or has a ``WITH`` of its own.
    The writes change different tables (``Statement.execute``) that nothing in the statement
    reads, so running them in one statement changes nothing of what running them one by one does."""
    if sql.lstrip()[:4].upper() == "WITH":
        return None
    parts, shift = [], 0
    for n, (write, count) in enumerate(writes):
        assert write.target is not None
        if write.target.search(sql) and not apart:
            return None
        parts.append(f"o2c_deferred{n or ''} AS ({_moved(write.postgresql, shift)})")
        shift += count
    return f"WITH {', '.join(parts)} {_moved(sql, shift)}"


_LOCKS_HELD = "o2c.xact_locks_held"
"""Key in a connection's ``info``: ``(transaction, {(lock statement, values)})``, the
transaction-level locks ``hold_once`` took in that transaction."""


async def hold_once(conn: AsyncConnection, lock: Statement, *args: Any) -> None:
    """Run ``lock`` (a ``pg_advisory_xact_lock...`` statement) unless this transaction already did.

    A transaction-level lock is held until the transaction ends, so taking it again in the
    same transaction is a round trip that changes nothing. A consumer batch runs many
    reactions in one transaction, and each takes the lock its decision needs (the stock
    ledger, the rebate ledger): the batch takes it once. What was taken is remembered
    with the transaction it was taken in (the innermost one, a savepoint's: a lock taken
    under a savepoint is released when it rolls back), so a new transaction takes it again.
    """
    if _holds(conn, lock, args):
        return
    await lock.fetch(conn, *args)
    current = _current_transaction(conn)
    held: tuple[object | None, set[tuple[Statement, tuple[Any, ...]]]] | None = conn.info.get(_LOCKS_HELD)
    if held is None or held[0] is not current:
        held = conn.info[_LOCKS_HELD] = (current, set())
    held[1].add((lock, args))


def _current_transaction(conn: AsyncConnection) -> object | None:
    sync = conn.sync_connection
    if sync is None or not sync.in_transaction():
        return None
    return sync.get_nested_transaction() or sync.get_transaction()


def _holds(conn: AsyncConnection, lock: Statement, args: tuple[Any, ...]) -> bool:
    held = conn.info.get(_LOCKS_HELD)
    current = _current_transaction(conn)
    return held is not None and current is not None and held[0] is current and (lock, args) in held[1]


def sqlite_uuid(value: uuid.UUID | None) -> str | None:
    """How a ``Uuid`` column holds ``value`` on SQLite (SQLAlchemy's own storage: 32 hex digits)."""
    return value.hex if value is not None else None


async def _on_driver(conn: AsyncConnection, statement: Statement, args: tuple[Any, ...],
                     fetch: bool) -> Any:
    if not conn.in_transaction():
        await conn.begin()
    sync = conn.sync_connection
    assert sync is not None
    postgres = sync.dialect.name == "postgresql"
    sql = statement.postgresql if postgres else statement.sqlite
    held = sync.info.get(DEFERRED)
    if held:
        carried = (_carried(held, sql, args, statement.apart or _apart(statement, args, held))
                   if statement.target is None else None)
        if carried is None:
            await _send_held(sync)
        else:
            held.clear()
            sql, args = carried
    return await _send(sync, sql, args, fetch)


async def _send(sync: Connection, sql: str, args: tuple[Any, ...], fetch: bool) -> Any:
    adapter: Any = sync.connection.dbapi_connection
    if sync.dispatch.before_cursor_execute:
        sync.dispatch.before_cursor_execute(sync, None, sql, args, None, False)
    try:
        if sync.dialect.name == "postgresql":
            if adapter._transaction is None:  # SQLAlchemy begins lazily, at the first statement
                await adapter._start_transaction()
            driver = adapter._connection
            return await driver.fetch(sql, *args) if fetch else await driver.execute(sql, *args)
        # aiosqlite's sqlite3 connection, used on the event loop: only BEGIN IMMEDIATE and
        # COMMIT may wait, and they go to its thread (libs.store.database).
        cursor = adapter._connection._conn.execute(sql, args)
        try:
            return cursor.fetchall() if fetch else None
        finally:
            cursor.close()
    except Exception as error:
        await _raise_as_sqlalchemy(sync, adapter, error, sql, args)


def send_deferred_first(conn: Connection, *_: Any) -> None:
    """``before_cursor_execute`` listener: a statement SQLAlchemy sends goes after the writes
    its transaction holds back (sent here, in SQLAlchemy's greenlet, as ``await`` would)."""
    if conn.info.get(DEFERRED):
        await_only(_send_held(conn))


async def _raise_as_sqlalchemy(sync: Connection, adapter: Any, error: Exception, sql: str,
                               args: tuple[Any, ...]) -> None:
    """Raise ``error`` as SQLAlchemy would have: the driver's error as the dialect's DBAPI
    error, wrapped in ``DBAPIError`` (the connection invalidated when it was lost)."""
    translated: Exception = error
    try:
        adapter._handle_exception(error)
    except Exception as dbapi_error:
        translated = dbapi_error
    if not isinstance(translated, sync.dialect.loaded_dbapi.Error):
        raise error

    def wrap() -> None:
        try:  # raised here, so SQLAlchemy finds it as the exception being handled
            raise translated
        except Exception as current:
            sync._handle_dbapi_exception(current, sql, args, None, None)

    await greenlet_spawn(wrap)
    raise error  # not reached: the wrapper raises
