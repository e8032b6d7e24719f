"""Request bodies of the credit API, and the documents its commands answer (for OpenAPI)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from libs.events.values import TermsKind
from libs.runtime.http import RequestModel
from libs.runtime.params import StrictDate

MAX_MINOR = 10**15
Amount = Annotated[StrictInt, Field(gt=0, le=MAX_MINOR, description="integer minor units, > 0")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Ref = Annotated[str, Field(min_length=1, max_length=100)]


class TermsBody(RequestModel):
    """New payment terms for a partner's account (finance)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "credit", "credit_limit_minor": 50000000, "term_days": 30}, {"kind": "prepaid"}]})

    kind: TermsKind = Field(description="prepaid: orders wait for money (awaiting_funds); credit: orders "
                                        "pass while exposure stays within the limit, else credit_hold.")
    credit_limit_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR, description=(
        "Credit limit in minor units (fen for CNY); required for credit, absent for prepaid."))] | None = None
    term_days: Annotated[StrictInt, Field(ge=0, le=3650, description=(
        "Days from invoice to due date; required for credit, absent for prepaid."))] | None = None


class ReasonBody(RequestModel):
    """Why finance decides as it does (kept on the record)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "customer paid by wire today"}]})

    reason: Reason = Field(description="Why, in words; shown as decision_reason.")


class Allocation(RequestModel):
    invoice_id: Ref = Field(description="An open invoice of the paying partner.")
    amount_minor: Amount = Field(description="Amount applied to it, minor units, <= its open amount.")


class PaymentBody(RequestModel):
    """A bank receipt (finance)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "partner_id": "ptn_01JDX4Q2M3", "amount_minor": 1099000, "currency": "CNY",
        "bank_ref": "ICBC-20261127-000183", "received_on": "2026-11-27",
        "allocations": [{"invoice_id": "inv_01JDX7A1B2", "amount_minor": 1099000}]}]})

    partner_id: Ref = Field(description="The paying partner.")
    amount_minor: Amount = Field(description="Amount received, integer minor units (fen for CNY), > 0.")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description=(
        "ISO 4217 code; defaults to the account currency."))] | None = None
    bank_ref: Ref = Field(description="The bank's reference of the receipt; unique across all "
                                      "partners (a repeat answers 409).")
    received_on: StrictDate = Field(description="Day the money arrived (YYYY-MM-DD): not after today, not "
                                                "before the account opened, at most 30 days back.")
    allocations: Annotated[list[Allocation], Field(max_length=500, description=(
        "Open invoices to pay, in total <= amount_minor; absent: oldest open invoices and debit notes "
        "first. The rest becomes advance."))] | None = None


class WriteOffBody(RequestModel):
    """A write-off of (part of) an invoice's open amount (finance)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "amount_minor": 85, "reason": "bank charge residue"}]})

    amount_minor: Amount = Field(description="Amount to write off, minor units, <= the open amount; above "
                                             "the residue threshold (100) it waits for a second finance key.")
    reason: Reason = Field(description="Why it is written off.")


class ConfirmBody(RequestModel):
    """The partner agrees its balance (partner key)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"to": "2026-11-30", "closing_minor": 1099000}]})

    to: StrictDate = Field(description="The statement's last day.")
    closing_minor: Annotated[StrictInt, Field(ge=-MAX_MINOR, le=MAX_MINOR, description=(
        "The closing balance the partner agrees, minor units (negative: money on account); must equal "
        "the statement's, else 409."))]


