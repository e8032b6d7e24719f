"""Metrics, logs and traces of the running system after a few orders went through.

The services export their spans over OTLP/HTTP to a collector played by this test: it
keeps them in memory, decoded with the OpenTelemetry protobuf classes.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.conftest import (
    System,
    body,
    ensure_product,
    eventually,
    issue_key,
    register_partner,
    running_system,
)

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Span:
    trace_id: str
    service: str
    name: str
    kind: int


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest.FromString(
                    self.rfile.read(int(self.headers["Content-Length"])))
                for resource in request.resource_spans:
                    service = next(a.value.string_value for a in resource.resource.attributes
                                   if a.key == "service.name")
                    for scope in resource.scope_spans:
                        collector.spans.extend(Span(s.trace_id.hex(), service, s.name, s.kind)
                                               for s in scope.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def services_in(self, trace_id: str) -> set[str]:
        return {span.service for span in list(self.spans) if span.trace_id == trace_id}


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def traced(request: pytest.FixtureRequest, collector: Collector,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    environment = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with running_system(request.param, tmp_path_factory.mktemp(f"o2c-obs-{request.param}"),
                        prefix="obs", extra_env=environment) as system:
        yield system


@dataclass(frozen=True)
class Placed:
    order_id: str
    request_id: str
    correlation_id: str


@pytest.fixture(scope="module")
def placed(traced: System) -> list[Placed]:
    """Three orders placed by a partner and approved (credit checked, stock allocated)."""
    partner = register_partner(traced, tier="O", region="east",
                               terms={"kind": "credit", "credit_limit_minor": 1_000_000,
                                      "term_days": 30})
    ensure_product(traced, "OBS-1", list_price=1_000, stock=100)
    key = issue_key(traced, "partner", partner["id"])
    orders = []
    with traced.client("orders", key) as client:
        for n in range(3):
            request_id = f"obs-{uuid.uuid4().hex[:8]}-{n}"
            answer = eventually(lambda n=n, r=request_id: client.post("/v1/orders", json={
                "partner_ref": f"OBS-{n}", "lines": [{"sku": "OBS-1", "qty": 1}],
                "ship_to": {"region": "east"}}, headers={"X-Request-ID": r}),
                lambda r: r.status_code == 201, what="orders to know the partner")
            assert answer.headers["x-request-id"] == request_id
            orders.append(Placed(answer.json()["id"], request_id, answer.headers["x-correlation-id"]))
        for order in orders:
            eventually(lambda o=order: body(client.get(f"/v1/orders/{o.order_id}"))["status"],
                       lambda s: s == "approved", what=f"order {order.order_id} approved")
    return orders


def samples(text: str, series: str) -> dict[str, float]:
    """``{labels: value}`` of one series in Prometheus text."""
    found = {}
    for match in re.finditer(rf"^{re.escape(series)}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
        found[match.group(1) or ""] = float(match.group(2))
    return found


def test_metrics_expose_every_series_with_values_after_a_few_orders(
        traced: System, placed: list[Placed]) -> None:
    scraped = {}
    for service in traced.urls:
        with traced.ops(service) as ops:
            scraped[service] = ops.get("/metrics").text
        with traced.client(service, "no-key") as public:
            assert public.get("/metrics").status_code == 404, service
    orders, credit = scraped["orders"], scraped["credit"]
    placements = samples(orders, "o2c_http_request_duration_seconds_count")
    assert placements['{method="POST",route="/v1/orders",status="201"}'] >= 3
    assert samples(orders, "o2c_http_request_duration_seconds_bucket")
    for service, text in scraped.items():
        appended = sum(samples(text, "o2c_events_appended_total").values())
        assert appended > 0 or service in ("rebates", "projections"), service  # nothing to do yet
        assert sum(samples(text, "process_cpu_seconds_total").values()) > 0, service
        assert samples(text, "o2c_db_pool_in_use") and samples(text, "o2c_db_pool_open"), service
        outcomes = samples(text, "o2c_consumer_events_total")
        assert outcomes[f'{{consumer="{service}",outcome="applied"}}'] > 0, service
        for outcome in ("duplicate", "ignored", "held", "dead"):  # skipped, and dead letters
            assert f'{{consumer="{service}",outcome="{outcome}"}}' in outcomes, (service, outcome)
        assert samples(text, "o2c_consumer_dead_letters") == {f'{{consumer="{service}"}}': 0.0}
    assert sum(samples(orders, "o2c_relay_published_events_total").values()) > 0
    assert '{relay="orders"}' in samples(orders, "o2c_relay_lag_events")
    assert '{relay="orders"}' in samples(orders, "o2c_relay_lag_seconds")
    assert samples(credit, "o2c_consumer_lag_messages"), "no partition lag of credit's consumer"
    loads = samples(credit, "o2c_snapshot_loads_total")
    assert sum(loads.values()) > 0, loads


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("{")]


def test_each_request_logs_one_line_with_its_ids_and_libraries_stay_quiet(
        traced: System, placed: list[Placed]) -> None:
    lines = log_lines(traced.supervisor.log_path("orders"))
    for order in placed:
        mine = [line for line in lines if line.get("request_id") == order.request_id]
        assert mine, f"no line of request {order.request_id}"
        assert {line["correlation_id"] for line in mine} == {order.correlation_id}
        (request,) = [line for line in mine if line["logger"] == "o2c.access"]
        assert (request["route"], request["status"]) == ("/v1/orders", 201)
        assert request["partner_id"] and request["key_id"] and request["duration_ms"] > 0
    for service in traced.urls:
        chatty = [line for line in log_lines(traced.supervisor.log_path(service))
                  if line["logger"].startswith("aiokafka") and line["level"] in ("debug", "info")]
        assert not chatty, chatty[:3]


def test_one_trace_follows_an_order_across_the_services(
        collector: Collector, traced: System, placed: list[Placed]) -> None:
    trace_id = uuid.UUID(placed[0].correlation_id).hex
    eventually(lambda: collector.services_in(trace_id),
               lambda services: {"o2c-orders", "o2c-credit", "o2c-delivery"} <= services,
               what="spans of orders, credit and delivery in the order's trace")
    mine = [span for span in collector.spans if span.trace_id == trace_id]
    assert any(s.service == "o2c-orders" and s.name == "POST /v1/orders" for s in mine), mine
    assert any(s.service == "o2c-credit" and s.name.startswith("process ") for s in mine), mine
    assert any(s.name.startswith("publish ") for s in mine)
