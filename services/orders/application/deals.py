"""Deal registrations (报备): one aggregate per end customer (stream ``deals-<customer hash>``),
one document per deal (kind ``deal``: pending, approved, rejected or refused).

A refused registration (a channel conflict) is recorded in its own committed transaction, the
registration's own rolled back, as ``record_violation`` does for a cross-territory order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from libs.events.base import DomainEvent, EventMetadata
from libs.events.orders import DealApproved, DealConflictRecorded, DealRegistered, DealRejected
from libs.runtime import commands, documents
from libs.runtime.auth import Principal
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.orders.application.catalog import PRODUCT, products_in
from services.orders.application.orders import DEAL, PARTNER_COPY
from services.orders.domain.deals import (
    CustomerDeals,
    RegisterDeal,
    customer_key,
    customer_stream_key,
    deal_document,
    decide_approve,
    decide_register,
    decide_reject,
    evolve_customer_deals,
)
from services.orders.domain.errors import DealNotFound
from services.orders.domain.partner_copy import PartnerCopy

CONFLICTS_NAMESPACE = uuid.UUID("0b7d5c2e-4f1a-4c61-9d8e-2a7f3e5b9c40")


def new_deal_id(replayed: uuid.UUID | None = None) -> str:
    """A new deal id; a keyed request's retries get the same one (``replayed``), so a refusal
    is recorded once."""
    return new_id("deal", replayed) if replayed is not None else new_id("deal")


def customer_deals_stream(key: str) -> str:
    return f"deals-{customer_stream_key(key)}"


async def _write_deals(unit: Unit, loaded: Loaded[str, CustomerDeals], events: Sequence[DomainEvent],
                       before: CustomerDeals) -> dict[str, Any]:
    """Rewrite the document of each deal the events touched; answers the last one's."""
    body: dict[str, Any] = {}
    deal_events = (DealRegistered, DealApproved, DealRejected, DealConflictRecorded)
    for deal_id in dict.fromkeys(e.deal_id for e in events if isinstance(e, deal_events)):
        deal = loaded.state.deals[deal_id]
        body = deal_document(deal)
        await documents.put(unit.conn, DEAL, deal_id, body, partner_id=deal.partner_id,
                            status=deal.status, version=loaded.version)
    return body


CUSTOMER_DEALS: Aggregate[str, CustomerDeals] = Aggregate(
    stream_type="end-customer-deals", stream_id=customer_deals_stream,
    initial=lambda key: CustomerDeals(), evolve=evolve_customer_deals, project=_write_deals)


async def register_deal(unit: Unit, command: RegisterDeal) -> dict[str, Any]:
    """Register a deal, or refuse it (``DealConflict``: see ``record_conflict``)."""
    partner_key = (PARTNER_COPY, command.partner_id)
    found = await documents.get_many(unit.conn, [partner_key, *((PRODUCT, sku) for sku, _ in command.lines)])
    copy = found.get(partner_key)
    partner = PartnerCopy.from_document(copy) if copy else None
    loaded = await unit.load(CUSTOMER_DEALS, customer_key(command.end_customer))
    events = decide_register(loaded.state, command, partner, products_in(found), unit.today())
    saved = await unit.save(loaded, events)
    assert saved.document is not None
    return saved.document


async def record_conflict(ctx: ServiceContext, conflict: DealConflictRecorded, actor: str,
                          event_id: uuid.UUID | None) -> None:
    """A refused registration is recorded in a transaction of its own; ``event_id`` (from the
    request's Idempotency-Key) records a retry once."""

    async def record(unit: Unit) -> None:
        if event_id is not None and await ctx.store.by_ids([event_id], conn=unit.conn):
            return  # recorded by an earlier try of the same keyed request
        loaded = await unit.load(CUSTOMER_DEALS, conflict.customer_key)
        await unit.save(loaded, [conflict], event_ids=[event_id] if event_id is not None else None)

    await commands.run(ctx, EventMetadata(actor=actor), record)


async def _customer_of(unit: Unit, deal_id: str) -> str:
    body = await documents.get(unit.conn, DEAL, deal_id)
    if body is None:
        raise DealNotFound(f"no deal {deal_id!r}")
    return str(body["customer_key"])


async def approve_deal(unit: Unit, deal_id: str, prices: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """Approve a pending deal with its deal prices (none below a product's minimum price)."""
    loaded = await unit.load(CUSTOMER_DEALS, await _customer_of(unit, deal_id))
    found = await documents.get_many(unit.conn, [(PRODUCT, sku) for sku, _ in prices])
    saved = await unit.save(loaded, decide_approve(loaded.state, deal_id, prices, products_in(found),
                                                   unit.today()))
    assert saved.document is not None
    return saved.document


async def reject_deal(unit: Unit, deal_id: str, reason: str) -> dict[str, Any]:
    loaded = await unit.load(CUSTOMER_DEALS, await _customer_of(unit, deal_id))
    saved = await unit.save(loaded, decide_reject(loaded.state, deal_id, reason, unit.today()))
    assert saved.document is not None
    return saved.document


def shown(body: dict[str, Any], principal: Principal, today: date) -> dict[str, Any]:
    """A deal as the caller reads it: ``expired`` as of today; a partner never learns which
    other partner's deal refused its registration."""
    shown = {**body, "expired": date.fromisoformat(body["expires_on"]) < today}
    if principal.is_partner:
        shown["conflict"] = None
    return shown


async def get_deal(ctx: ServiceContext, principal: Principal, deal_id: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        body = await documents.get_visible(conn, DEAL, deal_id, principal,
                                           DealNotFound(f"no deal {deal_id!r}"))
    return shown(body, principal, ctx.today())


async def list_deals(ctx: ServiceContext, principal: Principal, *, partner_id: str | None,
                     status: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
    """Deals by partner and status (``refused``: the recorded conflicts); a partner gets its own."""
    async with ctx.db.read() as conn:
        page = await documents.page(conn, DEAL, partner_id=principal.scoped(partner_id),
                                    status=status, cursor=cursor, limit=limit)
    today = ctx.today()
    return {**page, "items": [shown(item, principal, today) for item in page["items"]]}
