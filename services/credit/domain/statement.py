"""Account statements, computed from the account's events.

A line per invoice and debit note (debits), payment, credit note and write-off
(credits), dated by the business date each carries (issued_on, received_on,
written_off_on).
Applications of money to invoices are internal and make no line. The balance
is debits - credits, i.e. what the partner owes (negative: in credit).

- opening = balance of every line dated before ``from``;
- lines = the lines dated ``from``..``to`` inclusive, by date then account order;
- closing = opening + Σ (debit - credit) of those lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent


@dataclass(frozen=True)
class StatementLine:
    date: date
    kind: str
    ref: str
    debit_minor: int
    credit_minor: int
    memo: str = ""


@dataclass(frozen=True)
class Statement:
    opening_minor: int
    lines: list[StatementLine]
    closing_minor: int


def line_for(event: DomainEvent, recorded_on: date) -> StatementLine | None:
    """The statement line of one account event (``recorded_on``: when it was stored)."""
    match event:
        case ev.InvoiceIssued():
            return StatementLine(event.issued_on, "invoice", event.invoice_id, event.total_minor, 0,
                                 f"order {event.order_id}")
        case ev.DebitNoteIssued():
            return StatementLine(event.issued_on, "debit_note", event.debit_note_id, event.amount_minor, 0,
                                 event.reason)
        case ev.PaymentReceived():
            return StatementLine(event.received_on, "payment", event.payment_id, 0, event.amount_minor,
                                 f"bank_ref {event.bank_ref}")
        case ev.CreditNoteIssued():
            return StatementLine(event.issued_on, "credit_note", event.credit_note_id, 0, event.amount_minor,
                                 event.reason)
        case ev.InvoiceWrittenOff():
            return StatementLine(event.written_off_on or recorded_on, "write_off", event.invoice_id, 0,
                                 event.amount_minor, event.reason)
    return None


def ledger(entries: Iterable[tuple[DomainEvent, date]]) -> list[StatementLine]:
    """Every statement line of an account, by date then the order the events were recorded."""
    lines = [line for event, recorded_on in entries if (line := line_for(event, recorded_on)) is not None]
    return sorted(lines, key=lambda line: line.date)


def statement(lines: Iterable[StatementLine], start: date, end: date) -> Statement:
    opening, window = 0, []
    for line in lines:
        if line.date < start:
            opening += line.debit_minor - line.credit_minor
        elif line.date <= end:
            window.append(line)
    closing = opening + sum(line.debit_minor - line.credit_minor for line in window)
    return Statement(opening, window, closing)


def closing_at(lines: Iterable[StatementLine], end: date) -> int:
    return sum(line.debit_minor - line.credit_minor for line in lines if line.date <= end)
