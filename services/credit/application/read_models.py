"""Credit's documents: invoices, payments, credit and debit notes, write-offs and order reviews,
written with the events.

Each document is rebuilt from the account state right after the append that
changed it, in the same transaction.

The documents also answer what the account no longer holds once a fact is closed
(``domain.account``): was this order reviewed (its review), this dispatch invoiced (an
invoice's ``ref_id`` is its dispatch), this source credited or debited (a credit or debit
note's ``ref_id`` is its source reference). The commands and reactions ask before deciding
(``reviewed`` ...), on the indexes, so the cost does not grow with the account's history.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.codec import parse_json
from libs.runtime.commands import Unit
from libs.store.sql import Statement
from services.credit.domain.account import Account
from services.credit.domain.parts import (
    CreditNote,
    DebitNote,
    Invoice,
    OrderReview,
    Receipt,
    WriteOff,
)
from services.credit.domain.position import NONE

INVOICE = "invoice"
PAYMENT = "payment"
CREDIT_NOTE = "credit-note"
DEBIT_NOTE = "debit-note"
WRITE_OFF = "write-off"
REVIEW = "order-review"


def _lines(lines: Sequence[Any]) -> list[dict[str, Any]]:
    return [line.model_dump(mode="json") for line in lines]


def invoice_body(partner_id: str, invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.invoice_id, "order_id": invoice.order_id, "partner_id": partner_id,
        "dispatch_id": invoice.dispatch_id, "total_minor": invoice.total_minor,
        "paid_minor": invoice.paid_minor, "written_off_minor": invoice.written_off_minor,
        "open_minor": invoice.open_minor, "currency": invoice.currency,
        "issued_on": invoice.issued_on.isoformat(), "due_on": invoice.due_on.isoformat(),
        "status": invoice.status, "paid_on": invoice.paid_on.isoformat() if invoice.paid_on else None,
        "on_time": invoice.on_time, "region": invoice.region, "tier": invoice.tier,
        "lines": _lines(invoice.lines),
    }


def payment_body(partner_id: str, receipt: Receipt) -> dict[str, Any]:
    applied = sum(amount for _, amount in (*receipt.applications, *receipt.debit_note_applications))
    return {
        "id": receipt.payment_id, "partner_id": partner_id, "amount_minor": receipt.amount_minor,
        "currency": receipt.currency, "bank_ref": receipt.bank_ref,
        "received_on": receipt.received_on.isoformat(),
        "applications": [{"invoice_id": i, "amount_minor": a} for i, a in receipt.applications],
        "debit_note_applications": [{"debit_note_id": n, "amount_minor": a}
                                    for n, a in receipt.debit_note_applications],
        "applied_minor": applied, "advance_minor": receipt.amount_minor - applied,
    }


def debit_note_body(partner_id: str, note: DebitNote) -> dict[str, Any]:
    return {
        "id": note.debit_note_id, "partner_id": partner_id, "amount_minor": note.amount_minor,
        "settled_minor": note.settled_minor, "open_minor": note.open_minor, "currency": note.currency,
        "reason": note.reason, "source_kind": note.source_kind, "source_ref": note.source_ref,
        "issued_on": note.issued_on.isoformat(), "due_on": note.due_on.isoformat(), "status": note.status,
        "paid_on": note.paid_on.isoformat() if note.paid_on else None,
    }


def write_off_body(partner_id: str, write_off: WriteOff) -> dict[str, Any]:
    return {
        "id": write_off.write_off_id, "invoice_id": write_off.invoice_id, "partner_id": partner_id,
        "amount_minor": write_off.amount_minor, "reason": write_off.reason, "status": write_off.status,
        "proposed_by": write_off.proposed_by, "proposed_on": write_off.proposed_on.isoformat(),
        "decided_by": write_off.decided_by,
        "decided_on": write_off.decided_on.isoformat() if write_off.decided_on else None,
        "decision_reason": write_off.decision_reason,
    }


def credit_note_body(partner_id: str, note: CreditNote) -> dict[str, Any]:
    return {
        "id": note.credit_note_id, "partner_id": partner_id, "amount_minor": note.amount_minor,
        "currency": note.currency, "reason": note.reason, "source": note.source_kind,
        "source_kind": note.source_kind, "source_ref": note.source_ref,
        "issued_on": note.issued_on.isoformat(), "order_id": note.order_id, "lines": _lines(note.lines),
    }


def review_status(order: OrderReview, cancelled: Collection[str]) -> str:
    return "cancelled" if order.order_id in cancelled else order.status


def review_body(state: Account, order: OrderReview, cancelled: Collection[str] = NONE) -> dict[str, Any]:
    return {
        "order_id": order.order_id, "partner_id": state.partner_id,
        "status": review_status(order, cancelled), "amount_minor": order.total_minor,
        "currency": state.currency, "hold_reason": order.hold_reason, "how": order.how,
        "decision_reason": order.decided_reason, "arrival": order.seq,
        "invoiced_minor": order.invoiced_minor, "reserved_minor": order.reserved_minor,
    }


@dataclass
class _Touched:
    invoices: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    payments: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)
    debit_notes: set[str] = field(default_factory=set)
    write_offs: set[str] = field(default_factory=set)


def _touched(events: Sequence[DomainEvent]) -> _Touched:
    touched = _Touched()
    invoices, orders, payments, notes = touched.invoices, touched.orders, touched.payments, touched.notes
    for event in events:
        named = vars(event)  # its fields: a ``getattr`` with a default raises inside pydantic first
        if isinstance(event, ev.DebitNoteIssued | ev.DebitNoteSettled):
            touched.debit_notes.add(event.debit_note_id)
            if isinstance(event, ev.DebitNoteSettled) and event.by == "payment" and event.ref:
                payments.add(event.ref)
        if write_off_id := named.get("write_off_id"):
            touched.write_offs.add(write_off_id)
        if isinstance(event, ev.InvoiceIssued):
            orders.add(event.order_id)
        if isinstance(event, ev.PaymentReceived | ev.PaymentApplied):
            payments.add(event.payment_id)
        if isinstance(event, ev.CreditNoteIssued):
            notes.add(event.credit_note_id)
        if invoice_id := named.get("invoice_id"):
            invoices.add(invoice_id)
        if order_id := named.get("order_id"):
            orders.add(order_id)
    return touched


def _kept(ids: set[str], parts: Mapping[str, object]) -> list[str]:
    """The ``ids`` the account holds, in order (``set & parts.keys()`` would go through the
    generic ``collections.abc`` set code, a Python-level loop with a call per id)."""
    return sorted(i for i in ids if i in parts)


async def project(unit: Unit, state: Account, events: Sequence[DomainEvent],
                  cancelled: Collection[str] = NONE) -> None:
    """Rewrite the documents that ``events`` changed, from the state after them."""
    touched = _touched(events)
    invoices, orders, payments, notes = touched.invoices, touched.orders, touched.payments, touched.notes
    partner = state.partner_id
    for note_id in _kept(touched.debit_notes, state.debit_notes):
        debit = state.debit_notes[note_id]
        await unit.put_document(DEBIT_NOTE, note_id, debit_note_body(partner, debit),
                            partner_id=partner, status=debit.status, ref_id=debit.source_ref)
    for write_off_id in _kept(touched.write_offs, state.write_offs):
        write_off = state.write_offs[write_off_id]
        await unit.put_document(WRITE_OFF, write_off_id, write_off_body(partner, write_off),
                            partner_id=partner, status=write_off.status)
    for invoice_id in _kept(invoices, state.invoices):
        invoice = state.invoices[invoice_id]
        await unit.put_document(INVOICE, invoice_id, invoice_body(partner, invoice), partner_id=partner,
                            status=invoice.status, ref_id=invoice.dispatch_id)
    for order_id in _kept(orders, state.orders):
        order = state.orders[order_id]
        await unit.put_document(REVIEW, order_id, review_body(state, order, cancelled), partner_id=partner,
                            status=review_status(order, cancelled))
    for payment_id in _kept(payments, state.payments):
        await unit.put_document(PAYMENT, payment_id, payment_body(partner, state.payments[payment_id]),
                            partner_id=partner)
    for note_id in _kept(notes, state.credit_notes):
        note = state.credit_notes[note_id]
        await unit.put_document(CREDIT_NOTE, note_id, credit_note_body(partner, note), partner_id=partner,
                            ref_id=note.source_ref)


async def _has(unit: Unit, kind: str, partner_id: str, ref: str,
               where: Callable[[dict[str, Any]], bool] | None = None) -> bool:
    """Is there a document of ``kind`` on the partner's account with ``ref_id`` = ``ref`` (and
    ``where``)? Asked of the documents the transaction holds back, then of the table: an
    invoice's or a note's partner, reference and source never change once it is written, so
    one that matches in either matches."""
    if any(held_partner == partner_id and held_ref == ref and (where is None or where(body))
           for _, body, held_partner, _, held_ref in unit.documents_held(kind)):
        return True
    rows = await _BY_REF.fetch(unit.conn, kind, ref)
    return any(row[1] == partner_id and (where is None or where(parse_json(row[0]))) for row in rows)


_BY_REF = Statement("SELECT body, partner_id FROM documents WHERE kind = $1 AND ref_id = $2")
"""``_has``'s read (every dispatch asks it): on the ``ref_id`` index, straight to the driver
(``libs.store.sql.Statement``); a reference names one document or a few. The partner is
checked here, not in the ``WHERE``: given ``partner_id`` too, SQLite may search the
partner's index instead, and read every invoice of the account (``o2c bench history``:
13 ms at 10,000 orders against 5.6 at 10)."""


async def reviewed(unit: Unit, order_id: str) -> dict[str, Any] | None:
    """The order's review, if it went through funds review (on any account)."""
    return await unit.document(REVIEW, order_id)


async def invoiced(unit: Unit, partner_id: str, dispatch_id: str) -> bool:
    """Has the dispatch an invoice on the partner's account?"""
    return await _has(unit, INVOICE, partner_id, dispatch_id)


async def credited(unit: Unit, partner_id: str, source_kind: str, source_ref: str) -> bool:
    """Has the source (a return, a settlement, a claim) a credit note on the partner's account?"""
    return await _has(unit, CREDIT_NOTE, partner_id, source_ref,
                      lambda note: note["source_kind"] == source_kind)


async def debited(unit: Unit, partner_id: str, source_ref: str) -> bool:
    """Has the source (a settlement) a debit note on the partner's account?"""
    return await _has(unit, DEBIT_NOTE, partner_id, source_ref)
