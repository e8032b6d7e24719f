"""Orders: a partner places and follows its own; staff place on a partner's behalf and read all."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from libs.runtime.auth import Principal
from libs.runtime.errors import DomainError
from libs.runtime.idempotency import Command, IdempotentCommand, replay_id
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, PathId, QueryText
from services.orders.api.deps import Anyone, Ctx, Limit, Orderer
from services.orders.api.schemas import CancelIn, Order, OrderIn, OrderPage
from services.orders.application import orders
from services.orders.domain.errors import PartnerNotFound, TerritoryViolation
from services.orders.domain.order import OrderStatus
from services.orders.domain.placement import PlaceOrder

router = APIRouter(tags=["orders"])


def acting_partner(principal: Principal, partner_id: str | None) -> str:
    """A partner key acts for itself (naming another partner answers 404); staff must name one."""
    if principal.is_partner:
        if principal.partner_id is None or partner_id not in (None, principal.partner_id):
            raise PartnerNotFound(f"partner {partner_id!r} is not known")
        return principal.partner_id
    if partner_id is None:
        raise DomainError("staff must give the partner_id they act for", slug="partner-id-required")
    return partner_id


@router.post("/v1/orders", status_code=201, response_model=Order)
async def place_order(body: OrderIn, principal: Orderer, command: IdempotentCommand) -> Response:
    """Place an order: prices are fixed from the tier's price-list version in force today, or
    from the approved deal it cites (``deal_id``).

    Refusals: 404 partner-not-found, 403 partner-not-active, 422 unknown-sku,
    territory-violation (recorded against the partner), category-not-authorised,
    404 deal-not-found, 422 deal-not-approved, deal-expired, sku-not-in-deal,
    below-minimum-price.
    """
    placement = PlaceOrder(
        order_id=orders.new_order_id(), partner_id=acting_partner(principal, body.partner_id),
        partner_ref=body.partner_ref, lines=[(line.sku, line.qty) for line in body.lines],
        ship_to_region=body.ship_to.region, ship_to_address=body.ship_to.address,
        deal_id=body.deal_id)
    try:
        return await command.run(lambda unit: orders.place_order(unit, placement), body)
    except TerritoryViolation as refusal:
        await orders.record_violation(command.ctx, refusal.violation, principal.actor,
                                      replay_id(orders.VIOLATIONS_NAMESPACE, command))
        raise


@router.get("/v1/orders", **answers(OrderPage))
async def list_orders(ctx: Ctx, principal: Anyone, partner_id: QueryText = None,
                      status: Annotated[OrderStatus | None, Query()] = None, limit: Limit = 50,
                      cursor: Cursor = None) -> dict[str, Any]:
    """Orders by partner and status; a partner key always gets its own only."""
    return await orders.list_orders(ctx, principal, partner_id=partner_id, status=status,
                                    cursor=cursor, limit=limit)


@router.get("/v1/orders/{order_id}", **answers(Order))
async def get_order(order_id: PathId, ctx: Ctx, principal: Anyone) -> dict[str, Any]:
    """One order with its lines, prices and status timeline; another partner's order answers 404."""
    return await orders.get_order(ctx, principal, order_id)


@router.post("/v1/orders/{order_id}/cancel", response_model=Order)
async def cancel_order(order_id: PathId, body: CancelIn, _: Orderer, command: Command) -> Response:
    """Cancel before any dispatch; 409 once dispatched, rejected, cancelled or delivered."""
    return await command.run(lambda unit: orders.cancel_order(unit, order_id, body.reason), body)
