"""Statements sent straight to the driver (``libs.store.sql.Statement``) behave as SQLAlchemy's
own: they run in the caller's transaction, listeners hear them, and their failures arrive as
SQLAlchemy raises them (what the outage and retry rules read)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from libs.store.database import Database
from libs.store.sql import Statement, driver_of, hold_once

_INSERT = Statement("INSERT INTO documents (kind, id, body, version, updated_at) "
                    "VALUES ($1, $2, $3, 0, '2026-01-01T00:00:00Z')")
_COUNT = Statement("SELECT count(*) FROM documents WHERE kind = $1")


async def test_a_statement_joins_the_callers_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await _INSERT.execute(conn, "t", "a", "{}")
            assert (await _COUNT.fetch(conn, "t"))[0][0] == 1  # seen inside
            raise RuntimeError("the command failed")
    async with db.transaction() as conn:
        assert (await _COUNT.fetch(conn, "t"))[0][0] == 0  # rolled back with it
        await _INSERT.execute(conn, "t", "b", "{}")
    async with db.read() as conn:
        ids = (await conn.execute(text("SELECT id FROM documents WHERE kind = 't'"))).scalars().all()
    assert ids == ["b"]


async def test_a_read_opens_no_transaction_on_postgresql(db: Database) -> None:
    """``Database.read`` (a list page, a consumer's guard read): its statements read what is
    committed, and on PostgreSQL no ``BEGIN``/``COMMIT`` is sent around them (two round trips
    saved), whether they go straight to the driver, through SQLAlchemy or ``driver_of``."""
    async with db.transaction() as conn:
        await _INSERT.execute(conn, "t", "a", "{}")
    heard: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: heard.append(statement))
    for _ in range(2):  # and the pooled connection comes back as it was
        async with db.read() as conn:
            assert (await _COUNT.fetch(conn, "t"))[0][0] == 1
            assert (await conn.execute(text("SELECT count(*) FROM documents"))).scalar() == 1
            driver = (await conn.get_raw_connection()).driver_connection
            if db.is_postgres:
                assert not driver.is_in_transaction()
                assert await (await driver_of(conn)).fetchval("SELECT count(*) FROM documents") == 1
                assert not driver.is_in_transaction()
    assert "SELECT 1" not in heard  # driver_of began nothing
    async with db.transaction() as conn:
        await _INSERT.execute(conn, "t", "b", "{}")
        driver = (await conn.get_raw_connection()).driver_connection
        assert not db.is_postgres or driver.is_in_transaction()
    async with db.read() as conn:
        assert (await _COUNT.fetch(conn, "t"))[0][0] == 2


async def test_listeners_hear_the_statement(db: Database) -> None:
    heard: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        heard.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with db.transaction() as conn:
            await _COUNT.fetch(conn, "t")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
    assert [s for s in heard if s.startswith("SELECT count(*)")] == [
        _COUNT.postgresql if db.is_postgres else _COUNT.sqlite]


async def test_a_failure_is_raised_as_sqlalchemy_raises_it(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await _INSERT.execute(conn, "t", "a", "{}")
            await _INSERT.execute(conn, "t", "a", "{}")


async def test_a_lost_connection_fails_as_sqlalchemy_fails(pg_db: Database) -> None:
    """The driver's error arrives wrapped as SQLAlchemy wraps it (``DBAPIError`` in the chain,
    which the outage and retry rules read), and the pool recovers."""
    with pytest.raises(Exception) as raised:
        async with pg_db.transaction() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with pg_db.autocommit() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await _COUNT.fetch(conn, "t")
    chain: list[BaseException] = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, DBAPIError) for e in chain), chain
    async with pg_db.transaction() as conn:
        assert (await _COUNT.fetch(conn, "t"))[0][0] == 0


_LOCK = Statement("SELECT $1::bigint", sqlite="SELECT ?1")
"""Stands in for a ``pg_advisory_xact_lock`` statement: only how often it is sent is looked at."""


async def test_a_lock_is_taken_once_per_transaction(db: Database) -> None:
    """``hold_once``: the second take in one transaction sends nothing; the next transaction,
    or another key, takes it again."""
    heard: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement in (_LOCK.postgresql, _LOCK.sqlite):
            heard.append((statement, tuple(parameters)))

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with db.transaction() as conn:
            await hold_once(conn, _LOCK, 7)
            await hold_once(conn, _LOCK, 7)
            await hold_once(conn, _LOCK, 8)
        assert [args for _, args in heard] == [(7,), (8,)]
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await hold_once(conn, _LOCK, 7)
                raise RuntimeError("rolled back")
        async with db.transaction() as conn:
            await hold_once(conn, _LOCK, 7)
            await hold_once(conn, _LOCK, 7)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
    assert [args for _, args in heard] == [(7,), (8,), (7,), (7,)]


async def test_a_lock_held_once_is_held_to_the_end(pg_db: Database) -> None:
    """The skipped take loses nothing: the lock taken first is still held when it is skipped."""
    lock = Statement("SELECT pg_advisory_xact_lock($1)")
    taken = Statement("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 "
                      "AND pid = pg_backend_pid()")
    async with pg_db.transaction() as conn:
        await hold_once(conn, lock, 4242)
        await hold_once(conn, lock, 4242)
        assert (await taken.fetch(conn, 4242))[0][0] == 1
