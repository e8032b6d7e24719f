"""``/v1/returns``: partners return goods of shipped orders; the warehouse receives and inspects them."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response

from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.params import Cursor, PathId, QueryText
from services.delivery.api.deps import AnyRole, Ctx, Limit, ReturnRequester, Warehouse
from services.delivery.api.schemas import (
    InspectReturnIn,
    ReceiveReturnIn,
    ReturnIn,
    ReturnOut,
    ReturnPage,
)
from services.delivery.application.returns import (
    inspect_return,
    receive_return,
    request_return,
    return_page,
    return_seen_by,
)

router = APIRouter(prefix="/v1/returns", tags=["returns"])


@router.post("", status_code=201, response_model=ReturnOut)
async def create_return(body: ReturnIn, _: ReturnRequester, command: IdempotentCommand) -> Response:
    """Ask to return goods of an order (a partner: its own orders only). Per sku at most what
    was dispatched minus what earlier returns claimed, else 409 ``exceeds-returnable``."""
    return await command.run(lambda unit: request_return(
        unit, order_id=body.order_id, lines=body.quantities(), reason=body.reason, kind=body.kind), body)


@router.get("", response_model=ReturnPage)
async def list_returns(
    ctx: Ctx, principal: AnyRole, order_id: QueryText = None, partner_id: QueryText = None,
    status: Literal["requested", "received", "inspected", "replacement_shipped", "repaired_shipped"]
    | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Returns by order, partner and status; a partner key lists its own only."""
    async with ctx.db.read() as conn:
        return await return_page(conn, principal, order_id=order_id, status=status,
                                 partner_id=partner_id, cursor=cursor, limit=limit)


@router.get("/{return_id}", response_model=ReturnOut)
async def get_return(return_id: PathId, ctx: Ctx, principal: AnyRole) -> dict[str, Any]:
    """One return: what was requested, received and inspected, and its shipments."""
    async with ctx.db.read() as conn:
        return await return_seen_by(conn, principal, return_id)


@router.post("/{return_id}/receive", response_model=ReturnOut)
async def receive(return_id: PathId, body: ReceiveReturnIn, _: Warehouse,
                  command: IdempotentCommand) -> Response:
    """The goods arrived (at most what was requested, per sku), at the inspection location: not
    sellable until inspected. A refund return becomes a credit note in credit."""
    return await command.run(lambda unit: receive_return(unit, return_id, body.quantities()), body)


@router.post("/{return_id}/inspect", response_model=ReturnOut)
async def inspect(return_id: PathId, body: InspectReturnIn, _: Warehouse,
                  command: IdempotentCommand) -> Response:
    """Inspect a received return once, accounting for every received unit per sku: a refund or
    exchange unit is restocked (sellable again) or scrapped, a repair unit is repaired. An exchange
    then gets a replacement shipment, a repair a shipment of its repaired units; neither is
    invoiced. 409 ``return-not-received``, ``return-already-inspected``, ``exceeds-received``,
    ``inspection-incomplete``, ``outcome-not-for-kind``."""
    return await command.run(lambda unit: inspect_return(unit, return_id, body.outcomes()), body)
