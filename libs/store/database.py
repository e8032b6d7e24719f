"""One service's database: SQLite file (embedded default) or a PostgreSQL schema.

SQLite allows one writer at a time. Write transactions begin ``IMMEDIATE`` (so a
reader never has to upgrade its lock and fail half way) and are queued in
process by an asyncio lock; other processes wait on SQLite's busy timeout.
WAL journaling lets readers run beside the writer. ``synchronous=FULL`` makes a
committed transaction survive an operating-system crash, not only a process crash.
A new database file is created 0600 (SQLite gives its ``-wal`` and ``-shm`` the
database file's mode): it holds every partner's data, readable by its owner only.

On PostgreSQL each service owns a schema; connections set ``search_path`` to it, and
``application_name`` to ``o2c <schema> <host>:<pid>`` so an operator can tell which
replica holds what (the relay lease, say: ``docs/replicas.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from libs.store.commits import APPENDED, Commits, channel_for
from libs.store.sql import DEFERRED, send_deferred, send_deferred_first

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@asynccontextmanager
async def _cancellation_wins() -> AsyncIterator[None]:
    """Keep a cancellation from turning into an ordinary error.

    A task cancelled in the middle of a statement leaves SQLAlchemy's asyncpg connection
    invalid, and the rollback on the way out then raises ``PendingRollbackError`` in place
    of the ``CancelledError``. Code that catches ``Exception`` (a consumer splitting a
    failed batch) would take that for a failed batch and go on: the task would never stop.
    """
    try:
        yield
    except Exception as error:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError() from error
        raise


def async_url(url: str) -> URL:
    """Normalise ``postgresql://`` and ``sqlite://`` URLs to their async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


