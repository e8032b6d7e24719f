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
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
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
