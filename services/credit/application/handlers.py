"""Credit's reactions to other services' events, in one table (``handlers(ctx)``).

Every reaction runs in the consumer's transaction, appends with ``delivery.meta``
(so the correlation id flows on) and deterministic event ids, and decides on the
account's current state, so a repeated event decides nothing new.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from libs.events import delivery as dl
from libs.events import orders as od
from libs.events import partners as pt
from libs.events import rebates as rb
from libs.events.values import InvoiceLine, SkuQty
from libs.messaging.consumer import Delivery, Handler
from libs.runtime import documents
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.credit.application import accounts, copies
from services.credit.application.read_models import REVIEW, review_body, review_status
from services.credit.domain.funds import decide_funds_review, decide_open_account, decide_reevaluation
from services.credit.domain.invoicing import decide_invoice
from services.credit.domain.receipts import decide_credit_note


class NotKnownYet(LookupError):
    """A fact this reaction needs has not arrived yet; the consumer retries (then dead-letters)."""


def _short_id(delivery: Delivery, prefix: str) -> str:
    return new_id(prefix, delivery.event_ids(1, prefix)[0])


async def when_partner_registered_open_account(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, pt.PartnerRegistered)
    loaded = await accounts.load_for_update(delivery.conn, ctx, event.partner_id)
    if loaded.state.opened:
        return
    await copies.keep_partner(delivery.conn, event)
    opened = decide_open_account(loaded.state, event.partner_id, event.payment_terms, event.currency)
    await accounts.save(delivery.conn, ctx, loaded, opened, delivery.meta, delivery.event_ids(1, "open"))


async def when_partner_changed_update_copy(ctx: ServiceContext, delivery: Delivery) -> None:
    """Keep the partner's status and tier current (invoices carry the tier at issue)."""
    event, conn = delivery.event, delivery.conn
    match event:
        case pt.AgreementSigned() | pt.TrialEnded() | pt.PartnerReinstated():
            await copies.update_partner(conn, event.partner_id, status=event.status_after)
        case pt.PartnerSuspended():
            await copies.update_partner(conn, event.partner_id, status="suspended")
        case pt.PartnerTerminated():
            await copies.update_partner(conn, event.partner_id, status="terminated")
        case pt.PartnerTierChanged():
            await copies.update_partner(conn, event.partner_id, tier=event.to_tier)


async def when_order_placed_keep_copy(ctx: ServiceContext, delivery: Delivery) -> None:
    assert isinstance(delivery.event, od.OrderPlaced)
    await copies.keep_order(delivery.conn, delivery.event)


async def when_order_confirmed_review_funds(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, od.OrderConfirmed)
    order = await copies.order(delivery.conn, event.order_id)
    if order is None:
        raise NotKnownYet(f"order {event.order_id} was confirmed but its OrderPlaced is unknown")
    loaded = await accounts.load_for_update(delivery.conn, ctx, order["partner_id"])
    if not loaded.state.opened:
        raise NotKnownYet(f"partner {order['partner_id']} has no account yet")
    decided = decide_funds_review(loaded.state, event.order_id, order["total_minor"], ctx.today(),
                                  loaded.cancelled)
    await accounts.save(delivery.conn, ctx, loaded, decided, delivery.meta,
                        delivery.event_ids(len(decided), "review"))


async def when_order_cancelled_release_exposure(ctx: ServiceContext, delivery: Delivery) -> None:
    """A cancelled order holds no exposure or advance any more: re-evaluate the queue."""
    event = delivery.event
    assert isinstance(event, od.OrderCancelled)
    await accounts.lock(delivery.conn, event.partner_id)
    if await copies.mark_order_cancelled(delivery.conn, event.order_id) is None:
        return
    loaded = await accounts.load_for_update(delivery.conn, ctx, event.partner_id)
    review = loaded.state.orders.get(event.order_id)
    if review is not None:
        await documents.put(delivery.conn, REVIEW, event.order_id,
                            review_body(loaded.state, review, loaded.cancelled),
                            partner_id=event.partner_id, status=review_status(review, loaded.cancelled))
    if not loaded.state.opened:
        return
    decided = decide_reevaluation(loaded.state, ctx.today(), f"order {event.order_id} cancelled",
                                  loaded.cancelled)
    await accounts.save(delivery.conn, ctx, loaded, decided, delivery.meta,
                        delivery.event_ids(len(decided), "cancel"))


