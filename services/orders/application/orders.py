"""Order commands and reads: place (idempotent, channel-controlled), cancel, get, list.

A partner key acts for its own partner only: another partner's order answers 404
and lists are forced to its own partner id.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.runtime import documents
from libs.runtime.aggregate import retry_on_conflict
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from libs.runtime.idempotency import respond_once
from libs.runtime.ids import new_id
from services.orders.application.catalog import PRODUCT, products_in, read_price_list
from services.orders.application.order_records import (
    ORDER,
    OrderRecord,
    load_order,
    order_document,
    save_order,
)
from services.orders.domain.errors import OrderNotFound, TerritoryViolation
from services.orders.domain.order import decide_cancel
from services.orders.domain.partner_copy import PartnerCopy
from services.orders.domain.placement import PlaceOrder, decide_place_order

PARTNER_COPY = "partner-copy"
PLACE_ROUTE = "POST /v1/orders"
VIOLATIONS_NAMESPACE = uuid.UUID("6f0c1f8e-6a4e-4d47-9a0e-6b1f2c0d9e11")


def new_order_id() -> str:
    return new_id("ord")


def violation_stream(partner_id: str) -> str:
    return f"partner-violations-{partner_id}"


async def find_partner(conn: AsyncConnection, partner_id: str) -> PartnerCopy | None:
    body = await documents.get(conn, PARTNER_COPY, partner_id)
    return PartnerCopy.from_document(body) if body else None


async def place_order(
    ctx: ServiceContext, principal: Principal, command: PlaceOrder, body: BaseModel,
    idempotency_key: str | None,
) -> JSONResponse:
    """Place the order (201 with its document), at most once per Idempotency-Key.

    A territory violation is recorded in its own committed transaction (the order's
    own transaction rolls back) and then refused.
    """
    meta = EventMetadata(actor=principal.actor)

    async def place(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        found = await documents.get_many(conn, [(PARTNER_COPY, command.partner_id),
                                                *((PRODUCT, sku) for sku, _ in command.lines)])
        copy = found.get((PARTNER_COPY, command.partner_id))
        partner = PartnerCopy.from_document(copy) if copy else None
        products = products_in(found)
        price_list = None
        if partner is not None:
            price_list = (await read_price_list(conn, partner.tier)).in_force(ctx.today())
        events = decide_place_order(command, partner, products, price_list)
        # The order id is new (``new_order_id``): its stream is empty, nothing to load. The
        # answer is the document just written, not read back.
        record = await save_order(ctx, conn, OrderRecord(), command.order_id, events, meta)
        return 201, order_document(record)

    try:
        return await respond_once(ctx.db, principal, PLACE_ROUTE, idempotency_key, body, place)
    except TerritoryViolation as refusal:
        ids = None
        if idempotency_key is not None:  # a retried request records its violation once
            ids = [uuid.uuid5(VIOLATIONS_NAMESPACE,
                              f"{principal.key_id}\n{PLACE_ROUTE}\n{idempotency_key}")]
        async with ctx.db.transaction() as conn:
            await ctx.store.append(violation_stream(refusal.violation.partner_id),
                                   "partner-violations", None, [refusal.violation], meta,
                                   conn=conn, event_ids=ids)
        raise


async def cancel_order(ctx: ServiceContext, principal: Principal, order_id: str,
                       reason: str) -> dict[str, Any]:
    """Cancel before any dispatch (409 after, or once rejected, cancelled or delivered)."""
    meta = EventMetadata(actor=principal.actor)

    async def attempt() -> dict[str, Any]:
        async with ctx.db.transaction() as conn:
            record = await load_order(ctx, conn, order_id)
            if not record.order.exists or not principal.sees(record.order.partner_id):
                raise OrderNotFound(f"no order {order_id!r}")
            record = await save_order(ctx, conn, record, order_id,
                                      decide_cancel(record.order, reason), meta)
            return (await documents.get(conn, ORDER, order_id)) or {}

    return await retry_on_conflict(attempt)


async def get_order(ctx: ServiceContext, principal: Principal, order_id: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        return await documents.get_visible(conn, ORDER, order_id, principal,
                                           OrderNotFound(f"no order {order_id!r}"))


async def list_orders(
    ctx: ServiceContext, principal: Principal, *, partner_id: str | None, status: str | None,
    cursor: str | None, limit: int,
) -> dict[str, Any]:
    if principal.is_partner:
        partner_id = principal.partner_id
    async with ctx.db.read() as conn:
        return await documents.page(conn, ORDER, partner_id=partner_id, status=status,
                                    cursor=cursor, limit=limit)
