"""Helpers for service tests: a service app on a real database, driven over HTTP (ASGI).

Cross-service reactions are exercised without Kafka by ``deliver``: it takes
the events a service appended (from its store, in commit order) and hands them
to another service's consumer, exactly as the consumer runtime would. Every 2xx JSON answer
is checked against the service's OpenAPI document (``tests.openapi_responses``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy
from aiokafka import ConsumerRecord
from pydantic import SecretStr
from sqlalchemy import func, select

from libs.events.envelope import Envelope
from libs.messaging.consumer import Consumer, Outcome
from libs.runtime.host import ServiceContext, ServiceSpec, build_app, start_context
from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from libs.store.schema import events
from libs.store.store import ORIGIN, Checkpoint
from tests.openapi_responses import ResponseChecker

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AUDIT_KEYS = "k1:" + "test-audit-key-" * 3
"""Service tests run keyed, as production does (and never pick up a ``data/audit-key``)."""


@dataclass
class RunningService:
    spec: ServiceSpec
    ctx: ServiceContext
    client: httpx.AsyncClient
    consumer: Consumer
    ops: httpx.AsyncClient
    """The service's internal port: ``/health``, ``/ready``, ``/metrics``."""
    app: Any = None
    read_from: Checkpoint = ORIGIN
    delivered: int = 0

    async def deliver_to(self, other: RunningService, seconds: float = 10.0) -> list[Outcome]:
        """Hand every event this service appended since the last call to ``other``'s consumer.

        On PostgreSQL ``read_all`` stops at the oldest transaction still writing anywhere on
        the server (a parallel suite's, say), so it polls until every stored event was read.
        """
        outcomes: list[Outcome] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            page = await self.ctx.store.read_all(self.read_from, limit=500)
            for envelope in page.events:
                outcomes.append(await other.consumer.handle(envelope))
            self.read_from = page.last or self.read_from
            self.delivered += len(page.events)
            if page.events:
                continue
            if await self._stored_count() <= self.delivered:
                return outcomes
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("events stayed behind the commit horizon")
            await asyncio.sleep(0.05)

    async def _stored_count(self) -> int:
        async with self.ctx.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


@asynccontextmanager
async def running(spec: ServiceSpec, db: Database) -> AsyncIterator[RunningService]:
    """``spec`` on ``db`` (already migrated by the fixture; its own migrations run here)."""
    settings = RuntimeSettings(admin_token=ADMIN_TOKEN, database_url=None,
                               audit_keys=SecretStr(AUDIT_KEYS))
    ctx = await start_context(spec, settings, db)
    app = build_app(spec, ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    ops = httpx.AsyncClient(transport=httpx.ASGITransport(app=app.state.ops), base_url="http://ops")
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 event_hooks={"response": [ResponseChecker(app)]}) as client, ops:
        yield RunningService(spec, ctx, client, app.state.consumer, ops, app)



def consumer_record(offset: int, envelope: Envelope, topic: str = "test") -> ConsumerRecord:  # type: ignore[type-arg]
    """``envelope`` as the relay publishes it (headers ``event_type`` and ``event_id``): a poll of
    several handed to ``Consumer.apply_records`` is applied as one batch."""
    value, key = envelope.to_wire(), envelope.stream_id.encode()
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value),
                          [("event_type", envelope.event_type.encode()),
                           ("event_id", str(envelope.event_id).encode())])


ONE_DOCUMENT = ("FROM documents WHERE kind = $1 AND id = $2", "FROM documents WHERE kind = ?1 AND id = ?2")
"""How ``documents.get`` (one document by key) reads, on PostgreSQL and on SQLite."""
BY_KEYS = ("SELECT kind, id, body FROM documents", "SELECT d.kind, d.id, d.body FROM documents d")
"""How documents are read by many keys at once (``documents.get_many``, ``Documents``)."""


class Statements:
    """The statements a database's writer is sent while the block runs (``Statement``s too)."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine.sync_engine
        self.sent: list[str] = []

    def _heard(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(statement)

    def __enter__(self) -> Statements:
        sqlalchemy.event.listen(self.engine, "before_cursor_execute", self._heard)
        return self

    def __exit__(self, *_: object) -> None:
        sqlalchemy.event.remove(self.engine, "before_cursor_execute", self._heard)

    def having(self, *parts: str) -> list[str]:
        """The statements that contain any of ``parts``."""
        return [sent for sent in self.sent if any(part in sent for part in parts)]
