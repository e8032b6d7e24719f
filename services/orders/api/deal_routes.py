"""Deal registration (报备): partners register end-customer deals, sales approves or rejects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from libs.runtime.idempotency import Command, IdempotentCommand, replay_id
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, PathId, QueryText
from services.orders.api.deps import Channel, Ctx, Limit, Orderer, Sales
from services.orders.api.order_routes import acting_partner
from services.orders.api.schemas import Deal, DealApprovalIn, DealIn, DealPage, RejectIn
from services.orders.application import deals
from services.orders.domain.deals import RegisterDeal
from services.orders.domain.errors import DealConflict

router = APIRouter(tags=["deals"])
DealStatus = Literal["pending", "approved", "rejected", "refused"]


@router.post("/v1/deals", status_code=201, response_model=Deal)
async def register_deal(body: DealIn, principal: Orderer, command: IdempotentCommand) -> Response:
    """Register an end-customer deal (pending until sales decides). Another partner's pending or
    approved, unexpired deal for the same end customer and any of the same products refuses it:
    409 deal-conflict, recorded as a channel conflict (``GET /v1/deals?status=refused``)."""
    replayed = replay_id(deals.CONFLICTS_NAMESPACE, command)
    registration = RegisterDeal(
        deal_id=deals.new_deal_id(replayed), partner_id=acting_partner(principal, body.partner_id),
        end_customer=body.end_customer, lines=[(line.sku, line.qty) for line in body.lines],
        expires_on=body.expires_on, customer_code=body.customer_code)
    try:
        return await command.run(lambda unit: deals.register_deal(unit, registration), body)
    except DealConflict as refusal:
        await deals.record_conflict(command.ctx, refusal.conflict, principal.actor, replayed)
        raise


@router.post("/v1/deals/{deal_id}/approve", response_model=Deal)
async def approve_deal(deal_id: PathId, body: DealApprovalIn, _: Sales, command: Command) -> Response:
    """Approve a pending deal with a deal price for each of its products (never below a
    product's minimum price: 422 below-minimum-price)."""
    prices = [(line.sku, line.unit_price_minor) for line in body.lines]
    return await command.run(lambda unit: deals.approve_deal(unit, deal_id, prices), body)


@router.post("/v1/deals/{deal_id}/reject", response_model=Deal)
async def reject_deal(deal_id: PathId, body: RejectIn, _: Sales, command: Command) -> Response:
    """Reject a pending deal with a reason; its prices never apply."""
    return await command.run(lambda unit: deals.reject_deal(unit, deal_id, body.reason), body)


@router.get("/v1/deals", **answers(DealPage))
async def list_deals(ctx: Ctx, principal: Channel, partner_id: QueryText = None,
                     status: Annotated[DealStatus | None, Query()] = None, limit: Limit = 50,
                     cursor: Cursor = None) -> dict[str, Any]:
    """Deals by partner and status; ``status=refused`` lists the recorded channel conflicts. A
    partner key gets its own only."""
    return await deals.list_deals(ctx, principal, partner_id=partner_id, status=status,
                                  cursor=cursor, limit=limit)


@router.get("/v1/deals/{deal_id}", **answers(Deal))
async def get_deal(deal_id: PathId, ctx: Ctx, principal: Channel) -> dict[str, Any]:
    """One deal, with ``expired`` as of today; another partner's answers 404."""
    return await deals.get_deal(ctx, principal, deal_id)
