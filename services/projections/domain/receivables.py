"""Receivables: invoices and debit notes, what settled them and when (their aging: ``aging``).

An invoice is open for its total less what settled it, as the credit service
counts it: payments applied to it, advance applied to it (receipts and credit
notes sit on the account as advance until credit applies them to an invoice
with ``AdvanceApplied``), credit notes applied to it when issued
(``CreditNoteApplied``, settling it just like advance) and written-off amounts
(a write-off may be partial; the invoice is ``written_off`` once nothing
remains open). ``InvoicePaid``
closes it: from its ``paid_on`` the open amount is zero whatever else the
events say. A credit note not (yet) applied lowers the balance, not an invoice.
Each settlement is dated as credit dates it: a payment's ``applied_on``, advance's
``applied_on`` (older events: the day it was recorded), a write-off's
``written_off_on`` (older events: the day it was recorded).

A debit note (money the partner owes back, ``DebitNoteIssued``) is a receivable
of the same shape, kept as its own kind of document: open for its amount less
what settled it (``DebitNoteSettled``), paid once nothing remains, aged by its
due date like an invoice. It is no sale.

Aging looks at one day: only invoices issued by then, less what settled them
by then, bucketed by days past due (``as_of - due_on``): 0 or less is current,
then 1-30, 31-60, 61-90 and more than 90.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from libs.events import credit
from libs.events.base import DomainEvent

Doc = dict[str, Any]

BUCKETS = ("current_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor", "d90_plus_minor")


def blank_invoice(invoice_id: str) -> Doc:
    return {"invoice_id": invoice_id, "order_id": None, "partner_id": None, "total_minor": None,
            "currency": None, "issued_on": None, "due_on": None, "region": None, "tier": None,
            "lines": [], "settlements": {}, "paid_on": None, "written_off_on": None,
            "written_off_minor": 0}


def evolve_invoice(doc: Doc, event: DomainEvent, *, event_id: str, occurred_on: date) -> Doc:
    """Fold one credit event into an invoice; settlements are keyed by event id (idempotent)."""
    doc = {**doc, "settlements": dict(doc["settlements"])}
    match event:
        case credit.InvoiceIssued():
            doc.update(order_id=event.order_id, partner_id=event.partner_id,
                       total_minor=event.total_minor, currency=event.currency,
                       issued_on=event.issued_on.isoformat(), due_on=event.due_on.isoformat(),
                       region=event.region, tier=event.tier,
                       lines=[line.model_dump(mode="json") for line in event.lines])
        case credit.PaymentApplied():
            doc["settlements"][event_id] = _settlement("payment", event.applied_on, event.amount_minor)
        case credit.AdvanceApplied():
            doc["settlements"][event_id] = _settlement("advance", event.applied_on or occurred_on,
                                                       event.amount_minor)
        case credit.CreditNoteApplied():
            doc["settlements"][event_id] = _settlement("credit_note", event.applied_on, event.amount_minor)
        case credit.InvoicePaid():
            doc["paid_on"] = event.paid_on.isoformat()
        case credit.InvoiceWrittenOff():
            on = event.written_off_on or occurred_on
            doc["settlements"][event_id] = _settlement("write_off", on, event.amount_minor)
            doc["written_off_on"] = on.isoformat()
            doc["written_off_minor"] += event.amount_minor
        case credit.DebitNoteIssued():
            doc.update(partner_id=event.partner_id, total_minor=event.amount_minor, currency=event.currency,
                       issued_on=event.issued_on.isoformat(), due_on=event.due_on.isoformat(),
                       reason=event.reason, source_ref=event.source_ref)
        case credit.DebitNoteSettled():
            doc["settlements"][event_id] = _settlement(event.by, event.settled_on, event.amount_minor)
            settled = sum(s["amount_minor"] for s in doc["settlements"].values())
            if doc["total_minor"] is not None and settled >= doc["total_minor"]:
                doc["paid_on"] = event.settled_on.isoformat()
    doc["partner_id"] = doc["partner_id"] or getattr(event, "partner_id", None)
    return doc


def _settlement(kind: str, on: date, amount_minor: int) -> dict[str, Any]:
    return {"kind": kind, "on": on.isoformat(), "amount_minor": amount_minor}


def status_of(invoice: Doc) -> str:
    if invoice["paid_on"]:
        return "paid"
    if invoice["written_off_minor"] > 0 and open_minor(invoice) == 0:
        return "written_off"
    return "open"


def _on_or_before(day: str | None, limit: date | None) -> bool:
    return day is not None and (limit is None or date.fromisoformat(day) <= limit)


def open_minor(invoice: Doc, on: date | None = None) -> int:
    """What is still owed on the invoice at the end of day ``on`` (None: as far as known)."""
    if invoice["total_minor"] is None or not _on_or_before(invoice["issued_on"], on):
        return 0
    if _on_or_before(invoice["paid_on"], on):
        return 0
    settled = sum(s["amount_minor"] for s in invoice["settlements"].values()
                  if _on_or_before(s["on"], on))
    return max(0, invoice["total_minor"] - settled)


def days_past_due(invoice: Doc, as_of: date) -> int:
    return (as_of - date.fromisoformat(invoice["due_on"])).days


def overdue_minor(invoices: Iterable[Doc], today: date) -> int:
    """Open amounts of invoices past their due date (due before ``today``)."""
    return sum(amount for invoice in invoices
               if (amount := open_minor(invoice)) and days_past_due(invoice, today) > 0)


def statement_lines(invoices: Iterable[Doc], debit_notes: Iterable[Doc], payments: Iterable[Doc],
                    credit_notes: Iterable[Doc]) -> list[dict[str, Any]]:
    """A partner's account as projections has it, by date: invoices and debit notes owed
    (debit), receipts and credit notes (credit), with the running balance."""
    lines = [
        *({"date": i.get("issued_on"), "kind": "invoice", "ref": i["invoice_id"],
           "debit_minor": i["total_minor"], "credit_minor": 0}
          for i in invoices if i.get("total_minor") is not None),
        *({"date": n.get("issued_on"), "kind": "debit_note", "ref": n["invoice_id"],
           "debit_minor": n["total_minor"], "credit_minor": 0}
          for n in debit_notes if n.get("total_minor") is not None),
        *({"date": p.get("received_on"), "kind": "payment", "ref": p.get("bank_ref") or p.get("payment_id"),
           "debit_minor": 0, "credit_minor": int(p.get("amount_minor") or 0)} for p in payments),
        *({"date": c.get("issued_on"), "kind": "credit_note", "ref": c.get("credit_note_id"),
           "debit_minor": 0, "credit_minor": int(c.get("amount_minor") or 0)} for c in credit_notes),
    ]
    lines.sort(key=lambda line: (str(line["date"] or ""), line["kind"], str(line["ref"])))
    balance = 0
    for line in lines:
        balance += line["debit_minor"] - line["credit_minor"]
        line["balance_minor"] = balance
    return lines
