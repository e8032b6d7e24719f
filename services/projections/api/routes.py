"""The views: an order's timeline, the partner 360, receivables aging, sales."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from libs.runtime.auth import Authenticated
from libs.runtime.errors import DomainError, NotFound
from libs.runtime.params import MaybeDate, PathId, QueryDate
from services.projections.api.deps import Ctx, FinanceReader, SalesReader
from services.projections.api.schemas import Aging, OrderTimeline, Partner360, Sales
from services.projections.application import views

router = APIRouter(tags=["views"])


@router.get("/v1/views/orders/{order_id}/timeline", response_model=OrderTimeline)
async def order_timeline(order_id: PathId, ctx: Ctx, principal: Authenticated) -> dict[str, Any]:
    """Every event of the order across all services, parents before the reactions they caused."""
    async with ctx.db.read() as conn:
        timeline = await views.order_timeline(conn, order_id)
    if timeline is None or not principal.sees(timeline.partner_id):
        raise NotFound(f"no order {order_id}")
    return {"order_id": order_id, "partner_id": timeline.partner_id, "events": timeline.events}


@router.get("/v1/views/partners/{partner_id}", response_model=Partner360)
async def partner_360(partner_id: PathId, ctx: Ctx, principal: Authenticated) -> dict[str, Any]:
    """A partner's orders, sales, exposure, balance, overdue amount and rebates."""
    if not principal.sees(partner_id):
        raise NotFound(f"no partner {partner_id}")
    async with ctx.db.read() as conn:
        view = await views.partner_view(conn, partner_id, ctx.today())
    if view is None:
        raise NotFound(f"no partner {partner_id}")
    return view


@router.get("/v1/views/receivables/aging", response_model=Aging)
async def receivables_aging(
    ctx: Ctx, _: FinanceReader, as_of: QueryDate = None,
) -> dict[str, Any]:
    """Open invoice amounts per partner at ``as_of`` (default today) by days past due."""
    day = as_of or ctx.today()
    async with ctx.db.read() as conn:
        return await views.aging_view(conn, day)


@router.get("/v1/views/sales", response_model=Sales)
async def sales(
    ctx: Ctx, _: SalesReader,
    group_by: Annotated[Literal["region", "tier", "sku", "month"], Query()],
    start: Annotated[MaybeDate, Query(alias="from")] = None,
    end: Annotated[MaybeDate, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Invoiced sales net of returns between ``from`` and ``to`` (inclusive), grouped."""
    if start and end and start > end:
        raise DomainError("from must not be after to", slug="validation",
                          errors=[{"field": "from", "message": "after to", "type": "range"}])
    async with ctx.db.read() as conn:
        return await views.sales_view(conn, group_by, start, end)
