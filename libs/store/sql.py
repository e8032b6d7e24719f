"""Small dialect-aware SQL helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


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
