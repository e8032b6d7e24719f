"""Payments, credit notes and debit notes: money coming onto the account, and owed back.

- A receipt is dated by ``received_on``: never after today, never before the
  account opened, and at most ``window_days`` back (``CreditSettings.
  receipt_backdate_days``, 30 by default); otherwise 422 and nothing is recorded.
- A payment is applied as of its date to the partner's open invoices and debit
  notes oldest first (``position.open_items``), unless finance allocates it:
  allocations must name open invoices of this partner, each at most its open
  amount, summing to at most the payment. Each application is a
  ``PaymentApplied`` (``DebitNoteSettled`` for a debit note) dated
  ``received_on``, or the item's issue day when it was issued later (the money
  waited as advance until then); an invoice paid in full gets ``InvoicePaid``
  on that day (on time when on or before its due date). Statements, aging,
  ``paid_on`` and the timeliness ratio all follow that date. Whatever is not
  applied stays on the account as advance.
- A credit note (refund return or rebate payout) reduces what the partner owes
  the same way: when it is issued, it is applied to open items oldest first
  (``CreditNoteApplied``: a settlement, not cash collected, so rebates do not
  earn on it), at most its own amount; the remainder stays as advance. That
  remainder is pooled with payment advance, so when it later settles a new
  invoice it is recorded as ``AdvanceApplied`` (a deliberate simplification:
  only the application at issue is traced to the credit note).
- Both then re-evaluate held and awaiting orders in arrival order.
- A debit note (an approved negative rebate true-up) is owed like an invoice:
  due on its issue day + the term (prepaid: the issue day), settled at once by
  whatever free advance the account holds, then by later money oldest first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, timedelta

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.values import InvoiceLine
from services.credit.domain.account import Account, fold
from services.credit.domain.errors import BadAllocation, BadAmount, BadReceiptDate, CurrencyMismatch
from services.credit.domain.funds import decide_reevaluation
from services.credit.domain.invoicing import settle_from_advance
from services.credit.domain.parts import DebitNote, Invoice
from services.credit.domain.position import NONE, open_items

BACKDATE_DAYS = 30
"""How far back a receipt may be dated by default (days before today)."""


def _allocation_plan(state: Account, amount: int, allocations: Sequence[tuple[str, int]] | None
                     ) -> list[tuple[Invoice | DebitNote, int]]:
    if allocations is None:
        plan: list[tuple[Invoice | DebitNote, int]] = []
        left = amount
        for item in open_items(state):
            if left == 0:
                break
            share = min(left, item.open_minor)
            plan.append((item, share))
            left -= share
        return plan
    seen: set[str] = set()
    for invoice_id, share in allocations:
        target = state.invoices.get(invoice_id)
        if target is None or target.status != "open" or target.open_minor == 0:
            raise BadAllocation(f"{invoice_id!r} is not an open invoice of partner {state.partner_id!r}")
        if invoice_id in seen:
            raise BadAllocation(f"invoice {invoice_id!r} is allocated twice")
        seen.add(invoice_id)
        if not 0 < share <= target.open_minor:
            raise BadAllocation(f"invoice {invoice_id!r} has {target.open_minor} open; "
                                f"{share} cannot be allocated to it")
    if sum(share for _, share in allocations) > amount:
        raise BadAllocation("the allocations add up to more than the payment")
    return [(state.invoices[invoice_id], share) for invoice_id, share in allocations]


def check_received_on(state: Account, received_on: date, today: date, window_days: int) -> None:
    """A receipt is dated today or up to ``window_days`` back, never before the account opened."""
    if received_on > today:
        raise BadReceiptDate(f"received_on {received_on} is after today ({today}): "
                             "a receipt is recorded once the money has arrived")
    if state.opened_on is not None and received_on < state.opened_on:
        raise BadReceiptDate(f"received_on {received_on} is before the account of partner "
                             f"{state.partner_id!r} opened ({state.opened_on})")
    earliest = today - timedelta(days=window_days)
    if received_on < earliest:
        raise BadReceiptDate(f"received_on {received_on} is more than {window_days} days back; "
                             f"the earliest date accepted today is {earliest}")


def decide_payment(state: Account, *, payment_id: str, amount: int, currency: str, bank_ref: str,
                   received_on: date, allocations: Sequence[tuple[str, int]] | None, today: date,
                   cancelled: Collection[str] = NONE, window_days: int = BACKDATE_DAYS) -> list[DomainEvent]:
    """Record a receipt, apply it as of its date (oldest first or as allocated), re-evaluate the queue."""
    if amount <= 0:
        raise BadAmount("amount_minor must be greater than 0")
    if currency != state.currency:
        raise CurrencyMismatch(currency, state.currency)
    check_received_on(state, received_on, today, window_days)
    plan = _allocation_plan(state, amount, allocations)
    events: list[DomainEvent] = [ev.PaymentReceived(
        payment_id=payment_id, partner_id=state.partner_id, amount_minor=amount, currency=currency,
        bank_ref=bank_ref, received_on=received_on)]
    for item, share in plan:
        on = max(received_on, item.issued_on)
        if isinstance(item, DebitNote):
            events.append(ev.DebitNoteSettled(
                debit_note_id=item.debit_note_id, partner_id=state.partner_id, amount_minor=share,
                currency=currency, settled_on=on, by="payment", ref=payment_id))
            continue
        events.append(ev.PaymentApplied(payment_id=payment_id, invoice_id=item.invoice_id,
                                        partner_id=state.partner_id, amount_minor=share,
                                        currency=currency, applied_on=on))
        if share == item.open_minor:
            events.append(ev.InvoicePaid(invoice_id=item.invoice_id, partner_id=state.partner_id,
                                         paid_on=on, on_time=on <= item.due_on))
    state = fold(state, events)
    return events + decide_reevaluation(state, today, f"payment {payment_id} received", cancelled)


def decide_credit_note(state: Account, *, credit_note_id: str, amount: int, reason: str, source_kind: str,
                       source_ref: str, issued_on: date, today: date, order_id: str | None = None,
                       lines: Sequence[InvoiceLine] = (), cancelled: Collection[str] = NONE,
                       credited: bool = False) -> list[DomainEvent]:
    """Credit the account once per source; a zero or negative amount credits nothing.

    ``credited``: the source has a credit note already (the account keeps none once folded:
    the application layer looks it up; a decision sees the ones it issued itself)."""
    if amount <= 0 or credited or any((n.source_kind, n.source_ref) == (source_kind, source_ref)
                                      for n in state.credit_notes.values()):
        return []
    events: list[DomainEvent] = [ev.CreditNoteIssued(
        credit_note_id=credit_note_id, partner_id=state.partner_id, amount_minor=amount,
        currency=state.currency, reason=reason, source_kind=source_kind,
        source_ref=source_ref, issued_on=issued_on, order_id=order_id, lines=list(lines))]
    state = fold(state, events)
    applied = settle_from_advance(state, open_items(state), issued_on, cap=amount, cancelled=cancelled,
                                  credit_note_id=credit_note_id)
    state = fold(state, applied)
    return events + applied + decide_reevaluation(state, today, f"credit note {credit_note_id}", cancelled)


def decide_debit_note(state: Account, *, debit_note_id: str, amount: int, reason: str, source_ref: str,
                      issued_on: date, cancelled: Collection[str] = NONE, debited: bool = False
                      ) -> list[DomainEvent]:
    """Debit the account once per source (a rebate settlement); free advance settles it at once.

    ``debited``: the source has a debit note that is settled since (the account keeps only
    open ones; the application layer looks the others up)."""
    if amount <= 0 or debited or any(n.source_ref == source_ref for n in state.debit_notes.values()):
        return []
    term = state.term_days if state.kind == "credit" else 0
    events: list[DomainEvent] = [ev.DebitNoteIssued(
        debit_note_id=debit_note_id, partner_id=state.partner_id, amount_minor=amount,
        currency=state.currency, reason=reason, source_ref=source_ref, issued_on=issued_on,
        due_on=issued_on + timedelta(days=term))]
    state = fold(state, events)
    return events + settle_from_advance(state, [state.debit_notes[debit_note_id]], issued_on,
                                        cancelled=cancelled)
