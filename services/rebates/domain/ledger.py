"""The local copy of credit's documents that rebates are computed from, and what each contributes.

Each invoice copy keeps its lines (by category), the cash applied to it (dated)
and whether it was paid on time; each return credit note keeps its lines. A
program's basis, in any date window (its period, or a growth baseline), is the
sum of the contributions of these documents:

- basis ``invoiced``: an invoice contributes its eligible lines, dated by
  ``issued_on``;
- basis ``collected``: each cash application (payment or advance) contributes
  its eligible share of the invoice, dated by the application (an advance, which
  carries no date, by the invoice's ``issued_on``). Shares are taken on the
  running total paid, so the parts of a fully paid invoice add up exactly to
  its eligible amount;
- a return credit note contributes minus its eligible lines (for either
  basis), dated by the sale it reverses: its original invoice's ``issued_on``
  (basis ``invoiced``) or the last cash collected on that invoice (basis
  ``collected``; its ``issued_on`` while uncollected). So a return claws back
  the period that earned the rebate, open or settled, and leaves the current
  period's basis alone. A note whose invoice is unknown is dated by its own
  ``issued_on``. A note without lines counts its whole amount, but only for
  programs without a category restriction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from libs.events.rebates import ProgramPublished
from libs.events.values import SourceKind
from services.rebates.domain.arithmetic import share_of
from services.rebates.domain.eligibility import eligible_total

Lines = tuple[tuple[str, int], ...]
"""``(category, line_total_minor)`` pairs."""


@dataclass(frozen=True)
class Application:
    """Cash applied to an invoice: ``ref`` names it (``pay_1/inv_1``, ``advance/inv_1``)."""

    ref: str
    amount_minor: int
    on: date | None = None


@dataclass(frozen=True)
class InvoiceCopy:
    """An invoice as far as rebates know it; cash or payment news may arrive before the invoice."""

    invoice_id: str
    partner_id: str
    order_id: str | None = None
    issued_on: date | None = None
    total_minor: int = 0
    currency: str = "CNY"
    lines: Lines = ()
    applications: tuple[Application, ...] = ()
    paid_on: date | None = None
    on_time: bool | None = None

    @property
    def known(self) -> bool:
        """Has the ``InvoiceIssued`` itself been seen?"""
        return self.issued_on is not None

    @property
    def collected_on(self) -> date | None:
        """When the last cash on it was collected (an undated advance: its ``issued_on``)."""
        days = [a.on or self.issued_on for a in self.applications]
        return max((d for d in days if d is not None), default=None)


@dataclass(frozen=True)
class ReturnCopy:
    """A credit note for returned goods."""

    credit_note_id: str
    partner_id: str
    issued_on: date
    amount_minor: int
    currency: str = "CNY"
    lines: Lines = ()
    invoice_id: str | None = None
    sold_on: date | None = None
    collected_on: date | None = None

    def earned_on(self, program: ProgramPublished) -> date:
        """The date of the sale it reverses, as the program's basis counted it."""
        if program.basis == "collected":
            return self.collected_on or self.sold_on or self.issued_on
        return self.sold_on or self.issued_on


def returned_from(note: ReturnCopy, invoice: InvoiceCopy | None) -> ReturnCopy:
    """The note, dated by the invoice it reverses (``None``: unknown, the note's own date stays)."""
    if invoice is None or not invoice.known:
        return note
    return replace(note, invoice_id=invoice.invoice_id, sold_on=invoice.issued_on,
                   collected_on=invoice.collected_on)


@dataclass(frozen=True)
class Contribution:
    """What one document adds to (or, for returns, takes from) a basis, and when."""

    kind: SourceKind
    ref: str
    amount_minor: int
    on: date
    partner_id: str | None = None
    """The sub-dealer whose document it is, when it counts toward its parent."""


@dataclass(frozen=True)
class Window:
    first: date
    last: date

    def holds(self, day: date) -> bool:
        return self.first <= day <= self.last


def period_of(program: ProgramPublished) -> Window:
    return Window(program.starts_on, program.ends_on)


def with_application(invoice: InvoiceCopy, ref: str, amount_minor: int, on: date | None) -> InvoiceCopy:
    """Record cash applied; a second application under the same name gets ``#2``, ``#3``…"""
    taken = {application.ref for application in invoice.applications}
    unique, n = ref, 1
    while unique in taken:
        n += 1
        unique = f"{ref}#{n}"
    return replace(invoice, applications=(*invoice.applications, Application(unique, amount_minor, on)))


def invoice_contributions(
    program: ProgramPublished, invoice: InvoiceCopy, window: Window
) -> list[Contribution]:
    """What an invoice (and the cash applied to it) contributes to the program's basis in a window."""
    if not invoice.known or invoice.currency != program.currency:
        return []
    assert invoice.issued_on is not None
    eligible = eligible_total(program.eligibility, invoice.lines)
    if eligible == 0:
        return []
    if program.basis == "invoiced":
        if not window.holds(invoice.issued_on):
            return []
        return [Contribution("invoice", invoice.invoice_id, eligible, invoice.issued_on)]
    found, paid, counted = [], 0, 0
    for application in invoice.applications:
        paid += application.amount_minor
        share = share_of(paid, eligible, invoice.total_minor)
        amount, counted = share - counted, share
        on = application.on or invoice.issued_on
        if amount != 0 and window.holds(on):
            found.append(Contribution("payment", application.ref, amount, on))
    return found


def return_contribution(program: ProgramPublished, note: ReturnCopy, window: Window) -> list[Contribution]:
    """A return takes its eligible lines off the basis of the window its original sale is dated in."""
    on = note.earned_on(program)
    if note.currency != program.currency or not window.holds(on):
        return []
    if note.lines:
        eligible = eligible_total(program.eligibility, note.lines)
    else:
        eligible = 0 if program.eligibility.categories else note.amount_minor
    return [Contribution("return", note.credit_note_id, -eligible, on)] if eligible else []


def basis_in(
    program: ProgramPublished, invoices: list[InvoiceCopy], returns: list[ReturnCopy], window: Window
) -> int:
    """A partner's basis under the program's rules within any window (e.g. a growth baseline)."""
    found = [c for invoice in invoices for c in invoice_contributions(program, invoice, window)]
    found += [c for note in returns for c in return_contribution(program, note, window)]
    return sum(c.amount_minor for c in found)


def timeliness_in(invoices: list[InvoiceCopy], window: Window) -> tuple[int, int]:
    """``(issued, paid_on_time)`` over the partner's invoices issued in the window.

    The rule; the service counts the same on an index (``application.copies.timeliness_counts``).
    """
    issued = [invoice for invoice in invoices if invoice.known and window.holds(invoice.issued_on)]  # type: ignore[arg-type]
    return len(issued), sum(1 for invoice in issued if invoice.on_time)
