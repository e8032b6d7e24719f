"""The partner's account (stream ``account-<partner_id>``): terms, money on account, and what is
still *live* on it -- orders under funds review or not fully invoiced, open invoices and debit
notes, proposed write-offs -- folded from the account's own events.

Every credit decision about a partner is appended to this one stream with the
version it was decided on, so two orders racing for the same room can never
both be approved: the second append fails and is decided again on the new state.

Money on the account (``advance_minor``) is every receipt and credit note not
yet applied to an invoice. Part of it can be *reserved* for an approved prepaid
order (``AdvanceApplied`` with ``order_id`` only); a reservation is consumed by
that order's invoices (``AdvanceApplied`` with ``invoice_id`` and ``order_id``).
A credit note's amount applied to invoices when it is issued is ``CreditNoteApplied``.
A debit note (money the partner owes back) is open like an invoice; money applied
to it is ``DebitNoteSettled`` and leaves the advance the same way.

Two folds
---------
``apply`` records every fact: each order, invoice, receipt, credit and debit note and
write-off the account ever had. Decisions fold their own events with it (``fold``), so a
fact that closes within a decision can still be read by the rest of it (the invoice a
payment just settled gets its ``InvoicePaid``); the documents of a save are written from it
(``application.accounts``), and full-history readers (rebuild, as-of, statements) use it.

``evolve``, the aggregate's fold (loads, the remembered state, snapshots), is ``apply``
followed by dropping every fact the event *closed*: an invoice once nothing is open on it,
an order once it is neither queued nor waiting to be invoiced, a settled debit note, a
decided write-off; receipts and credit notes are never kept (nothing decided later reads
them). So the loaded account holds what is live and a few counters, and loading it costs
the same at 10 orders as at 100,000. Nothing decided later needs a closed fact except
"was this done already?": whether an order was reviewed, a dispatch invoiced, a source
credited or debited. The application layer answers those from the documents (indexed
lookups in the same transaction) and passes the answer to the decision.

A closed fact never comes back: no event re-opens an invoice, an order, a debit note or
a write-off, and an event about a closed fact (``InvoicePaid`` after the payment that
closed the invoice) changes nothing ``evolve`` keeps. The live sets (``open_invoice_ids``
...) are kept by both folds alike, so both give the same position and the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.values import DEFAULT_CURRENCY
from libs.runtime.persistent import PMap
from services.credit.domain.parts import (
    CreditNote,
    DebitNote,
    Invoice,
    OrderReview,
    Receipt,
    ReviewStatus,
    WriteOff,
    changed,
    debit_open,
    is_live,
    is_open,
)


def stream_id(partner_id: str) -> str:
    return f"account-{partner_id}"


STREAM_TYPE = "account"
SHAPE = "credit.account/5"
"""The account's shape for snapshots (``services.credit.domain.snapshot``): bump it whenever
``Account`` or one of its parts changes, so snapshots of the old shape are ignored."""


@dataclass(frozen=True)
class Account:
    partner_id: str = ""
    opened: bool = False
    kind: str = "prepaid"
    credit_limit_minor: int = 0
    term_days: int = 0
    currency: str = DEFAULT_CURRENCY
    opened_on: date | None = None
    advance_minor: int = 0
    next_seq: int = 1
    suspended: bool = False
    """The partner is suspended: no order passes funds review until it is reinstated."""
    invoices_issued: int = 0
    """How many invoices the account ever had (an invoice's ``seq`` is the next)."""
    debit_notes_issued: int = 0
    orders: PMap[str, OrderReview] = field(default_factory=PMap)
    invoices: PMap[str, Invoice] = field(default_factory=PMap)
    payments: PMap[str, Receipt] = field(default_factory=PMap)
    """Receipts (only ``apply`` keeps them: ``evolve`` holds none)."""
    credit_notes: PMap[str, CreditNote] = field(default_factory=PMap)
    """Credit notes (only ``apply`` keeps them: ``evolve`` holds none)."""
    debit_notes: PMap[str, DebitNote] = field(default_factory=PMap)
    write_offs: PMap[str, WriteOff] = field(default_factory=PMap)
    open_invoice_ids: frozenset[str] = frozenset()
    """Invoices with an open amount (status ``open``)."""
    open_debit_note_ids: frozenset[str] = frozenset()
    live_order_ids: frozenset[str] = frozenset()
    """Orders queued, or approved and not fully invoiced: the only ones exposure, reservations
    and the queue can count."""


def _flagged(ids: frozenset[str], item_id: str, flag: bool) -> frozenset[str]:
    if flag == (item_id in ids):
        return ids
    return ids | {item_id} if flag else ids - {item_id}


def _with_order(state: Account, review: OrderReview) -> Account:
    return changed(state, orders=state.orders.set(review.order_id, review),
                   live_order_ids=_flagged(state.live_order_ids, review.order_id, is_live(review)))


def _with_invoice(state: Account, invoice: Invoice) -> Account:
    return changed(state, invoices=state.invoices.set(invoice.invoice_id, invoice),
                   open_invoice_ids=_flagged(state.open_invoice_ids, invoice.invoice_id, is_open(invoice)))


def _with_debit_note(state: Account, note: DebitNote) -> Account:
    return changed(state, debit_notes=state.debit_notes.set(note.debit_note_id, note),
                   open_debit_note_ids=_flagged(state.open_debit_note_ids, note.debit_note_id,
                                                debit_open(note)))


def _with_write_off(state: Account, write_off: WriteOff) -> Account:
    return changed(state, write_offs=state.write_offs.set(write_off.write_off_id, write_off))


def _reviewed(state: Account, order_id: str, total: int, status: ReviewStatus, **changes: object) -> Account:
    existing = state.orders.get(order_id)
    if existing is None:
        review = OrderReview(order_id, total, status, state.next_seq)
        state = changed(state, next_seq=state.next_seq + 1)
    else:
        review = changed(existing, status=status)
    return _with_order(state, changed(review, **changes))


def _pay_invoice(state: Account, invoice_id: str, amount: int, on: date) -> Account:
    invoice = state.invoices[invoice_id]
    state = changed(state, advance_minor=state.advance_minor - amount)
    settled_on = on if invoice.settled_on is None else max(invoice.settled_on, on)
    return _with_invoice(state, changed(invoice, paid_minor=invoice.paid_minor + amount,
                                        settled_on=settled_on))


def _settle_debit_note(state: Account, event: ev.DebitNoteSettled) -> Account:
    note = state.debit_notes[event.debit_note_id]
    settled = note.settled_minor + event.amount_minor
    note = changed(note, settled_minor=settled,
                   paid_on=event.settled_on if settled >= note.amount_minor else None)
    state = _with_debit_note(changed(state, advance_minor=state.advance_minor - event.amount_minor), note)
    paid_by = state.payments.get(event.ref or "") if event.by == "payment" else None
    if paid_by is not None:
        paid_by = changed(paid_by, debit_note_applications=(
            *paid_by.debit_note_applications, (event.debit_note_id, event.amount_minor)))
        state = changed(state, payments=state.payments.set(paid_by.payment_id, paid_by))
    return state


def _write_off_event(state: Account, event: DomainEvent) -> Account:
    """Proposed, approved and rejected write-offs (their ``InvoiceWrittenOff`` is folded apart)."""
    match event:
        case ev.WriteOffProposed():
            return _with_write_off(state, WriteOff(
                event.write_off_id, event.invoice_id, event.amount_minor, event.reason, event.proposed_by,
                event.proposed_on))
        case ev.WriteOffApproved() if event.write_off_id in state.write_offs:
            return _with_write_off(state, changed(state.write_offs[event.write_off_id], status="approved",
                                                  decided_by=event.approved_by, decided_on=event.approved_on))
        case ev.WriteOffRejected() if event.write_off_id in state.write_offs:
            return _with_write_off(state, changed(
                state.write_offs[event.write_off_id], status="rejected", decided_by=event.rejected_by,
                decided_on=event.rejected_on, decision_reason=event.reason))
    return state


def _written_off(state: Account, event: ev.InvoiceWrittenOff) -> Account:
    invoice = state.invoices[event.invoice_id]
    state = _with_invoice(state, changed(invoice, written_off_minor=invoice.written_off_minor
                                         + event.amount_minor))
    if event.write_off_id is not None and event.write_off_id not in state.write_offs:
        on = event.written_off_on or invoice.issued_on
        state = _with_write_off(state, WriteOff(
            event.write_off_id, event.invoice_id, event.amount_minor, event.reason, event.written_off_by,
            on, status="applied"))
    return state


def apply(state: Account, event: DomainEvent) -> Account:
    """Apply one account event, keeping every fact; pure and total (unknown events change nothing)."""
    match event:
        case ev.AccountOpened() | ev.TermsChanged():
            state = changed(state, partner_id=event.partner_id, opened=True, kind=event.kind,
                            credit_limit_minor=event.credit_limit_minor, term_days=event.term_days,
                            currency=event.currency)
            if isinstance(event, ev.AccountOpened) and event.opened_on is not None:
                state = changed(state, opened_on=event.opened_on)
            return state
        case ev.AccountSuspended():
            return changed(state, suspended=True)
        case ev.AccountReinstated():
            return changed(state, suspended=False)
        case ev.FundsReviewPassed():
            return _reviewed(state, event.order_id, event.amount_minor, "approved", how=event.how)
        case ev.OrderPutOnHold():
            return _reviewed(state, event.order_id, event.amount_minor, "held", hold_reason=event.reason)
        case ev.OrderAwaitingPrepayment():
            return _reviewed(state, event.order_id, event.amount_minor, "awaiting_prepayment")
        case ev.HoldReleased() if event.order_id in state.orders:
            return _with_order(state, changed(state.orders[event.order_id], decided_reason=event.reason))
        case ev.OrderRejectedByFinance() if event.order_id in state.orders:
            return _with_order(state, changed(state.orders[event.order_id], status="rejected",
                                              decided_reason=event.reason))
        case ev.AdvanceApplied():
            return _advance_applied(state, event)
        case ev.InvoiceIssued():
            invoice = Invoice(event.invoice_id, event.order_id, event.dispatch_id, event.total_minor,
                              event.issued_on, event.due_on, tuple(event.lines), event.region,
                              event.tier, event.currency, seq=state.invoices_issued + 1)
            state = _with_invoice(changed(state, invoices_issued=invoice.seq), invoice)
            order = state.orders.get(event.order_id)
            if order is not None:
                state = _with_order(state, changed(
                    order, invoiced_minor=order.invoiced_minor + event.total_minor))
            return state
        case ev.PaymentReceived():
            receipt = Receipt(event.payment_id, event.amount_minor, event.currency, event.bank_ref,
                              event.received_on)
            return changed(state, advance_minor=state.advance_minor + event.amount_minor,
                           payments=state.payments.set(event.payment_id, receipt))
        case ev.PaymentApplied() if event.invoice_id in state.invoices:
            state = _pay_invoice(state, event.invoice_id, event.amount_minor, event.applied_on)
            paid_by = state.payments.get(event.payment_id)
            if paid_by is not None:
                paid_by = changed(paid_by, applications=(
                    *paid_by.applications, (event.invoice_id, event.amount_minor)))
                state = changed(state, payments=state.payments.set(paid_by.payment_id, paid_by))
            return state
        case ev.CreditNoteApplied() if event.invoice_id in state.invoices:
            return _pay_invoice(state, event.invoice_id, event.amount_minor, event.applied_on)
        case ev.InvoicePaid() if event.invoice_id in state.invoices:
            return _with_invoice(state, changed(state.invoices[event.invoice_id],
                                                paid_on=event.paid_on, on_time=event.on_time))
        case ev.InvoiceWrittenOff() if event.invoice_id in state.invoices:
            return _written_off(state, event)
        case ev.WriteOffProposed() | ev.WriteOffApproved() | ev.WriteOffRejected():
            return _write_off_event(state, event)
        case ev.DebitNoteIssued():
            debit = DebitNote(event.debit_note_id, event.amount_minor, event.currency, event.reason,
                              event.source_kind, event.source_ref, event.issued_on, event.due_on,
                              seq=state.debit_notes_issued + 1)
            return _with_debit_note(changed(state, debit_notes_issued=debit.seq), debit)
        case ev.DebitNoteSettled() if event.debit_note_id in state.debit_notes:
            return _settle_debit_note(state, event)
        case ev.CreditNoteIssued():
            note = CreditNote(event.credit_note_id, event.amount_minor, event.currency, event.reason,
                              event.source_kind, event.source_ref, event.issued_on, event.order_id,
                              tuple(event.lines))
            return changed(state, advance_minor=state.advance_minor + event.amount_minor,
                           credit_notes=state.credit_notes.set(note.credit_note_id, note))
    return state


def _without_closed(state: Account, event: DomainEvent) -> Account:
    """Drop what ``event`` closed (see the module's doc): only facts an event names can close."""
    changes: dict[str, object] = {}
    named = vars(event)  # its fields: a ``getattr`` with a default raises inside pydantic first
    invoice_id: str = named.get("invoice_id") or ""
    if invoice_id in state.invoices and invoice_id not in state.open_invoice_ids:
        changes["invoices"] = state.invoices.without(invoice_id)
    order_id: str = named.get("order_id") or ""
    if order_id in state.orders and order_id not in state.live_order_ids:
        changes["orders"] = state.orders.without(order_id)
    note_id: str = named.get("debit_note_id") or ""
    if note_id in state.debit_notes and note_id not in state.open_debit_note_ids:
        changes["debit_notes"] = state.debit_notes.without(note_id)
    write_off_id: str = named.get("write_off_id") or ""
    if write_off_id in state.write_offs and state.write_offs[write_off_id].status != "proposed":
        changes["write_offs"] = state.write_offs.without(write_off_id)
    if state.payments:
        changes["payments"] = PMap()
    if state.credit_notes:
        changes["credit_notes"] = PMap()
    return changed(state, **changes) if changes else state


def evolve(state: Account, event: DomainEvent) -> Account:
    """The aggregate's fold: ``apply``, then drop what the event closed (the account keeps what is live)."""
    return _without_closed(apply(state, event), event)


def _advance_applied(state: Account, event: ev.AdvanceApplied) -> Account:
    """With an invoice: advance money settled it (from the order's reservation when
    ``order_id`` is named). Without one: advance was reserved for ``order_id``."""
    order = state.orders.get(event.order_id) if event.order_id else None
    if event.invoice_id is None:
        if order is None:
            return state
        return _with_order(state, changed(order, reserved_minor=order.reserved_minor + event.amount_minor))
    if event.invoice_id not in state.invoices:
        return state
    invoice = state.invoices[event.invoice_id]
    state = _pay_invoice(state, event.invoice_id, event.amount_minor, event.applied_on or invoice.issued_on)
    if order is not None:
        state = _with_order(state, changed(
            order, reservation_used_minor=order.reservation_used_minor + event.amount_minor))
    return state


def fold(state: Account, events: list[DomainEvent]) -> Account:
    """``apply`` each event: what a decision folds its own events with (closed facts kept)."""
    for event in events:
        state = apply(state, event)
    return state


def fold_live(state: Account, events: list[DomainEvent]) -> Account:
    """``evolve`` each event: the account as a load gives it (only what is live)."""
    for event in events:
        state = evolve(state, event)
    return state
