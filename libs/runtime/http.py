"""The HTTP boundary: app factory, problem+json errors in one place, request ids and the
request log line, and the operational app (health, readiness, metrics).

The operational endpoints (``/health``, ``/ready``, ``/metrics``) are not on the public
app at all: ``ops_app`` serves them, on the service's internal port
(``O2C_<SERVICE>_OPS_PORT``, see ``libs.runtime.host.serve``), which is never published
through the gateway or a Kubernetes Service. The public port answers 404 for them.

Outages (``libs.runtime.outages``: the database restarting, unreachable, out of
connections, or locked too long) answer 503 with ``Retry-After``, never 500.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
import uuid
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
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.runtime import openapi_doc
from libs.runtime.auth import PRINCIPAL_SCOPE_KEY
from libs.runtime.errors import DomainError
from libs.runtime.exports import Exports
from libs.runtime.metrics import HttpMetrics
from libs.runtime.outages import RETRY_AFTER_SECONDS, is_outage
from libs.store.errors import ConcurrencyError, IdempotencyConflict
from libs.telemetry import context, tracing
from libs.telemetry.logs import access

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


_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,200}")
"""An ``X-Request-ID`` worth keeping: 1 to 200 visible ASCII characters."""


def _request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class Boundary:
    """Pure ASGI middleware around every route: the request's ids, one log line and one
    histogram sample per request, every answer private; a NUL in the path is a 422 problem.

    - ``X-Request-ID`` is taken from the request (or made up) and echoed back, with the
      request's ``X-Correlation-ID`` (``libs.telemetry.context``: the events the request
      appends carry it, and every log line of the request names both). The ids stay set
      in the request's task: the 500 line that ``ServerErrorMiddleware``, outside this
      one, logs for an unhandled error names them too.
    - The log line (logger ``o2c.access``) has the route template, method, path, status,
      duration, and the caller's key id and partner (never the secret).
    - ``o2c_http_request_duration_seconds`` is observed by route template, method, status.

    Pure ASGI, not ``BaseHTTPMiddleware``: that one runs the route in a task of its own
    and streams the answer back through a memory channel, which showed up in the orders
    profile. This only rewrites the ``http.response.start`` message on its way out.
    An exception no handler answers passes through (``ServerErrorMiddleware`` outside
    this one logs it and answers the 500 problem).
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        correlation = tracing.request_correlation()
        context.request_id.set(request_id)
        context.correlation_id.set(correlation)
        echoed = [(b"x-request-id", request_id.encode("ascii")),
                  (b"x-correlation-id", str(correlation).encode("ascii"))]
        status = 500

        async def send_private(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                _private_headers(headers)
                headers.raw.extend(echoed)
            await send(message)

        try:
            # A backstop for path ids; query values are validated per field
            # (libs.runtime.params), which names the bad parameter, and PostgreSQL's
            # bad-text errors map to 422 below.
            if "\x00" in scope["path"]:
                refusal = problem(422, "invalid-characters", "Invalid characters",
                                  "the path holds a NUL character")
                await refusal(scope, receive, send_private)
                return
            await self.app(scope, receive, send_private)
        finally:
            self._done(scope, status, time.perf_counter() - started)

    def _done(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self._metrics.observe(template, method, status, seconds)
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        access.info("request", extra={
            "method": method, "route": template, "path": scope["path"], "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "key_id": principal.key_id if principal is not None else None,
            "partner_id": principal.partner_id if principal is not None else None})


@cache
def _asyncapi_document() -> bytes:
    from libs.events.asyncapi import document

    return orjson.dumps(document())


def create_app(
    *,
    title: str,
    routers: Sequence[APIRouter],
    lifespan: Any = None,
) -> FastAPI:
    """The public app; its metrics registry (``app.state.metrics``) is served by ``ops_app``."""
    app = FastAPIOffline(title=title, lifespan=lifespan, default_response_class=FastJSONResponse,
                         redoc_url=None, static_url="/docs/static")
    openapi_doc.install(app)
    metrics = CollectorRegistry()
    app.state.metrics = metrics
    app.add_middleware(Exports)  # inside the Boundary: added first, so it runs after it
    app.add_middleware(Boundary, metrics=HttpMetrics(metrics))

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

    for router in routers:
        app.include_router(router)
    return app


def ops_app(
    *,
    ready_check: Callable[[], Awaitable[dict[str, bool]]],
    registry: CollectorRegistry,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """The operational endpoints, for the internal port only (no key: see the module doc).

    - ``/health``: the process answers (liveness);
    - ``/ready``: the database and the broker are reachable and the background tasks run
      (503 otherwise);
    - ``/metrics``: Prometheus text of ``registry`` (``libs.runtime.metrics``), after
      ``before_scrape`` (figures read from the database).
    """

    async def health(_: Request) -> Response:
        return FastJSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        checks = await ready_check()
        return FastJSONResponse({"ready": all(checks.values()), "checks": checks},
                                status_code=200 if all(checks.values()) else 503)

    async def prometheus(_: Request) -> Response:
        if before_scrape is not None:
            try:
                await before_scrape()
            except Exception:  # the database away: the in-memory figures still answer
                log.warning("metrics: reading the database failed", exc_info=True)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/health", health), Route("/ready", ready),
                             Route("/metrics", prometheus)])
