"""Orders under funds review: finance releases or rejects held and awaiting orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from libs.runtime import documents
from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, Limit, PathId, QueryText
from services.credit.api.deps import Ctx, Finance, Reader
from services.credit.api.schemas import ReasonBody, Review, ReviewPage, ReviewStatus
from services.credit.application import commands
from services.credit.application.read_models import REVIEW
from services.credit.domain.errors import OrderNotFound

router = APIRouter(tags=["holds"])


@router.get("/v1/holds", **answers(ReviewPage))
async def list_reviews(
    principal: Reader, ctx: Ctx, partner_id: QueryText = None, status: ReviewStatus | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Orders credit reviewed (``status=held`` or ``awaiting_prepayment`` lists the queue)."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, REVIEW, partner_id=principal.scoped(partner_id), status=status,
                                    cursor=cursor, limit=limit)


@router.get("/v1/holds/{order_id}", **answers(Review))
async def get_review(order_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """An order's funds review: status, hold reason, how it passed and finance's decision."""
    async with ctx.db.read() as conn:
        return await documents.get_visible(conn, REVIEW, order_id, principal,
                                           OrderNotFound(order_id))


@router.post("/v1/holds/{order_id}/release", response_model=Review)
async def release_hold(order_id: PathId, body: ReasonBody, _: Finance,
                       command: IdempotentCommand) -> Response:
    """Release a held or awaiting order: it passes funds review (``how=released``), even over the limit."""
    return await command.run(lambda unit: commands.decide_hold(unit, order_id, body.reason, release=True),
                             body)


@router.post("/v1/holds/{order_id}/reject", response_model=Review)
async def reject_hold(order_id: PathId, body: ReasonBody, _: Finance, command: IdempotentCommand) -> Response:
    """Reject a held or awaiting order; it will not ship."""
    return await command.run(lambda unit: commands.decide_hold(unit, order_id, body.reason, release=False),
                             body)
