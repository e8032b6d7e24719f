"""The finance dashboard as one self-contained HTML page (inline CSS, no scripts, no assets)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;min-width:40rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem}th{background:#f2f2f2;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tfoot td{font-weight:600}
p.meta{color:#666}
"""


def money(minor: int) -> str:
    """Minor units as ``1,234.56`` (exact integer arithmetic)."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units:,}.{cents:02d}"


def _cell(value: Any, numeric: bool) -> str:
    if numeric:
        return f'<td class="n">{money(int(value))}</td>'
    return f"<td>{escape('' if value is None else str(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool],
          footer: Sequence[Any] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(_cell(v, n) for v, n in zip(row, numeric, strict=True)) + "</tr>"
        for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}">nothing yet</td></tr>'
    foot = ""
    if footer is not None:
        foot = "<tfoot><tr>" + "".join(
            _cell(v, n) for v, n in zip(footer, numeric, strict=True)) + "</tr></tfoot>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{foot}</table>"


AGING_COLUMNS = ("current_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor",
                 "d90_plus_minor", "on_account_minor", "total_minor")


def render(aging: dict[str, Any], sales: dict[str, Any], rebates: list[dict[str, Any]]) -> str:
    aging_table = table(
        ["Partner", "Name", "Current", "1-30", "31-60", "61-90", "90+", "On account", "Total"],
        ([row["partner_id"], row["name"], *(row[c] for c in AGING_COLUMNS)]
         for row in aging["items"]),
        [False, False, *([True] * 7)],
        footer=["Total", "", *(aging["totals"][c] for c in AGING_COLUMNS)])
    sales_table = table(
        ["Region", "Invoiced", "Returned", "Net sales", "Orders"],
        ([r["key"], r["invoiced_minor"], r["returned_minor"], r["amount_minor"], r["orders"]]
         for r in sales["items"]),
        [False, True, True, True, False])
    rebate_table = table(
        ["Program", "Name", "Accrued", "Settled", "Open"],
        ([r["program_id"], r["name"], r["accrued_minor"], r["settled_minor"],
          r["accrued_minor"] - r["settled_minor"]] for r in rebates),
        [False, False, True, True, True])
    period = f"{sales['from'] or 'the beginning'} to {sales['to'] or 'today'}"
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>o2c finance dashboard</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>o2c finance dashboard</h1>"
        f"<p class=\"meta\">Amounts in major units. Aging as of {escape(aging['as_of'])}; "
        f"sales from {escape(period)}.</p>"
        f"<h2>Receivables aging</h2>{aging_table}"
        f"<h2>Sales by region (net of returns)</h2>{sales_table}"
        f"<h2>Rebates accrued vs settled</h2>{rebate_table}"
        "</body></html>"
    )
