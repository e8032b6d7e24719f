"""Receivables aging with configurable buckets, by due date or by invoice date.

``bounds`` are the upper day counts of the closed buckets, ascending (default
30, 60, 90); one more bucket holds everything older.

- ``basis=due``: age = days past due (``as_of - due_on``); 0 or less is
  ``current``, then ``1-30``, ``31-60``, ``61-90`` and ``90+`` (the default
  aging: the same fields as ever, ``current_minor``, ``d1_30_minor``, ...);
- ``basis=invoice``: age = days since issue (``as_of - issued_on``): ``0-30``,
  ``31-60``, ``61-90``, ``90+`` (``d0_30_minor``, ...): nothing is "current".

Only what is open at the end of ``as_of`` counts (``receivables.open_minor``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Literal

from libs.events.values import DEFAULT_CURRENCY
from services.projections.domain.receivables import open_minor

Doc = dict[str, Any]
Basis = Literal["due", "invoice"]
DEFAULT_BOUNDS = (30, 60, 90)
MAX_BUCKETS = 12


def parse_bounds(text: str) -> tuple[int, ...]:
    """``"30,60,90"`` -> (30, 60, 90); ValueError unless 1..12 ascending whole days 1..3650."""
    try:
        bounds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("buckets must be whole numbers of days separated by commas") from None
    if not 1 <= len(bounds) <= MAX_BUCKETS:
        raise ValueError(f"between 1 and {MAX_BUCKETS} buckets")
    if any(not 1 <= b <= 3650 for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise ValueError("buckets must be strictly ascending days between 1 and 3650")
    return bounds


def bucket_names(bounds: Sequence[int], basis: Basis) -> list[str]:
    """The field of each bucket, youngest first."""
    first = 1 if basis == "due" else 0
    names = ["current_minor"] if basis == "due" else []
    low = first
    for bound in bounds:
        names.append(f"d{low}_{bound}_minor")
        low = bound + 1
    names.append(f"d{bounds[-1]}_plus_minor")
    return names


def age_of(invoice: Doc, as_of: date, basis: Basis) -> int:
    day = invoice["due_on"] if basis == "due" else invoice["issued_on"]
    return (as_of - date.fromisoformat(day)).days


def bucket_of(age: int, bounds: Sequence[int], basis: Basis) -> int:
    """The index of the bucket an ``age`` falls in (``bucket_names`` order)."""
    offset = 0
    if basis == "due":
        if age <= 0:
            return 0
        offset = 1
    for index, bound in enumerate(bounds):
        if age <= bound:
            return offset + index
    return offset + len(bounds)


def aging(receivables: Iterable[Doc], as_of: date, bounds: Sequence[int] = DEFAULT_BOUNDS,
          basis: Basis = "due") -> list[dict[str, Any]]:
    """Per partner with anything open at ``as_of``: the open amount per bucket and their total."""
    names = bucket_names(bounds, basis)
    rows: dict[str, dict[str, Any]] = {}
    for doc in receivables:
        amount = open_minor(doc, as_of)
        if amount <= 0:
            continue
        row = rows.setdefault(doc["partner_id"], {
            "partner_id": doc["partner_id"], "currency": doc["currency"] or DEFAULT_CURRENCY,
            **dict.fromkeys(names, 0), "total_minor": 0})
        row[names[bucket_of(age_of(doc, as_of, basis), bounds, basis)]] += amount
        row["total_minor"] += amount
    return [rows[partner_id] for partner_id in sorted(rows)]
