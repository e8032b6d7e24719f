"""Traces: OpenTelemetry spans for HTTP, SQL and the events between services, over OTLP.

Nothing is installed unless an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, the standard variables; the exporter reads
the others, headers and timeouts, by itself). Then ``install`` sets a tracer provider
with a batching OTLP/HTTP exporter, instruments the FastAPI app and the service's
SQLAlchemy engines, and the relay and the consumer carry the trace across Kafka.
Without an endpoint the OpenTelemetry packages are not even imported, and the
relay and consumer skip the header work (``tracer is None``): tracing costs nothing.

**One trace per conversation: the trace id is the correlation id** (both 128 bits).
A request starts a trace (or continues the caller's ``traceparent``) and takes its
correlation id from the trace id, so every event it appends carries it. The relay
publishes each event with a ``traceparent`` header in that trace (a ``publish`` span
whose parent is the event: span id = the low 64 bits of its event id); a consumer
continues the trace from the header (a ``process`` span around the handler; from the
envelope itself when the event comes from elsewhere, a redrive or a release), and
reactions append with the same correlation id, so each next hop joins the same
trace. One order's spans in orders, credit, delivery, rebates and projections share
one trace id, which is its correlation id.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from libs.telemetry import context

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from libs.events.envelope import Envelope

tracer: Tracer | None = None
"""The process's tracer once ``install`` ran with an exporter; None: tracing is off."""

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_LOW_64 = (1 << 64) - 1


def configured() -> bool:
    """Whether an OTLP endpoint is configured in the environment."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def install(service: str, app: FastAPI | None = None, engines: Sequence[AsyncEngine] = (),
            exporter: SpanExporter | None = None) -> bool:
    """Trace this process when an endpoint is configured (or ``exporter`` is given: tests).

    Returns whether tracing is on. Installing twice in one process (tests) keeps the
    first provider and instruments what is new."""
    global tracer
    if exporter is None and not configured() and tracer is None:
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": f"o2c-{service}"}))
        trace.set_tracer_provider(provider)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif tracer is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("o2c")
    if app is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                           excluded_urls="/health,/ready,/metrics")
    for engine in {id(engine): engine for engine in engines}.values():
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)
    return True


def uninstall() -> None:
    """Stop tracing new work in this process (tests; instrumented apps and engines stay so)."""
    global tracer
    tracer = None


def request_correlation() -> uuid.UUID:
    """A request's correlation id: its trace id when tracing, else a fresh one."""
    if tracer is not None:
        from opentelemetry import trace

        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            return uuid.UUID(int=span.trace_id)
    return uuid.uuid4()


def _event_context(envelope: Envelope) -> Any:
    """A remote parent for spans about ``envelope``: its conversation's trace, the event as span."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = SpanContext(trace_id=envelope.correlation_id.int,
                         span_id=(envelope.event_id.int & _LOW_64) or 1, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def publish_headers(envelope: Envelope, topic: str) -> list[tuple[str, bytes]]:
    """The ``traceparent`` header to publish ``envelope`` with (none while tracing is off)."""
    if tracer is None:
        return []
    from opentelemetry.propagate import inject
    from opentelemetry.trace import SpanKind

    carrier: dict[str, str] = {}
    with tracer.start_as_current_span(
            f"publish {topic}", context=_event_context(envelope), kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                        "messaging.message.id": str(envelope.event_id),
                        "o2c.event_type": envelope.event_type,
                        "o2c.stream_id": envelope.stream_id}):
        inject(carrier)
    return [(name, value.encode("ascii")) for name, value in carrier.items()]


@contextlib.contextmanager
def consuming(envelope: Envelope, consumer: str,
              headers: Sequence[tuple[str, bytes]] | None = None) -> Iterator[None]:
    """Around one event's handler: its correlation id for the log lines, and when tracing,
    a ``process`` span continuing the trace of the ``traceparent`` header (or the event's)."""
    token = context.correlation_id.set(envelope.correlation_id)
    try:
        if tracer is None:
            yield
            return
        from opentelemetry.propagate import extract
        from opentelemetry.trace import SpanKind

        carrier = {name: value.decode("ascii", "replace") for name, value in headers or ()
                   if name in ("traceparent", "tracestate")}
        parent = extract(carrier) if "traceparent" in carrier else _event_context(envelope)
        with tracer.start_as_current_span(
                f"process {envelope.event_type}", context=parent, kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "kafka", "messaging.consumer.group.name": consumer,
                            "messaging.message.id": str(envelope.event_id),
                            "o2c.stream_id": envelope.stream_id}):
            yield
    finally:
        context.correlation_id.reset(token)
