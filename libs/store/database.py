"""One service's database: SQLite file (embedded default) or a PostgreSQL schema.

SQLite allows one writer at a time. Write transactions begin ``IMMEDIATE`` (so a
reader never has to upgrade its lock and fail half way) and are queued in
process by an asyncio lock; other processes wait on SQLite's busy timeout.
WAL journaling lets readers run beside the writer. ``synchronous=FULL`` makes a
committed transaction survive an operating-system crash, not only a process crash.

On PostgreSQL each service owns a schema; connections set ``search_path`` to it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def async_url(url: str) -> URL:
    """Normalise ``postgresql://`` and ``sqlite://`` URLs to their async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


class Database:
    """Engines and transactions for one service's store."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
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
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = self._sqlite_engine("BEGIN IMMEDIATE", sqlite_synchronous)
            self.reader = self._sqlite_engine("BEGIN", sqlite_synchronous)
        else:
            connect_args: dict[str, Any] = {}
            if self.schema:
                connect_args["server_settings"] = {"search_path": self.schema}
            self.engine = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                connect_args=connect_args,
            )
            self.reader = self.engine

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def _sqlite_engine(self, begin: str, synchronous: str) -> AsyncEngine:
        engine = create_async_engine(self.url, connect_args={"timeout": 30})

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
        """A write transaction: committed when the block ends, rolled back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (on SQLite it never waits for the writer)."""
        async with self.reader.connect() as conn:
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """Each statement its own transaction (PostgreSQL); a write transaction on SQLite."""
        if self._write_lock is not None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield auto

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()
