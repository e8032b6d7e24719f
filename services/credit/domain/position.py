"""What an account stands at: exposure, advance, overdue, balance, the queue of held orders.

``cancelled`` names orders the orders service cancelled (kept from its events
outside the account stream): a cancelled order adds nothing to exposure, gives
back its reserved advance and leaves the queue.

Definitions (all integer minor units):

- open amount of an invoice = total - paid - written off; of a debit note = its
  amount - what settled it; the open items are both, and count alike below;
- exposure = Σ open item amounts + Σ over approved orders of (approved total -
  invoiced so far, never below 0);
- reserved = advance set aside for approved prepaid orders and not yet consumed
  by their invoices (released once the order is fully invoiced or cancelled);
- advance (unreserved) = money received or credited and not applied - reserved;
- overdue = Σ open amounts of items with ``due_on`` before today;
- balance = what the partner owes = Σ open item amounts - all money on the
  account (unreserved advance + reserved). It equals the statement's closing
  balance: invoices + debit notes - payments - credit notes - write-offs;
  negative means the partner is in credit.
- available = for credit terms max(limit - exposure, 0); for prepaid terms the
  unreserved advance (what a new order could be covered by).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from services.credit.domain.account import Account
from services.credit.domain.parts import QUEUED, DebitNote, Invoice, OrderReview

NONE: frozenset[str] = frozenset()


def open_invoices(state: Account) -> list[Invoice]:
    """Open invoices, oldest first: by issued_on, then in the order they were issued.

    This is the order payments and credit notes are applied in.
    """
    return sorted((state.invoices[i] for i in state.open_invoice_ids), key=lambda i: (i.issued_on, i.seq))


def open_debit_notes(state: Account) -> list[DebitNote]:
    notes = (state.debit_notes[n] for n in state.open_debit_note_ids)
    return sorted(notes, key=lambda n: (n.issued_on, n.seq))


def open_items(state: Account) -> list[Invoice | DebitNote]:
    """Open invoices and debit notes, oldest first: by issue day, an invoice before a debit note
    of the same day, then in the order each kind was issued.

    This is the order payments, credit notes and advance settle them in.
    """
    items: list[Invoice | DebitNote] = [*open_invoices(state), *open_debit_notes(state)]
    return sorted(items, key=lambda item: (item.issued_on, isinstance(item, DebitNote), item.seq))


def _unsorted_items(state: Account) -> list[Invoice | DebitNote]:
    """The open invoices and debit notes in no particular order: for the sums below."""
    return [*(state.invoices[i] for i in state.open_invoice_ids),
            *(state.debit_notes[n] for n in state.open_debit_note_ids)]


def open_reservation(order: OrderReview, cancelled: Collection[str]) -> int:
    if order.order_id in cancelled or order.status != "approved":
        return 0
    if order.invoiced_minor >= order.total_minor:
        return 0
    return max(order.reserved_minor - order.reservation_used_minor, 0)


def live_orders(state: Account) -> list[OrderReview]:
    """Orders queued, or approved and not fully invoiced (no other order counts below)."""
    return [state.orders[o] for o in state.live_order_ids]


def reserved(state: Account, cancelled: Collection[str] = NONE) -> int:
    return sum(open_reservation(o, cancelled) for o in live_orders(state))


def free_advance(state: Account, cancelled: Collection[str] = NONE) -> int:
    """Money on the account not applied to invoices and not reserved for an order."""
    return max(state.advance_minor - reserved(state, cancelled), 0)


def uninvoiced_approved(state: Account, cancelled: Collection[str] = NONE) -> int:
    return sum(max(o.total_minor - o.invoiced_minor, 0) for o in live_orders(state)
               if o.status == "approved" and o.order_id not in cancelled)


def open_debits(state: Account) -> int:
    return sum(state.debit_notes[n].open_minor for n in state.open_debit_note_ids)


def exposure(state: Account, cancelled: Collection[str] = NONE) -> int:
    return sum(i.open_minor for i in _unsorted_items(state)) + uninvoiced_approved(state, cancelled)


def overdue(state: Account, today: date) -> int:
    return sum(i.open_minor for i in _unsorted_items(state) if i.due_on < today)


def queue(state: Account, cancelled: Collection[str] = NONE) -> list[OrderReview]:
    """Held and awaiting orders in arrival order."""
    return sorted((o for o in live_orders(state) if o.status in QUEUED and o.order_id not in cancelled),
                  key=lambda o: o.seq)


@dataclass(frozen=True)
class Position:
    exposure_minor: int
    available_minor: int
    balance_minor: int
    advance_minor: int
    reserved_minor: int
    overdue_minor: int
    open_invoices_minor: int
    open_debit_notes_minor: int


def position(state: Account, today: date, cancelled: Collection[str] = NONE) -> Position:
    """Every figure above, from one pass over the open items and one over the live orders
    (each equals its function above: ``exposure``, ``reserved``, ``overdue`` ...)."""
    open_total = debits = late = 0
    for invoice in (state.invoices[i] for i in state.open_invoice_ids):
        open_total += invoice.open_minor
        late += invoice.open_minor if invoice.due_on < today else 0
    for note in (state.debit_notes[n] for n in state.open_debit_note_ids):
        debits += note.open_minor
        late += note.open_minor if note.due_on < today else 0
    held_back = uninvoiced = 0
    for order in live_orders(state):
        held_back += open_reservation(order, cancelled)
        if order.status == "approved" and order.order_id not in cancelled:
            uninvoiced += max(order.total_minor - order.invoiced_minor, 0)
    advance = max(state.advance_minor - held_back, 0)
    used = open_total + debits + uninvoiced
    available = max(state.credit_limit_minor - used, 0) if state.kind == "credit" else advance
    return Position(
        exposure_minor=used, available_minor=available,
        balance_minor=open_total + debits - state.advance_minor, advance_minor=advance,
        reserved_minor=held_back, overdue_minor=late,
        open_invoices_minor=open_total, open_debit_notes_minor=debits,
    )
