"""Shared fixtures: every store-level test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``O2C_TEST_PG_URL`` (default: the local server). When it
cannot be reached the PostgreSQL variants skip locally, but with
``O2C_REQUIRE_INTEGRATION=1`` (set by ``.ci/run``) they fail instead: a skipped
integration suite is a failed CI.

Each test gets its own schema or SQLite file, migrated for the service it runs
(``service_migrations``: a service's suite overrides it with its branch, so the
service starts on a database already at its head). Migrating costs a few hundred
milliseconds of DDL per test, so:

- on PostgreSQL a schema a test leaves exactly as migrated (same tables, same
  Alembic revisions) is emptied (rows deleted, sequences reset) and handed to the
  next test wanting the same migrations; anything else is dropped. The pools'
  schemas are dropped when the session ends;
- on SQLite each set of migrations is run once per worker into a template file,
  which every test gets a copy of (SQLite's backup API, into a file created 0600).

``make test`` runs the suite on pytest-xdist workers (``-n``).
Every worker is its own process with its own schema pool (names carry the worker
id), its own broker on a free port and its own temporary directories. The suites
that start whole systems are handed out first, longest first: the e2e modules that share the
session's two systems as one unit (so those systems start once), then each test or module
that starts systems of its own (``tests/chaos``, ``tests/bench``, a few e2e modules), then
the rest, so no long unit is left to start last.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from libs.runtime.host import ServiceSpec
from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.store import EventStore

PG_URL = os.environ.get("O2C_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_INTEGRATION = os.environ.get("O2C_REQUIRE_INTEGRATION") == "1"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
"""This process's xdist worker id (``gw0``, ``gw1``, ...), ``main`` when not distributed."""
SYSTEM_SUITES = ("tests/e2e/", "tests/chaos/", "tests/bench/")
"""Suites that start whole systems (see the module docstring)."""
OWN_SYSTEMS = ("tests/e2e/test_money_to_book.py", "tests/e2e/test_observability.py",
               "tests/e2e/test_tamper.py")
"""E2e modules that start module-scoped systems of their own and never use the session's."""
OWN_SYSTEM_PER_TEST = ("tests/e2e/test_reports.py",)
"""E2e modules whose every test starts a system of its own (each test is a unit, as in chaos)."""


def integration_unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where integration suites are required."""
    if REQUIRE_INTEGRATION:
        pytest.fail(f"integration dependency unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def xdist_group(nodeid: str) -> str:
    """The unit of work an xdist worker takes whole: the e2e modules on the session's systems
    share one, each module of ``OWN_SYSTEMS`` is one, each fuzzed service is one (their
    module-scoped systems and services start once), any other test is its own."""
    module = nodeid.split("::", 1)[0]
    if module in OWN_SYSTEMS:
        return module
    if module.startswith("tests/e2e/") and module not in OWN_SYSTEM_PER_TEST:
        return "system"
    if nodeid.startswith("tests/fuzz/") and nodeid.endswith("]"):
        return "fuzz" + nodeid[nodeid.index("["):]
    return nodeid


def _first_out(unit: str, tests: int) -> tuple[int, int]:
    """The order units are handed out in: the session's systems, the other system modules,
    then the rest by size (xdist's own order; a unit of one long test would come last)."""
    if unit == "system":
        return (0, -tests)
    return (1 if unit.startswith(SYSTEM_SUITES) else 2, -tests)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``-n N``: tests are handed out one by one, except the groups of :func:`xdist_group`.

    A scheduler of our own rather than ``xdist_group`` marks: ``--dist loadgroup`` tags node
    ids, which pytest 9.2 no longer lets a plugin change, so the marks were silently ignored.
    """
    if config.getvalue("dist") != "load":  # an explicit --dist other than the default
        return None
    from collections import OrderedDict

    from xdist.scheduler import LoadScopeScheduling

    class GroupedScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            if not self.ordered:  # the first hand-out: the queue is whole
                self.workqueue = OrderedDict(sorted(
                    self.workqueue.items(), key=lambda unit: _first_out(unit[0], len(unit[1]))))
                self.ordered = True
            super()._assign_work_unit(node)  # type: ignore[arg-type]

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


Migrations = tuple[Path, ...]
"""A service's own migration branches, run after the backbone's (empty: the backbone only)."""


async def empty_database(backend: str, sqlite_file: Path,
                         migrations: Migrations = ()) -> AsyncIterator[Database]:
    """A migrated, empty service database: ``sqlite_file``, or a PostgreSQL schema."""
    if backend == "sqlite":
        _copy_sqlite(await _sqlite_template(migrations), sqlite_file)
        database = Database(f"sqlite:///{sqlite_file}")
        yield database
        await database.dispose()
        return
    async for database in _postgres_database(migrations):
        yield database


def migrations_of(spec: ServiceSpec) -> Migrations:
    """The migrations a service runs on top of the backbone's."""
    return (spec.migrations,) if spec.migrations else ()


@pytest.fixture
def service_migrations() -> Migrations:
    """The migrations ``db`` and ``pg_db`` run: a service's suite overrides this with its own."""
    return ()


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path,
             service_migrations: Migrations) -> AsyncIterator[Database]:
    """A migrated, empty service database on each backend."""
    async for database in empty_database(request.param, tmp_path / "store.db", service_migrations):
        yield database


