"""Order commands and reads: place (idempotent, channel-controlled), cancel, get, list.

A partner key acts for its own partner only: another partner's order answers 404
and lists are forced to its own partner id.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.orders import TerritoryViolationRecorded
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.commands import Loaded, Unit, transact
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from libs.telemetry import context
from services.orders.application.catalog import (
    PRICE_LIST,
    PRODUCT,
    price_list_of,
    products_in,
    read_price_list,
)
from services.orders.application.order_records import ORDER, ORDER_STREAM
from services.orders.domain.deals import deal_of
from services.orders.domain.errors import OrderNotFound
from services.orders.domain.order import Order, decide_cancel
from services.orders.domain.partner_copy import PartnerCopy
from services.orders.domain.placement import PlaceOrder, decide_place_order

PARTNER_COPY = "partner-copy"
DEAL = "deal"
"""Deal registrations' documents (written by ``application.deals``), read here to price an order."""
VIOLATIONS_NAMESPACE = uuid.UUID("6f0c1f8e-6a4e-4d47-9a0e-6b1f2c0d9e11")


def new_order_id() -> str:
    return new_id("ord")


def violation_stream(partner_id: str) -> str:
    return f"partner-violations-{partner_id}"


async def find_partner(conn: AsyncConnection, partner_id: str) -> PartnerCopy | None:
    body = await documents.get(conn, PARTNER_COPY, partner_id)
    return PartnerCopy.from_document(body) if body else None


async def place_order(unit: Unit, command: PlaceOrder) -> dict[str, Any]:
    """Place the order: its document, or a refusal (``TerritoryViolation``: see ``record_violation``)."""
    conn = unit.conn
    partner_key = (PARTNER_COPY, command.partner_id)
    deal_key = [(DEAL, command.deal_id)] if command.deal_id is not None else []
    found = await documents.get_many(
        conn, [partner_key, *deal_key, *((PRODUCT, sku) for sku, _ in command.lines)],
        follow=(partner_key, PRICE_LIST))
    copy = found.get(partner_key)
    partner = PartnerCopy.from_document(copy) if copy else None
    products = products_in(found)
    price_list = None
    if partner is not None:  # the tier's price list came along, by the copy's ref_id (= its tier)
        body = found.get((PRICE_LIST, partner.tier))
        prices = price_list_of(partner.tier, body) if body is not None \
            else await read_price_list(conn, partner.tier)  # none, or a copy without its ref_id
        price_list = prices.in_force(unit.today())
    deal = found.get((DEAL, command.deal_id)) if command.deal_id is not None else None
    events = decide_place_order(command, partner, products, price_list,
                                deal_of(deal) if deal is not None else None, unit.today())
    placed = await unit.save(Loaded(ORDER_STREAM, command.order_id, Order(), 0), events)
    assert placed.document is not None
    return placed.document


async def record_violation(ctx: ServiceContext, violation: TerritoryViolationRecorded, actor: str,
                           event_id: uuid.UUID | None) -> None:
    """A refused cross-territory order is recorded in its own committed transaction (the order's
    own rolled back); ``event_id`` (from the request's Idempotency-Key) records a retry once."""
    await transact(ctx, lambda conn: ctx.store.append(
        violation_stream(violation.partner_id), "partner-violations", None, [violation],
        EventMetadata(actor=actor, correlation_id=context.correlation()), conn=conn,
        event_ids=[event_id] if event_id is not None else None))


async def cancel_order(unit: Unit, order_id: str, reason: str) -> dict[str, Any]:
    """Cancel before any dispatch (409 after, or once rejected, cancelled or delivered)."""
    assert unit.principal is not None
    loaded = await unit.load(ORDER_STREAM, order_id)
    if not loaded.state.exists or not unit.principal.sees(loaded.state.partner_id):
        raise OrderNotFound(f"no order {order_id!r}")
    cancelled = await unit.save(loaded, decide_cancel(loaded.state, reason))
    return cancelled.document or (await documents.get(unit.conn, ORDER, order_id)) or {}


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
