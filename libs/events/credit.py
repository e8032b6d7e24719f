"""Events published by the credit service: accounts, funds review, invoices, payments, debit notes,
write-offs, statements.

Exposure = unpaid invoices + approved orders not yet invoiced. Orders move to
``approved`` only on ``FundsReviewPassed``: a released hold is recorded as
``HoldReleased`` and then passes funds review with ``how="released"``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from libs.events.base import DomainEvent
from libs.events.values import (
    DEFAULT_CURRENCY,
    CreditNoteSource,
    FundsReviewOutcome,
    HoldReason,
    InvoiceLine,
    TermsKind,
)


class AccountOpened(DomainEvent):
    """A registered partner got an account; prepaid accounts have a zero limit and term."""

    TYPE = "AccountOpened"

    partner_id: str
    kind: TermsKind
    credit_limit_minor: int
    term_days: int
    currency: str = DEFAULT_CURRENCY
    opened_on: date | None = None
    """The day the account opened: no receipt may be dated before it (None on accounts opened
    before the date was recorded)."""


class TermsChanged(DomainEvent):
    """Finance changed a partner's payment terms; held orders are re-evaluated."""

    TYPE = "TermsChanged"

    partner_id: str
    kind: TermsKind
    credit_limit_minor: int
    term_days: int
    currency: str = DEFAULT_CURRENCY


class FundsReviewPassed(DomainEvent):
    """An order's funds are secured (within limit, prepaid, or hold released); it may ship."""

    TYPE = "FundsReviewPassed"

    order_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    how: FundsReviewOutcome


class AccountSuspended(DomainEvent):
    """The partner was suspended: its orders are held at funds review until it is reinstated."""

    TYPE = "AccountSuspended"

    partner_id: str
    reason: str


class AccountReinstated(DomainEvent):
    """The partner was reinstated: its held orders are reviewed again, in order of arrival."""

    TYPE = "AccountReinstated"

    partner_id: str


class OrderPutOnHold(DomainEvent):
    """An order was held at funds review: over the limit, overdue invoices or a suspended partner."""

    TYPE = "OrderPutOnHold"

    order_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    reason: HoldReason


class OrderAwaitingPrepayment(DomainEvent):
    """A prepaid partner's advance does not cover the order; it waits for the money."""

    TYPE = "OrderAwaitingPrepayment"

    order_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY


class HoldReleased(DomainEvent):
    """A held order was released, by finance with a reason or by a payment that freed room."""

    TYPE = "HoldReleased"

    order_id: str
    partner_id: str
    reason: str
    released_by: str


class OrderRejectedByFinance(DomainEvent):
    """Finance rejected a held order; it will not ship."""

    TYPE = "OrderRejectedByFinance"

    order_id: str
    partner_id: str
    reason: str
    rejected_by: str


class InvoiceIssued(DomainEvent):
    """A dispatch was invoiced at the order's prices, due on the dispatch date plus the term."""

    TYPE = "InvoiceIssued"

    invoice_id: str
    order_id: str
    partner_id: str
    dispatch_id: str
    lines: list[InvoiceLine]
    total_minor: int
    currency: str = DEFAULT_CURRENCY
    issued_on: date
    due_on: date
    region: str
    tier: str


class PaymentReceived(DomainEvent):
    """A bank receipt was recorded; its bank reference is unique."""

    TYPE = "PaymentReceived"

    payment_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    bank_ref: str
    received_on: date


class PaymentApplied(DomainEvent):
    """Part of a payment settled an invoice (oldest first unless finance allocated it)."""

    TYPE = "PaymentApplied"

    payment_id: str
    invoice_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    applied_on: date


class InvoicePaid(DomainEvent):
    """An invoice was paid in full; on time when paid on or before its due date."""

    TYPE = "InvoicePaid"

    invoice_id: str
    partner_id: str
    paid_on: date
    on_time: bool


