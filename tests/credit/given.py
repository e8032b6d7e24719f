"""Building blocks of the pure domain tests: account events, given as facts."""

from __future__ import annotations

from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.values import InvoiceLine
from services.credit.domain.account import Account, fold

TODAY = date(2026, 3, 10)
P = "ptn_1"


def opened(kind: str = "credit", limit: int = 1_000, term: int = 30) -> ev.AccountOpened:
    return ev.AccountOpened(partner_id=P, kind=kind, credit_limit_minor=limit, term_days=term)  # type: ignore[arg-type]


def given(*events: DomainEvent) -> Account:
    return fold(Account(), list(events))


def passed(order_id: str, amount: int, how: str = "within_limit") -> ev.FundsReviewPassed:
    return ev.FundsReviewPassed(order_id=order_id, partner_id=P, amount_minor=amount, how=how)  # type: ignore[arg-type]


def held(order_id: str, amount: int, reason: str = "over_limit") -> ev.OrderPutOnHold:
    return ev.OrderPutOnHold(order_id=order_id, partner_id=P, amount_minor=amount, reason=reason)  # type: ignore[arg-type]


def line(qty: int, unit: int, sku: str = "S") -> InvoiceLine:
    return InvoiceLine(sku=sku, category="c", qty=qty, unit_price_minor=unit, line_total_minor=qty * unit)


def issued(invoice_id: str, order_id: str, total: int, on: date, due: date) -> ev.InvoiceIssued:
    return ev.InvoiceIssued(
        invoice_id=invoice_id,
        order_id=order_id,
        partner_id=P,
        dispatch_id=f"d-{invoice_id}",
        lines=[line(1, total)],
        total_minor=total,
        issued_on=on,
        due_on=due,
        region="east",
        tier="A",
    )


def received(payment_id: str, amount: int, on: date = TODAY) -> ev.PaymentReceived:
    return ev.PaymentReceived(
        payment_id=payment_id, partner_id=P, amount_minor=amount, bank_ref=payment_id, received_on=on
    )


def kinds(events: list[DomainEvent]) -> list[str]:
    return [e.TYPE for e in events]
