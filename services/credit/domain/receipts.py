"""Payments and credit notes: money coming onto the account.

- A payment is applied to the partner's open invoices oldest first (issued_on,
  then id), unless finance allocates it: allocations must name open invoices of
  this partner, each at most its open amount, summing to at most the payment.
  Each application is a ``PaymentApplied``; an invoice paid in full gets
  ``InvoicePaid`` (on time when the payment was received on or before its due
  date). Whatever is not applied stays on the account as advance.
- A credit note (refund return or rebate payout) reduces what the partner owes
  the same way: when it is issued, it is applied to open invoices oldest first
  (``CreditNoteApplied``: a settlement, not cash collected, so rebates do not
  earn on it), at most its own amount; the remainder stays as advance. That
  remainder is pooled with payment advance, so when it later settles a new
  invoice it is recorded as ``AdvanceApplied`` (a deliberate simplification:
  only the application at issue is traced to the credit note).
- Both then re-evaluate held and awaiting orders in arrival order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.values import InvoiceLine
from services.credit.domain.account import Account, fold
from services.credit.domain.errors import BadAllocation, BadAmount, CurrencyMismatch
from services.credit.domain.funds import decide_reevaluation
from services.credit.domain.invoicing import settle_from_advance
from services.credit.domain.position import NONE, open_invoices


def _allocation_plan(state: Account, amount: int, allocations: Sequence[tuple[str, int]] | None
                     ) -> list[tuple[str, int]]:
    if allocations is None:
        plan, left = [], amount
        for invoice in open_invoices(state):
            if left == 0:
                break
            share = min(left, invoice.open_minor)
            plan.append((invoice.invoice_id, share))
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
    return list(allocations)


def decide_payment(state: Account, *, payment_id: str, amount: int, currency: str, bank_ref: str,
                   received_on: date, allocations: Sequence[tuple[str, int]] | None, today: date,
                   cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    """Record a receipt, apply it (oldest first or as allocated), re-evaluate the queue."""
    if amount <= 0:
        raise BadAmount("amount_minor must be greater than 0")
    if currency != state.currency:
        raise CurrencyMismatch(currency, state.currency)
    plan = _allocation_plan(state, amount, allocations)
    events: list[DomainEvent] = [ev.PaymentReceived(
        payment_id=payment_id, partner_id=state.partner_id, amount_minor=amount, currency=currency,
        bank_ref=bank_ref, received_on=received_on)]
    for invoice_id, share in plan:
        invoice = state.invoices[invoice_id]
        events.append(ev.PaymentApplied(payment_id=payment_id, invoice_id=invoice_id,
                                        partner_id=state.partner_id, amount_minor=share,
                                        currency=currency, applied_on=received_on))
        if share == invoice.open_minor:
            events.append(ev.InvoicePaid(invoice_id=invoice_id, partner_id=state.partner_id,
                                         paid_on=received_on, on_time=received_on <= invoice.due_on))
    state = fold(state, events)
    return events + decide_reevaluation(state, today, f"payment {payment_id} received", cancelled)


def decide_credit_note(state: Account, *, credit_note_id: str, amount: int, reason: str, source_kind: str,
                       source_ref: str, issued_on: date, today: date, order_id: str | None = None,
                       lines: Sequence[InvoiceLine] = (), cancelled: Collection[str] = NONE
                       ) -> list[DomainEvent]:
    """Credit the account once per source; a zero or negative amount credits nothing."""
    if amount <= 0 or state.credit_note_for(source_kind, source_ref) is not None:
        return []
    events: list[DomainEvent] = [ev.CreditNoteIssued(
        credit_note_id=credit_note_id, partner_id=state.partner_id, amount_minor=amount,
        currency=state.currency, reason=reason, source_kind=source_kind,
        source_ref=source_ref, issued_on=issued_on, order_id=order_id, lines=list(lines))]
    state = fold(state, events)
    invoice_ids = [invoice.invoice_id for invoice in open_invoices(state)]
    applied = settle_from_advance(state, invoice_ids, issued_on, cap=amount, cancelled=cancelled,
                                  credit_note_id=credit_note_id)
    state = fold(state, applied)
    return events + applied + decide_reevaluation(state, today, f"credit note {credit_note_id}", cancelled)
