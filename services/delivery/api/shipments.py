"""``/v1/shipments``: what approved orders ship, dispatches and proof of delivery."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response

from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.params import Cursor, PathId, QueryText
from services.delivery.api.deps import AnyRole, Ctx, Limit, Warehouse
from services.delivery.api.schemas import DeliverIn, DispatchIn, ShipmentOut, ShipmentPage
from services.delivery.application.shipments import (
    deliver,
    dispatch,
    shipment_page,
    shipment_seen_by,
)

router = APIRouter(prefix="/v1/shipments", tags=["shipments"])


@router.get("", response_model=ShipmentPage)
async def list_shipments(
    ctx: Ctx, principal: AnyRole, order_id: QueryText = None, partner_id: QueryText = None,
    status: Literal["pending", "partially_dispatched", "dispatched", "delivered", "cancelled"]
    | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Staff see every shipment (filter by ``partner_id``); a partner key only its own."""
    async with ctx.db.read() as conn:
        return await shipment_page(conn, principal, order_id=order_id, status=status,
                                   partner_id=partner_id, cursor=cursor, limit=limit)


@router.get("/{shipment_id}", response_model=ShipmentOut)
async def get_shipment(shipment_id: PathId, ctx: Ctx, principal: AnyRole) -> dict[str, Any]:
    """One shipment: what was dispatched and remains, its dispatches and proof of delivery."""
    async with ctx.db.read() as conn:
        return await shipment_seen_by(conn, principal, shipment_id)


@router.post("/{shipment_id}/dispatch", response_model=ShipmentOut)
async def dispatch_shipment(shipment_id: PathId, body: DispatchIn, _: Warehouse,
                            command: IdempotentCommand) -> Response:
    """Ship all or part of what remains; more than remains of a sku (or a sku not on the
    shipment) answers 409 ``exceeds-remaining``. Each dispatch is invoiced on its date."""
    return await command.run(lambda unit: dispatch(
        unit, shipment_id, lines=body.quantities(), carrier=body.carrier, tracking_no=body.tracking_no),
        body)


@router.post("/{shipment_id}/deliver", response_model=ShipmentOut)
async def deliver_shipment(shipment_id: PathId, body: DeliverIn, _: Warehouse,
                           command: IdempotentCommand) -> Response:
    """Proof of delivery, only once the shipment was dispatched completely (else 409)."""
    return await command.run(lambda unit: deliver(
        unit, shipment_id, delivered_at=body.delivered_at, signed_by=body.signed_by), body)