class AdvanceApplied(DomainEvent):
    """A partner's advance was consumed: reserved for an order, or settling an invoice."""

    TYPE = "AdvanceApplied"

    partner_id: str
    invoice_id: str | None = None
    order_id: str | None = None
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    applied_on: date | None = None
    """The business day the advance settled the invoice (None on older events: its issue day)."""


class InvoiceWrittenOff(DomainEvent):
    """Finance wrote off an invoice's small residue, with a reason; the invoice is closed."""

    TYPE = "InvoiceWrittenOff"

    invoice_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    reason: str
    written_off_by: str
    written_off_on: date | None = None
    write_off_id: str | None = None
    """The write-off this applies (None on events recorded before write-offs had ids)."""


class WriteOffProposed(DomainEvent):
    """Finance proposed writing off more than the residue threshold; a second finance key decides."""

    TYPE = "WriteOffProposed"

    write_off_id: str
    invoice_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    reason: str
    proposed_by: str
    proposed_on: date


class WriteOffApproved(DomainEvent):
    """A finance key other than the proposer approved a proposed write-off (then written off)."""

    TYPE = "WriteOffApproved"

    write_off_id: str
    invoice_id: str
    partner_id: str
    approved_by: str
    approved_on: date


class WriteOffRejected(DomainEvent):
    """Finance rejected a proposed write-off, with a reason; the invoice stays open."""

    TYPE = "WriteOffRejected"

    write_off_id: str
    invoice_id: str
    partner_id: str
    reason: str
    rejected_by: str
    rejected_on: date


class CreditNoteIssued(DomainEvent):
    """A credit note was put on a partner's account, for a refund return or a rebate payout."""

    TYPE = "CreditNoteIssued"

    credit_note_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    reason: str
    source_kind: CreditNoteSource
    source_ref: str
    issued_on: date
    order_id: str | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)


class CreditNoteApplied(DomainEvent):
    """A credit note settled part of an open invoice (not cash: rebates do not count it as collected)."""

    TYPE = "CreditNoteApplied"

    credit_note_id: str
    invoice_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    applied_on: date


class DebitNoteIssued(DomainEvent):
    """The partner owes money back (an approved negative rebate true-up), due like an invoice."""

    TYPE = "DebitNoteIssued"

    debit_note_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    reason: str
    source_kind: Literal["rebate"] = "rebate"
    source_ref: str
    issued_on: date
    due_on: date


class DebitNoteSettled(DomainEvent):
    """Money settled part of a debit note: a payment, credit note or advance (``ref`` names which)."""

    TYPE = "DebitNoteSettled"

    debit_note_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    settled_on: date
    by: Literal["payment", "credit_note", "advance"]
    ref: str | None = None


class StatementConfirmed(DomainEvent):
    """A partner agreed its account statement up to a date and its closing balance."""

    TYPE = "StatementConfirmed"

    partner_id: str
    to: date
    closing_minor: int
    currency: str = DEFAULT_CURRENCY


class StatementDisputed(DomainEvent):
    """A partner disputed its account statement up to a date, with a reason."""

    TYPE = "StatementDisputed"

    partner_id: str
    to: date
    reason: str


EVENTS: tuple[type[DomainEvent], ...] = (
    AccountOpened,
    TermsChanged,
    AccountSuspended,
    AccountReinstated,
    FundsReviewPassed,
    OrderPutOnHold,
    OrderAwaitingPrepayment,
    HoldReleased,
    OrderRejectedByFinance,
    InvoiceIssued,
    PaymentReceived,
    PaymentApplied,
    InvoicePaid,
    AdvanceApplied,
    InvoiceWrittenOff,
    CreditNoteIssued,
    CreditNoteApplied,
    DebitNoteIssued,
    DebitNoteSettled,
    WriteOffProposed,
    WriteOffApproved,
    WriteOffRejected,
    StatementConfirmed,
    StatementDisputed,
)
