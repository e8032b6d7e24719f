"""The partner scorecard: how a partner did over a period, each figure from the books at its end.

For a period ``from..to`` (both days included), with the books as they stood
at the end of ``to``:

- ``target_minor``: ``annual_target_minor`` of the agreement in force in the
  period (the one starting last among those overlapping it; none: null);
- ``sales_minor`` = invoiced in the period - return credit notes issued in the
  period (``invoiced_minor``, ``returned_minor``), as the sales report counts;
- ``attainment_bp`` = sales / annual target x 10000, half-up (null without a
  target): the share of the annual target the period's sales reached;
- ``orders``: orders placed in the period (whatever became of them);
- ``invoices_due``: invoices falling due in the period; ``invoices_on_time``:
  those of them paid in full on or before their due date;
  ``on_time_bp`` = on time / due x 10000, half-up (null when none fell due);
- ``invoices_paid``: invoices paid in full in the period; ``days_to_pay_avg`` =
  Σ (paid_on - issued_on) / invoices paid, in days, half-up (null when none);
- ``returns_rate_bp`` = returned / invoiced x 10000, half-up (null when
  nothing was invoiced);
- ``violations``: territory violations recorded in the period.

With ``compare``, each figure also comes as ``previous_<figure>`` for the
compared period (``domain.periods``), and ``sales_growth_bp`` = (sales -
previous sales) / previous sales x 10000, half-up (null when the previous
sales are not positive).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from libs.events.values import half_up
from services.projections.domain.periods import Period

Doc = dict[str, Any]
BP = 10_000
FIGURES = ("target_minor", "sales_minor", "invoiced_minor", "returned_minor", "attainment_bp",
           "orders", "invoices_due", "invoices_on_time", "on_time_bp", "invoices_paid",
           "days_to_pay_avg", "returns_rate_bp", "violations")


def ratio_bp(part: int, whole: int | None) -> int | None:
    """``part / whole`` in basis points, half-up; None when ``whole`` is not positive."""
    return half_up(part * BP, whole) if whole and whole > 0 else None


def growth_bp(current: int, previous: int) -> int | None:
    """(current - previous) / previous in basis points, half-up; None when previous is not positive."""
    return ratio_bp(current - previous, previous)


def target_of(agreements: Sequence[Doc], period: Period) -> int | None:
    """The annual target of the agreement in force in the period (the latest to start)."""
    overlapping = [a for a in agreements if date.fromisoformat(a["starts_on"]) <= period.end
                   and date.fromisoformat(a["ends_on"]) >= period.start]
    if not overlapping:
        return None
    latest = max(enumerate(overlapping), key=lambda pair: (pair[1]["starts_on"], pair[0]))[1]
    target = latest.get("annual_target_minor")
    return int(target) if target is not None else None


def figures(*, agreements: Sequence[Doc], invoices: Sequence[Doc], credit_notes: Sequence[Doc],
            orders: Sequence[Doc], violations: Sequence[Doc], period: Period) -> dict[str, Any]:
    """One partner's figures over ``period``; money documents as they stood at its end."""
    issued = [i for i in invoices if i["total_minor"] is not None and period.holds(i["issued_on"])]
    invoiced = sum(i["total_minor"] for i in issued)
    returned = sum(n["amount_minor"] for n in credit_notes
                   if n.get("source_kind") == "return" and period.holds(n["issued_on"]))
    due = [i for i in invoices if i["total_minor"] is not None and period.holds(i["due_on"])]
    on_time = [i for i in due if i["paid_on"] is not None and i["paid_on"] <= i["due_on"]]
    paid = [i for i in invoices if period.holds(i["paid_on"])]
    days_to_pay = sum((date.fromisoformat(i["paid_on"]) - date.fromisoformat(i["issued_on"])).days
                      for i in paid)
    target = target_of(agreements, period)
    return {
        "target_minor": target, "sales_minor": invoiced - returned, "invoiced_minor": invoiced,
        "returned_minor": returned, "attainment_bp": ratio_bp(invoiced - returned, target),
        "orders": sum(1 for o in orders if period.holds(o["placed_at"])),
        "invoices_due": len(due), "invoices_on_time": len(on_time),
        "on_time_bp": ratio_bp(len(on_time), len(due)),
        "invoices_paid": len(paid), "days_to_pay_avg": half_up(days_to_pay, len(paid)) if paid else None,
        "returns_rate_bp": ratio_bp(returned, invoiced),
        "violations": sum(1 for v in violations if period.holds(v["on"])),
    }


def with_previous(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """The current figures, the compared period's as ``previous_*``, and the sales growth."""
    return {**current, **{f"previous_{key}": previous[key] for key in FIGURES},
            "sales_growth_bp": growth_bp(current["sales_minor"], previous["sales_minor"])}