class DisputeBody(RequestModel):
    """The partner disputes its statement (partner key)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "to": "2026-11-30", "reason": "payment ICBC-20261125-000771 not shown"}]})

    to: StrictDate = Field(description="The statement's last day.")
    reason: Reason = Field(description="What the partner disputes.")


Day = date
ReviewStatus = Literal["approved", "held", "awaiting_prepayment", "rejected", "cancelled"]
WriteOffStatus = Literal["applied", "proposed", "approved", "rejected"]


class QueuedOrder(BaseModel):
    order_id: str = Field(description="An order waiting at funds review.")
    status: Literal["held", "awaiting_prepayment"] = Field(description="held (credit terms) or "
                                                                       "awaiting_prepayment (prepaid).")
    amount_minor: int = Field(description="The order total, minor units.")
    hold_reason: str | None = Field(description="over_limit, overdue or partner_suspended when held.")


class Account(BaseModel):
    """A partner's credit account: terms and position."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "partner_id": "ptn_01JDX4Q2M3", "terms": "credit", "credit_limit_minor": 50000000, "term_days": 30,
        "exposure_minor": 1099000, "available_minor": 48901000, "balance_minor": 1099000,
        "advance_minor": 0, "reserved_minor": 0, "overdue_minor": 0, "open_invoices_minor": 1099000,
        "open_debit_notes_minor": 0, "currency": "CNY", "suspended": False, "queued_orders": []}]})

    partner_id: str = Field(description="The partner whose account it is.")
    terms: TermsKind = Field(description="prepaid or credit.")
    credit_limit_minor: int | None = Field(description="Credit limit, minor units; null on prepaid terms.")
    term_days: int | None = Field(description="Days from invoice to due date; null on prepaid terms.")
    exposure_minor: int = Field(description="Open invoice and debit note amounts + approved orders not yet "
                                            "invoiced, minor units.")
    available_minor: int = Field(description="Room for new orders: max(limit - exposure, 0) on credit terms, "
                                             "the unreserved advance on prepaid terms.")
    balance_minor: int = Field(description="What the partner owes: open invoices and debit notes - advance - "
                                           "reserved (negative: money on account); the statement's closing.")
    advance_minor: int = Field(description="Money received and not applied nor reserved.")
    reserved_minor: int = Field(description="Advance reserved for approved prepaid orders.")
    overdue_minor: int = Field(description="Open amounts past their due date; any overdue amount holds new "
                                           "credit orders.")
    open_invoices_minor: int = Field(description="Sum of the open amounts of the partner's invoices.")
    open_debit_notes_minor: int = Field(description="Sum of the open amounts of its debit notes.")
    currency: str = Field(description="The account currency (ISO 4217).")
    suspended: bool = Field(description="True while the partner is suspended: its orders are held.")
    queued_orders: list[QueuedOrder] = Field(description="Held and awaiting orders, in arrival order.")


class StatementAnswer(BaseModel):
    """The partner's answer to its statement."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "partner_id": "ptn_01JDX4Q2M3", "to": "2026-11-30", "closing_minor": 1099000, "currency": "CNY",
        "status": "confirmed", "reason": None}]})

    partner_id: str = Field(description="The partner answering.")
    to: date = Field(description="The statement's last day.")
    closing_minor: int = Field(description="The closing balance at to, minor units.")
    currency: str = Field(description="The account currency (ISO 4217).")
    status: Literal["confirmed", "disputed"] = Field(description="confirmed or disputed.")
    reason: str | None = Field(description="Why it is disputed; null when confirmed.")


class Review(BaseModel):
    """An order's funds review."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "order_id": "ord_01JDX5V6R7", "partner_id": "ptn_01JDX4Q2M3", "status": "approved",
        "amount_minor": 1099000, "currency": "CNY", "hold_reason": "over_limit", "how": "released",
        "decision_reason": "customer paid by wire today", "arrival": 7, "invoiced_minor": 0,
        "reserved_minor": 0}]})

    order_id: str = Field(description="The order reviewed.")
    partner_id: str = Field(description="The ordering partner.")
    status: ReviewStatus = Field(description="approved (passed), held (credit terms: over_limit, overdue or "
                                             "partner_suspended), awaiting_prepayment (prepaid), rejected "
                                             "(by finance) or cancelled.")
    amount_minor: int = Field(description="The order total, minor units.")
    currency: str = Field(description="ISO 4217 code.")
    hold_reason: str | None = Field(description="Why it was held (kept after a release).")
    how: str | None = Field(description="How it passed: within_limit, prepaid or released (by finance).")
    decision_reason: str | None = Field(description="Finance's reason for releasing or rejecting it.")
    arrival: int = Field(description="Its place in the account's arrival order; waiting orders are "
                                     "re-evaluated in this order.")
    invoiced_minor: int = Field(description="Invoiced so far, minor units.")
    reserved_minor: int = Field(description="Advance reserved for it (prepaid), minor units.")


class InvoiceApplication(BaseModel):
    invoice_id: str = Field(description="An invoice the payment paid.")
    amount_minor: int = Field(description="Amount applied to it, minor units.")


class DebitNoteApplication(BaseModel):
    debit_note_id: str = Field(description="A debit note the payment paid.")
    amount_minor: int = Field(description="Amount applied to it, minor units.")


class Payment(BaseModel):
    """A recorded bank receipt and how it was applied."""

    id: str = Field(description="The payment id (pay_...).")
    partner_id: str = Field(description="The paying partner.")
    amount_minor: int = Field(description="Amount received, minor units.")
    currency: str = Field(description="ISO 4217 code.")
    bank_ref: str = Field(description="The bank's reference, unique.")
    received_on: date = Field(description="Day the money arrived; it is applied as of that day.")
    applications: list[InvoiceApplication] = Field(description="Invoices paid by it.")
    debit_note_applications: list[DebitNoteApplication] = Field(description="Debit notes paid by it.")
    applied_minor: int = Field(description="Total applied to invoices and debit notes, minor units.")
    advance_minor: int = Field(description="The rest, kept as advance on the account, minor units.")


