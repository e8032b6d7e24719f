"""Audit: the archived events with their hashes, and verification of every store."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from libs.runtime.errors import DomainError
from libs.runtime.http import FastJSONResponse
from libs.runtime.openapi_doc import answers
from libs.runtime.params import QueryText
from services.projections.api.deps import Auditor, Ctx
from services.projections.api.schemas import AuditPage, SystemVerification
from services.projections.application import views
from services.projections.application.verify import PeerAudit, verify_everything

Publisher = Literal["partners", "orders", "credit", "delivery", "rebates"]
MAX_SEQ = 2**63 - 1
_SEQ = re.compile(r"[0-9]{1,19}")


def _cursor(after: int, cursor: str | None) -> int:
    if cursor is None:
        return after
    # ASCII digits only: str.isdigit() also admits superscripts ("\u00b3"), which int() refuses
    if not _SEQ.fullmatch(cursor) or int(cursor) > MAX_SEQ:
        raise DomainError("the cursor is not one this service gave out", slug="bad-cursor")
    return int(cursor)


def audit_routes(peers: PeerAudit) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get("/v1/audit/events", **answers(AuditPage))
    async def audit_events(
        ctx: Ctx, _: Auditor,
        service: Publisher | None = None,
        stream_id: QueryText = None,
        correlation_id: uuid.UUID | None = None,
        after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
        cursor: Annotated[str | None, Query(max_length=20)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Response:
        """Archived events in arrival order after the cursor ``after`` (a ``received_seq``)."""
        async with ctx.db.read() as conn:
            page = await views.audit_events(conn, service=service, stream_id=stream_id,
                                            correlation_id=correlation_id,
                                            after=_cursor(after, cursor), limit=limit)
        return FastJSONResponse(page)  # as ``AuditPage`` renders it (``views.audit_item``)

    @router.get("/v1/audit/verify", **answers(SystemVerification))
    async def audit_verify(request: Request, ctx: Ctx, _: Auditor) -> dict[str, Any]:
        """Verify every service's store and the archive: any altered, forged or removed event is
        named. Each publisher's seal head is anchored here for the next verification."""
        return await verify_everything(ctx, peers, request.headers.get("authorization"))

    return router
