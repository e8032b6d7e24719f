"""Credit's reactions to other services' events, in one table (``handlers(ctx)``).

Every reaction is a ``Unit`` of the one command path (``libs.runtime.commands``):
it runs in the consumer's transaction, appends with the delivery's metadata (so
the correlation id flows on) and deterministic event ids, and decides on the
account's current state, so a repeated event decides nothing new.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from libs.events import delivery as dl
from libs.events import orders as od
from libs.events import partners as pt
from libs.events import rebates as rb
from libs.events.base import DomainEvent
from libs.events.values import InvoiceLine, SkuQty
from libs.messaging.consumer import Handler
from libs.runtime.commands import Reaction, Unit, reactions
from libs.runtime.documents import Key
from libs.runtime.host import ServiceContext
from services.credit.application import accounts, copies
from services.credit.application import read_models as rm
from services.credit.application.read_models import REVIEW, review_body, review_status
from services.credit.domain.funds import (
    decide_funds_review,
    decide_open_account,
    decide_reevaluation,
    decide_reinstate,
    decide_suspend,
)
from services.credit.domain.invoicing import decide_invoice
from services.credit.domain.receipts import decide_credit_note, decide_debit_note


class NotKnownYet(LookupError):
    """A fact this reaction needs has not arrived yet; the consumer retries (then dead-letters)."""


async def when_partner_registered_open_account(unit: Unit, event: Any) -> None:
    assert isinstance(event, pt.PartnerRegistered)
    loaded = await accounts.load_for_update(unit, event.partner_id)
    if loaded.state.opened:
        return
    await copies.keep_partner(unit, event)
    opened = decide_open_account(loaded.state, event.partner_id, event.payment_terms, event.currency,
                                 unit.today())
    await unit.save(loaded, opened, salt="open")


async def when_partner_changed_update_copy(unit: Unit, event: Any) -> None:
    """Keep the partner's status and tier current (invoices carry the tier at issue)."""
    match event:
        case pt.AgreementSigned() | pt.TrialEnded() | pt.PartnerReinstated():
            await copies.update_partner(unit, event.partner_id, status=event.status_after)
        case pt.PartnerSuspended():
            await copies.update_partner(unit, event.partner_id, status="suspended")
        case pt.PartnerTerminated():
            await copies.update_partner(unit, event.partner_id, status="terminated")
        case pt.PartnerTierChanged():
            await copies.update_partner(unit, event.partner_id, tier=event.to_tier)


async def when_partner_suspended_hold_orders(unit: Unit, event: Any) -> None:
    """A suspended partner's queued orders are held, and every later one, until it is reinstated."""
    assert isinstance(event, pt.PartnerSuspended)
    await when_partner_changed_update_copy(unit, event)
    loaded = await accounts.load_for_update(unit, event.partner_id)
    await unit.save(loaded, decide_suspend(loaded.state, event.reason, loaded.cancelled), salt="suspend")


async def when_partner_reinstated_review_held_orders(unit: Unit, event: Any) -> None:
    """A reinstated partner's held orders are reviewed again, in order of arrival."""
    assert isinstance(event, pt.PartnerReinstated)
    await when_partner_changed_update_copy(unit, event)
    loaded = await accounts.load_for_update(unit, event.partner_id)
    await unit.save(loaded, decide_reinstate(loaded.state, unit.today(), loaded.cancelled),
                    salt="reinstate")


async def when_order_placed_keep_copy(unit: Unit, event: Any) -> None:
    assert isinstance(event, od.OrderPlaced)
    await copies.keep_order(unit, event)


async def when_order_confirmed_review_funds(unit: Unit, event: Any) -> None:
    assert isinstance(event, od.OrderConfirmed)
    order = await copies.order(unit, event.order_id)
    if order is None:
        raise NotKnownYet(f"order {event.order_id} was confirmed but its OrderPlaced is unknown")
    loaded = await accounts.load_for_update(unit, order["partner_id"])
    if not loaded.state.opened:
        raise NotKnownYet(f"partner {order['partner_id']} has no account yet")
    reviewed = (event.order_id not in loaded.state.orders
                and await rm.reviewed(unit, event.order_id) is not None)
    decided = decide_funds_review(loaded.state, event.order_id, order["total_minor"], unit.today(),
                                  loaded.cancelled, reviewed=reviewed)
    await unit.save(loaded, decided, salt="review")


