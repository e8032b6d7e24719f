"""The views: an order's timeline and the partner 360 (the reports are in ``api.reports``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from libs.runtime.auth import Authenticated
from libs.runtime.errors import NotFound
from libs.runtime.http import FastJSONResponse
from libs.runtime.openapi_doc import answers
from libs.runtime.params import PathId, QueryDate
from services.projections.api.deps import Ctx
from services.projections.api.schemas import OrderTimeline, Partner360
from services.projections.application import reports, views

router = APIRouter(tags=["views"])


@router.get("/v1/views/orders/{order_id}/timeline", **answers(OrderTimeline))
async def order_timeline(order_id: PathId, ctx: Ctx, principal: Authenticated) -> Response:
    """Every event of the order across all services, parents before the reactions they caused."""
    async with ctx.db.read() as conn:
        timeline = await views.order_timeline(conn, order_id)
    if timeline is None or not principal.sees(timeline.partner_id):
        raise NotFound(f"no order {order_id}")
    # as ``OrderTimeline`` renders it: the events are built field by field (``views.event_item``)
    return FastJSONResponse({"order_id": order_id, "partner_id": timeline.partner_id,
                             "events": timeline.events})


@router.get("/v1/views/partners/{partner_id}", response_model=Partner360)
async def partner_360(
    partner_id: PathId, ctx: Ctx, principal: Authenticated, as_of: QueryDate = None,
) -> dict[str, Any]:
    """A partner's orders, sales, exposure, balance, overdue amount and rebates; with ``as_of``,
    as the books stood at the end of that day (its balance is the statement's closing balance
    for that day; see ``docs/reports.md``)."""
    if not principal.sees(partner_id):
        raise NotFound(f"no partner {partner_id}")
    async with ctx.db.read() as conn:
        if as_of is not None:
            view = await reports.partner_view_at(conn, ctx.registry, partner_id, as_of)
        else:
            view = await views.partner_view(conn, partner_id, ctx.today())
    if view is None:
        raise NotFound(f"no partner {partner_id}")
    return view
