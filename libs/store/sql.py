"""Small dialect-aware SQL helpers, and statements sent straight to the driver (``Statement``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import greenlet_spawn


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
    first when none was.
    """
    driver: Any = (await conn.get_raw_connection()).driver_connection
    if conn.in_transaction() and not driver.is_in_transaction():
        await conn.execute(text("SELECT 1"))
    return driver


_PLACEHOLDER = re.compile(r"\$(\d+)")


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
    """

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, postgresql: str, *, sqlite: str | None = None) -> None:
        self.postgresql = postgresql
        self.sqlite = sqlite if sqlite is not None else _PLACEHOLDER.sub(r"?\1", postgresql)

    async def fetch(self, conn: AsyncConnection, *args: Any) -> Sequence[Sequence[Any]]:
        """The rows the statement answers (tuples, or asyncpg records: index them)."""
        return await _on_driver(conn, self, args, True)

    async def execute(self, conn: AsyncConnection, *args: Any) -> None:
        await _on_driver(conn, self, args, False)


def sqlite_uuid(value: uuid.UUID | None) -> str | None:
    """How a ``Uuid`` column holds ``value`` on SQLite (SQLAlchemy's own storage: 32 hex digits)."""
    return value.hex if value is not None else None


async def _on_driver(conn: AsyncConnection, statement: Statement, args: tuple[Any, ...],
                     fetch: bool) -> Any:
    if not conn.in_transaction():
        await conn.begin()
    sync = conn.sync_connection
    assert sync is not None
    adapter: Any = sync.connection.dbapi_connection
    postgres = sync.dialect.name == "postgresql"
    sql = statement.postgresql if postgres else statement.sqlite
    if sync.dispatch.before_cursor_execute:
        sync.dispatch.before_cursor_execute(sync, None, sql, args, None, False)
    try:
        if postgres:
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
