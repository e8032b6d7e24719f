"""The account as JSON for snapshots, and back: integers stay integers, dates are ISO strings.

The facts are written (terms, money, the invoice and debit note counters, orders, invoices,
receipts, credit and debit notes, write-offs), each list in a fixed order, so the same account
always encodes to the same bytes. A snapshot is of the aggregate's state (``account.evolve``),
which holds only what is live: the live orders, open invoices and debit notes and proposed
write-offs, no receipts or credit notes. So a snapshot's size, and its decode, follow what is
open on the account, not its history. Which invoices are open and which orders are live is
rebuilt on decode from the facts (debit notes likewise), so it can never disagree with them.
Change ``SHAPE`` in ``account.py`` with any change here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from libs.events.values import InvoiceLine
from libs.runtime.persistent import PMap
from services.credit.domain.account import Account
from services.credit.domain.parts import (
    CreditNote,
    DebitNote,
    Invoice,
    OrderReview,
    Receipt,
    WriteOff,
    debit_open,
    is_live,
    is_open,
)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _lines(lines: tuple[InvoiceLine, ...]) -> list[dict[str, Any]]:
    return [line.model_dump(mode="json") for line in lines]


def _order(o: OrderReview) -> list[Any]:
    return [o.order_id, o.total_minor, o.status, o.seq, o.hold_reason, o.how, o.decided_reason,
            o.invoiced_minor, o.reserved_minor, o.reservation_used_minor]


def _invoice(i: Invoice) -> dict[str, Any]:
    return {"invoice_id": i.invoice_id, "order_id": i.order_id, "dispatch_id": i.dispatch_id,
            "total_minor": i.total_minor, "issued_on": _day(i.issued_on), "due_on": _day(i.due_on),
            "lines": _lines(i.lines), "region": i.region, "tier": i.tier, "currency": i.currency,
            "seq": i.seq, "paid_minor": i.paid_minor, "written_off_minor": i.written_off_minor,
            "paid_on": _day(i.paid_on), "on_time": i.on_time, "settled_on": _day(i.settled_on)}


def _receipt(r: Receipt) -> dict[str, Any]:
    return {"payment_id": r.payment_id, "amount_minor": r.amount_minor, "currency": r.currency,
            "bank_ref": r.bank_ref, "received_on": _day(r.received_on),
            "applications": [[invoice_id, amount] for invoice_id, amount in r.applications],
            "debit_note_applications": [[note_id, amount] for note_id, amount in r.debit_note_applications]}


def _note(n: CreditNote) -> dict[str, Any]:
    return {"credit_note_id": n.credit_note_id, "amount_minor": n.amount_minor, "currency": n.currency,
            "reason": n.reason, "source_kind": n.source_kind, "source_ref": n.source_ref,
            "issued_on": _day(n.issued_on), "order_id": n.order_id, "lines": _lines(n.lines)}


def _debit(n: DebitNote) -> dict[str, Any]:
    return {"debit_note_id": n.debit_note_id, "amount_minor": n.amount_minor, "currency": n.currency,
            "reason": n.reason, "source_kind": n.source_kind, "source_ref": n.source_ref,
            "issued_on": _day(n.issued_on), "due_on": _day(n.due_on), "seq": n.seq,
            "settled_minor": n.settled_minor, "paid_on": _day(n.paid_on)}


def _write_off(w: WriteOff) -> dict[str, Any]:
    return {"write_off_id": w.write_off_id, "invoice_id": w.invoice_id, "amount_minor": w.amount_minor,
            "reason": w.reason, "proposed_by": w.proposed_by, "proposed_on": _day(w.proposed_on),
            "status": w.status, "decided_by": w.decided_by, "decided_on": _day(w.decided_on),
            "decision_reason": w.decision_reason}


def encode(state: Account) -> dict[str, Any]:
    return {
        "partner_id": state.partner_id, "opened": state.opened, "kind": state.kind,
        "credit_limit_minor": state.credit_limit_minor, "term_days": state.term_days,
        "currency": state.currency, "opened_on": _day(state.opened_on), "advance_minor": state.advance_minor,
        "next_seq": state.next_seq, "suspended": state.suspended,
        "invoices_issued": state.invoices_issued, "debit_notes_issued": state.debit_notes_issued,
        "orders": [_order(o) for o in sorted(state.orders.values(), key=lambda o: o.seq)],
        "invoices": [_invoice(i) for i in sorted(state.invoices.values(),
                                                 key=lambda i: (i.seq, i.invoice_id))],
        "payments": [_receipt(state.payments[k]) for k in sorted(state.payments)],
        "credit_notes": [_note(state.credit_notes[k]) for k in sorted(state.credit_notes)],
        "debit_notes": [_debit(state.debit_notes[k]) for k in sorted(state.debit_notes)],
        "write_offs": [_write_off(state.write_offs[k]) for k in sorted(state.write_offs)],
    }


def _read_lines(raw: list[dict[str, Any]]) -> tuple[InvoiceLine, ...]:
    return tuple(InvoiceLine.model_validate(line) for line in raw)


def decode(body: dict[str, Any]) -> Account:
    orders = [OrderReview(*row) for row in body["orders"]]
    invoices = [Invoice(**{**raw, "issued_on": _date(raw["issued_on"]), "due_on": _date(raw["due_on"]),
                           "paid_on": _date(raw["paid_on"]), "settled_on": _date(raw["settled_on"]),
                           "lines": _read_lines(raw["lines"])})
                for raw in body["invoices"]]
    payments = [Receipt(**{**raw, "received_on": _date(raw["received_on"]),
                           "applications": tuple((i, a) for i, a in raw["applications"]),
                           "debit_note_applications": tuple(
                               (n, a) for n, a in raw["debit_note_applications"])})
                for raw in body["payments"]]
    notes = [CreditNote(**{**raw, "issued_on": _date(raw["issued_on"]), "lines": _read_lines(raw["lines"])})
             for raw in body["credit_notes"]]
    debits = [DebitNote(**{**raw, "issued_on": _date(raw["issued_on"]), "due_on": _date(raw["due_on"]),
                           "paid_on": _date(raw["paid_on"])}) for raw in body["debit_notes"]]
    write_offs = [WriteOff(**{**raw, "proposed_on": _date(raw["proposed_on"]),
                              "decided_on": _date(raw["decided_on"])}) for raw in body["write_offs"]]
    return Account(
        partner_id=body["partner_id"], opened=body["opened"], kind=body["kind"],
        credit_limit_minor=body["credit_limit_minor"], term_days=body["term_days"],
        currency=body["currency"], opened_on=_date(body["opened_on"]), advance_minor=body["advance_minor"],
        next_seq=body["next_seq"], suspended=body["suspended"],
        invoices_issued=body["invoices_issued"], debit_notes_issued=body["debit_notes_issued"],
        orders=PMap((o.order_id, o) for o in orders),
        invoices=PMap((i.invoice_id, i) for i in invoices),
        payments=PMap((p.payment_id, p) for p in payments),
        credit_notes=PMap((n.credit_note_id, n) for n in notes),
        debit_notes=PMap((n.debit_note_id, n) for n in debits),
        write_offs=PMap((w.write_off_id, w) for w in write_offs),
        open_debit_note_ids=frozenset(n.debit_note_id for n in debits if debit_open(n)),
        open_invoice_ids=frozenset(i.invoice_id for i in invoices if is_open(i)),
        live_order_ids=frozenset(o.order_id for o in orders if is_live(o)),
    )


def size(state: Account) -> int:
    """The parts an encode writes: orders, invoices, receipts, credit and debit notes, write-offs."""
    return (len(state.orders) + len(state.invoices) + len(state.payments) + len(state.credit_notes)
            + len(state.debit_notes) + len(state.write_offs))
