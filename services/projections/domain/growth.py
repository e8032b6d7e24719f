"""A grouped report against the same groups in the compared period.

Each row gains ``previous_amount_minor`` (the group's amount in the compared
period, 0 when it had none) and ``growth_bp`` = (amount - previous) /
previous x 10000, half-up (null when the previous amount is not positive).
Groups are matched by key; by month, a month matches the same month one year
earlier (``previous_year`` only: a month has no "previous period" twin).
Groups found only in the compared period come with an amount of 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.projections.domain.scorecards import growth_bp

Row = dict[str, Any]


def _next_year(month: str) -> str:
    return f"{int(month[:4]) + 1:04d}{month[4:]}"


def against(rows: Sequence[Row], previous: Sequence[Row], *, by_month: bool) -> list[Row]:
    """``rows`` with their previous amounts and growth, in key order."""
    earlier = {(_next_year(row["key"]) if by_month else row["key"]): row["amount_minor"]
               for row in previous}
    now = {row["key"]: row for row in rows}
    keys = sorted({*now, *earlier})
    out = []
    for key in keys:
        row = now.get(key) or {"key": key, "amount_minor": 0, "orders": 0, "invoiced_minor": 0,
                               "returned_minor": 0}
        before = earlier.get(key, 0)
        out.append({**row, "previous_amount_minor": before,
                    "growth_bp": growth_bp(row["amount_minor"], before)})
    return out
