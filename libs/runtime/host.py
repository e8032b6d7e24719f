"""Running one service: migrate, then HTTP, relay, consumers and background tasks in one process.

Each service declares a ``ServiceSpec`` (its composition root) and runs with
``python -m services.<name>``. Everything the handlers need is built here and
passed in through ``ServiceContext``; nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import ProcessCollector
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.events import default_registry
from libs.events.base import utc_now
from libs.events.registry import EventRegistry
from libs.events.topics import topic_for
from libs.messaging.consumer import Consumer, ConsumerSettings, Handler
from libs.messaging.kafka import KafkaConnection, end_offsets
from libs.messaging.relay import Relay, RelaySettings
from libs.messaging.timing import sleep_or_stop
from libs.runtime.audit import audit_router
from libs.runtime.auth import KeyRing, key_handlers
from libs.runtime.clock import business_clock
from libs.runtime.dead_letters import dead_letter_router
from libs.runtime.http import create_app, ops_app
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.settings import DEFAULT_PORTS, RuntimeSettings, ops_port_of
from libs.runtime.wire import GatheringHttpTools
from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.store import EventStore
from libs.telemetry import logs, tracing

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """The dependencies of one service, built once by ``serve``."""

    name: str
    settings: RuntimeSettings
    db: Database
    store: EventStore
    registry: EventRegistry
    keyring: KeyRing
    clock: Callable[[], datetime] = utc_now

    def today(self) -> date:
        return self.clock().date()


async def service_context(request: Request) -> ServiceContext:
    """The route's service context. ``async``: FastAPI runs a plain ``def`` dependency on a
    worker thread, a thread hand-off and back on every request."""
    return request.app.state.ctx


Ctx = Annotated[ServiceContext, Depends(service_context)]
"""A route's ``ServiceContext`` (every service's ``api/deps.py`` re-exports it)."""

Task = Callable[[ServiceContext, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    """What a service is made of: routes, reactions to events, its own tables and tasks."""

    name: str
    routers: Callable[[ServiceContext], Sequence[APIRouter]]
    handlers: Callable[[ServiceContext], Mapping[str, Handler]] = lambda ctx: {}
    subscribes_to: Sequence[str] = ()
    publishes: bool = True
    migrations: Path | None = None
    tasks: Sequence[Task] = field(default_factory=tuple)


def build_app(spec: ServiceSpec, ctx: ServiceContext) -> FastAPI:
    """The service's public app; ``app.state`` holds its consumer, its relay (``None`` for a
    service that publishes nothing) and ``ops``, the app of its internal port."""
    kafka = ctx.settings.kafka(spec.name)  # once: a TLS context reads its files

    async def ready_check() -> dict[str, bool]:
        checks = {"database": False, "broker": False}
        try:
            async with ctx.db.read() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            log.warning("readiness: database unreachable", exc_info=True)
        try:
            await asyncio.wait_for(end_offsets(kafka, "o2c.readiness"), 3)
            checks["broker"] = True
        except Exception:
            log.warning("readiness: broker unreachable", exc_info=True)
        for task in getattr(app.state, "background", []):
            checks[task.get_name()] = not task.done()
        return checks

    routers = [*spec.routers(ctx), audit_router(), dead_letter_router()]
    app = create_app(title=f"o2c {spec.name}", routers=routers)
    app.state.ctx = ctx
    app.state.keyring = ctx.keyring
    app.state.consumer = consumer_for(spec, ctx, kafka)  # run by ``serve``; its dead letters are routed
    app.state.relay = relay_for(spec, ctx, kafka)  # run by ``serve`` too
    service_metrics = ServiceMetrics(service=spec.name, consumer=app.state.consumer,
                                     store=ctx.store, db=ctx.db, relay=app.state.relay)
    registry = app.state.metrics
    registry.register(service_metrics)
    ProcessCollector(registry=registry)
    app.state.ops = ops_app(ready_check=ready_check, registry=registry,
                            before_scrape=service_metrics.refresh)
    return app


def relay_for(spec: ServiceSpec, ctx: ServiceContext, kafka: KafkaConnection) -> Relay | None:
    if not spec.publishes or ctx.store is None:  # (no store: an app built only for its routes)
        return None
    return Relay(ctx.store, topic=topic_for(spec.name), kafka=kafka,
                 name=spec.name, settings=RelaySettings(partitions=ctx.settings.partitions))


class ByPort:
    """One server, two listeners: requests to ``ops_port`` go to the operational app."""

    def __init__(self, public: ASGIApp, ops: ASGIApp, ops_port: int) -> None:
        self.public, self.ops, self.ops_port = public, ops, ops_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        app = self.ops if server is not None and server[1] == self.ops_port else self.public
        await app(scope, receive, send)


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def start_context(
    spec: ServiceSpec, settings: RuntimeSettings, db: Database | None = None
) -> ServiceContext:
    """Migrate the service's database and build its context (``db``: use this one instead)."""
    db = db or settings.database(spec.name)
    await migrate(db, [spec.migrations] if spec.migrations else [])
    keyring = KeyRing(db, settings.admin_token, settings.key_refresh_seconds)
    await keyring.refresh()
    clock = business_clock(settings.clock_start, settings.clock_anchor)
    if settings.clock_start is not None:
        log.warning("%s: REHEARSAL CLOCK: business time runs from %s (O2C_CLOCK_START), now %s; "
                    "every date this service writes follows it", spec.name,
                    settings.clock_start.isoformat(), clock().isoformat())
    chain = settings.audit_chain()
    if not chain.keyed:
        log.warning("%s: no audit key configured; the event chains are unkeyed and do not "
                    "stop someone with database access (see libs/store/integrity.py)", spec.name)
    return ServiceContext(name=spec.name, settings=settings, db=db,
                          store=EventStore(db, chain=chain, clock=clock), registry=default_registry(),
                          keyring=keyring, clock=clock)


