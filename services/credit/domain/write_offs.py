"""Write-offs: small residues at once, anything larger under maker-checker.

- finance writes off at most an open invoice's open amount, with a reason;
- at or below the residue threshold (``CreditSettings.write_off_threshold_minor``,
  100 minor units by default) it applies at once (``InvoiceWrittenOff``);
- above it, it is only proposed (``WriteOffProposed``); a finance key other than
  the proposer approves it (``WriteOffApproved`` + ``InvoiceWrittenOff``), or
  finance rejects it (``WriteOffRejected``, the invoice stays open). One proposal
  per invoice is pending at a time; an approval needs the amount still open;
- the invoice is ``written_off`` once nothing remains open, unless it was paid
  (below).

When an invoice counts as paid, and on time (``residue_paid``): an invoice is
paid when money (payments, credit notes, advance) settled all of it, and then
on its ``settled_on``, the business day of the last money applied. A write-off
that closes an invoice money partly settled, when everything written off on it
is at most the residue threshold, does not change that: the invoice is paid
(``InvoicePaid``) on the day of its last money, and ``on_time`` is whether that
day is on or before ``due_on`` -- however late the residue is written off. A
write-off above the threshold, or of an invoice no money settled at all, closes
it unpaid: status ``written_off``, ``on_time`` null (it never counts as paid on
time).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent
from services.credit.domain.account import Account, fold
from services.credit.domain.errors import (
    BadAmount,
    InvoiceClosed,
    InvoiceNotFound,
    SameApprover,
    WriteOffNotFound,
    WriteOffNotPending,
    WriteOffPending,
    WriteOffStale,
)
from services.credit.domain.funds import decide_reevaluation
from services.credit.domain.parts import Invoice
from services.credit.domain.position import NONE

RESIDUE_THRESHOLD_MINOR = 100
"""The default residue threshold (minor units)."""


def _open_invoice(state: Account, invoice_id: str) -> Invoice:
    """The account's open invoice (one that closed has left the account: the application layer
    answers ``InvoiceClosed`` for it from its document)."""
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        raise InvoiceNotFound(invoice_id)
    if invoice.status != "open":
        raise InvoiceClosed(invoice_id, invoice.status)
    return invoice


def residue_paid(state: Account, invoice_id: str, threshold: int) -> list[DomainEvent]:
    """``InvoicePaid`` for an invoice a residue write-off just closed (see the module's rule)."""
    invoice = state.invoices[invoice_id]
    if (invoice.open_minor > 0 or invoice.paid_on is not None or invoice.paid_minor == 0
            or invoice.settled_on is None or invoice.written_off_minor > threshold):
        return []
    return [ev.InvoicePaid(invoice_id=invoice_id, partner_id=state.partner_id, paid_on=invoice.settled_on,
                           on_time=invoice.settled_on <= invoice.due_on)]


def _apply(state: Account, invoice: Invoice, write_off_id: str, amount: int, reason: str, by: str,
           today: date, threshold: int, cancelled: Collection[str], before: list[DomainEvent]
           ) -> list[DomainEvent]:
    events = [*before, ev.InvoiceWrittenOff(
        invoice_id=invoice.invoice_id, partner_id=state.partner_id, amount_minor=amount,
        currency=state.currency, reason=reason, written_off_by=by, written_off_on=today,
        write_off_id=write_off_id)]
    state = fold(state, events)
    paid = residue_paid(state, invoice.invoice_id, threshold)
    state = fold(state, paid)
    return events + paid + decide_reevaluation(state, today, "invoice written off", cancelled)


def decide_write_off(state: Account, invoice_id: str, amount: int, reason: str, actor: str, today: date,
                     cancelled: Collection[str] = NONE, *, write_off_id: str = "wo",
                     threshold: int = RESIDUE_THRESHOLD_MINOR) -> list[DomainEvent]:
    """Write off part or all of an open invoice's open amount: at once up to ``threshold``
    (frees room for the queue), else proposed for a second finance key."""
    invoice = _open_invoice(state, invoice_id)
    if not 0 < amount <= invoice.open_minor:
        raise BadAmount(f"amount_minor must be within 1..{invoice.open_minor} (the open amount)")
    if amount <= threshold:
        return _apply(state, invoice, write_off_id, amount, reason, actor, today, threshold, cancelled, [])
    pending = [w.write_off_id for w in state.write_offs.values()
               if w.invoice_id == invoice_id and w.status == "proposed"]
    if pending:
        raise WriteOffPending(invoice_id, pending[0])
    return [ev.WriteOffProposed(
        write_off_id=write_off_id, invoice_id=invoice_id, partner_id=state.partner_id, amount_minor=amount,
        currency=state.currency, reason=reason, proposed_by=actor, proposed_on=today)]


def decide_write_off_approval(state: Account, write_off_id: str, actor: str, today: date,
                              cancelled: Collection[str] = NONE, *,
                              threshold: int = RESIDUE_THRESHOLD_MINOR) -> list[DomainEvent]:
    """A finance key other than the proposer approves a proposed write-off; it is applied."""
    proposal = state.write_offs.get(write_off_id)
    if proposal is None:
        raise WriteOffNotFound(write_off_id)
    if proposal.status != "proposed":
        raise WriteOffNotPending(write_off_id, proposal.status)
    if proposal.proposed_by == actor:
        raise SameApprover("the key that proposed a write-off may not approve it")
    invoice = state.invoices.get(proposal.invoice_id)  # none: closed since the proposal
    if invoice is None or invoice.status != "open" or proposal.amount_minor > invoice.open_minor:
        raise WriteOffStale(write_off_id, proposal.invoice_id,
                            invoice.open_minor if invoice is not None and invoice.status == "open" else 0)
    approved: list[DomainEvent] = [ev.WriteOffApproved(
        write_off_id=write_off_id, invoice_id=invoice.invoice_id, partner_id=state.partner_id,
        approved_by=actor, approved_on=today)]
    return _apply(state, invoice, write_off_id, proposal.amount_minor, proposal.reason, actor, today,
                  threshold, cancelled, approved)


def decide_write_off_rejection(state: Account, write_off_id: str, reason: str, actor: str, today: date
                               ) -> list[DomainEvent]:
    """Finance rejects a proposed write-off, with a reason; nothing is written off."""
    proposal = state.write_offs.get(write_off_id)
    if proposal is None:
        raise WriteOffNotFound(write_off_id)
    if proposal.status != "proposed":
        raise WriteOffNotPending(write_off_id, proposal.status)
    return [ev.WriteOffRejected(write_off_id=write_off_id, invoice_id=proposal.invoice_id,
                                partner_id=state.partner_id, reason=reason, rejected_by=actor,
                                rejected_on=today)]
