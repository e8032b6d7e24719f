"""Shared fixtures: every store-level test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``O2C_TEST_PG_URL`` (default: the local server). When it
cannot be reached the PostgreSQL variants skip locally, but with
``O2C_REQUIRE_INTEGRATION=1`` (set by ``.ci/run``) they fail instead: a skipped
integration suite is a failed CI.

Each test gets its own schema. Migrating one costs most of a second of DDL on
PostgreSQL, so a schema a test leaves exactly as migrated (same tables, same
Alembic revisions) is emptied (rows deleted, sequences reset) and handed to the
next test instead of being dropped; anything else is dropped. The pool's
schemas are dropped when the session ends.

``make test`` runs the suite on pytest-xdist workers (``-n``).
Every worker is its own process with its own schema pool (names carry the worker
id), its own broker on a free port and its own temporary directories. The suites
that start whole systems (``tests/e2e``, ``tests/chaos``, ``tests/bench``) share
one group, so they run one after another on one worker: the session's two e2e
systems start once, and two systems never compete for the cores.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.store import EventStore

PG_URL = os.environ.get("O2C_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_INTEGRATION = os.environ.get("O2C_REQUIRE_INTEGRATION") == "1"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
"""This process's xdist worker id (``gw0``, ``gw1``, ...), ``main`` when not distributed."""
SYSTEM_SUITES = ("tests/e2e/", "tests/chaos/", "tests/bench/")
"""Suites that start whole systems: one unit of xdist work (see the module docstring)."""


def integration_unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where integration suites are required."""
    if REQUIRE_INTEGRATION:
        pytest.fail(f"integration dependency unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def xdist_group(nodeid: str) -> str:
    """The unit of work an xdist worker takes whole: the system suites share one, each
    fuzzed service is one (its module-scoped service starts once), any other test is its own."""
    if nodeid.startswith(SYSTEM_SUITES):
        return "system"
    if nodeid.startswith("tests/fuzz/") and nodeid.endswith("]"):
        return "fuzz" + nodeid[nodeid.index("["):]
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``-n N``: tests are handed out one by one, except the groups of :func:`xdist_group`.

    A scheduler of our own rather than ``xdist_group`` marks: ``--dist loadgroup`` tags node
    ids, which pytest 9.2 no longer lets a plugin change, so the marks were silently ignored.
    """
    if config.getvalue("dist") != "load":  # an explicit --dist other than the default
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupedScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupedScheduling(config, log)  # type: ignore[arg-type]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``O2C_REQUIRE_INTEGRATION=1`` no test may skip, whatever skipped it.

    :func:`integration_unavailable` already fails instead of skipping; this also
    catches any other skip, in the worker that ran the test.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if REQUIRE_INTEGRATION and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but O2C_REQUIRE_INTEGRATION=1 requires every test to run: " \
                          f"{report.longrepr}"


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(PG_URL, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return f"PostgreSQL at {PG_URL} unreachable: {error}"
    await conn.close()
    return None


async def empty_database(backend: str, sqlite_file: Path) -> AsyncIterator[Database]:
    """A migrated, empty service database: ``sqlite_file``, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        database = Database(f"sqlite:///{sqlite_file}")
        await migrate(database)
        yield database
        await database.dispose()
        return
    async for database in _postgres_database():
        yield database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty service database on each backend."""
    async for database in empty_database(request.param, tmp_path / "store.db"):
        yield database


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    """A migrated, empty service database on PostgreSQL only."""
    async for database in _postgres_database():
        yield database


@dataclass(frozen=True)
class _Shape:
    """What a freshly migrated schema holds: its tables, sequences and revisions."""

    tables: frozenset[str]
    sequences: frozenset[str]
    revisions: frozenset[str]


_shape: _Shape | None = None
_clean_schemas: list[str] = []
"""Migrated, empty schemas ready for the next test (see the module docstring)."""


async def _shape_of(conn: asyncpg.Connection, schema: str) -> _Shape:
    tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    sequences = await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = $1",
                                 schema)
    names = frozenset(r[0] for r in tables)
    revisions: frozenset[str] = frozenset()
    if "alembic_version" in names:
        rows = await conn.fetch(f'SELECT version_num FROM "{schema}".alembic_version')
        revisions = frozenset(r[0] for r in rows)
    return _Shape(names, frozenset(r[0] for r in sequences), revisions)


async def _remember_shape(database: Database) -> None:
    """The shape of a freshly migrated schema: what a schema must match to be reused."""
    global _shape
    if _shape is None:
        assert database.schema is not None
        conn = await asyncpg.connect(PG_URL)
        try:
            _shape = await _shape_of(conn, database.schema)
        finally:
            await conn.close()


async def _give_back(schema: str) -> None:
    """Empty ``schema`` for the next test if it is still exactly as migrated; else drop it."""
    conn = await asyncpg.connect(PG_URL)
    try:
        shape = await _shape_of(conn, schema)
        if shape != _shape:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        empty = [f'DELETE FROM "{schema}"."{t}"' for t in sorted(shape.tables)
                 if t != "alembic_version"]
        reset = [f"SELECT setval('\"{schema}\".\"{q}\"', 1, false)" for q in sorted(shape.sequences)]
        await conn.execute(";".join(empty + reset))
        _clean_schemas.append(schema)
    finally:
        await conn.close()


async def drop_schemas(schemas: Iterable[str]) -> None:
    """Drop these PostgreSQL schemas (at ``O2C_TEST_PG_URL``) with everything in them."""
    conn = await asyncpg.connect(PG_URL)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def _drop_pooled_schemas() -> Iterator[None]:
    yield
    if not _clean_schemas:
        return

    asyncio.run(drop_schemas(_clean_schemas))
    _clean_schemas.clear()


async def _postgres_database() -> AsyncIterator[Database]:
    problem = await _pg_reachable()
    if problem:
        integration_unavailable(problem)
    if _clean_schemas:
        database = Database(PG_URL, schema=_clean_schemas.pop())
    else:
        database = Database(PG_URL, schema=f"t_{WORKER}_{uuid.uuid4().hex[:12]}")
        await migrate(database)
        await _remember_shape(database)
    yield database
    await database.dispose()
    assert database.schema is not None
    await _give_back(database.schema)


@pytest.fixture
async def store(db: Database) -> EventStore:
    return EventStore(db)


@pytest.fixture(scope="session")
def broker_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded Kafka-protocol broker for the session (tests use their own topics)."""
    from libs.messaging.broker import BrokerStartError, EmbeddedBroker
    from o2c.loop_thread import LoopThread

    loop = LoopThread("test-broker")  # the broker outlives every test's own event loop
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    try:
        loop.run(broker.start())
    except (BrokerStartError, OSError) as error:
        loop.close()
        integration_unavailable(f"embedded broker unavailable: {error}")
    yield broker.bootstrap_servers
    loop.run(broker.stop())
    loop.close()


async def wait_until(predicate: Callable[[], Awaitable[bool]], seconds: float = 30.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test with ``what`` after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)
