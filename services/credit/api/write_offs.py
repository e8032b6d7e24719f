"""Write-offs above the residue threshold: a second finance key approves, or finance rejects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from libs.runtime import documents
from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, Limit, PathId, QueryText
from services.credit.api.deps import Ctx, Finance, Reader, Settings
from services.credit.api.schemas import (
    InvoiceWithWriteOff,
    ReasonBody,
    WriteOff,
    WriteOffPage,
    WriteOffStatus,
)
from services.credit.application import commands
from services.credit.application.read_models import WRITE_OFF
from services.credit.domain.errors import WriteOffNotFound

router = APIRouter(tags=["write-offs"])


@router.get("/v1/write-offs", **answers(WriteOffPage))
async def list_write_offs(
    principal: Reader, ctx: Ctx, partner_id: QueryText = None, status: WriteOffStatus | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Write-offs (``status=proposed`` lists those awaiting a second finance key)."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, WRITE_OFF, partner_id=principal.scoped(partner_id), status=status,
                                    cursor=cursor, limit=limit)


@router.get("/v1/write-offs/{write_off_id}", **answers(WriteOff))
async def get_write_off(write_off_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """One write-off: amount, reason, status and who proposed and decided it."""
    async with ctx.db.read() as conn:
        return await documents.get_visible(conn, WRITE_OFF, write_off_id, principal,
                                           WriteOffNotFound(write_off_id))


@router.post("/v1/write-offs/{write_off_id}/approve", response_model=InvoiceWithWriteOff)
async def approve_write_off(write_off_id: PathId, _: Finance, command: IdempotentCommand,
                  settings: Settings) -> Response:
    """A finance key other than the proposer's approves a proposed write-off (403 ``same-approver``
    for the proposer); it is written off at once. Answers the invoice with its ``write_off``."""
    return await command.run(lambda unit: commands.decide_proposed_write_off(unit, write_off_id, settings))


@router.post("/v1/write-offs/{write_off_id}/reject", response_model=InvoiceWithWriteOff)
async def reject_write_off(write_off_id: PathId, body: ReasonBody, _: Finance, command: IdempotentCommand,
                 settings: Settings) -> Response:
    """Reject a proposed write-off, with a reason; the invoice stays open."""
    return await command.run(lambda unit: commands.decide_proposed_write_off(
        unit, write_off_id, settings, reject_reason=body.reason), body)