class PaymentRecorded(Payment):
    """A recorded bank receipt, how it was applied, and the account after it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "pay_01JDX8C3D4", "partner_id": "ptn_01JDX4Q2M3", "amount_minor": 1200000, "currency": "CNY",
        "bank_ref": "ICBC-20261127-000183", "received_on": "2026-11-27",
        "applications": [{"invoice_id": "inv_01JDX7A1B2", "amount_minor": 1099000}],
        "debit_note_applications": [], "applied_minor": 1099000, "advance_minor": 101000,
        "released_orders": [], "account": Account.model_config["json_schema_extra"]["examples"][0]}]})  # type: ignore[index]

    released_orders: list[str] = Field(description="Held or awaiting orders that passed funds review "
                                                   "thanks to it.")
    account: Account = Field(description="The account after the payment.")


class InvoiceLineOut(BaseModel):
    sku: str = Field(description="The product invoiced.")
    category: str = Field(description="Its category.")
    qty: int = Field(description="Units dispatched and invoiced.")
    unit_price_minor: int = Field(description="Unit price fixed at placement, minor units.")
    line_total_minor: int = Field(description="unit_price_minor x qty, minor units.")


class WriteOff(BaseModel):
    """A write-off of (part of) an invoice."""

    id: str = Field(description="The write-off id (wo_...).")
    invoice_id: str = Field(description="The invoice written off.")
    partner_id: str = Field(description="The invoice's partner.")
    amount_minor: int = Field(description="Amount written off, minor units.")
    reason: str = Field(description="Why.")
    status: WriteOffStatus = Field(description="applied (at once, up to the residue threshold), proposed "
                                               "(awaits a second finance key), approved (then applied) or "
                                               "rejected.")
    proposed_by: str = Field(description="The finance key that wrote it off or proposed it.")
    proposed_on: date = Field(description="Business day of the proposal.")
    decided_by: str | None = Field(description="The key that approved or rejected it.")
    decided_on: date | None = Field(description="Business day of the decision.")
    decision_reason: str | None = Field(description="Why it was rejected.")


class Invoice(BaseModel):
    """An invoice: one per dispatch."""

    id: str = Field(description="The invoice id (inv_...); one invoice per dispatch.")
    order_id: str = Field(description="The order invoiced.")
    partner_id: str = Field(description="The invoiced partner.")
    dispatch_id: str = Field(description="The dispatch it invoices.")
    total_minor: int = Field(description="Invoice total, minor units.")
    paid_minor: int = Field(description="Paid so far (payments, advance, credit notes), minor units.")
    written_off_minor: int = Field(description="Written off so far, minor units.")
    open_minor: int = Field(description="total - paid - written off, minor units.")
    currency: str = Field(description="ISO 4217 code.")
    issued_on: date = Field(description="Day of the dispatch it invoices.")
    due_on: date = Field(description="issued_on + the account's term_days.")
    status: Literal["open", "paid", "written_off"] = Field(description="open, paid, or written_off.")
    paid_on: date | None = Field(description="Day it was settled completely.")
    on_time: bool | None = Field(description="Whether it was settled by due_on; null while open.")
    region: str = Field(description="The order's ship-to region (for rebates).")
    tier: str = Field(description="The partner's tier when invoiced (for rebates).")
    lines: list[InvoiceLineOut] = Field(description="The lines dispatched, at the prices fixed at placement.")


class InvoiceWithWriteOff(Invoice):
    """An invoice after a write-off decision, with that write-off."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "inv_01JDX7A1B2", "order_id": "ord_01JDX5V6R7", "partner_id": "ptn_01JDX4Q2M3",
        "dispatch_id": "dsp_01JDX6Z9Y8", "total_minor": 1099000, "paid_minor": 1098915,
        "written_off_minor": 85, "open_minor": 0, "currency": "CNY", "issued_on": "2026-11-20",
        "due_on": "2026-12-20", "status": "paid", "paid_on": "2026-11-27", "on_time": True,
        "region": "east/shanghai", "tier": "gold",
        "lines": [{"sku": "RTR-5G-01", "category": "networking", "qty": 10, "unit_price_minor": 109900,
                   "line_total_minor": 1099000}],
        "write_off": {"id": "wo_01JDX9E5F6", "invoice_id": "inv_01JDX7A1B2", "partner_id": "ptn_01JDX4Q2M3",
                      "amount_minor": 85, "reason": "bank charge residue", "status": "applied",
                      "proposed_by": "key_finance_1", "proposed_on": "2026-11-27", "decided_by": None,
                      "decided_on": None, "decision_reason": None}}]})

    write_off: WriteOff = Field(description="The write-off just decided.")


