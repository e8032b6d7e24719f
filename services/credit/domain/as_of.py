"""An account as the books stood at the end of a day.

Each account event has a business day: the date it carries (an invoice's or a
note's ``issued_on``, a receipt's ``received_on``, an application's
``applied_on``, ``paid_on``, ``settled_on``, ``written_off_on``), else the day
it was recorded. The account at the end of ``day`` is the fold, in recorded
order, of the events whose business day is ``day`` or earlier: a receipt
backdated into the day counts, as it does on the statement, so the balance
equals the statement's closing balance for that day. Money applied to an
invoice not yet issued that day stays on the account as advance (``evolve``
ignores the application), so the balance holds either way. The account's
opening counts from the start: before any fact the account shows zeros. It is folded
with ``apply`` (every fact kept), as it always was: the filtered events are not a
history the aggregate ever had.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent
from services.credit.domain.account import Account, apply


def business_day(event: DomainEvent, recorded_on: date) -> date:
    """The day the event counts on in the books."""
    match event:
        case ev.AccountOpened():
            return date.min
        case ev.InvoiceIssued() | ev.DebitNoteIssued() | ev.CreditNoteIssued():
            return event.issued_on
        case ev.PaymentReceived():
            return event.received_on
        case ev.PaymentApplied() | ev.CreditNoteApplied():
            return event.applied_on
        case ev.AdvanceApplied():
            return event.applied_on or recorded_on
        case ev.InvoicePaid():
            return event.paid_on
        case ev.DebitNoteSettled():
            return event.settled_on
        case ev.InvoiceWrittenOff():
            return event.written_off_on or recorded_on
    return recorded_on


def account_at(partner_id: str, entries: Iterable[tuple[DomainEvent, date]], day: date) -> Account:
    """The account folded from ``(event, recorded_on)`` in recorded order, as it stood at ``day``.

    Terms, holds and other events without a business date count from the day they were recorded."""
    state = Account(partner_id=partner_id)
    for event, recorded_on in entries:
        if business_day(event, recorded_on) <= day:
            state = apply(state, event)
    return state
