"""Request ids and the request's log lines, the internal port's endpoints and metrics, and a
trace carried across Kafka by the relay and a consumer (real broker, both databases)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.events.base import EventMetadata
from libs.events.partners import KeyIssued
from libs.runtime.auth import hash_secret, store_key
from libs.runtime.http import create_app
from libs.store.database import Database
from libs.telemetry import context, logs, tracing
from services.orders.app import SPEC as ORDERS
from tests.conftest import wait_until
from tests.libs.sample_events import CounterIncremented
from tests.libs.test_relay_consumer import Harness, _harness
from tests.service_support import running


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of this process, as the services write them (JSON), while the test runs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("test", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _app_with_a_chatty_route() -> Any:
    router = APIRouter()

    @router.get("/v1/chatty")
    async def chatty() -> dict[str, str]:
        logging.getLogger("tests.route").warning("working on it")
        return {"ok": "yes"}

    @router.get("/v1/broken")
    async def broken() -> dict[str, str]:
        raise RuntimeError("a bug")

    return create_app(title="t", routers=[router])


async def test_every_line_of_a_request_carries_its_request_and_correlation_ids(
        log_lines: io.StringIO) -> None:
    app = _app_with_a_chatty_route()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        sent = await client.get("/v1/chatty", headers={"X-Request-ID": "req-42"})
        made_up = await client.get("/v1/chatty")
        refused = await client.get("/v1/chatty", headers={"X-Request-ID": "bad id with spaces"})
        failed = await client.get("/v1/broken", headers={"X-Request-ID": "req-500"})

    assert sent.headers["x-request-id"] == "req-42"
    assert len(made_up.headers["x-request-id"]) == 32
    assert refused.headers["x-request-id"] not in ("bad id with spaces", made_up.headers["x-request-id"])
    correlations = {r.headers["x-correlation-id"] for r in (sent, made_up, refused)}
    assert len(correlations) == 3 and all(uuid.UUID(c) for c in correlations)

    lines = parsed(log_lines)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        assert line.get("request_id") and line.get("correlation_id"), line
        by_request.setdefault(line["request_id"], []).append(line)
    mine = by_request["req-42"]
    assert [line["event"] for line in mine] == ["working on it", "request"]
    assert {line["correlation_id"] for line in mine} == {sent.headers["x-correlation-id"]}
    access = mine[-1]
    assert access["logger"] == "o2c.access" and access["service"] == "test"
    assert (access["route"], access["method"], access["status"]) == ("/v1/chatty", "GET", 200)
    assert access["duration_ms"] >= 0
    # the unhandled error's traceback line (logged outside the boundary) names the request too
    assert failed.status_code == 500
    assert {line["event"] for line in by_request["req-500"]} >= {
        "unhandled error on GET /v1/broken", "request"}


async def test_the_request_line_names_the_key_and_partner_never_the_secret(
        db: Database, log_lines: io.StringIO) -> None:
    async with running(ORDERS, db) as orders:
        async with db.transaction() as conn:
            await store_key(conn, KeyIssued(key_id="key-p1", role="partner", partner_id="ptn_1",
                                            name=None, secret_sha256=hash_secret("s3cret-p1")),
                            "2026-01-01T00:00:00.000000Z")
        await orders.ctx.keyring.refresh()
        answer = await orders.client.get("/v1/orders/ord_nothing",
                                         headers={"Authorization": "Bearer s3cret-p1"})
    assert answer.status_code == 404
    assert "s3cret-p1" not in log_lines.getvalue()
    (line,) = [line for line in parsed(log_lines)
               if line["event"] == "request" and line["request_id"] == answer.headers["x-request-id"]]
    assert (line["route"], line["status"], line["key_id"], line["partner_id"]) == (
        "/v1/orders/{order_id}", 404, "key-p1", "ptn_1")


async def test_operational_endpoints_answer_on_the_internal_port_only(db: Database) -> None:
    async with running(ORDERS, db) as orders:
        for path in ("/health", "/ready", "/metrics"):
            assert (await orders.client.get(path)).status_code == 404, path
        assert (await orders.ops.get("/health")).json() == {"status": "ok"}
        assert (await orders.ops.get("/ready")).json()["checks"]["database"] is True
        for _ in range(3):
            await orders.client.get("/v1/orders/ord_x", headers={"Authorization": "Bearer nope"})
        await orders.client.get("/no/such/path")
        text = (await orders.ops.get("/metrics")).text
    assert ('o2c_http_request_duration_seconds_count{method="GET",route="/v1/orders/{order_id}",'
            'status="401"} 3.0') in text
    # /health, /ready, /metrics and /no/such/path on the public port: no route template
    assert 'o2c_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 4.0' \
        in text
    for series in ("o2c_consumer_events_total", "o2c_consumer_lag_messages",
                   "o2c_consumer_parked_streams", "o2c_consumer_dead_letters",
                   "o2c_events_appended_total",
                   "o2c_snapshot_loads_total", "o2c_db_pool_in_use", "o2c_db_pool_open",
                   "o2c_relay_published_events_total", "process_cpu_seconds_total"):
        assert f"\n{series}" in text or f"# TYPE {series.removesuffix('_total')}" in text, series


def test_without_an_endpoint_no_tracing_code_is_even_imported() -> None:
    """(FastAPI itself imports the OpenTelemetry API when it is installed, and stays idle while
    no tracer provider is set; the SDK, the exporter and the instrumentations stay out.)"""
    probe = ("import sys, tempfile; from pathlib import Path\n"
             "from libs.telemetry import tracing\n"
             "from o2c.apps import service_app\n"
             "app = service_app('orders')\n"
             "assert tracing.install('orders', app) is False and tracing.tracer is None\n"
             "print(sorted(m for m in sys.modules if m.startswith(("
             "'opentelemetry.sdk', 'opentelemetry.instrumentation', 'opentelemetry.exporter'))))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.fixture
async def harness(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    async for h in _harness(db, broker_bootstrap):
        yield h


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.install("test", exporter=exporter)
    yield exporter
    tracing.uninstall()


async def test_one_trace_follows_an_event_from_the_relay_through_the_consumer(
        harness: Harness, spans: InMemorySpanExporter) -> None:
    correlation = uuid.uuid4()
    [appended] = await harness.store.append(
        "c-1", "counter", 0, [CounterIncremented(amount_minor=1)],
        EventMetadata(actor="test", correlation_id=correlation))
    consumer = harness.consumer()
    harness.start(harness.relay().run)
    harness.start(consumer.run)
    await wait_until(lambda: _applied(harness, consumer), 60, "the event to be applied")

    finished = spans.get_finished_spans()
    (publish,) = [s for s in finished if s.kind is SpanKind.PRODUCER]
    (process,) = [s for s in finished if s.kind is SpanKind.CONSUMER]
    assert publish.context.trace_id == process.context.trace_id == correlation.int
    assert publish.parent is not None and publish.parent.span_id == appended.event_id.int & (2**64 - 1)
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert process.name == f"process {CounterIncremented.TYPE}"


async def _applied(harness: Harness, consumer: Any) -> bool:
    await asyncio.sleep(0)
    return len(await harness.applied(consumer)) == 1


def test_the_console_format_is_one_readable_line_with_the_same_fields() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        logs.configure("orders", format="console", stream=stream)
        token = context.request_id.set("req-7")
        logs.access.info("request", extra={"route": "/v1/orders", "status": 201})
        context.request_id.reset(token)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    (line,) = stream.getvalue().splitlines()
    assert not line.startswith("{")
    for part in ("request", "route=/v1/orders", "status=201", "request_id=req-7", "service=orders"):
        assert part in line, line