async def _priced(delivery: Delivery, order_id: str, quantities: list[SkuQty]
                  ) -> list[InvoiceLine]:
    order = await copies.order(delivery.conn, order_id)
    if order is None:
        raise NotKnownYet(f"order {order_id} is unknown to credit")
    prices: dict[str, dict[str, Any]] = {}
    for line in order["lines"]:
        prices.setdefault(line["sku"], line)
    lines = []
    for item in quantities:
        if item.qty <= 0:
            continue
        if item.sku not in prices:
            raise NotKnownYet(f"order {order_id} has no line for sku {item.sku}")
        line = prices[item.sku]
        lines.append(InvoiceLine(sku=item.sku, category=line["category"], qty=item.qty,
                                 unit_price_minor=line["unit_price_minor"],
                                 line_total_minor=item.qty * line["unit_price_minor"]))
    return lines


async def when_shipment_dispatched_issue_invoice(ctx: ServiceContext, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, dl.ShipmentDispatched)
    lines = await _priced(delivery, event.order_id, event.lines)
    loaded = await accounts.load_for_update(delivery.conn, ctx, event.partner_id)
    if not loaded.state.opened:
        raise NotKnownYet(f"partner {event.partner_id} has no account yet")
    partner = await copies.partner(delivery.conn, event.partner_id) or {}
    decided = decide_invoice(
        loaded.state, invoice_id=_short_id(delivery, "inv"), order_id=event.order_id,
        dispatch_id=event.dispatch_id, lines=lines, issued_on=event.dispatched_on,
        region=partner.get("region", ""), tier=partner.get("tier", ""), today=ctx.today(),
        cancelled=loaded.cancelled)
    await accounts.save(delivery.conn, ctx, loaded, decided, delivery.meta,
                        delivery.event_ids(len(decided), "invoice"))


async def when_refund_return_received_credit_account(ctx: ServiceContext, delivery: Delivery) -> None:
    """A refund return is credited at the order's unit prices x received qty (exchange/repair: nothing)."""
    event = delivery.event
    assert isinstance(event, dl.ReturnReceived)
    if event.kind != "refund":
        return
    lines = await _priced(delivery, event.order_id, event.lines)
    loaded = await accounts.open_account(delivery.conn, ctx, event.partner_id)
    decided = decide_credit_note(
        loaded.state, credit_note_id=_short_id(delivery, "cn"),
        amount=sum(line.line_total_minor for line in lines), reason=f"refund return {event.return_id}",
        source_kind="return", source_ref=event.return_id, issued_on=event.received_on, today=ctx.today(),
        order_id=event.order_id, lines=lines, cancelled=loaded.cancelled)
    await accounts.save(delivery.conn, ctx, loaded, decided, delivery.meta,
                        delivery.event_ids(len(decided), "return"))


async def when_settlement_approved_credit_account(ctx: ServiceContext, delivery: Delivery) -> None:
    """An approved rebate payout becomes a credit note (a payout <= 0 credits nothing)."""
    event = delivery.event
    assert isinstance(event, rb.SettlementApproved)
    loaded = await accounts.open_account(delivery.conn, ctx, event.partner_id)
    decided = decide_credit_note(
        loaded.state, credit_note_id=_short_id(delivery, "cn"), amount=event.payout_minor,
        reason=f"rebate settlement {event.settlement_id} (program {event.program_id})",
        source_kind="rebate", source_ref=event.settlement_id, issued_on=ctx.today(), today=ctx.today(),
        cancelled=loaded.cancelled)
    await accounts.save(delivery.conn, ctx, loaded, decided, delivery.meta,
                        delivery.event_ids(len(decided), "rebate"))


Reaction = Callable[[ServiceContext, Delivery], Awaitable[None]]

REACTIONS: Mapping[str, Reaction] = {
    pt.PartnerRegistered.TYPE: when_partner_registered_open_account,
    pt.AgreementSigned.TYPE: when_partner_changed_update_copy,
    pt.TrialEnded.TYPE: when_partner_changed_update_copy,
    pt.PartnerSuspended.TYPE: when_partner_changed_update_copy,
    pt.PartnerReinstated.TYPE: when_partner_changed_update_copy,
    pt.PartnerTerminated.TYPE: when_partner_changed_update_copy,
    pt.PartnerTierChanged.TYPE: when_partner_changed_update_copy,
    od.OrderPlaced.TYPE: when_order_placed_keep_copy,
    od.OrderConfirmed.TYPE: when_order_confirmed_review_funds,
    od.OrderCancelled.TYPE: when_order_cancelled_release_exposure,
    dl.ShipmentDispatched.TYPE: when_shipment_dispatched_issue_invoice,
    dl.ReturnReceived.TYPE: when_refund_return_received_credit_account,
    rb.SettlementApproved.TYPE: when_settlement_approved_credit_account,
}


def handlers(ctx: ServiceContext) -> dict[str, Handler]:
    """The reaction table bound to the service's context."""
    return {event_type: partial(reaction, ctx) for event_type, reaction in REACTIONS.items()}
