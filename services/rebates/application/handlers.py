"""Reactions to the partners and credit services' events, in one visible table.

Every reaction is a ``Unit`` of the one command path (``libs.runtime.commands``),
in the consumer's transaction, with the delivery's metadata (the correlation id
flows on) and deterministic event ids, so a replay appends nothing new; a source
already accrued is found by its row (``sources.counted``) and skipped by the decision.
The programs a document may count for are found by index (``applicability``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from libs.events.credit import AdvanceApplied, CreditNoteIssued, InvoiceIssued, InvoicePaid, PaymentApplied
from libs.events.partners import PartnerParentChanged, PartnerRegistered, PartnerTierChanged
from libs.events.rebates import ProgramPublished
from libs.messaging.consumer import Handler
from libs.runtime.commands import Reaction, Unit, reactions
from libs.runtime.host import ServiceContext
from services.rebates.application import copies, views
from services.rebates.application.accruals import accrue_for_partner, reassess
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import (
    InvoiceCopy,
    ReturnCopy,
    Window,
    invoice_contributions,
    period_of,
    return_contribution,
    returned_from,
    with_application,
)
from services.rebates.domain.rollup import with_parent_change


async def when_partner_registered_keep_copy(unit: Unit, event: Any) -> None:
    assert isinstance(event, PartnerRegistered)
    await copies.keep_partner(unit, PartnerProfile(
        event.partner_id, event.tier, event.region, event.parent_id))


async def when_partner_tier_changed_update_copy(unit: Unit, event: Any) -> None:
    assert isinstance(event, PartnerTierChanged)
    profile = await copies.partner_profile(unit.conn, event.partner_id)
    await copies.keep_partner(unit, replace(profile, tier=event.to_tier))


async def when_partner_parent_changed_keep_history(unit: Unit, event: Any) -> None:
    """Keep the parent history: sales are attributed by the parent in effect on their date."""
    assert isinstance(event, PartnerParentChanged)
    profile = await copies.partner_profile(unit.conn, event.partner_id)
    changed = with_parent_change(profile, event.effective_from, event.to_parent_id)
    await copies.keep_partner(unit, changed)


def _in_baseline(on: date) -> Callable[[ProgramPublished], bool]:
    """Does a document dated ``on`` move a program's growth baseline?"""
    def moves(program: ProgramPublished) -> bool:
        growth = program.growth
        return growth is not None and Window(growth.baseline_from, growth.baseline_to).holds(on)
    return moves


def _in_period(on: date, rule: str) -> Callable[[ProgramPublished], bool]:
    """Does news dated ``on`` move a program's bonus ``rule`` (``timeliness``) in its period?"""
    return lambda program: getattr(program, rule) is not None and period_of(program).holds(on)


async def _accrue_invoice(unit: Unit, invoice: InvoiceCopy,
                          profile: PartnerProfile | None = None, *, cash: bool = False) -> None:
    """Keep the copy, then accrue what the invoice (and the cash on it) now contributes.

    The copy comes first: the bonuses an accrual includes are read from the ledger.
    News of cash accrues only cash: it follows a partner into programs it already
    accrues in, but must not bring in the invoice itself (issued while it was not
    eligible) on the invoiced basis.
    """
    await copies.keep_invoice(unit, invoice)
    profile = profile or await copies.profile_of(unit, invoice.partner_id)
    dates = [] if invoice.issued_on is None else [
        invoice.issued_on, *(application.on for application in invoice.applications if application.on)]
    await accrue_for_partner(
        unit, profile,
        lambda program: [c for c in invoice_contributions(program, invoice, period_of(program))
                         if not cash or c.kind == "payment"],
        currency=invoice.currency, dates=dates, follow_existing=cash, sold_on=invoice.issued_on)


async def when_invoice_issued_accrue(unit: Unit, event: Any) -> None:
    """Basis ``invoiced``: the eligible lines; basis ``collected``: cash that arrived before it."""
    assert isinstance(event, InvoiceIssued)
    conn = unit.conn
    profile = await copies.profile_of(unit, event.partner_id)
    unknown_partner = profile.tier is None and profile.region is None
    if unknown_partner:  # the partner's own news has not arrived yet: trust what the invoice says
        profile = replace(profile, tier=event.tier, region=event.region)
    current = await copies.invoice_of(unit, event.invoice_id, event.partner_id)
    invoice = replace(current, order_id=event.order_id, issued_on=event.issued_on,
                      total_minor=event.total_minor, currency=event.currency,
                      lines=tuple((line.category, line.line_total_minor) for line in event.lines))
    await _accrue_invoice(unit, invoice, profile)
    if unknown_partner:  # read again before writing: partner news may have come since the read ahead
        stored = await copies.partner_profile(conn, event.partner_id)
        if stored.tier is None and stored.region is None:
            await copies.keep_partner(unit, replace(stored, tier=event.tier, region=event.region))
    # An invoice in the period lowers the on-time share until paid; one in a baseline raises it.
    in_period, in_baseline = _in_period(event.issued_on, "timeliness"), _in_baseline(event.issued_on)
    await reassess(unit, event.partner_id, f"issued/{event.invoice_id}", event.issued_on,
                   lambda program: in_period(program) or in_baseline(program))


