"""Sales: what was invoiced, net of the credit notes for returned goods.

An invoice counts on its issue date, a return credit note on its own issue
date. Region and tier are the ones the invoice carries (the partner's at the
time of the sale); a return takes them from its order's invoice, else from
the partner's current profile. By sku, a credit note counts per returned line;
an amount its lines do not explain is grouped under ``(unattributed)``.
Rebate credit notes are not sales returns and do not count. ``orders`` is the
number of distinct orders invoiced in the group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

Doc = dict[str, Any]
GroupBy = Literal["region", "tier", "sku", "month"]
UNKNOWN = "(unknown)"
UNATTRIBUTED = "(unattributed)"


@dataclass
class Group:
    invoiced_minor: int = 0
    returned_minor: int = 0
    orders: set[str] = field(default_factory=set)

    def as_row(self, key: str) -> dict[str, Any]:
        return {"key": key, "amount_minor": self.invoiced_minor - self.returned_minor,
                "orders": len(self.orders), "invoiced_minor": self.invoiced_minor,
                "returned_minor": self.returned_minor}


def _within(day: str | None, start: date | None, end: date | None) -> bool:
    if day is None:
        return False
    on = date.fromisoformat(day)
    return (start is None or on >= start) and (end is None or on <= end)


def _keyed(doc: Doc, group_by: GroupBy, on: str, fallback: Doc | None) -> str:
    if group_by == "month":
        return on[:7]
    value = doc.get(group_by) or (fallback or {}).get(group_by)
    return value or UNKNOWN


def sales(
    invoices: Iterable[Doc], credit_notes: Iterable[Doc], *, group_by: GroupBy,
    start: date | None = None, end: date | None = None,
    partners: Mapping[str, Doc] | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{key, amount_minor, orders, invoiced_minor, returned_minor}`` in key order."""
    partners = partners or {}
    groups: dict[str, Group] = {}
    first_invoice_of_order: dict[str, Doc] = {}
    for invoice in invoices:
        if invoice["total_minor"] is None:
            continue
        first_invoice_of_order.setdefault(invoice["order_id"], invoice)
        if not _within(invoice["issued_on"], start, end):
            continue
        if group_by == "sku":
            for line in invoice["lines"]:
                group = groups.setdefault(line["sku"], Group())
                group.invoiced_minor += line["line_total_minor"]
                group.orders.add(invoice["order_id"])
            continue
        group = groups.setdefault(_keyed(invoice, group_by, invoice["issued_on"], None), Group())
        group.invoiced_minor += invoice["total_minor"]
        group.orders.add(invoice["order_id"])
    for note in credit_notes:
        if note["source_kind"] != "return" or not _within(note["issued_on"], start, end):
            continue
        for key, amount in _return_amounts(note, group_by, first_invoice_of_order,
                                           partners.get(note["partner_id"])):
            groups.setdefault(key, Group()).returned_minor += amount
    return [groups[key].as_row(key) for key in sorted(groups)]


def _return_amounts(note: Doc, group_by: GroupBy, first_invoice_of_order: Mapping[str, Doc],
                    partner: Doc | None) -> list[tuple[str, int]]:
    if group_by == "sku":
        amounts = [(line["sku"], line["line_total_minor"]) for line in note["lines"]]
        rest = note["amount_minor"] - sum(amount for _, amount in amounts)
        return [*amounts, (UNATTRIBUTED, rest)] if rest else amounts
    source = first_invoice_of_order.get(note.get("order_id") or "") or {}
    return [(_keyed(source, group_by, note["issued_on"], partner), note["amount_minor"])]


def sales_minor(invoices: Iterable[Doc], credit_notes: Iterable[Doc]) -> int:
    """All-time invoiced less return credit notes."""
    invoiced = sum(i["total_minor"] for i in invoices if i["total_minor"] is not None)
    returned = sum(n["amount_minor"] for n in credit_notes if n["source_kind"] == "return")
    return invoiced - returned
