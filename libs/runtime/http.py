"""The HTTP boundary: app factory, problem+json errors in one place, health, readiness, metrics.

Outages (``libs.runtime.outages``: the database restarting, unreachable, out of
connections, or locked too long) answer 503 with ``Retry-After``, never 500.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.runtime import openapi_doc
from libs.runtime.errors import DomainError
from libs.runtime.outages import RETRY_AFTER_SECONDS, is_outage
from libs.store.errors import ConcurrencyError, IdempotencyConflict

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://o2c.dev/problems/"

_BAD_TEXT = {"22021", "22P05"}  # PostgreSQL: character not in repertoire, untranslatable
_MAYBE_OUTAGES = (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError,
                  sqlite3.Error, httpx.TransportError, KafkaError)
"""Exception families that may say "a dependency is unreachable" (then 503) or be a bug (500)."""


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are rejected (422)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: the same compact UTF-8 text as ``JSONResponse``, several times faster.

    (Routes with a return type are serialised by pydantic already; this serves the
    problems, the routes answering a plain ``dict`` and any ``JSONResponse`` we build.)
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {**extra, "type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    return FastJSONResponse(body, status_code=status, media_type="application/problem+json")


def unavailable() -> JSONResponse:
    """503 with ``Retry-After``: the same request may simply be sent again later."""
    response = problem(503, "service-unavailable", "Service unavailable",
                       "a dependency (the database or the broker) is briefly unreachable; "
                       "retry the same request later")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _private_headers(headers: MutableHeaders) -> None:
    """Every answer is one caller's data: never cached on the way, never named in a Referer.

    (The dashboard's links would otherwise carry its address, and the finance
    figures on it, to wherever they point; shared caches must not keep any answer.)
    """
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("Referrer-Policy", "no-referrer")


class Boundary:
    """Pure ASGI middleware around every route: a NUL in the path is a 422 problem, every
    answer is made private (``_private_headers``) and counted by status.

    Pure ASGI, not ``BaseHTTPMiddleware``: that one runs the route in a task of its own
    and streams the answer back through a memory channel, which showed up in the orders
    profile. This only rewrites the ``http.response.start`` message on its way out.
    An exception no handler answers passes through (``ServerErrorMiddleware`` outside
    this one logs it and answers the 500 problem), as before.
    """

    def __init__(self, app: ASGIApp, requests: Counter) -> None:
        self.app = app
        self._requests = requests
        self._by_status: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._count(message["status"])
                _private_headers(MutableHeaders(scope=message))
            await send(message)

        # A backstop for path ids; query values are validated per field (libs.runtime.params),
        # which names the bad parameter, and PostgreSQL's bad-text errors map to 422 below.
        if "\x00" in scope["path"]:
            refusal = problem(422, "invalid-characters", "Invalid characters",
                              "the path holds a NUL character")
            await refusal(scope, receive, send_private)
            return
        await self.app(scope, receive, send_private)

    def _count(self, status: int) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self._requests.labels(str(status))
        child.inc()


@cache
def _asyncapi_document() -> bytes:
    from libs.events.asyncapi import document

    return orjson.dumps(document())


def create_app(
    *,
    title: str,
    routers: Sequence[APIRouter],
    ready_check: Callable[[], Awaitable[dict[str, bool]]],
    lifespan: Any = None,
) -> FastAPI:
    app = FastAPIOffline(title=title, lifespan=lifespan, default_response_class=FastJSONResponse,
                         redoc_url=None, static_url="/docs/static")
    openapi_doc.install(app)
    metrics = CollectorRegistry()
    requests = Counter("o2c_http_requests", "HTTP requests by status", ["status"], registry=metrics)
    app.state.metrics = metrics
    app.add_middleware(Boundary, requests=requests)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, error: DomainError) -> JSONResponse:
        return problem(error.status, error.slug, error.title, error.detail, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
             "message": e.get("msg", "invalid"), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return problem(422, "validation", "Invalid request",
                       f"{len(errors)} invalid field(s)", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        return problem(error.status_code, slug, str(error.detail), str(error.detail))

    @app.exception_handler(ConcurrencyError)
    async def concurrency(_: Request, error: ConcurrencyError) -> JSONResponse:
        return problem(409, "concurrent-update", "Concurrent update", str(error))

    @app.exception_handler(IdempotencyConflict)
    async def replayed(_: Request, error: IdempotencyConflict) -> JSONResponse:
        return problem(409, "idempotency-conflict", "Idempotency conflict", str(error))

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        if getattr(error.orig, "sqlstate", None) in _BAD_TEXT:
            return problem(422, "invalid-characters", "Invalid characters",
                           "a value holds characters the database cannot store (NUL)")
        return await outage_or_bug(request, error)

    async def outage_or_bug(request: Request, error: Exception) -> JSONResponse:
        if is_outage(error):
            log.warning("503 on %s %s: %s: %s", request.method, request.url.path,
                        type(error).__name__, error)
            return unavailable()
        return await unexpected(request, error)

    for family in _MAYBE_OUTAGES:
        app.add_exception_handler(family, outage_or_bug)

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    async def driver_bad_text(_: Request, error: Exception) -> JSONResponse:
        return problem(422, "invalid-characters", "Invalid characters",
                       "a value holds characters the database cannot store (NUL)")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "Internal error", "an unexpected error was logged")

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Response:
        """The event contract of the whole system (AsyncAPI 3), as in ``docs/asyncapi.json``."""
        return Response(_asyncapi_document(), media_type="application/json")

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        checks = await ready_check()
        return FastJSONResponse({"ready": all(checks.values()), "checks": checks},
                                status_code=200 if all(checks.values()) else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