async def when_order_cancelled_release_exposure(unit: Unit, event: Any) -> None:
    """A cancelled order holds no exposure or advance any more: re-evaluate the queue."""
    assert isinstance(event, od.OrderCancelled)
    await accounts.lock(unit, event.partner_id)
    if await copies.mark_order_cancelled(unit, event.order_id) is None:
        return
    loaded = await accounts.load_for_update(unit, event.partner_id)
    review = loaded.state.orders.get(event.order_id)
    if review is not None:
        await unit.put_document(REVIEW, event.order_id, review_body(loaded.state, review, loaded.cancelled),
                                partner_id=event.partner_id, status=review_status(review, loaded.cancelled))
    elif (closed := await rm.reviewed(unit, event.order_id)) is not None:  # left the account
        await unit.put_document(REVIEW, event.order_id, {**closed, "status": "cancelled"},
                                partner_id=event.partner_id, status="cancelled")
    if not loaded.state.opened:
        return
    decided = decide_reevaluation(loaded.state, unit.today(), f"order {event.order_id} cancelled",
                                  loaded.cancelled)
    await unit.save(loaded, decided, salt="cancel")


async def _priced(unit: Unit, order_id: str, quantities: list[SkuQty]
                  ) -> list[InvoiceLine]:
    order = await copies.order(unit, order_id)
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


async def when_shipment_dispatched_issue_invoice(unit: Unit, event: Any) -> None:
    """A sale's dispatch is invoiced at the order's prices; a return's replacement or repaired
    goods going back are not sold again (nothing invoiced)."""
    assert isinstance(event, dl.ShipmentDispatched)
    if event.purpose != "sale":
        return
    lines = await _priced(unit, event.order_id, event.lines)
    loaded = await accounts.load_for_update(unit, event.partner_id)
    if not loaded.state.opened:
        raise NotKnownYet(f"partner {event.partner_id} has no account yet")
    partner = await copies.partner(unit, event.partner_id) or {}
    decided = decide_invoice(
        loaded.state, invoice_id=unit.new_id("inv"), order_id=event.order_id,
        dispatch_id=event.dispatch_id, lines=lines, issued_on=event.dispatched_on,
        region=partner.get("region", ""), tier=partner.get("tier", ""), today=unit.today(),
        cancelled=loaded.cancelled,
        invoiced=await rm.invoiced(unit, event.partner_id, event.dispatch_id))
    await unit.save(loaded, decided, salt="invoice")


async def when_refund_return_received_credit_account(unit: Unit, event: Any) -> None:
    """A refund return is credited at the order's unit prices x received qty (exchange/repair: nothing)."""
    assert isinstance(event, dl.ReturnReceived)
    if event.kind != "refund":
        return
    lines = await _priced(unit, event.order_id, event.lines)
    loaded = await accounts.open_account(unit, event.partner_id)
    decided = decide_credit_note(
        loaded.state, credit_note_id=unit.new_id("cn"),
        amount=sum(line.line_total_minor for line in lines), reason=f"refund return {event.return_id}",
        source_kind="return", source_ref=event.return_id, issued_on=event.received_on, today=unit.today(),
        order_id=event.order_id, lines=lines, cancelled=loaded.cancelled,
        credited=await rm.credited(unit, event.partner_id, "return", event.return_id))
    await unit.save(loaded, decided, salt="return")


