"""Deferrable writes (``Statement(deferrable=True)``) on PostgreSQL: held back by a transaction
of ``Database.transaction`` and sent with its next statement, in one round trip. Whatever
comes next, every statement sees the write, and it commits or rolls back with the rest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from libs.store.database import Database
from libs.store.sql import Statement

_PUT = Statement("INSERT INTO documents (kind, id, body, version, updated_at) "
                 "VALUES ($1, $2, $3, $4, '2026-01-01T00:00:00Z')", deferrable=True)
_BODY = Statement("SELECT body FROM documents WHERE kind = $1 AND id = $2")
_KEY = Statement("INSERT INTO idempotency_keys (principal, route, key, request_sha256, status, body, "
                 "created_at) VALUES ($1, 'r', $2, 'x', 200, '', 'now') RETURNING key")


@contextmanager
def heard(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "SELECT pg_notify")):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)


async def _bodies(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(text(
            "SELECT body FROM documents WHERE kind = 't' ORDER BY id"))).scalars())


async def test_a_deferred_write_rides_with_the_next_statement(pg_db: Database) -> None:
    with heard(pg_db) as statements:
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            assert statements == []  # held back
            assert [tuple(r) for r in await _KEY.fetch(conn, "p", "k1")] == [("k1",)]
    assert len(statements) == 1 and statements[0].startswith("WITH o2c_deferred AS (INSERT INTO documents")
    assert await _bodies(pg_db) == ['{"n": 1}']


async def test_a_statement_reading_its_table_sees_it(pg_db: Database) -> None:
    async with pg_db.transaction() as conn:
        await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
        assert (await _BODY.fetch(conn, "t", "a"))[0][0] == '{"n": 1}'  # sent first, on its own
        await _PUT.execute(conn, "t", "b", '{"n": 2}', 0)
        through_sqlalchemy = await conn.execute(text("SELECT count(*) FROM documents WHERE kind = 't'"))
        assert through_sqlalchemy.scalar_one() == 2
    assert await _bodies(pg_db) == ['{"n": 1}', '{"n": 2}']


async def test_a_statement_apart_from_the_write_carries_it(pg_db: Database) -> None:
    """``apart``: a read of the write's table that never meets its rows carries it all the same
    (one round trip); it reads what was there before, as its rows are not the written ones."""
    apart = Statement("SELECT count(*) FROM documents WHERE kind = 'other'", apart=True)
    with heard(pg_db) as statements:
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            assert (await apart.fetch(conn))[0][0] == 0
    assert len(statements) == 1 and statements[0].startswith("WITH o2c_deferred AS (INSERT INTO documents")
    assert await _bodies(pg_db) == ['{"n": 1}']


async def test_a_read_that_names_its_rows_carries_writes_of_other_rows_only(pg_db: Database) -> None:
    """``rows``: a read that declares the rows it reads carries held writes that declare other
    rows (one round trip); a held write of a row it reads goes first, on its own, and is seen."""
    put = Statement(_PUT.postgresql, deferrable=True, rows=lambda values: [(values[0], values[1])])
    body = Statement(_BODY.postgresql, rows=lambda values: [(values[0], values[1])])
    async with pg_db.transaction() as conn:
        await put.execute(conn, "t", "a", '{"n": 1}', 0)
    with heard(pg_db) as statements:
        async with pg_db.transaction() as conn:
            await put.execute(conn, "t", "b", '{"n": 2}', 0)
            assert (await body.fetch(conn, "t", "a"))[0][0] == '{"n": 1}'
            assert len(statements) == 1 and statements[0].startswith("WITH o2c_deferred AS (INSERT")
            await put.execute(conn, "t", "c", '{"n": 3}', 0)
            assert (await body.fetch(conn, "t", "c"))[0][0] == '{"n": 3}'
            assert len(statements) == 3 and statements[1].startswith("INSERT INTO documents")
            await _PUT.execute(conn, "t", "d", '{"n": 4}', 0)  # declares no rows: never carried
            assert (await body.fetch(conn, "t", "a"))[0][0] == '{"n": 1}'
            assert statements[3].startswith("INSERT INTO documents") and statements[4] == body.postgresql
    assert await _bodies(pg_db) == ['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}']


async def test_a_deferrable_statement_read_at_once_goes_after_the_held_write(pg_db: Database) -> None:
    touch = Statement("UPDATE documents SET version = version + 1 WHERE kind = $1 RETURNING id",
                      deferrable=True)
    async with pg_db.transaction() as conn:
        await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
        assert [tuple(r) for r in await touch.fetch(conn, "t")] == [("a",)]


async def test_a_last_deferred_write_is_sent_before_the_commit(pg_db: Database) -> None:
    async with pg_db.transaction() as conn:
        await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
        await _PUT.execute(conn, "t", "b", '{"n": 2}', 0)  # the first goes on its own
    assert await _bodies(pg_db) == ['{"n": 1}', '{"n": 2}']


async def test_a_failed_block_sends_nothing_and_leaves_nothing_behind(pg_db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            raise RuntimeError("the command failed")
    for _ in range(3):  # the pooled connections hold no write for the next transaction
        async with pg_db.transaction() as conn:
            await _KEY.fetch(conn, "p", f"k{_}")
    assert await _bodies(pg_db) == []


async def test_a_deferred_write_fails_in_its_transaction(pg_db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            await _PUT.execute(conn, "t", "a", '{"n": 2}', 0)  # no ON CONFLICT: a duplicate key
            await _KEY.fetch(conn, "p", "k1")
    async with pg_db.read() as conn:
        keys = (await conn.execute(text("SELECT count(*) FROM idempotency_keys"))).scalar_one()
    assert (keys, await _bodies(pg_db)) == (0, [])


async def test_outside_a_managed_transaction_nothing_is_held_back(pg_db: Database) -> None:
    async with pg_db.engine.begin() as conn:
        with heard(pg_db) as statements:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
        assert len(statements) == 1
    assert await _bodies(pg_db) == ['{"n": 1}']


_CLAIM = Statement("INSERT INTO idempotency_keys (principal, route, key, request_sha256, status, "
                   "body, created_at) VALUES ($1, 'r', $2, 'x', 200, '', 'now')", deferrable=True)
_HEADS = Statement("INSERT INTO stream_heads (consumer, stream_id, version) VALUES ($1, $2, $3)")


async def _keys(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(text("SELECT key FROM idempotency_keys ORDER BY key"))).scalars())


async def test_writes_to_different_tables_ride_together_with_the_next_statement(pg_db: Database) -> None:
    """A consumer batch's documents and inbox rows go with its heads: one round trip."""
    with heard(pg_db) as statements:
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            await _CLAIM.execute(conn, "p", "k1")
            assert statements == []  # both held back
            await _HEADS.execute(conn, "c", "s-1", 3)
    assert len(statements) == 1
    assert statements[0].startswith("WITH o2c_deferred AS (INSERT INTO documents")
    assert "o2c_deferred1 AS (INSERT INTO idempotency_keys" in statements[0]
    assert "VALUES ($5, 'r', $6," in statements[0] and statements[0].endswith("VALUES ($7, $8, $9)")
    assert (await _bodies(pg_db), await _keys(pg_db)) == (['{"n": 1}'], ["k1"])


