"""Invoices: one per dispatch, settled from advance where the account holds some.

- amount = Σ dispatched qty x the order's unit price (from its ``OrderPlaced``);
- issued on the dispatch date, due on the dispatch date + ``term_days`` (prepaid: + 0);
- region and tier are the partner's at issue;
- a prepaid order's invoice is settled first from the advance reserved for that
  order (``AdvanceApplied`` with ``invoice_id`` and ``order_id``), then, like every
  invoice, from the account's unreserved advance (``AdvanceApplied`` with
  ``invoice_id`` only); ``InvoicePaid`` (on time) when nothing remains open;
  (a credit note's remainder left as advance is, from then on, advance like any
  other: applied later to a new invoice it is ``AdvanceApplied``);
- advance and credit notes settle open debit notes too (``DebitNoteSettled``),
  with the invoices, oldest first (``position.open_items``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, timedelta

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.values import InvoiceLine
from services.credit.domain.account import Account, fold
from services.credit.domain.funds import decide_reevaluation
from services.credit.domain.parts import DebitNote, Invoice
from services.credit.domain.position import NONE, free_advance


def settle(state: Account, invoice: Invoice | DebitNote, amount: int, on: date, order_id: str | None = None,
           credit_note_id: str | None = None) -> list[DomainEvent]:
    """Advance money settles ``amount`` of ``invoice`` (from ``order_id``'s reservation if named).

    With ``credit_note_id`` the money is that credit note's (``CreditNoteApplied``: not cash),
    else it is advance (``AdvanceApplied``). A debit note gets ``DebitNoteSettled`` either way.
    """
    applied: DomainEvent
    if isinstance(invoice, DebitNote):
        return [ev.DebitNoteSettled(
            debit_note_id=invoice.debit_note_id, partner_id=state.partner_id, amount_minor=amount,
            currency=state.currency, settled_on=on, by="advance" if credit_note_id is None else "credit_note",
            ref=credit_note_id)]
    if credit_note_id is not None:
        applied = ev.CreditNoteApplied(credit_note_id=credit_note_id, invoice_id=invoice.invoice_id,
                                       partner_id=state.partner_id, amount_minor=amount,
                                       currency=state.currency, applied_on=on)
    else:
        applied = ev.AdvanceApplied(partner_id=state.partner_id, invoice_id=invoice.invoice_id,
                                    order_id=order_id, amount_minor=amount, currency=state.currency,
                                    applied_on=on)
    events: list[DomainEvent] = [applied]
    if amount == invoice.open_minor:
        events.append(ev.InvoicePaid(invoice_id=invoice.invoice_id, partner_id=state.partner_id,
                                     paid_on=on, on_time=on <= invoice.due_on))
    return events


def _current(state: Account, item: Invoice | DebitNote) -> Invoice | DebitNote:
    if isinstance(item, DebitNote):
        return state.debit_notes[item.debit_note_id]
    return state.invoices[item.invoice_id]


def settle_from_advance(state: Account, items: Sequence[Invoice | DebitNote], on: date,
                        cap: int | None = None, cancelled: Collection[str] = NONE,
                        credit_note_id: str | None = None) -> list[DomainEvent]:
    """Apply unreserved advance (at most ``cap``) to the given open invoices and debit notes in order.

    ``credit_note_id`` names the credit note the applied money comes from (then ``cap``
    is at most its amount): each application is ``CreditNoteApplied`` instead of
    ``AdvanceApplied``.
    """
    events: list[DomainEvent] = []
    budget = free_advance(state, cancelled) if cap is None else min(cap, free_advance(state, cancelled))
    for item in items:
        invoice = _current(state, item)
        amount = min(budget, invoice.open_minor)
        if amount <= 0:
            continue
        applied = settle(state, invoice, amount, on, credit_note_id=credit_note_id)
        events += applied
        state = fold(state, applied)
        budget -= amount
    return events


def decide_invoice(state: Account, *, invoice_id: str, order_id: str, dispatch_id: str,
                   lines: Sequence[InvoiceLine], issued_on: date, region: str, tier: str, today: date,
                   cancelled: Collection[str] = NONE, invoiced: bool = False) -> list[DomainEvent]:
    """Invoice one dispatch (once per dispatch), settle what advance can, re-evaluate the queue.

    ``invoiced``: the dispatch has an invoice that is closed since (the account keeps only
    open invoices; the application layer looks the others up)."""
    if invoiced or any(i.dispatch_id == dispatch_id for i in state.invoices.values()):
        return []
    term = state.term_days if state.kind == "credit" else 0
    total = sum(line.line_total_minor for line in lines)
    events: list[DomainEvent] = [ev.InvoiceIssued(
        invoice_id=invoice_id, order_id=order_id, partner_id=state.partner_id, dispatch_id=dispatch_id,
        lines=list(lines), total_minor=total, currency=state.currency, issued_on=issued_on,
        due_on=issued_on + timedelta(days=term), region=region, tier=tier)]
    state = fold(state, events)
    invoice = state.invoices[invoice_id]
    if invoice.open_minor == 0:
        paid: list[DomainEvent] = [ev.InvoicePaid(invoice_id=invoice_id, partner_id=state.partner_id,
                                                  paid_on=issued_on, on_time=True)]
        return events + paid + decide_reevaluation(fold(state, paid), today, "invoice issued", cancelled)
    order = state.orders.get(order_id)
    if order is not None and order.status == "approved" and order_id not in cancelled:
        left = max(order.reserved_minor - order.reservation_used_minor, 0)
        from_reservation = min(invoice.open_minor, left)
        if from_reservation > 0:
            applied = settle(state, invoice, from_reservation, issued_on, order_id=order_id)
            events += applied
            state = fold(state, applied)
    applied = settle_from_advance(state, [state.invoices[invoice_id]], issued_on, cancelled=cancelled)
    events += applied
    state = fold(state, applied)
    return events + decide_reevaluation(state, today, "advance applied to an invoice", cancelled)