async def when_payment_applied_accrue_collected(unit: Unit, event: Any) -> None:
    assert isinstance(event, PaymentApplied)
    current = await copies.invoice_of(unit, event.invoice_id, event.partner_id)
    invoice = with_application(current, f"{event.payment_id}/{event.invoice_id}", event.amount_minor,
                               event.applied_on)
    await _accrue_invoice(unit, invoice, cash=True)


async def when_advance_applied_accrue_collected(unit: Unit, event: Any) -> None:
    """An advance settling an invoice is cash collected, dated by the invoice (the event has no date)."""
    assert isinstance(event, AdvanceApplied)
    if event.invoice_id is None:  # reserved for an order: not cash on an invoice yet
        return
    current = await copies.invoice_of(unit, event.invoice_id, event.partner_id)
    invoice = with_application(current, f"advance/{event.invoice_id}", event.amount_minor, None)
    await _accrue_invoice(unit, invoice, cash=True)


async def when_invoice_paid_note_timeliness(unit: Unit, event: Any) -> None:
    """Keep whether it was paid on time; the timeliness bonus of its period's programs may move."""
    assert isinstance(event, InvoicePaid)
    current = await copies.invoice_of(unit, event.invoice_id, event.partner_id)
    await copies.keep_invoice(unit, replace(current, paid_on=event.paid_on, on_time=event.on_time))
    if current.issued_on is not None:
        await reassess(unit, event.partner_id, f"paid/{event.invoice_id}", current.issued_on,
                       _in_period(current.issued_on, "timeliness"))


async def when_credit_note_issued_reverse_or_link(unit: Unit, event: Any) -> None:
    """A return takes its eligible lines off the basis of the period its original invoice earned in.

    That period's program may be open or final (then a true-up is proposed); the
    current period's basis is untouched. A rebate credit note is linked to its settlement, a
    co-op one to its claim.
    """
    assert isinstance(event, CreditNoteIssued)
    conn = unit.conn
    if event.source_kind == "rebate":
        await views.note_credit_note(conn, event.source_ref, event.credit_note_id)
        return
    if event.source_kind == "coop":
        await views.note_credit_note(conn, event.source_ref, event.credit_note_id, views.CLAIM)
        return
    note = ReturnCopy(event.credit_note_id, event.partner_id, event.issued_on, event.amount_minor,
                      event.currency, tuple((line.category, line.line_total_minor) for line in event.lines))
    note = returned_from(note, await copies.original_invoice(conn, event.partner_id, event.order_id,
                                                             event.issued_on))
    await copies.save_return(conn, note)
    profile = await copies.profile_of(unit, event.partner_id)
    dated = sorted({note.issued_on, *(day for day in (note.sold_on, note.collected_on) if day)})
    await accrue_for_partner(
        unit, profile,
        lambda program: return_contribution(program, note, period_of(program)),
        currency=note.currency, dates=dated, follow_existing=True,
        sold_on=note.sold_on or note.issued_on)
    for day in dated:
        await reassess(unit, event.partner_id, f"baseline/{event.credit_note_id}", day, _in_baseline(day))


def handlers(ctx: ServiceContext) -> Mapping[str, Handler]:
    table: dict[str, Reaction] = {
        PartnerRegistered.TYPE: when_partner_registered_keep_copy,
        PartnerTierChanged.TYPE: when_partner_tier_changed_update_copy,
        PartnerParentChanged.TYPE: when_partner_parent_changed_keep_history,
        InvoiceIssued.TYPE: when_invoice_issued_accrue,
        PaymentApplied.TYPE: when_payment_applied_accrue_collected,
        AdvanceApplied.TYPE: when_advance_applied_accrue_collected,
        InvoicePaid.TYPE: when_invoice_paid_note_timeliness,
        CreditNoteIssued.TYPE: when_credit_note_issued_reverse_or_link,
        # ``CreditNoteApplied`` is deliberately not handled: a credit note settling an
        # invoice is not cash collected (a rebate on a rebate payout, or a refund
        # counted as cash); a return already reverses the basis via ``CreditNoteIssued``.
    }
    return reactions(ctx, table, read_ahead=copies.read_ahead)
