"""The partner 360: a partner's profile, orders, sales, money position and rebates in one view.

- sales = invoiced - return credit notes (all time);
- exposure = open invoice amounts + approved orders not yet invoiced (the
  amount that passed funds review less what was invoiced for the order), as
  the credit service counts it; cancelled or rejected orders hold nothing;
- debit notes (money owed back, e.g. a negative rebate true-up) are owed like
  invoices: their open amounts count in exposure and overdue, their amounts in
  the balance, never in sales;
- balance = invoiced + debit notes - payments received - credit notes - written
  off (what the partner owes; negative when it has money on account), as
  credit's account balance and statement closing balance count it;
- overdue = open amounts of invoices and debit notes past their due date;
- deals = its deal registrations by status (``refused``: a registration refused as a
  channel conflict).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from libs.events import orders as order_events
from libs.events.base import DomainEvent
from services.projections.domain import rebates
from services.projections.domain.read_models import CLOSED_ORDER_STATUSES
from services.projections.domain.receivables import open_minor, overdue_minor
from services.projections.domain.sales import sales_minor

Doc = dict[str, Any]

DEAL_STATUS_AFTER = {
    order_events.DealRegistered.TYPE: "pending", order_events.DealApproved.TYPE: "approved",
    order_events.DealRejected.TYPE: "rejected", order_events.DealConflictRecorded.TYPE: "refused",
}


def blank_deal(deal_id: str) -> Doc:
    return {"deal_id": deal_id, "partner_id": None, "status": None}


def evolve_deal(doc: Doc, event: DomainEvent) -> Doc:
    """A deal registration's partner and status (the orders service's events name both)."""
    return {**doc, "partner_id": getattr(event, "partner_id", doc["partner_id"]),
            "status": DEAL_STATUS_AFTER.get(event.TYPE, doc["status"])}


def approved_not_invoiced(orders: Sequence[Doc], invoices: Sequence[Doc]) -> int:
    invoiced: Counter[str] = Counter()
    for invoice in invoices:
        if invoice["total_minor"] is not None:
            invoiced[invoice["order_id"]] += invoice["total_minor"]
    return sum(
        max(0, order["funds_passed_minor"] - invoiced[order["order_id"]])
        for order in orders
        if order["funds_passed_minor"] is not None and order["status"] not in CLOSED_ORDER_STATUSES
    )


def balance_minor(*, invoices: Sequence[Doc], debit_notes: Sequence[Doc], payments: Sequence[Doc],
                  credit_notes: Sequence[Doc]) -> int:
    """What the partner owes: invoiced + debit notes - received - credit notes - written off."""
    return (sum(i["total_minor"] for i in invoices if i["total_minor"] is not None)
            + sum(n["total_minor"] for n in debit_notes if n["total_minor"] is not None)
            - sum(p["amount_minor"] for p in payments) - sum(n["amount_minor"] for n in credit_notes)
            - sum(i["written_off_minor"] for i in invoices))


def partner_360(
    partner: Doc, *, orders: Sequence[Doc], invoices: Sequence[Doc], credit_notes: Sequence[Doc],
    payments: Sequence[Doc], accruals: Sequence[Doc], settlements: Sequence[Doc], today: date,
    debit_notes: Sequence[Doc] = (), deals: Sequence[Doc] = (),
) -> dict[str, Any]:
    invoiced = sum(i["total_minor"] for i in invoices if i["total_minor"] is not None)
    debited = sum(n["total_minor"] for n in debit_notes if n["total_minor"] is not None)
    open_debits = sum(open_minor(n) for n in debit_notes)
    received = sum(p["amount_minor"] for p in payments)
    credited = sum(n["amount_minor"] for n in credit_notes)
    open_invoices = sum(open_minor(i) for i in invoices)
    by_status = Counter(o["status"] for o in orders if o["status"] is not None)
    deals_by_status = Counter(d["status"] for d in deals if d["status"] is not None)
    return {
        "partner_id": partner["partner_id"], "name": partner["name"], "status": partner["status"],
        "tier": partner["tier"], "region": partner["region"], "parent_id": partner["parent_id"],
        "currency": partner["currency"] or "CNY",
        "orders": {"count": len(orders), "by_status": dict(sorted(by_status.items()))},
        "sales_minor": sales_minor(invoices, credit_notes),
        "invoiced_minor": invoiced,
        "exposure_minor": open_invoices + open_debits + approved_not_invoiced(orders, invoices),
        "open_invoices_minor": open_invoices,
        "debit_notes_minor": debited,
        "open_debit_notes_minor": open_debits,
        "balance_minor": balance_minor(invoices=invoices, debit_notes=debit_notes, payments=payments,
                                       credit_notes=credit_notes),
        "overdue_minor": overdue_minor([*invoices, *debit_notes], today),
        "received_minor": received,
        "credit_notes_minor": credited,
        "rebates": rebates.totals(accruals, settlements),
        "deals": {"count": len(deals), "by_status": dict(sorted(deals_by_status.items()))},
    }
