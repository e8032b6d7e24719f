"""Exports on the running system: aging as CSV and as an XLSX workbook parsed back equals its JSON,
over HTTP, on both databases.

Figures: EXP-1 lists at 12_345 (123.45); the partner buys 3, so its invoice is 37_035 (370.35),
due in 30 days: all of it in ``current``, nothing on account, a total of 370.35.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import openpyxl

from tests.e2e.conftest import (
    System,
    body,
    dispatch,
    ensure_product,
    eventually,
    issue_key,
    placed_order,
    register_partner,
)


def _as_exported(item: dict[str, Any]) -> dict[str, Any]:
    """A JSON row as the export writes it: ``x_minor`` becomes ``x`` in major units."""
    return {(k.removesuffix("_minor") if k.endswith("_minor") else k):
            (Decimal(v) / 100 if k.endswith("_minor") else v) for k, v in item.items()}


def _typed(row: dict[str, Any], money: set[str]) -> dict[str, Any]:
    return {k: (Decimal(str(v)) if k in money else (v if v not in ("", None) else None))
            for k, v in row.items()}


def test_aging_exports_as_csv_and_xlsx_equal_to_its_json(system: System) -> None:
    partner = register_partner(system, tier="EXP", region="exp-east",
                               terms={"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30})
    ensure_product(system, "EXP-1", list_price=12_345, stock=10)
    key = issue_key(system, "partner", partner["id"])
    order = placed_order(system, key, partner_ref="EXP-1", sku="EXP-1", qty=3, region="exp-east")
    dispatch(system, order["id"], "EXP-1", 3)

    with system.as_role("projections", "finance") as projections:
        url = "/v1/views/receivables/aging"
        mine = eventually(lambda: [r for r in body(projections.get(url))["items"]
                                   if r["partner_id"] == partner["id"]], bool, what="the invoice in aging")
        assert (mine[0]["current_minor"], mine[0]["on_account_minor"], mine[0]["total_minor"]) == (
            37_035, 0, 37_035)
        items = body(projections.get(url))["items"]
        expected = [_as_exported(item) for item in items]
        money = {k.removesuffix("_minor") for k in items[0] if k.endswith("_minor")}

        answer = projections.get(url, headers={"Accept": "text/csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [_typed(r, money) for r in rows] == [_typed(e, money) for e in expected]
        [own] = [r for r in rows if r["partner_id"] == partner["id"]]
        assert (own["current"], own["total"], own["currency"]) == ("370.35", "370.35", "CNY")

        book = projections.get(url, params={"format": "xlsx"})
        assert book.status_code == 200, book.text
        sheet = openpyxl.load_workbook(io.BytesIO(book.content), read_only=True).active
        header, *cells = list(sheet.iter_rows(values_only=True))
        parsed = [dict(zip(header, row, strict=True)) for row in cells]
        assert [_typed(r, money) for r in parsed] == [_typed(e, money) for e in expected]