def consumer_for(spec: ServiceSpec, ctx: ServiceContext,
                 kafka: KafkaConnection | None = None) -> Consumer:
    settings = ctx.settings
    quick = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500,
             "rebalance_timeout_ms": 3000} if settings.embedded else {}
    publishers = sorted({"partners", *spec.subscribes_to})
    return Consumer(
        name=spec.name, db=ctx.db, registry=ctx.registry,
        handlers={**key_handlers(), **spec.handlers(ctx)},
        topics=[topic_for(p) for p in publishers],
        kafka=kafka or settings.kafka(spec.name),
        settings=ConsumerSettings(partitions=settings.partitions,
                                  gap_heal_seconds=settings.gap_heal_seconds, **quick),
    )


async def serve(spec: ServiceSpec, settings: RuntimeSettings, port: int | None = None) -> None:
    """Run the service until SIGTERM/SIGINT."""
    ctx = await start_context(spec, settings)
    app = build_app(spec, ctx)
    tracing.install(spec.name, app, [ctx.db.engine, ctx.db.reader])
    stop = asyncio.Event()
    port = port or DEFAULT_PORTS[spec.name]
    ops_port = ops_port_of(spec.name)
    sockets = [_listen(settings.host, port), _listen(settings.host, ops_port)]
    server = uvicorn.Server(uvicorn.Config(
        ByPort(app, app.state.ops, ops_port), host=settings.host, port=port,
        log_level="warning", log_config=None, access_log=False, lifespan="off",
        http=GatheringHttpTools))  # one socket write per answer (libs.runtime.wire)
    consumer: Consumer = app.state.consumer
    workers: dict[str, Callable[[], Awaitable[None]]] = {
        "keyring": lambda: ctx.keyring.run(stop),
        "consumer": lambda: consumer.run(stop),
    }
    relay: Relay | None = app.state.relay
    if relay is not None:
        workers["relay"] = lambda: relay.run(stop)
    for task in spec.tasks:
        workers[getattr(task, "__name__", "task")] = functools.partial(task, ctx, stop)
    settle_heap()
    background = [asyncio.create_task(_supervised(name, work, stop), name=name)
                  for name, work in workers.items()]
    app.state.background = background
    try:
        await server.serve(sockets)  # returns on SIGTERM/SIGINT (uvicorn handles the signals)
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*background, return_exceptions=True), 10)
        await ctx.db.dispose()


GC_YOUNG_THRESHOLD = 20_000
"""Allocations (net of frees) between two young collections of the cycle collector (Python's
default: 700)."""


def settle_heap() -> None:
    """Keep the cycle collector off what the process built to start: a service serves for hours.

    A started service holds about 150,000 objects the collector tracks (modules, classes,
    FastAPI's routes and models, SQLAlchemy's tables). Under load the collector walked them
    again and again: during ``o2c bench api`` the orders process spent 17-21 % of its time
    in collections (``docs/benchmarks.md``), about half of it in the full ones (three per
    2,200 requests, each walking everything). ``gc.freeze`` moves everything alive now into
    the permanent generation, which no collection walks (its objects are still freed by
    reference counting; only cycles among them would stay, and start-up leaves few). A
    request's objects die young, mostly by reference counting: with the young threshold at
    ``GC_YOUNG_THRESHOLD`` a collection runs about 30 times less often and promotes fewer
    in-flight objects to the older generations; the cycles waiting for it are bounded by
    the threshold.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _supervised(name: str, work: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run a background loop until ``stop``; if it fails or returns early, log and restart it."""
    while not stop.is_set():
        try:
            await work()
        except Exception:
            log.exception("background task %s failed; restarting", name)
        if not stop.is_set():
            await sleep_or_stop(stop, 1.0)


def run(spec: ServiceSpec) -> None:
    """Entry point of ``python -m services.<name>``."""
    import os

    settings = RuntimeSettings()
    logs.configure(spec.name, format=settings.log_format, level=settings.log_level)
    port = os.environ.get(f"O2C_{spec.name.upper()}_PORT")
    asyncio.run(serve(spec, settings, int(port) if port else None))