class StatementLine(BaseModel):
    date: Day = Field(description="The document's business date.")
    kind: str = Field(description="invoice or debit_note (debits); payment, credit_note or write_off "
                                  "(credits).")
    ref: str = Field(description="The document's id.")
    debit_minor: int = Field(description="What it adds to the balance, minor units.")
    credit_minor: int = Field(description="What it takes off the balance, minor units.")
    memo: str | None = Field(description="A note on the line (e.g. the bank reference).")


class Statement(BaseModel):
    """A partner's statement for a period."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [{
        "partner_id": "ptn_01JDX4Q2M3", "from": "2026-11-01", "to": "2026-11-30", "currency": "CNY",
        "opening_minor": 0, "closing_minor": 0, "status": None,
        "lines": [{"date": "2026-11-20", "kind": "invoice", "ref": "inv_01JDX7A1B2", "debit_minor": 1099000,
                   "credit_minor": 0, "memo": None},
                  {"date": "2026-11-27", "kind": "payment", "ref": "pay_01JDX8C3D4", "debit_minor": 0,
                   "credit_minor": 1099000, "memo": "ICBC-20261127-000183"}]}]})

    partner_id: str = Field(description="The partner.")
    from_: date = Field(alias="from", description="First day (inclusive); default: the first of to's month.")
    to: date = Field(description="Last day (inclusive); defaults to today.")
    currency: str = Field(description="The account currency (ISO 4217).")
    opening_minor: int = Field(description="Balance of everything dated before from, minor units.")
    lines: list[StatementLine] = Field(description="Every document dated in the period, by date.")
    closing_minor: int = Field(description="opening + debits - credits, minor units: what the partner owes "
                                           "at to (negative: money on account).")
    status: Literal["confirmed", "disputed"] | None = Field(description="The partner's answer for this to; "
                                                                        "null: none yet.")


class CreditNote(BaseModel):
    """A credit note: it reduces what the partner owes."""

    id: str = Field(description="The credit note's id.")
    partner_id: str = Field(description="The partner credited.")
    amount_minor: int = Field(description="Amount credited, minor units.")
    currency: str = Field(description="ISO 4217 code.")
    reason: str = Field(description="Why it was issued.")
    source: str = Field(description="Same as source_kind (kept for older clients).")
    source_kind: Literal["return", "rebate", "coop"] = Field(
        description="return (a received refund return), rebate (an approved settlement payout) or coop "
        "(an approved co-op advertising claim).")
    source_ref: str = Field(description="The return, settlement or co-op claim it comes from (once per "
                                        "source).")
    issued_on: date = Field(description="Day it was issued.")
    order_id: str | None = Field(description="The order of the returned goods; null for a rebate or "
                                             "co-op claim.")
    lines: list[InvoiceLineOut] = Field(description="Returned goods at the order's unit prices; empty for a "
                                                    "rebate or co-op claim.")


class DebitNote(BaseModel):
    """A debit note: an approved negative rebate true-up, owed like an invoice."""

    id: str = Field(description="The debit note's id.")
    partner_id: str = Field(description="The partner debited.")
    amount_minor: int = Field(description="Amount owed, minor units.")
    settled_minor: int = Field(description="Settled so far, minor units.")
    open_minor: int = Field(description="amount - settled, minor units.")
    currency: str = Field(description="ISO 4217 code.")
    reason: str = Field(description="Why it was issued.")
    source_kind: str = Field(description="What it comes from: a rebate settlement.")
    source_ref: str = Field(description="The settlement it comes from (once per settlement).")
    issued_on: date = Field(description="Day credit recorded the approval.")
    due_on: date = Field(description="issued_on + the account's term_days (prepaid: the same day).")
    status: Literal["open", "paid"] = Field(description="open or paid (settled in full).")
    paid_on: date | None = Field(description="Day it was settled in full.")


class ReviewPage(BaseModel):
    items: list[Review] = Field(description="This page's funds reviews.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class PaymentPage(BaseModel):
    items: list[Payment] = Field(description="This page's payments.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class InvoicePage(BaseModel):
    items: list[Invoice] = Field(description="This page's invoices.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class CreditNotePage(BaseModel):
    items: list[CreditNote] = Field(description="This page's credit notes.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class DebitNotePage(BaseModel):
    items: list[DebitNote] = Field(description="This page's debit notes.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class WriteOffPage(BaseModel):
    items: list[WriteOff] = Field(description="This page's write-offs.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")
