"""Write connections kept checked out between transactions (PostgreSQL, ``Database._checkout``).

A committed transaction's connection serves the next one without a trip through SQLAlchemy's
pool. Keeping must never cost what the pool promises: a transaction waiting for a connection
gets one as soon as another ends, a failed transaction's connection goes back to the pool, and
a lost connection takes the kept ones with it (as SQLAlchemy recycles its pooled ones).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from libs.store.database import Database
from tests.conftest import PG_URL


@pytest.fixture
async def small(pg_db: Database) -> AsyncIterator[Database]:
    """The test's schema, behind a pool of two connections."""
    db = Database(PG_URL, schema=pg_db.schema, pool_size=2)
    yield db
    await db.dispose()


async def _backend(conn: Any) -> int:
    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_committed_transactions_connection_serves_the_next(small: Database) -> None:
    async with small.transaction() as conn:
        first = await _backend(conn)
    assert small.pool_usage()["engine"] == (0, 1)  # kept, and not in use
    async with small.transaction() as conn:
        assert await _backend(conn) == first
        assert small.pool_usage()["engine"] == (1, 1)


async def test_a_failed_transactions_connection_goes_back_to_the_pool(small: Database) -> None:
    with pytest.raises(RuntimeError):
        async with small.transaction() as conn:
            await _backend(conn)
            raise RuntimeError("the command failed")
    pool: Any = small.engine.pool
    assert (pool.checkedout(), pool.checkedin()) == (0, 1)


async def test_a_waiting_transaction_gets_the_connection_another_one_ends_with(small: Database) -> None:
    """Two transactions hold both connections; a third waits in the pool. The first to end
    hands its connection over instead of keeping it (else the third would wait for the
    pool's 30 s timeout)."""
    holding, release = asyncio.Event(), asyncio.Event()
    held = 0

    async def hold() -> None:
        nonlocal held
        async with small.transaction() as conn:
            await _backend(conn)
            held += 1
            if held == 2:
                holding.set()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await holding.wait()

    async def third() -> int:
        async with small.transaction() as conn:
            return await _backend(conn)

    waiting = asyncio.create_task(third())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, timeout=5)
    await asyncio.gather(*holders)
    pool: Any = small.engine.pool
    assert pool.checkedout() <= 2 and small.pool_usage()["engine"][0] == 0


@pytest.fixture
async def roomy(pg_db: Database) -> AsyncIterator[Database]:
    """The test's schema, behind a pool of three: room for two kept connections."""
    db = Database(PG_URL, schema=pg_db.schema, pool_size=3)
    yield db
    await db.dispose()


async def test_a_lost_connection_takes_the_kept_ones_with_it(roomy: Database, pg_db: Database) -> None:
    both, release = asyncio.Event(), asyncio.Event()
    backends: list[int] = []

    async def hold() -> None:
        async with roomy.transaction() as conn:
            backends.append(await _backend(conn))
            if len(backends) == 2:
                both.set()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await both.wait()
    release.set()
    await asyncio.gather(*holders)
    assert roomy.pool_usage()["engine"] == (0, 2)  # both kept
    async with pg_db.transaction() as conn:  # the server ends them (a restart, say)
        for pid in backends:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(SQLAlchemyError):  # as before keeping: the transaction on it fails
        async with roomy.transaction() as conn:
            await _backend(conn)
    async with roomy.transaction() as conn:  # the other kept one went with it: a fresh one
        assert await _backend(conn) not in backends
