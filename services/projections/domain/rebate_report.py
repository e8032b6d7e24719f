"""Rebates accrued against settled, per program and partner.

- ``accrued_minor``: the partner's running accrual under the program (the
  latest ``RebateAccrued``: what a close would propose, bonuses and cap included);
- ``settled_minor``: Σ payouts of approved settlements (a negative true-up
  counts negative); ``proposed_minor``: Σ payouts proposed and not yet approved;
- ``outstanding_minor`` = accrued - settled: earned and not yet paid out.

Program totals are the sums of their rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Doc = dict[str, Any]
AMOUNTS = ("accrued_minor", "settled_minor", "proposed_minor", "outstanding_minor")


def rows(accruals: Iterable[Doc], settlements: Iterable[Doc],
         programs: Mapping[str, Doc]) -> list[dict[str, Any]]:
    """One row per (program, partner), in that order."""
    table: dict[tuple[str, str], dict[str, Any]] = {}

    def row(program_id: str, partner_id: str) -> dict[str, Any]:
        return table.setdefault((program_id, partner_id), {
            "program_id": program_id, "name": programs.get(program_id, {}).get("name"),
            "partner_id": partner_id, **dict.fromkeys(AMOUNTS, 0)})

    for accrual in accruals:
        row(accrual["program_id"], accrual["partner_id"])["accrued_minor"] += accrual["accrued_minor"]
    for settlement in settlements:
        if settlement["program_id"] is None or settlement["partner_id"] is None:
            continue
        field = "settled_minor" if settlement["status"] == "approved" else "proposed_minor"
        row(settlement["program_id"], settlement["partner_id"])[field] += settlement["payout_minor"]
    for item in table.values():
        item["outstanding_minor"] = item["accrued_minor"] - item["settled_minor"]
    return [table[key] for key in sorted(table)]


def program_totals(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for item in items:
        total = totals.setdefault(item["program_id"], {
            "program_id": item["program_id"], "name": item["name"], "partners": 0,
            **dict.fromkeys(AMOUNTS, 0)})
        total["partners"] += 1
        for amount in AMOUNTS:
            total[amount] += item[amount]
    return [totals[key] for key in sorted(totals)]
