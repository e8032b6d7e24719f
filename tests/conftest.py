"""Shared fixtures: every store-level test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``O2C_TEST_PG_URL`` (default: the local server). When it
cannot be reached the PostgreSQL variants skip locally, but with
``O2C_REQUIRE_INTEGRATION=1`` (set by ``.ci/run``) they fail instead: a skipped
integration suite is a failed CI. Each test gets its own schema, dropped after.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.store import EventStore

PG_URL = os.environ.get("O2C_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_INTEGRATION = os.environ.get("O2C_REQUIRE_INTEGRATION") == "1"


def integration_unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where integration suites are required."""
    if REQUIRE_INTEGRATION:
        pytest.fail(f"integration dependency unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(PG_URL, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return f"PostgreSQL at {PG_URL} unreachable: {error}"
    await conn.close()
    return None


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty service database on each backend."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'store.db'}")
        await migrate(database)
        yield database
        await database.dispose()
        return
    async for database in _postgres_database():
        yield database


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    """A migrated, empty service database on PostgreSQL only."""
    async for database in _postgres_database():
        yield database


async def _postgres_database() -> AsyncIterator[Database]:
    problem = await _pg_reachable()
    if problem:
        integration_unavailable(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    database = Database(PG_URL, schema=schema)
    await migrate(database)
    yield database
    await database.dispose()
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def store(db: Database) -> EventStore:
    return EventStore(db)


@pytest.fixture(scope="session")
def broker_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded Kafka-protocol broker for the session (tests use their own topics)."""
    from libs.messaging.broker import (
        BrokerStartError,
        free_port,
        start_blocking,
        stop_blocking,
        wait_until_ready_blocking,
    )

    port = free_port()
    log_path = tmp_path_factory.mktemp("broker") / "broker.log"
    try:
        process = start_blocking(port, log_path=log_path)
        wait_until_ready_blocking(f"127.0.0.1:{port}", process=process, log_path=log_path)
    except (BrokerStartError, OSError) as error:
        integration_unavailable(f"embedded broker unavailable: {error}")
    yield f"127.0.0.1:{port}"
    stop_blocking(process)


async def wait_until(predicate: Callable[[], Awaitable[bool]], seconds: float = 30.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test with ``what`` after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)
