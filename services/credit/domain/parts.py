"""The parts of a partner's account: order reviews, invoices, debit notes, write-offs, receipts and
credit notes (``services.credit.domain.account`` folds them from the account's events).

They are snapshotted with the account: change ``account.SHAPE`` with any change here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal, TypeVar

from libs.events.values import InvoiceLine

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

def changed(part: T, **changes: object) -> T:
    """``dataclasses.replace`` for the account and its parts, without running ``__init__`` again.

    Folding one event replaces the account (twenty fields) two or three times and a part
    once or twice; ``replace`` rebuilds every field through ``__init__`` and costs about ten
    times a copy of the instance's fields. These are frozen plain dataclasses (no
    ``__post_init__``, no ``__slots__``), so the copy with the changed fields is the same
    value; a name that is not a field is refused, as ``replace`` refuses it."""
    if not changes.keys() <= type(part).__dataclass_fields__.keys():
        raise TypeError(f"{type(part).__name__} has no field {sorted(changes.keys() - vars(part).keys())}")
    new = object.__new__(type(part))
    fields = new.__dict__
    fields.update(part.__dict__)
    fields.update(changes)
    return new


ReviewStatus = Literal["approved", "held", "awaiting_prepayment", "rejected"]
QUEUED: tuple[ReviewStatus, ...] = ("held", "awaiting_prepayment")


@dataclass(frozen=True)
class OrderReview:
    """An order that went through funds review on this account; ``seq`` is its arrival order."""

    order_id: str
    total_minor: int
    status: ReviewStatus
    seq: int
    hold_reason: str | None = None
    how: str | None = None
    decided_reason: str | None = None
    invoiced_minor: int = 0
    reserved_minor: int = 0
    reservation_used_minor: int = 0


@dataclass(frozen=True)
class Invoice:
    """An invoice for one dispatch; what is open is what is neither paid nor written off."""

    invoice_id: str
    order_id: str
    dispatch_id: str
    total_minor: int
    issued_on: date
    due_on: date
    lines: tuple[InvoiceLine, ...]
    region: str
    tier: str
    currency: str
    seq: int = 0
    paid_minor: int = 0
    written_off_minor: int = 0
    paid_on: date | None = None
    on_time: bool | None = None
    settled_on: date | None = None
    """The business day of the latest money (payment, credit note, advance) applied to it."""

    @property
    def open_minor(self) -> int:
        return self.total_minor - self.paid_minor - self.written_off_minor

    @property
    def status(self) -> str:
        """``paid`` once paid in full; ``written_off`` when a write-off closed it; else ``open``."""
        if self.paid_on is not None:
            return "paid"
        if self.open_minor <= 0 and self.written_off_minor > 0:
            return "written_off"
        return "open"


@dataclass(frozen=True)
class DebitNote:
    """What the partner owes back (a negative rebate true-up); open until settled in full."""

    debit_note_id: str
    amount_minor: int
    currency: str
    reason: str
    source_kind: str
    source_ref: str
    issued_on: date
    due_on: date
    seq: int = 0
    settled_minor: int = 0
    paid_on: date | None = None

    @property
    def open_minor(self) -> int:
        return self.amount_minor - self.settled_minor

    @property
    def status(self) -> str:
        return "paid" if self.open_minor <= 0 else "open"


@dataclass(frozen=True)
class WriteOff:
    """A write-off: ``applied`` at once (at most the residue threshold), else ``proposed`` until a
    second finance key approves (``approved``, then applied) or someone rejects it (``rejected``)."""

    write_off_id: str
    invoice_id: str
    amount_minor: int
    reason: str
    proposed_by: str
    proposed_on: date
    status: str = "proposed"
    decided_by: str | None = None
    decided_on: date | None = None
    decision_reason: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A bank payment, and how it was applied to invoices and debit notes."""

    payment_id: str
    amount_minor: int
    currency: str
    bank_ref: str
    received_on: date
    applications: tuple[tuple[str, int], ...] = ()
    debit_note_applications: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class CreditNote:
    credit_note_id: str
    amount_minor: int
    currency: str
    reason: str
    source_kind: str
    source_ref: str
    issued_on: date
    order_id: str | None
    lines: tuple[InvoiceLine, ...]


def is_open(invoice: Invoice) -> bool:
    return invoice.status == "open" and invoice.open_minor > 0


def debit_open(note: DebitNote) -> bool:
    return note.open_minor > 0


def is_live(order: OrderReview) -> bool:
    return order.status in QUEUED or (order.status == "approved" and order.invoiced_minor < order.total_minor)
