"""Structured logs: one JSON object per line (or a readable line on a terminal).

Every service logs through the standard ``logging`` module; ``configure`` gives
the root logger one handler whose formatter writes each record as one JSON object:
``timestamp`` (UTC), ``level``, ``logger``, ``service``, ``event`` (the message),
the ``extra`` fields of the call, ``exception`` (a traceback), and the request and
correlation ids of the work in hand (``libs.telemetry.context``).
``format="console"`` renders the same fields for a human through structlog's
console renderer (``o2c up`` on a terminal). Libraries that chatter at INFO (aiokafka's
group and metadata messages, httpx's request lines) are held at WARNING.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
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


_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: the fields ``configure`` documents, plus the record's
    ``extra`` ones. Written by hand, not through structlog's processor chain: the request
    line is written for every request, and this is several times cheaper."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(), "logger": record.name, "service": self._service,
            "event": record.getMessage()}
        request, correlation = context.request_id.get(), context.correlation_id.get()
        if request is not None:
            line["request_id"] = request
        if correlation is not None:
            line["correlation_id"] = str(correlation)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode("utf-8")


def _service(name: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event["service"] = name
        return event

    return add


def configure(service: str, *, format: LogFormat = "json", level: str = "INFO",
              stream: IO[str] | None = None) -> None:
    """Route every ``logging`` record of this process through one structured handler (on
    ``stream``, default standard error)."""
    formatter: logging.Formatter
    if format == "json":
        formatter = JsonFormatter(service)
    else:
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
                _add_ids, _service(service)],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())])
    # Nothing here prints the thread, process or source line: skip collecting them
    # (the logging HOWTO's "Optimization").
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


access = logging.getLogger(ACCESS_LOGGER)
"""One line per request, written by the HTTP boundary (``libs.runtime.http``)."""