async def when_settlement_approved_credit_account(unit: Unit, event: Any) -> None:
    """An approved rebate payout becomes a credit note; an approved negative true-up (the partner
    was overpaid) becomes a debit note of the amount owed back; a zero payout changes nothing."""
    assert isinstance(event, rb.SettlementApproved)
    loaded = await accounts.open_account(unit, event.partner_id)
    reason = f"rebate settlement {event.settlement_id} (program {event.program_id})"
    if event.payout_minor < 0:
        decided = decide_debit_note(
            loaded.state, debit_note_id=unit.new_id("dn"), amount=-event.payout_minor, reason=reason,
            source_ref=event.settlement_id, issued_on=unit.today(), cancelled=loaded.cancelled,
            debited=await rm.debited(unit, event.partner_id, event.settlement_id))
    else:
        decided = decide_credit_note(
            loaded.state, credit_note_id=unit.new_id("cn"), amount=event.payout_minor, reason=reason,
            source_kind="rebate", source_ref=event.settlement_id, issued_on=unit.today(),
            today=unit.today(), cancelled=loaded.cancelled,
            credited=await rm.credited(unit, event.partner_id, "rebate", event.settlement_id))
    await unit.save(loaded, decided, salt="rebate")


async def when_coop_claim_approved_credit_account(unit: Unit, event: Any) -> None:
    """An approved co-op claim's payout (the matched share, capped at the fund) becomes a credit note."""
    assert isinstance(event, rb.CoopClaimApproved)
    loaded = await accounts.open_account(unit, event.partner_id)
    decided = decide_credit_note(
        loaded.state, credit_note_id=unit.new_id("cn"), amount=event.approved_minor,
        reason=f"co-op claim {event.claim_id} (program {event.program_id})", source_kind="coop",
        source_ref=event.claim_id, issued_on=unit.today(), today=unit.today(), cancelled=loaded.cancelled,
        credited=await rm.credited(unit, event.partner_id, "coop", event.claim_id))
    await unit.save(loaded, decided, salt="coop")


REACTIONS: Mapping[str, Reaction] = {
    pt.PartnerRegistered.TYPE: when_partner_registered_open_account,
    pt.AgreementSigned.TYPE: when_partner_changed_update_copy,
    pt.TrialEnded.TYPE: when_partner_changed_update_copy,
    pt.PartnerSuspended.TYPE: when_partner_suspended_hold_orders,
    pt.PartnerReinstated.TYPE: when_partner_reinstated_review_held_orders,
    pt.PartnerTerminated.TYPE: when_partner_changed_update_copy,
    pt.PartnerTierChanged.TYPE: when_partner_changed_update_copy,
    od.OrderPlaced.TYPE: when_order_placed_keep_copy,
    od.OrderConfirmed.TYPE: when_order_confirmed_review_funds,
    od.OrderCancelled.TYPE: when_order_cancelled_release_exposure,
    dl.ShipmentDispatched.TYPE: when_shipment_dispatched_issue_invoice,
    dl.ReturnReceived.TYPE: when_refund_return_received_credit_account,
    rb.SettlementApproved.TYPE: when_settlement_approved_credit_account,
    rb.CoopClaimApproved.TYPE: when_coop_claim_approved_credit_account,
}


def documents_ahead(events: Sequence[DomainEvent]) -> Iterator[Key]:
    """The documents a batch of these events will read by key, read in one statement before
    its first reaction (``Unit.read_ahead``): the copies of its orders and partners (written
    only by reactions to those orders' and partners' own streams, which the consumer applies
    one at a time) and the reviews its confirmed orders may have had already (written only
    by the confirmation's own reaction; later ones decide on the live account first)."""
    for event in events:
        if isinstance(event, od.OrderPlaced | od.OrderCancelled | dl.ReturnReceived):
            yield copies.ORDER, event.order_id
        elif isinstance(event, od.OrderConfirmed):
            yield copies.ORDER, event.order_id
            yield REVIEW, event.order_id
        elif isinstance(event, dl.ShipmentDispatched):
            yield copies.ORDER, event.order_id
            yield copies.PARTNER, event.partner_id
        elif isinstance(event, pt.AgreementSigned | pt.TrialEnded | pt.PartnerSuspended
                        | pt.PartnerReinstated | pt.PartnerTerminated | pt.PartnerTierChanged):
            yield copies.PARTNER, event.partner_id


def handlers(ctx: ServiceContext) -> dict[str, Handler]:
    """The reaction table bound to the service's context."""
    return reactions(ctx, REACTIONS, read_ahead=documents_ahead)
