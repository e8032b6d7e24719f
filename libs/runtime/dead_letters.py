"""``/internal/dead-letters``: an operator reaches one service's dead letters over HTTP.

Every service mounts ``dead_letter_router()``; ``o2c dlq`` calls it on each
service with the admin key. Why HTTP and not the database: a redrive must run
the service's own handlers, in the process whose consumer holds the stream
locks, so it is the running consumer (``app.state.consumer``) that re-applies
its dead letters from its own table (``Consumer.redrive``). Nothing goes back
on a topic, so no other group sees a redriven event and no redrive reads its
own output.

Roles: ``admin`` and ``auditor`` read; only ``admin`` redrives or discards
(a discard records the caller and the reason). Errors are problem+json.

``consumer_metrics`` exposes the consumer's counters on ``/metrics``: events by
outcome, gap alarms, and streams parked right now.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field

from libs.messaging import dlq, held
from libs.messaging.consumer import Consumer
from libs.runtime.auth import Principal, require
from libs.runtime.errors import NotFound
from libs.runtime.http import RequestModel

READ_ROLES = ("admin", "auditor")
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Operator = Annotated[Principal, Depends(require("admin"))]


class RedriveRequest(RequestModel):
    ids: list[uuid.UUID] | None = Field(
        None, max_length=1000, description="Only these dead letters (default: every unresolved one).")


class DiscardRequest(RequestModel):
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S",
                        description="Why it is never to be applied (recorded).")


def _consumer(request: Request) -> Consumer:
    return request.app.state.consumer


def dead_letter_router() -> APIRouter:
    """List, show, redrive and discard this service's dead letters (see the module doc)."""
    router = APIRouter(prefix="/internal/dead-letters", tags=["dead letters"])

    @router.get("")
    async def list_dead_letters(
        request: Request,
        _: Reader,
        everything: Annotated[bool, Query(alias="all", description="Resolved ones too.")] = False,
    ) -> dict[str, Any]:
        """This consumer's unresolved dead letters, and its streams waiting on a gap."""
        consumer = _consumer(request)
        async with consumer.db.read() as conn:
            letters = await dlq.listed(conn, consumer.name, everything=everything)
            waiting = await held.waiting_streams(conn, consumer.name)
        return {"consumer": consumer.name, "dead_letters": letters,
                "waiting_streams": [w.as_dict() for w in waiting]}

    @router.get("/{event_id}")
    async def show_dead_letter(request: Request, event_id: uuid.UUID, _: Reader) -> dict[str, Any]:
        """One dead letter with the message it holds."""
        consumer = _consumer(request)
        async with consumer.db.read() as conn:
            letter = await dlq.shown(conn, consumer.name, event_id)
        if letter is None:
            raise NotFound(f"no dead letter {event_id} in {consumer.name}")
        return {"consumer": consumer.name, **letter}

    @router.post("/redrive")
    async def redrive(request: Request, body: RedriveRequest, _: Operator) -> dict[str, Any]:
        """Re-apply dead letters in this consumer only, in stream order (see ``Consumer.redrive``)."""
        consumer = _consumer(request)
        report = await consumer.redrive(body.ids)
        return {"consumer": consumer.name, **report.as_dict()}

    @router.post("/{event_id}/discard")
    async def discard(request: Request, event_id: uuid.UUID, body: DiscardRequest,
                      principal: Operator) -> dict[str, Any]:
        """Resolve a dead letter as never to be applied; the caller and reason are recorded."""
        consumer = _consumer(request)
        if not await consumer.discard(event_id, reason=body.reason, actor=principal.actor):
            raise NotFound(f"no unresolved dead letter {event_id} in {consumer.name}")
        return {"consumer": consumer.name, "discarded": str(event_id), "by": principal.actor}

    return router


class ConsumerMetrics(Collector):
    """The consumer's counters, read at scrape time."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        consumer = self._consumer
        events = CounterMetricFamily("o2c_consumer_events", "Events by outcome",
                                     labels=["consumer", "outcome"])
        for outcome, count in consumer.outcomes.items():
            events.add_metric([consumer.name, outcome.value], count)
        yield events
        alarms = CounterMetricFamily(
            "o2c_consumer_gap_alarms", "Stream gaps that outlived their bound and the healing",
            labels=["consumer"])
        alarms.add_metric([consumer.name], consumer.gap_alarms)
        yield alarms
        parked = GaugeMetricFamily("o2c_consumer_parked_streams",
                                   "Streams parked on a gap right now", labels=["consumer"])
        parked.add_metric([consumer.name], consumer.parked_streams)
        yield parked