async def test_before_the_commit_the_last_held_write_carries_the_others(pg_db: Database) -> None:
    with heard(pg_db) as statements:
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            await _CLAIM.execute(conn, "p", "k1")
    assert len(statements) == 1
    assert statements[0].startswith("WITH o2c_deferred AS (INSERT INTO documents")
    assert "INSERT INTO idempotency_keys" in statements[0]
    assert (await _bodies(pg_db), await _keys(pg_db)) == (['{"n": 1}'], ["k1"])


async def test_a_write_that_reads_a_held_writes_table_goes_after_it(pg_db: Database) -> None:
    """One statement reads one snapshot: a write reading the table of one held must see it."""
    copy = Statement("INSERT INTO idempotency_keys (principal, route, key, request_sha256, status, "
                     "body, created_at) SELECT 'p', 'r', id, 'x', 200, body, 'now' FROM documents "
                     "WHERE kind = $1", deferrable=True)
    with heard(pg_db) as statements:
        async with pg_db.transaction() as conn:
            await _PUT.execute(conn, "t", "a", '{"n": 1}', 0)
            await copy.execute(conn, "t")  # the put goes first, on its own
    assert len(statements) == 2 and statements[0].startswith("INSERT INTO documents")
    assert await _keys(pg_db) == ["a"]


def test_only_a_write_can_be_deferred() -> None:
    with pytest.raises(ValueError):
        Statement("SELECT 1", deferrable=True)
