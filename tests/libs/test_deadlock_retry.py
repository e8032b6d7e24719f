"""A command whose transaction PostgreSQL ends to break a deadlock runs again (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from libs.runtime.aggregate import retry_on_conflict
from libs.runtime.outages import is_outage, is_rolled_back_to_retry
from libs.store.database import Database


async def test_two_commands_locking_rows_in_opposite_orders_both_complete(pg_db: Database) -> None:
    async with pg_db.transaction() as conn:
        await conn.execute(text("CREATE TABLE crossing (id INT PRIMARY KEY, n INT NOT NULL)"))
        await conn.execute(text("INSERT INTO crossing VALUES (1, 0), (2, 0)"))
    tries: list[int] = []
    holding = {1: asyncio.Event(), 2: asyncio.Event()}
    errors: list[BaseException] = []

    def command(first: int, second: int) -> Awaitable[None]:
        async def attempt() -> None:
            tries.append(first)
            try:
                async with pg_db.transaction() as conn:
                    await conn.execute(text("UPDATE crossing SET n = n + 1 WHERE id = :id"), {"id": first})
                    holding[first].set()
                    await holding[second].wait()  # each holds one row and wants the other's
                    await conn.execute(text("UPDATE crossing SET n = n + 1 WHERE id = :id"), {"id": second})
            except DBAPIError as error:
                errors.append(error)
                raise
        return retry_on_conflict(attempt)

    try:
        await asyncio.wait_for(asyncio.gather(command(1, 2), command(2, 1)), 30)
        async with pg_db.read() as conn:
            rows = (await conn.execute(text("SELECT id, n FROM crossing ORDER BY id"))).all()
    finally:
        async with pg_db.transaction() as conn:
            await conn.execute(text("DROP TABLE crossing"))
    [victim] = errors  # PostgreSQL ended one, which ran again
    assert is_rolled_back_to_retry(victim) and not is_outage(victim)
    assert sorted(tries.count(first) for first in (1, 2)) == [1, 2]  # one ran once, the victim twice
    assert [tuple(row) for row in rows] == [(1, 2), (2, 2)]  # each command once, nothing doubled


@pytest.mark.parametrize("sqlstate", ["23505", "42P01"])
def test_other_failures_are_not_run_again(sqlstate: str) -> None:
    error = RuntimeError("wrapped")
    error.__cause__ = type("PgError", (Exception,), {"sqlstate": sqlstate})()
    assert not is_rolled_back_to_retry(error)
