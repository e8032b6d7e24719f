"""Reactions to other services' events, in one visible table.

Partners' events keep the local partner copy current. Delivery's and credit's
events move an order's status: each reaction is a ``Unit`` of the one command
path (``libs.runtime.commands``) that loads the order, lets the domain decide
(guarded by the order's state, so a late or repeated fact changes nothing),
appends with the delivery's metadata (the correlation id flows on) and
deterministic event ids, and rewrites the order's document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
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
from libs.messaging.consumer import Handler
from libs.runtime import documents
from libs.runtime.commands import Reaction, Unit, reactions
from libs.runtime.host import ServiceContext
from services.orders.application.order_records import ORDER_STREAM, open_order_ids
from services.orders.application.orders import PARTNER_COPY, find_partner
from services.orders.domain import order as rules
from services.orders.domain.order import Order
from services.orders.domain.partner_copy import evolve_partner_copy

log = logging.getLogger(__name__)


async def keep_partner_copy(unit: Unit, event: Any) -> None:
    """Apply a partner event (or a terms change) to the local partner copy."""
    partner_id: str = event.partner_id
    copy = evolve_partner_copy(await find_partner(unit.conn, partner_id), event)
    if copy is None:
        log.warning("orders: %s for unknown partner %s ignored", event.TYPE, partner_id)
        return
    await documents.put(unit.conn, PARTNER_COPY, partner_id, copy.as_document(),
                        partner_id=partner_id, status=copy.status, ref_id=copy.tier)


async def when_partner_terminated_cancel_open_orders(unit: Unit, event: Any) -> None:
    """A terminated partner's orders that have not shipped completely are cancelled, each with
    the termination as its reason (delivery then releases their stock and cancels their
    shipments, credit their exposure). Each order's events get ids derived from the
    termination and the order, so a repeated termination appends nothing."""
    assert isinstance(event, PartnerTerminated)
    await keep_partner_copy(unit, event)
    reason = f"partner terminated: {event.reason}"
    for order_id in await open_order_ids(unit.conn, event.partner_id):
        loaded = await unit.load(ORDER_STREAM, order_id)
        await unit.save(loaded, rules.decide_close_for_terminated_partner(loaded.state, reason),
                        salt=f"terminated:{order_id}")


async def advance_order(unit: Unit, order_id: str, decide: Callable[[Order], list[DomainEvent]],
                        *, first: bool = False) -> None:
    """Let the domain decide on the order's state.

    ``first``: the order's first status move (stock allocated or backordered); if its
    partner is terminated by now, the order is cancelled instead. The termination cancels
    the orders it can see, but on PostgreSQL an order placed while the termination was being
    handled (it read the partner as active and committed after the termination looked) is
    not among them; every order makes a first move, so such an order is cancelled then.
    """
    loaded = await unit.load(ORDER_STREAM, order_id)
    if not loaded.state.exists:
        log.warning("orders: %s for unknown order %s ignored", unit.envelope.event_type, order_id)
        return
    if first and loaded.state.status == "placed":
        partner = await find_partner(unit.conn, loaded.state.partner_id)
        if partner is not None and partner.status == "terminated":
            decide = partial(rules.decide_close_for_terminated_partner, reason="partner terminated")
    await unit.save(loaded, decide(loaded.state))


async def when_stock_allocated_confirm_order(unit: Unit, event: Any) -> None:
    await advance_order(unit, event.order_id, rules.when_stock_allocated, first=True)


async def when_stock_backordered_backorder_order(unit: Unit, event: Any) -> None:
    await advance_order(unit, event.order_id, rules.when_stock_backordered, first=True)


async def when_funds_review_passed_approve_order(unit: Unit, event: Any) -> None:
    await advance_order(unit, event.order_id, rules.when_funds_review_passed)


async def when_order_put_on_hold_hold_order(unit: Unit, event: Any) -> None:
    assert isinstance(event, OrderPutOnHold)
    await advance_order(unit, event.order_id, lambda order: rules.when_put_on_hold(order, event.reason))


async def when_awaiting_prepayment_await_funds(unit: Unit, event: Any) -> None:
    await advance_order(unit, event.order_id, rules.when_awaiting_prepayment)


async def when_rejected_by_finance_reject_order(unit: Unit, event: Any) -> None:
    assert isinstance(event, OrderRejectedByFinance)
    await advance_order(unit, event.order_id,
                        lambda order: rules.when_rejected_by_finance(order, event.reason))


async def when_shipment_dispatched_ship_order(unit: Unit, event: Any) -> None:
    """A sale's dispatch ships the order; a return's shipment (replacement, repair) does not."""
    assert isinstance(event, ShipmentDispatched)
    if event.purpose != "sale":
        return
    await advance_order(unit, event.order_id, lambda order: rules.when_dispatched(
        order, event.dispatch_id, event.lines, event.complete))


async def when_shipment_delivered_deliver_order(unit: Unit, event: Any) -> None:
    assert isinstance(event, ShipmentDelivered)
    if event.purpose != "sale":
        return
    await advance_order(unit, event.order_id, rules.when_delivered)


REACTIONS: dict[str, Reaction] = {
    PartnerRegistered.TYPE: keep_partner_copy,
    AgreementSigned.TYPE: keep_partner_copy,
    TrialEnded.TYPE: keep_partner_copy,
    PartnerSuspended.TYPE: keep_partner_copy,
    PartnerReinstated.TYPE: keep_partner_copy,
    PartnerTerminated.TYPE: when_partner_terminated_cancel_open_orders,
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
    return reactions(ctx, REACTIONS)
