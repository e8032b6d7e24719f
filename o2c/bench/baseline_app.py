"""The baseline of ``o2c bench api``: the least a ``POST /v1/orders`` can do on the same database.

A minimal FastAPI app that inserts one event row and one outbox row in one
transaction and answers 201. No authentication, no idempotency, no pricing: it
is the floor an event-sourced write can reach on this machine, served the way
the services are served (one process, uvicorn inside ``asyncio.run``).

Run as ``python -m o2c.bench.baseline_app`` with ``O2C_BENCH_BASELINE_DB`` (a
``postgresql://`` URL, or the path of a SQLite file) and ``O2C_BENCH_BASELINE_PORT``;
on PostgreSQL ``O2C_BENCH_BASELINE_SCHEMA`` names the (existing) schema to use.
SQLite runs in WAL mode with ``synchronous=FULL``, as the services' stores do.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

POOL_SIZE = 10
_TABLES = (
    "CREATE TABLE IF NOT EXISTS events (position {serial} PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
    "stream_id TEXT NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (id {serial} PRIMARY KEY, event_id TEXT NOT NULL, "
    "topic TEXT NOT NULL, payload TEXT NOT NULL)",
)


class PostgresWriter:
    """One transaction per request on an asyncpg pool."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url, self.schema = url, schema
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        settings = {"search_path": self.schema} if self.schema else {}
        self.pool = await asyncpg.create_pool(self.url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                              server_settings=settings)
        async with self.pool.acquire() as conn:
            for statement in _TABLES:
                await conn.execute(statement.format(serial="BIGSERIAL"))

    async def write(self, event_id: str, stream_id: str, data: str) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO events (event_id, stream_id, event_type, data) "
                               "VALUES ($1, $2, 'OrderPlaced', $3)", event_id, stream_id, data)
            await conn.execute("INSERT INTO outbox (event_id, topic, payload) VALUES ($1, $2, $3)",
                               event_id, "o2c.orders.events", data)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class SqliteWriter:
    """One writer thread (SQLite has one writer), so the event loop never blocks on disk."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="baseline-writer")
        self.conn: sqlite3.Connection | None = None

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for statement in _TABLES:
            conn.execute(statement.format(serial="INTEGER"))
        self.conn = conn

    def _write(self, event_id: str, stream_id: str, data: str) -> None:
        assert self.conn is not None
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("INSERT INTO events (event_id, stream_id, event_type, data) "
                              "VALUES (?, ?, 'OrderPlaced', ?)", (event_id, stream_id, data))
            self.conn.execute("INSERT INTO outbox (event_id, topic, payload) VALUES (?, ?, ?)",
                              (event_id, "o2c.orders.events", data))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    async def _run(self, work: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self.thread, work, *args)

    async def open(self) -> None:
        await self._run(self._connect)

    async def write(self, event_id: str, stream_id: str, data: str) -> None:
        await self._run(self._write, event_id, stream_id, data)

    async def close(self) -> None:
        if self.conn is not None:
            await self._run(self.conn.close)
        self.thread.shutdown()


def create_app(writer: PostgresWriter | SqliteWriter) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await writer.open()
        yield
        await writer.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/orders", status_code=201)
    async def place_order(request: Request) -> Response:
        body = orjson.loads(await request.body())
        order_id = f"ord_{uuid.uuid4().hex}"
        data = orjson.dumps({"order_id": order_id, **body}).decode()
        await writer.write(str(uuid.uuid4()), f"order-{order_id}", data)
        return Response(orjson.dumps({"id": order_id, "status": "placed"}), status_code=201,
                        media_type="application/json")

    return app


def main() -> None:
    target = os.environ["O2C_BENCH_BASELINE_DB"]
    writer: PostgresWriter | SqliteWriter = (
        PostgresWriter(target, os.environ.get("O2C_BENCH_BASELINE_SCHEMA"))
        if target.startswith("postgresql://") else SqliteWriter(target))
    server = uvicorn.Server(uvicorn.Config(create_app(writer), host="127.0.0.1",
                                           port=int(os.environ["O2C_BENCH_BASELINE_PORT"]),
                                           log_level="warning"))
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
