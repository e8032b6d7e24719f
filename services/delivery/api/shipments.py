"""``/v1/shipments``: what approved orders ship, dispatches and proof of delivery."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.runtime.aggregate import retry_on_conflict
from libs.runtime.idempotency import respond_once
from libs.runtime.params import Cursor, PathId, QueryText
from services.delivery.api.deps import AnyRole, Ctx, IdempotencyKey, Limit, Warehouse
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
    async with ctx.db.read() as conn:
        return await shipment_seen_by(conn, principal, shipment_id)


@router.post("/{shipment_id}/dispatch", response_model=ShipmentOut)
async def dispatch_shipment(
    shipment_id: PathId, body: DispatchIn, ctx: Ctx, principal: Warehouse,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ship all or part of what remains; more than remains of a sku (or a sku not on the
    shipment) answers 409 ``exceeds-remaining``. Each dispatch is invoiced on its date."""

    async def command(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 200, await dispatch(ctx, conn, principal.actor, shipment_id,
                                   lines=body.quantities(), carrier=body.carrier,
                                   tracking_no=body.tracking_no)

    return await retry_on_conflict(lambda: respond_once(
        ctx.db, principal, f"POST /v1/shipments/{shipment_id}/dispatch", idempotency_key, body,
        command))


@router.post("/{shipment_id}/deliver", response_model=ShipmentOut)
async def deliver_shipment(
    shipment_id: PathId, body: DeliverIn, ctx: Ctx, principal: Warehouse,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Proof of delivery, only once the shipment was dispatched completely (else 409)."""

    async def command(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return 200, await deliver(ctx, conn, principal.actor, shipment_id,
                                  delivered_at=body.delivered_at, signed_by=body.signed_by)

    return await retry_on_conflict(lambda: respond_once(
        ctx.db, principal, f"POST /v1/shipments/{shipment_id}/deliver", idempotency_key, body,
        command))