async def _end_open_transaction(connection: asyncpg.Connection) -> None:
    """Pool reset for the store's driver connections.

    asyncpg's default reset sends a query on every release (unlock advisory locks,
    close cursors, UNLISTEN, RESET ALL): a round trip per read. The relay's reads
    leave no such session state, so only an interrupted transaction is ended.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class _WaitsOnItsThread(aiosqlite.Connection):
    """aiosqlite that runs statements on the event loop and hands only the waits to its thread.

    A statement on a local SQLite file in WAL mode reads cached pages or appends to the
    WAL: microseconds. Handing every one to aiosqlite's thread and back cost two thread
    wake-ups per statement, and a write transaction holds the process's write lock across
    all of them (the orders profile in ``docs/benchmarks.md``). Only the statements that
    can wait still go to the thread: ``BEGIN IMMEDIATE`` (another process's write lock,
    up to the busy timeout) and ``COMMIT`` (the fsync of ``synchronous=FULL``), so the
    event loop never blocks on a lock or a disk flush. ``BEGIN IMMEDIATE`` is first tried
    here without waiting (in-process writers already queue on ``Database``'s lock, so the
    file's lock is nearly always free) and goes to the thread, to wait, only when another
    process holds it. A reader's ``BEGIN`` never waits in WAL mode, and its ``COMMIT``
    flushes nothing (``reads_only``: the connections of ``Database.read``). One
    connection is never used by both threads at once: each call handed to the thread is
    awaited before the next statement.
    """

    reads_only = False

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        wait = _may_wait(fn, args, self._connection)
        if wait == "io" and self.reads_only and getattr(fn, "__name__", "") == "commit":
            wait = None
        if wait == "lock" and self._take_lock_now(fn, args):
            return None
        if wait:
            return await super()._execute(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    def _take_lock_now(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        """Run ``BEGIN IMMEDIATE`` at once if the file's write lock is free; False if it is not."""
        conn = self._conn
        (busy_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute("PRAGMA busy_timeout=0")
        try:
            fn(*args)
        except sqlite3.OperationalError as error:
            if "locked" in str(error).lower() or "busy" in str(error).lower():
                return False
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        return True


def _may_wait(fn: Callable[..., Any], args: tuple[Any, ...], connection: Any) -> str | None:
    """``"lock"`` for a statement taking the write lock, ``"io"`` for one that may flush.

    Only the connection's own ``commit`` and ``close`` may flush: a cursor's ``close``
    (one per statement) frees memory and must not cost a trip to the thread.
    """
    if getattr(fn, "__name__", "") in ("commit", "close") and getattr(fn, "__self__", None) is connection:
        return "io"
    if args and isinstance(args[0], str):
        head = args[0].lstrip()[:16].upper()
        if head.startswith(("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")):
            return "lock"
        if head.startswith(("COMMIT", "END", "PRAGMA")):
            return "io"
    return None


GROUP_COMMIT_MAX = 8
"""Most write transactions one SQLite ``COMMIT`` covers: the first member of a group waits
for the others' work before its answer, so the bound keeps that wait short."""


class _Group:
    """Write transactions sharing one SQLite transaction and its ``COMMIT`` (``Database._grouped``)."""

    def __init__(self, conn: AsyncConnection, raw: sqlite3.Connection) -> None:
        self.conn = conn
        self.raw = raw
        self.members = 0
        self.appended: int | None = None
        self.failed: BaseException | None = None
        """An error that ended the whole transaction: every member fails."""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done.add_done_callback(_retrieved)

    def control(self, statement: str) -> None:
        """A savepoint statement; if it fails, the transaction is in doubt: the group fails."""
        try:
            self.raw.execute(statement)
        except BaseException as error:
            self.failed = error
            raise

    def member_done(self, appended: int | None) -> None:
        self.members += 1
        if appended is not None:
            self.appended = max(self.appended or 0, appended)

    def undo_member(self, error: BaseException) -> None:
        """Roll the failed member back to its savepoint; if the transaction itself is gone
        (SQLite ends it on some errors), the whole group fails."""
        try:
            if not self.raw.in_transaction:
                raise error
            self.raw.execute("ROLLBACK TO o2c_member")
            self.raw.execute("RELEASE o2c_member")
        except BaseException as lost:
            self.failed = lost

    def settle(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark a group's failure seen (its members may all have been cancelled meanwhile)."""
    if not future.cancelled():
        future.exception()


def _create_private(path: Path) -> None:
    """Create the SQLite file ``path`` (mode 0600, whatever the umask) if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def application_name(schema: str) -> str:
    """How this process's connections to ``schema`` introduce themselves to PostgreSQL."""
    return f"o2c {schema} {socket.gethostname()}:{os.getpid()}"[:63]


KEPT_FOR_AT_MOST = 1800.0
"""Seconds a write connection is kept checked out between transactions (``Database._checkout``):
the engine's ``pool_recycle``."""


class Database:
    """Engines and transactions for one service's store."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 20,
        sqlite_synchronous: str = "FULL",
    ) -> None:
        self.url = async_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        self.schema = schema if self.dialect == "postgresql" else None
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._queued = 0
        """Write transactions waiting for ``_write_lock`` (SQLite)."""
        self._group: _Group | None = None
        """The SQLite transaction the next write joins, while one is open (``_grouped``)."""
        self._committing: asyncio.Future[None] | None = None
        self._pool_size = pool_size
        self._kept: list[tuple[AsyncConnection, float]] = []
        """PostgreSQL: write connections kept checked out between transactions (``transaction``),
        each with when it was first kept."""
        self._driver_pool: asyncpg.Pool | None = None
        self._driver_pool_lock = asyncio.Lock()
        self.commits = Commits()
        """Signalled after each committed transaction that appended events (see
        ``libs.store.commits``)."""
        self._notify = text("SELECT pg_notify(:channel, :tx_id)").bindparams(
            channel=channel_for(self.schema)) if self.dialect == "postgresql" else None
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:":
                _create_private(Path(database))
            self.engine = self._sqlite_engine("BEGIN IMMEDIATE", sqlite_synchronous)
            self.reader = self._sqlite_engine("BEGIN", sqlite_synchronous)
        else:
            connect_args: dict[str, Any] = {}
            if self.schema:
                connect_args["server_settings"] = {"search_path": self.schema,
                                                   "application_name": application_name(self.schema)}
            # No pre-ping: it costs round trips on every checkout. Broken connections are
            # invalidated when they fail and recycled before servers time them out. No
            # overflow: under load (32 clients on the orders service) the overflow connections
            # were closed whenever a few fell idle and opened again a moment later (a new
            # server process each); a fixed pool keeps the connections it opened.
            self.engine = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=0, pool_recycle=int(KEPT_FOR_AT_MOST),
                connect_args=connect_args,
            )
            event.listen(self.engine.sync_engine, "before_cursor_execute", send_deferred_first)
            self.reader = self.engine
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def _sqlite_engine(self, begin: str, synchronous: str) -> AsyncEngine:
        database = self.url.database or ":memory:"

        def connector() -> sqlite3.Connection:  # runs on the connection's aiosqlite thread
            return sqlite3.connect(database, timeout=30, check_same_thread=False)

        async def connect() -> aiosqlite.Connection:
            connection = _WaitsOnItsThread(connector, 64)
            connection.reads_only = begin == "BEGIN"
            connection._thread.daemon = True
            return await connection

        engine = create_async_engine(self.url, async_creator=connect)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine

    def pool_usage(self) -> dict[str, tuple[int, int]]:
        """Connections ``(in use, open)`` per pool: ``writer`` and ``reader`` (one ``engine`` on
        PostgreSQL), and the asyncpg pool of the relay's reads (``driver``) once opened."""
        engines = ({"engine": self.engine} if self.reader is self.engine
                   else {"writer": self.engine, "reader": self.reader})
        usage: dict[str, tuple[int, int]] = {}
        for name, engine in engines.items():
            pool: Any = engine.pool
            if hasattr(pool, "checkedout") and hasattr(pool, "checkedin"):
                idle = len(self._kept) if engine is self.engine else 0  # kept: checked out, not in use
                usage[name] = (pool.checkedout() - idle, pool.checkedout() + pool.checkedin())
        if self._driver_pool is not None:
            opened = self._driver_pool.get_size()
            usage["driver"] = (opened - self._driver_pool.get_idle_size(), opened)
        return usage

    async def create_schema(self) -> None:
        """Create the service's PostgreSQL schema if missing (SQLite: nothing to do)."""
        if self.schema:
            plain = create_async_engine(self.url)
            try:
                async with plain.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            finally:
                await plain.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error.

        The block returns only once its work is durably committed. On SQLite that commit
        may be shared with the transactions queued behind it (``_grouped``). If the store
        appended in it, the relay is woken once it has committed (see
        ``libs.store.commits``). On PostgreSQL a deferrable write (``libs.store.sql.Statement``)
        rides with the block's next statement, or is sent before the ``COMMIT``."""
        if self._write_lock is not None:
            async with _cancellation_wins(), self._grouped() as conn:
                yield conn
            return
        async with _cancellation_wins():
            conn = await self._checkout()
            kept = False
            try:
                async with conn.begin():
                    conn.info[DEFERRED] = []
                    try:
                        yield conn
                        await send_deferred(conn)
                    finally:
                        conn.info.pop(DEFERRED, None)
                        appended: int | None = conn.info.pop(APPENDED, None)
                    if appended is not None and not self.commits.relays_leading:  # relay elsewhere
                        assert self._notify is not None
                        await conn.execute(self._notify, {"tx_id": str(appended)})
                kept = self._keep(conn)
            finally:
                if not kept:
                    await self._give_back(conn)
        if appended is not None:
            self.commits.committed(appended)

    async def _checkout(self) -> AsyncConnection:
        """A connection for a write transaction: one kept from an earlier one, else the pool's.

        Checking a connection out of SQLAlchemy's pool and back in costs the process about as
        much as the transaction's own three round trips (``docs/benchmarks.md``, ninth pass:
        about 300 of 750 microseconds of a one-statement transaction). So a connection whose
        transaction committed is kept checked out for the next (``_keep``), and a kept one is
        given up after ``KEPT_FOR_AT_MOST`` seconds as the pool's recycling would."""
        now = asyncio.get_running_loop().time()
        while self._kept:
            conn, since = self._kept.pop()
            if now - since < KEPT_FOR_AT_MOST and not conn.closed and not conn.invalidated:
                return conn
            await self._give_back(conn)
        return await self.engine.connect()

    async def _give_back(self, conn: AsyncConnection) -> None:
        """End a connection's checkout as ``async with engine.begin()`` does (back to the pool,
        or closed when it was lost). A lost one (the server restarted, say) takes the kept ones
        with it, as SQLAlchemy then recycles every pooled connection."""
        lost = conn.invalidated
        await conn.__aexit__(None, None, None)
        while lost and self._kept:
            await self._kept.pop()[0].__aexit__(None, None, None)

    def _keep(self, conn: AsyncConnection) -> bool:
        """Keep a connection whose transaction committed, unless someone may be waiting for one.

        The pool is fixed (no overflow), so a checkout waits only when every connection is
        checked out; kept ones count. A connection is kept only while the pool could still hand
        one out at once: nobody waits for it then, and whoever comes next takes it from here."""
        pool: Any = self.engine.pool
        if conn.closed or conn.invalidated or conn.in_transaction() or pool.checkedout() >= pool.size():
            return False
        self._kept.append((conn, asyncio.get_running_loop().time()))
        return True

    # -- group commit (SQLite) ------------------------------------------------------

    @asynccontextmanager
    async def _grouped(self) -> AsyncIterator[AsyncConnection]:
        """A SQLite write transaction that shares its ``COMMIT`` with those queued behind it.

        SQLite has one writer, so write transactions run one after another anyway (in
        process, behind ``_write_lock``). Each paid its own ``BEGIN IMMEDIATE`` and its
        own ``COMMIT``: an fsync under ``synchronous=FULL`` and a hand-off to the
        connection's thread, the largest share of the orders process's CPU per request
        (``docs/benchmarks.md``). Here the transactions that queue up meanwhile run in one
        database transaction, each under a savepoint of its own:

        - a member that fails is rolled back to its savepoint: the others keep their work;
        - when no one is queued any more (or the group holds ``GROUP_COMMIT_MAX``), the
          member that finished last commits the group, still holding the lock;
        - every member's block returns only after that ``COMMIT`` succeeded. A failed
          ``COMMIT`` (or an error that ends the whole transaction) fails every member of
          the group, none of whose work was kept: nothing is acknowledged that a crash
          could lose.
        """
        assert self._write_lock is not None
        self._queued += 1
        try:
            await self._write_lock.acquire()
        except BaseException:
            self._queued -= 1
            self._commit_if_left_open()
            raise
        self._queued -= 1
        group: _Group | None = None
        try:
            group = self._group if self._group is not None else await self._open_group()
            self._announce(group, "SAVEPOINT o2c_member")
            group.control("SAVEPOINT o2c_member")
            try:
                yield group.conn
            except BaseException as error:
                group.conn.info.pop(APPENDED, None)
                group.undo_member(error)
                raise
            self._announce(group, "RELEASE o2c_member")
            group.control("RELEASE o2c_member")
            group.member_done(group.conn.info.pop(APPENDED, None))
        finally:
            if group is None:
                self._write_lock.release()
            elif group.failed is not None or self._queued == 0 or group.members >= GROUP_COMMIT_MAX:
                self._group = None
                # Its own task, so a member cancelled meanwhile cannot cut the COMMIT short.
                self._committing = asyncio.ensure_future(self._commit(group))
            else:
                self._write_lock.release()  # the next in line joins the group
        await asyncio.shield(group.done)

    async def _open_group(self) -> _Group:
        conn = await self.engine.connect()
        try:
            await conn.begin()  # BEGIN IMMEDIATE (the engine's begin listener)
            sync = conn.sync_connection
            assert sync is not None
            group = _Group(conn, sync.connection.dbapi_connection._connection._conn)  # type: ignore[union-attr]
        except BaseException:
            await conn.close()
            raise
        self._group = group
        return group

    async def _commit(self, group: _Group) -> None:
        """Commit (or, when it failed, roll back) ``group``, settle its members, free the lock."""
        try:
            if group.failed is not None or not group.members:
                await group.conn.rollback()
                group.settle(group.failed)
            else:
                await group.conn.commit()
                group.settle(None)
                if group.appended is not None:
                    self.commits.committed(group.appended)
        except BaseException as error:
            with contextlib.suppress(Exception):
                await group.conn.rollback()
            group.settle(error)
            if not isinstance(error, Exception):
                raise
        finally:
            with contextlib.suppress(Exception):
                await group.conn.close()
            self._write_lock.release()  # type: ignore[union-attr]

    def _commit_if_left_open(self) -> None:
        """A member left the group open for one queued behind it, which gave up waiting:
        commit the group once the lock is free, unless another member is queued by then."""
        if self._group is not None and not self._queued:
            self._committing = asyncio.ensure_future(self._commit_open_group())

    async def _commit_open_group(self) -> None:
        await self._write_lock.acquire()  # type: ignore[union-attr]
        group = self._group
        if group is None or self._queued:  # committed meanwhile, or the next in line will
            self._write_lock.release()  # type: ignore[union-attr]
            return
        self._group = None
        await self._commit(group)

    def _announce(self, group: _Group, statement: str) -> None:
        """Let the engine's statement listeners hear a savepoint sent to the driver."""
        sync = group.conn.sync_connection
        if sync is not None and sync.dispatch.before_cursor_execute:
            sync.dispatch.before_cursor_execute(sync, None, statement, (), None, False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads: on SQLite a read transaction (it never waits for the
        writer); on PostgreSQL no transaction at all.

        The engine's transactions are ``READ COMMITTED``: each statement reads a snapshot of
        its own, in a transaction or not, so a transaction around reads gives them nothing
        and costs two round trips (``BEGIN``, ``COMMIT``) per read, which is most of what a
        one-statement read costs (a list page, a consumer's order guard). A read that needs
        one snapshot for several statements opens its own, as ``libs.store.integrity.verify``
        does. Nothing written here is rolled back: write in ``transaction``.
        """
        if self._write_lock is not None:
            async with _cancellation_wins(), self.reader.connect() as conn:
                async with conn.begin():
                    yield conn
            return
        async with _cancellation_wins(), self._autocommit_engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """Each statement its own transaction (PostgreSQL); a write transaction on SQLite."""
        if self._write_lock is not None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._autocommit_engine.connect() as conn:
            yield conn

    # -- the driver-level read path (the relay's ``read_all`` on PostgreSQL) ----------

    async def driver_pool(self) -> asyncpg.Pool:
        """A plain asyncpg pool on the service's schema, for the relay's reads."""
        if self._driver_pool is None:
            async with self._driver_pool_lock:
                if self._driver_pool is None:
                    url = self.url.set(drivername="postgresql")
                    settings = {"search_path": self.schema} if self.schema else {}
                    self._driver_pool = await asyncpg.create_pool(
                        url.render_as_string(hide_password=False), min_size=1,
                        max_size=self._pool_size, server_settings=settings,
                        reset=_end_open_transaction)
        return self._driver_pool

    async def dispose(self) -> None:
        while self._kept:
            await self._kept.pop()[0].__aexit__(None, None, None)
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()
        if self._driver_pool is not None:
            await self._driver_pool.close()
            self._driver_pool = None