@pytest.fixture(params=["sqlite", "postgres"])
async def backbone_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database on each backend migrated for the backbone only: a test of a service's own
    migrations runs them itself."""
    async for database in empty_database(request.param, tmp_path / "store.db"):
        yield database


@pytest.fixture
async def pg_db(service_migrations: Migrations) -> AsyncIterator[Database]:
    """A migrated, empty service database on PostgreSQL only."""
    async for database in _postgres_database(service_migrations):
        yield database


_templates: dict[Migrations, Path] = {}
"""Per set of migrations, a migrated SQLite file every test gets a copy of."""
_template_dir: list[Path] = []


async def _sqlite_template(migrations: Migrations) -> Path:
    template = _templates.get(migrations)
    if template is None:
        if not _template_dir:
            _template_dir.append(Path(tempfile.mkdtemp(prefix=f"o2c-templates-{WORKER}-")))
        template = _template_dir[0] / f"{len(_templates)}.db"
        database = Database(f"sqlite:///{template}")
        await migrate(database, migrations)
        await database.dispose()
        _templates[migrations] = template
    return template


def _copy_sqlite(template: Path, target: Path) -> None:
    """``template``'s pages into a new file ``target``, created 0600 as a service creates its own."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with sqlite3.connect(template) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    source.close()
    copy.close()


@dataclass(frozen=True)
class _Shape:
    """What a freshly migrated schema holds: its tables, sequences and revisions."""

    tables: frozenset[str]
    sequences: frozenset[str]
    revisions: frozenset[str]


_shapes: dict[Migrations, _Shape] = {}
"""What a schema freshly migrated with these migrations holds."""
_clean_schemas: dict[Migrations, list[str]] = {}
"""Migrated, empty schemas ready for the next test wanting the same migrations."""


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


async def _remember_shape(database: Database, migrations: Migrations) -> None:
    """The shape of a freshly migrated schema: what a schema must match to be reused."""
    if migrations not in _shapes:
        assert database.schema is not None
        conn = await asyncpg.connect(PG_URL)
        try:
            _shapes[migrations] = await _shape_of(conn, database.schema)
        finally:
            await conn.close()


async def _give_back(schema: str, migrations: Migrations) -> None:
    """Empty ``schema`` for the next test if it is still exactly as migrated; else drop it."""
    conn = await asyncpg.connect(PG_URL)
    try:
        shape = await _shape_of(conn, schema)
        if shape != _shapes.get(migrations):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        empty = [f'DELETE FROM "{schema}"."{t}"' for t in sorted(shape.tables)
                 if t != "alembic_version"]
        reset = [f"SELECT setval('\"{schema}\".\"{q}\"', 1, false)" for q in sorted(shape.sequences)]
        await conn.execute(";".join(empty + reset))
        _clean_schemas.setdefault(migrations, []).append(schema)
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
    for directory in _template_dir:
        shutil.rmtree(directory, ignore_errors=True)
    pooled = [schema for schemas in _clean_schemas.values() for schema in schemas]
    _clean_schemas.clear()
    if pooled:
        asyncio.run(drop_schemas(pooled))


async def _postgres_database(migrations: Migrations = ()) -> AsyncIterator[Database]:
    problem = await _pg_reachable()
    if problem:
        integration_unavailable(problem)
    pool = _clean_schemas.get(migrations)
    if pool:
        database = Database(PG_URL, schema=pool.pop())
    else:
        database = Database(PG_URL, schema=f"t_{WORKER}_{uuid.uuid4().hex[:12]}")
        await migrate(database, migrations)
        await _remember_shape(database, migrations)
    yield database
    await database.dispose()
    assert database.schema is not None
    await _give_back(database.schema, migrations)


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
