"""Receivables aging with configurable buckets, by due date or by invoice date.

``bounds`` are the upper day counts of the closed buckets, ascending (default
30, 60, 90); one more bucket holds everything older.

- ``basis=due``: age = days past due (``as_of - due_on``); 0 or less is
  ``current``, then ``1-30``, ``31-60``, ``61-90`` and ``90+`` (the default
  aging: the same fields as ever, ``current_minor``, ``d1_30_minor``, ...);
- ``basis=invoice``: age = days since issue (``as_of - issued_on``): ``0-30``,
  ``31-60``, ``61-90``, ``90+`` (``d0_30_minor``, ...): nothing is "current".

Only what is open at the end of ``as_of`` counts (``receivables.open_minor``).
Money on account (payments and credit notes not yet applied to a receivable:
credit's advance, reserved or not) is its own column, ``on_account_minor``,
subtracted from the buckets, as ERP receivables agings show unallocated
receipts: ``total_minor`` = buckets - on account = the partner's balance (what
credit's account and statement say). A partner with money on account and
nothing open has a row with a negative total.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

from libs.events.values import DEFAULT_CURRENCY
from services.projections.domain.partner_view import balance_minor
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


def balances(*, invoices: Iterable[Doc], debit_notes: Iterable[Doc], payments: Iterable[Doc],
             credit_notes: Iterable[Doc]) -> dict[str, int]:
    """Per partner, its balance over these documents (``partner_view.balance_minor``)."""
    own: dict[str, dict[str, list[Doc]]] = {}
    for name, docs in (("invoices", invoices), ("debit_notes", debit_notes), ("payments", payments),
                       ("credit_notes", credit_notes)):
        for doc in docs:
            kinds = own.setdefault(doc["partner_id"], {"invoices": [], "debit_notes": [], "payments": [],
                                                       "credit_notes": []})
            kinds[name].append(doc)
    return {partner_id: balance_minor(**kinds) for partner_id, kinds in own.items()}


def on_account(receivables: Iterable[Doc], balances: Mapping[str, int], as_of: date) -> dict[str, int]:
    """Per partner, the money on account at ``as_of``: its open receivables less its balance."""
    owed = dict.fromkeys(balances, 0)
    for doc in receivables:
        owed[doc["partner_id"]] = owed.get(doc["partner_id"], 0) + open_minor(doc, as_of)
    return {partner_id: owed[partner_id] - balances.get(partner_id, 0) for partner_id in owed}


def aging(receivables: Iterable[Doc], as_of: date, bounds: Sequence[int] = DEFAULT_BOUNDS,
          basis: Basis = "due", money_on_account: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Per partner with anything open or on account at ``as_of``: the open amount per bucket,
    the money on account and the total (buckets - on account)."""
    names = bucket_names(bounds, basis)
    rows: dict[str, dict[str, Any]] = {}

    def row_of(partner_id: str, currency: str | None) -> dict[str, Any]:
        return rows.setdefault(partner_id, {
            "partner_id": partner_id, "currency": currency or DEFAULT_CURRENCY,
            **dict.fromkeys(names, 0), "on_account_minor": 0, "total_minor": 0})

    for doc in receivables:
        amount = open_minor(doc, as_of)
        if amount <= 0:
            continue
        row = row_of(doc["partner_id"], doc["currency"])
        row[names[bucket_of(age_of(doc, as_of, basis), bounds, basis)]] += amount
        row["total_minor"] += amount
    for partner_id, amount in (money_on_account or {}).items():
        if amount:
            row = row_of(partner_id, None)
            row["on_account_minor"] = amount
            row["total_minor"] -= amount
    return [rows[partner_id] for partner_id in sorted(rows)]
