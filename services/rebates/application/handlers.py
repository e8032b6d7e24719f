"""Reactions to the partners and credit services' events, in one visible table.

Every reaction is a ``Unit`` of the one command path (``libs.runtime.commands``),
in the consumer's transaction, with the delivery's metadata (the correlation id
flows on) and deterministic event ids, so a replay appends nothing new; a source
already accrued is found by its row (``sources.counted``) and skipped by the decision.
The programs a document may count for are found by index (``applicability``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from libs.events.credit import AdvanceApplied, CreditNoteIssued, InvoiceIssued, InvoicePaid, PaymentApplied
from libs.events.partners import PartnerRegistered, PartnerTierChanged
from libs.messaging.consumer import Handler
from libs.runtime.commands import Reaction, Unit, reactions
from libs.runtime.host import ServiceContext
from services.rebates.application import copies, views
from services.rebates.application.accruals import accrue_for_partner
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import (
    InvoiceCopy,
    ReturnCopy,
    invoice_contributions,
    period_of,
    return_contribution,
    with_application,
)


async def when_partner_registered_keep_copy(unit: Unit, event: Any) -> None:
    assert isinstance(event, PartnerRegistered)
    await copies.save_partner(unit.conn, PartnerProfile(
        event.partner_id, event.tier, event.region, event.parent_id))


async def when_partner_tier_changed_update_copy(unit: Unit, event: Any) -> None:
    assert isinstance(event, PartnerTierChanged)
    profile = await copies.partner_profile(unit.conn, event.partner_id)
    await copies.save_partner(unit.conn, replace(profile, tier=event.to_tier))


async def _accrue_invoice(unit: Unit, invoice: InvoiceCopy,
                          profile: PartnerProfile | None = None, *, cash: bool = False) -> None:
    """Accrue what the invoice (and the cash on it) now contributes, then keep the copy.

    News of cash accrues only cash: it follows a partner into programs it already
    accrues in, but must not bring in the invoice itself (issued while it was not
    eligible) on the invoiced basis.
    """
    profile = profile or await copies.partner_profile(unit.conn, invoice.partner_id)
    dates = [] if invoice.issued_on is None else [
        invoice.issued_on, *(application.on for application in invoice.applications if application.on)]
    await accrue_for_partner(
        unit, profile,
        lambda program: [c for c in invoice_contributions(program, invoice, period_of(program))
                         if not cash or c.kind == "payment"],
        currency=invoice.currency, dates=dates, follow_existing=cash)
    await copies.save_invoice(unit.conn, invoice)


async def when_invoice_issued_accrue(unit: Unit, event: Any) -> None:
    """Basis ``invoiced``: the eligible lines; basis ``collected``: cash that arrived before it."""
    assert isinstance(event, InvoiceIssued)
    conn = unit.conn
    profile = await copies.partner_profile(conn, event.partner_id)
    unknown_partner = profile.tier is None and profile.region is None
    if unknown_partner:  # the partner's own news has not arrived yet: trust what the invoice says
        profile = replace(profile, tier=event.tier, region=event.region)
    current = await copies.invoice_copy(conn, event.invoice_id, event.partner_id)
    invoice = replace(current, issued_on=event.issued_on, total_minor=event.total_minor,
                      currency=event.currency,
                      lines=tuple((line.category, line.line_total_minor) for line in event.lines))
    await _accrue_invoice(unit, invoice, profile)
    if unknown_partner:
        await copies.save_partner(conn, profile)


async def when_payment_applied_accrue_collected(unit: Unit, event: Any) -> None:
    assert isinstance(event, PaymentApplied)
    current = await copies.invoice_copy(unit.conn, event.invoice_id, event.partner_id)
    invoice = with_application(current, f"{event.payment_id}/{event.invoice_id}", event.amount_minor,
                               event.applied_on)
    await _accrue_invoice(unit, invoice, cash=True)


async def when_advance_applied_accrue_collected(unit: Unit, event: Any) -> None:
    """An advance settling an invoice is cash collected, dated by the invoice (the event has no date)."""
    assert isinstance(event, AdvanceApplied)
    if event.invoice_id is None:  # reserved for an order: not cash on an invoice yet
        return
    current = await copies.invoice_copy(unit.conn, event.invoice_id, event.partner_id)
    invoice = with_application(current, f"advance/{event.invoice_id}", event.amount_minor, None)
    await _accrue_invoice(unit, invoice, cash=True)


async def when_invoice_paid_note_timeliness(unit: Unit, event: Any) -> None:
    assert isinstance(event, InvoicePaid)
    current = await copies.invoice_copy(unit.conn, event.invoice_id, event.partner_id)
    await copies.save_invoice(unit.conn, replace(current, paid_on=event.paid_on, on_time=event.on_time))


async def when_credit_note_issued_reverse_or_link(unit: Unit, event: Any) -> None:
    """A return takes its eligible lines off the basis; a rebate credit note is linked to its settlement."""
    assert isinstance(event, CreditNoteIssued)
    if event.source_kind == "rebate":
        await views.note_credit_note(unit.conn, event.source_ref, event.credit_note_id)
        return
    note = ReturnCopy(event.credit_note_id, event.partner_id, event.issued_on, event.amount_minor,
                      event.currency, tuple((line.category, line.line_total_minor) for line in event.lines))
    profile = await copies.partner_profile(unit.conn, event.partner_id)
    await accrue_for_partner(
        unit, profile,
        lambda program: return_contribution(program, note, period_of(program)),
        currency=note.currency, dates=[note.issued_on], follow_existing=True)
    await copies.save_return(unit.conn, note)


def handlers(ctx: ServiceContext) -> Mapping[str, Handler]:
    table: dict[str, Reaction] = {
        PartnerRegistered.TYPE: when_partner_registered_keep_copy,
        PartnerTierChanged.TYPE: when_partner_tier_changed_update_copy,
        InvoiceIssued.TYPE: when_invoice_issued_accrue,
        PaymentApplied.TYPE: when_payment_applied_accrue_collected,
        AdvanceApplied.TYPE: when_advance_applied_accrue_collected,
        InvoicePaid.TYPE: when_invoice_paid_note_timeliness,
        CreditNoteIssued.TYPE: when_credit_note_issued_reverse_or_link,
        # ``CreditNoteApplied`` is deliberately not handled: a credit note settling an
        # invoice is not cash collected (a rebate on a rebate payout, or a refund
        # counted as cash); a return already reverses the basis via ``CreditNoteIssued``.
    }
    return reactions(ctx, table)
