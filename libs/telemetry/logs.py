"""Structured logs: one JSON object per line (or a readable line on a terminal).

Every service logs through the standard ``logging`` module; ``configure`` sends
every record through structlog's formatter, which adds the service, the level,
the logger, a UTC timestamp and the request and correlation ids of the work in
hand (``libs.telemetry.context``). ``format="console"`` renders the same fields
for a human (``o2c up`` on a terminal). Libraries that chatter at INFO (aiokafka's
group and metadata messages, httpx's request lines) are held at WARNING.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any, Literal

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from libs.telemetry import context

LogFormat = Literal["json", "console"]

QUIET = ("aiokafka", "kafka", "httpx", "httpcore", "asyncio")
"""Libraries whose INFO lines say nothing an operator needs: held at WARNING."""

ACCESS_LOGGER = "o2c.access"


def _add_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    request = context.request_id.get()
    if request is not None:
        event.setdefault("request_id", request)
    correlation = context.correlation_id.get()
    if correlation is not None:
        event.setdefault("correlation_id", str(correlation))
    return event


def _serialise(event: EventDict, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode("utf-8")


def _service(name: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event["service"] = name
        return event

    return add


def configure(service: str, *, format: LogFormat = "json", level: str = "INFO",
              stream: IO[str] | None = None) -> None:
    """Route every ``logging`` record of this process through one structured handler (on
    ``stream``, default standard error)."""
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        stamp,
        _add_ids,
        _service(service),
    ]
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
                     if format == "console" else
                     structlog.processors.JSONRenderer(serializer=_serialise))
    tail = [] if format == "console" else [structlog.processors.format_exc_info]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


access = logging.getLogger(ACCESS_LOGGER)
"""One line per request, written by the HTTP boundary (``libs.runtime.http``)."""
