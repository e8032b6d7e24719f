"""Reactions to other services' events, in one visible table.

Partners' events keep the local partner copy current. Delivery's and credit's
events move an order's status: each reaction loads the order, lets the domain
decide (guarded by the order's state, so a late or repeated fact changes
nothing), appends with the delivery's metadata (the correlation id flows on)
and deterministic event ids, and rewrites the order's document.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from libs.events.base import DomainEvent
from libs.events.credit import (
    FundsReviewPassed,
    OrderAwaitingPrepayment,
    OrderPutOnHold,
    OrderRejectedByFinance,
    TermsChanged,
)
from libs.events.delivery import (
    ShipmentDelivered,
    ShipmentDispatched,
    StockAllocated,
    StockBackordered,
)
from libs.events.partners import (
    AgreementSigned,
    PartnerCategoriesChanged,
    PartnerRegistered,
    PartnerReinstated,
    PartnerSuspended,
    PartnerTerminated,
    PartnerTerritoriesChanged,
    PartnerTierChanged,
    TrialEnded,
)
from libs.messaging.consumer import Delivery, Handler
from libs.runtime import documents
from libs.runtime.host import ServiceContext
from services.orders.application.order_records import load_order, save_order
from services.orders.application.orders import PARTNER_COPY, find_partner
from services.orders.domain import order as rules
from services.orders.domain.order import Order
from services.orders.domain.partner_copy import evolve_partner_copy

log = logging.getLogger(__name__)


async def keep_partner_copy(ctx: ServiceContext, delivery: Delivery) -> None:
    """Apply a partner event (or a terms change) to the local partner copy."""
    partner_id: str = delivery.event.partner_id  # type: ignore[attr-defined]
    copy = evolve_partner_copy(await find_partner(delivery.conn, partner_id), delivery.event)
    if copy is None:
        log.warning("orders: %s for unknown partner %s ignored", delivery.envelope.event_type, partner_id)
        return
    await documents.put(delivery.conn, PARTNER_COPY, partner_id, copy.as_document(),
                        partner_id=partner_id, status=copy.status)


async def advance_order(ctx: ServiceContext, delivery: Delivery,
                        decide: Callable[[Order], list[DomainEvent]]) -> None:
    order_id: str = delivery.event.order_id  # type: ignore[attr-defined]
    record = await load_order(ctx, delivery.conn, order_id)
    if not record.order.exists:
        log.warning("orders: %s for unknown order %s ignored", delivery.envelope.event_type, order_id)
        return
    events = decide(record.order)
    if events:
        await save_order(ctx, delivery.conn, record, order_id, events, delivery.meta,
                         event_ids=delivery.event_ids(len(events)))


async def when_stock_allocated_confirm_order(ctx: ServiceContext, delivery: Delivery) -> None:
    await advance_order(ctx, delivery, rules.when_stock_allocated)


async def when_stock_backordered_backorder_order(ctx: ServiceContext, delivery: Delivery) -> None:
    await advance_order(ctx, delivery, rules.when_stock_backordered)


async def when_funds_review_passed_approve_order(ctx: ServiceContext, delivery: Delivery) -> None:
    await advance_order(ctx, delivery, rules.when_funds_review_passed)


async def when_order_put_on_hold_hold_order(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, OrderPutOnHold)
    await advance_order(ctx, delivery, lambda order: rules.when_put_on_hold(order, event.reason))


async def when_awaiting_prepayment_await_funds(ctx: ServiceContext, delivery: Delivery) -> None:
    await advance_order(ctx, delivery, rules.when_awaiting_prepayment)


async def when_rejected_by_finance_reject_order(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, OrderRejectedByFinance)
    await advance_order(ctx, delivery, lambda order: rules.when_rejected_by_finance(order, event.reason))


async def when_shipment_dispatched_ship_order(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, ShipmentDispatched)
    await advance_order(ctx, delivery, lambda order: rules.when_dispatched(
        order, event.dispatch_id, event.lines, event.complete))


async def when_shipment_delivered_deliver_order(ctx: ServiceContext, delivery: Delivery) -> None:
    await advance_order(ctx, delivery, rules.when_delivered)


Reaction = Callable[[ServiceContext, Delivery], Any]

REACTIONS: dict[str, Reaction] = {
    PartnerRegistered.TYPE: keep_partner_copy,
    AgreementSigned.TYPE: keep_partner_copy,
    TrialEnded.TYPE: keep_partner_copy,
    PartnerSuspended.TYPE: keep_partner_copy,
    PartnerReinstated.TYPE: keep_partner_copy,
    PartnerTerminated.TYPE: keep_partner_copy,
    PartnerTierChanged.TYPE: keep_partner_copy,
    PartnerTerritoriesChanged.TYPE: keep_partner_copy,
    PartnerCategoriesChanged.TYPE: keep_partner_copy,
    TermsChanged.TYPE: keep_partner_copy,
    StockAllocated.TYPE: when_stock_allocated_confirm_order,
    StockBackordered.TYPE: when_stock_backordered_backorder_order,
    FundsReviewPassed.TYPE: when_funds_review_passed_approve_order,
    OrderPutOnHold.TYPE: when_order_put_on_hold_hold_order,
    OrderAwaitingPrepayment.TYPE: when_awaiting_prepayment_await_funds,
    OrderRejectedByFinance.TYPE: when_rejected_by_finance_reject_order,
    ShipmentDispatched.TYPE: when_shipment_dispatched_ship_order,
    ShipmentDelivered.TYPE: when_shipment_delivered_deliver_order,
}
"""Event type → reaction (partners', delivery's and credit's events)."""


def handlers(ctx: ServiceContext) -> Mapping[str, Handler]:
    """The reaction table bound to the service's context, as the consumer runtime wants it."""
    return {event_type: functools.partial(reaction, ctx) for event_type, reaction in REACTIONS.items()}
