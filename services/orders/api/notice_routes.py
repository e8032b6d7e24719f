"""Price-change notices: a partner reads and acknowledges its own; sales sees who has not."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from libs.runtime.idempotency import Command
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, PathId, QueryText
from services.orders.api.deps import Channel, Ctx, Limit, Partner
from services.orders.api.schemas import PriceNotice, PriceNoticePage
from services.orders.application import notices

router = APIRouter(tags=["price notices"])


@router.get("/v1/price-notices", **answers(PriceNoticePage))
async def list_price_notices(
    ctx: Ctx, principal: Channel, partner_id: QueryText = None, tier: QueryText = None,
    version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    acknowledged: Annotated[bool | None, Query()] = None, limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Notices of future price-list versions, one per partner of the tier; ``acknowledged=false``
    lists who has not acknowledged. A partner key gets its own only."""
    return await notices.list_notices(ctx, principal, partner_id=partner_id, tier=tier,
                                      version=version, acknowledged=acknowledged, cursor=cursor,
                                      limit=limit)


@router.get("/v1/price-notices/{notice_id}", **answers(PriceNotice))
async def get_price_notice(notice_id: PathId, ctx: Ctx, principal: Channel) -> dict[str, Any]:
    """One notice and whether it is acknowledged; another partner's answers 404."""
    return await notices.get_notice(ctx, principal, notice_id)


@router.post("/v1/price-notices/{notice_id}/acknowledge", response_model=PriceNotice)
async def acknowledge_price_notice(notice_id: PathId, _: Partner, command: Command) -> Response:
    """The partner acknowledges its notice (again: no change); another partner's answers 404."""
    return await command.run(lambda unit: notices.acknowledge(unit, notice_id))
