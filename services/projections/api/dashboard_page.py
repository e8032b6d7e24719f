"""The finance dashboard's HTML: self-contained pages (inline CSS, inline SVG charts, no scripts).

Everything is escaped; amounts are exact (``libs.runtime.money``) and carry their
currency. Each figure a test or a reader may look for has a ``data-figure`` name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from libs.runtime import money as amounts

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem 2rem;color:#222}
h1{font-size:1.4rem;margin:0}h2{font-size:1.1rem;margin-top:2rem}
header{display:flex;justify-content:space-between;align-items:center;gap:1rem}
table{border-collapse:collapse;min-width:30rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem}th{background:#f2f2f2;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tfoot td{font-weight:600}
p.meta,p.na{color:#666}form.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;
background:#f7f7f7;padding:.6rem;border:1px solid #ddd}form.filters label{display:flex;
flex-direction:column;font-size:12px}nav.exports a{margin-right:.6rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(28rem,1fr));gap:0 2rem}
svg text{font:11px system-ui,sans-serif}.err{color:#a00}
"""


def money(minor: int, currency: str | None = None) -> str:
    """Minor units as ``1,234.56`` (exact; the currency's decimals, CNY by default)."""
    return amounts.grouped(minor, currency)


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def sign_in(error: str | None = None) -> str:
    note = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return _page("o2c dashboard: sign in", (
        "<h1>o2c finance dashboard</h1><h2>Sign in</h2>"
        "<p class=\"meta\">With a finance or auditor key. The key is sent once, in this form; "
        "the dashboard then keeps a session cookie (8 hours).</p>"
        f"{note}<form method=\"post\" action=\"/dashboard/sign-in\">"
        "<label>Key <input type=\"password\" name=\"key\" id=\"key\" autocomplete=\"off\" required "
        "maxlength=\"500\"></label> <button type=\"submit\">Sign in</button></form>"))


def _cell(value: Any, *, currency: str | None = None, is_money: bool = False, figure: str = "") -> str:
    attr = f' data-figure="{escape(figure)}"' if figure else ""
    if is_money and isinstance(value, int):
        return f'<td class="n"{attr}>{money(value, currency)}</td>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="n"{attr}>{value}</td>'
    return f"<td{attr}>{escape('' if value is None else str(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], footer: Sequence[str] | None = None) -> str:
    """``rows`` and ``footer`` hold ready ``<td>`` cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows) or \
        f'<tr><td colspan="{len(headers)}">nothing yet</td></tr>'
    foot = f"<tfoot><tr>{''.join(footer)}</tr></tfoot>" if footer else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{foot}</table>"


def bars(labels: Sequence[str], values: Sequence[int], currency: str | None, *, name: str) -> str:
    """Horizontal bars, one per label (inline SVG)."""
    if not values:
        return ""
    top = max(max(values), 1)
    height = 22 * len(values) + 6
    parts = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        width = max(0, round(300 * value / top))
        y = 22 * i + 4
        parts.append(f'<text x="0" y="{y + 13}">{escape(label)}</text>'
                     f'<rect x="110" y="{y}" width="{width}" height="16" fill="#3b6ea5"/>'
                     f'<text x="{116 + width}" y="{y + 13}">{money(value, currency)}</text>')
    return (f'<svg role="img" aria-label="{escape(name)}" data-chart="{escape(name)}" width="520" '
            f'height="{height}" viewBox="0 0 520 {height}">{"".join(parts)}</svg>')


def trend(labels: Sequence[str], values: Sequence[int], currency: str | None, *, name: str) -> str:
    """Columns over time with a line through their tops (inline SVG)."""
    if not values:
        return ""
    top = max(max(values), 1)
    step = max(24, min(60, 560 // len(values)))
    width, plot = step * len(values) + 20, 140
    columns, points = [], []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = max(0, round(plot * value / top))
        x = 10 + step * i
        columns.append(f'<rect x="{x}" y="{plot - h + 10}" width="{step - 8}" height="{h}" fill="#9cc0e4">'
                       f'<title>{escape(label)}: {money(value, currency)}</title></rect>'
                       f'<text x="{x}" y="{plot + 26}">{escape(label[-5:])}</text>')
        points.append(f"{x + (step - 8) / 2},{plot - h + 10}")
    line = f'<polyline points="{" ".join(points)}" fill="none" stroke="#3b6ea5" stroke-width="2"/>'
    return (f'<svg role="img" aria-label="{escape(name)}" data-chart="{escape(name)}" width="{width}" '
            f'height="{plot + 34}" viewBox="0 0 {width} {plot + 34}">{"".join(columns)}{line}</svg>')


AGING_COLUMNS = ("current_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor", "d90_plus_minor",
                 "on_account_minor", "total_minor")
AGING_LABELS = ("Current", "1-30", "31-60", "61-90", "90+", "On account", "Total")
AGING_BUCKETS = 5
"""The first five columns are the buckets (the bars); money on account and the total follow."""


def _select(name: str, options: Iterable[str], chosen: str | None, label: str) -> str:
    opts = "".join(f'<option value="{escape(o)}"{" selected" if o == chosen else ""}>{escape(o)}</option>'
                   for o in sorted(set(options)))
    return (f'<label>{escape(label)}<select name="{name}" id="f-{name}"><option value="">all</option>'
            f"{opts}</select></label>")


def _date(name: str, value: str | None, label: str) -> str:
    return (f'<label>{escape(label)}<input type="date" name="{name}" id="f-{name}" '
            f'value="{escape(value or "")}"></label>')


def filters(form: Mapping[str, str | None], partners: Sequence[Mapping[str, Any]]) -> str:
    return ('<form class="filters" method="get" action="/dashboard">'
            + _date("as_of", form.get("as_of"), "Aging as of")
            + _date("from", form.get("from"), "Sales from") + _date("to", form.get("to"), "Sales to")
            + _select("region", (p["region"] for p in partners if p.get("region")), form.get("region"),
                      "Region")
            + _select("tier", (p["tier"] for p in partners if p.get("tier")), form.get("tier"), "Tier")
            + _select("partner", (p["partner_id"] for p in partners), form.get("partner"), "Partner")
            + '<button type="submit">Apply</button></form>')


def export_links(report: str, query: Mapping[str, str | None]) -> str:
    given = [(k, v) for k, v in query.items() if v]
    links = "".join(
        f'<a href="/dashboard/export/{report}.{fmt}?{escape(urlencode(given))}" '
        f'data-export="{report}-{fmt}" download>{fmt.upper()}</a>' for fmt in ("csv", "xlsx"))
    return f'<nav class="exports">Export: {links}</nav>'


def _partner_link(partner_id: str) -> str:
    pid = escape(partner_id)
    return f'<td><a href="/dashboard/partners/{pid}" data-partner="{pid}">{pid}</a></td>'


def aging_section(aging: Mapping[str, Any], currency: str, query: Mapping[str, str | None]) -> str:
    rows = [
        [_partner_link(r["partner_id"]), _cell(r.get("name")),
         *(_cell(r[c], currency=currency, is_money=True, figure=f"aging-{r['partner_id']}-{c}")
           for c in AGING_COLUMNS)]
        for r in aging["items"]]
    totals = {c: sum(r[c] for r in aging["items"]) for c in AGING_COLUMNS}
    footer = ["<td>Total</td>", "<td></td>",
              *(_cell(totals[c], currency=currency, is_money=True, figure=f"aging-total-{c}")
                for c in AGING_COLUMNS)]
    chart = bars(AGING_LABELS[:AGING_BUCKETS], [totals[c] for c in AGING_COLUMNS[:AGING_BUCKETS]],
                 currency, name="aging")
    return (f"<h2>Receivables aging ({escape(currency)}, as of {escape(aging['as_of'])})</h2>"
            f"{export_links('aging', {'as_of': query.get('as_of')})}{chart}"
            + table(["Partner", "Name", *AGING_LABELS], rows, footer))


def sales_section(group_by: str, title: str, sales: Mapping[str, Any], currency: str,
                  query: Mapping[str, str | None], *, chart: str) -> str:
    items = sales["items"]
    labels = [str(r["key"]) for r in items]
    values = [int(r["amount_minor"]) for r in items]
    drawn = (trend(labels, values, currency, name=f"sales-{group_by}") if chart == "trend"
             else bars(labels, values, currency, name=f"sales-{group_by}"))
    rows = [[_cell(r["key"]),
             _cell(r["invoiced_minor"], currency=currency, is_money=True),
             _cell(r["returned_minor"], currency=currency, is_money=True),
             _cell(r["amount_minor"], currency=currency, is_money=True,
                   figure=f"sales-{group_by}-{r['key']}"),
             _cell(r.get("orders"))] for r in items]
    link = export_links(f"sales-{group_by}", {"from": query.get("from"), "to": query.get("to")})
    return (f"<section><h2>{escape(title)} ({escape(currency)}, net of returns)</h2>{link}{drawn}"
            + table(["Key", "Invoiced", "Returned", "Net sales", "Orders"], rows) + "</section>")


def _flat(item: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in item.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def report_section(title: str, report: str, body: Mapping[str, Any] | None, currency: str,
                   query: Mapping[str, str | None]) -> str:
    """A report another part of the API answers; its columns as it gives them (money formatted)."""
    if body is None:
        return (f"<section><h2>{escape(title)}</h2>"
                f'<p class="na" data-figure="{report}-not-available">not available</p></section>')
    items = body.get("items")
    rows_in = items if isinstance(items, list) else [body]
    rows_in = [r for r in rows_in if isinstance(r, Mapping)]
    keys = [k for k, _ in _flat(rows_in[0])] if rows_in else []
    rows = []
    for r in rows_in:
        flat = dict(_flat(r))
        cur = flat.get("currency") if isinstance(flat.get("currency"), str) else currency
        rows.append([_cell(flat.get(k), currency=cur, is_money=k.endswith("_minor"),
                           figure=f"{report}-{flat.get('partner_id', flat.get('program_id', ''))}-{k}")
                     for k in keys])
    headers = [k.removesuffix("_minor") for k in keys]
    return (f"<section><h2>{escape(title)} ({escape(currency)})</h2>"
            f"{export_links(report, query)}{table(headers, rows)}</section>")


def dashboard(*, who: str, form: Mapping[str, str | None], partners: Sequence[Mapping[str, Any]],
              currency: str, sections: Sequence[str]) -> str:
    return _page("o2c finance dashboard", (
        "<header><h1>o2c finance dashboard</h1>"
        f'<form method="post" action="/dashboard/sign-out"><span class="meta">{escape(who)}</span> '
        '<button type="submit" id="sign-out">Sign out</button></form></header>'
        f'<p class="meta">Amounts in {escape(currency)} (major units) unless a row says otherwise.</p>'
        + filters(form, partners) + "".join(sections)))


def partner_page(view: Mapping[str, Any], invoices: Sequence[Mapping[str, Any]],
                 notes: Sequence[Mapping[str, Any]]) -> str:
    currency = view.get("currency") or amounts.DEFAULT_CURRENCY
    figures = ("sales_minor", "invoiced_minor", "exposure_minor", "balance_minor", "overdue_minor",
               "received_minor", "credit_notes_minor")
    summary = table(["Figure", f"Amount ({currency})"],
                    [[_cell(f.removesuffix("_minor").replace("_", " ")),
                      _cell(view[f], currency=currency, is_money=True, figure=f"partner-{f}")]
                     for f in figures if f in view])
    invoice_rows = [[_cell(i["invoice_id"]), _cell(i.get("order_id")), _cell(i.get("issued_on")),
                     _cell(i.get("due_on")), _cell(i["total_minor"], currency=i.get("currency") or currency,
                                                   is_money=True, figure=f"invoice-{i['invoice_id']}-total"),
                     _cell(i["open_minor"], currency=i.get("currency") or currency, is_money=True),
                     _cell(i["status"], figure=f"invoice-{i['invoice_id']}-status")] for i in invoices]
    statement_rows = [[_cell(line["date"]), _cell(line["kind"]), _cell(line["ref"]),
                       _cell(line["debit_minor"], currency=currency, is_money=True),
                       _cell(line["credit_minor"], currency=currency, is_money=True),
                       _cell(line["balance_minor"], currency=currency, is_money=True,
                             figure=f"statement-{line['ref']}-balance")] for line in notes]
    pid = str(view["partner_id"])
    return _page(f"o2c partner {pid}", (
        f'<p><a href="/dashboard">&larr; dashboard</a></p><h1>Partner {escape(pid)}: '
        f'{escape(str(view.get("name") or ""))}</h1>'
        f'<p class="meta">{escape(str(view.get("tier") or ""))} tier, region '
        f'{escape(str(view.get("region") or ""))}, status {escape(str(view.get("status") or ""))}; '
        f"amounts in {escape(currency)}.</p>{summary}"
        "<h2>Invoices</h2>"
        + table(["Invoice", "Order", "Issued", "Due", "Total", "Open", "Status"], invoice_rows)
        +
        "<h2>Statement (invoices, debit notes, receipts and credit notes as projections has them)</h2>"
        + table(["Date", "Kind", "Ref", "Debit", "Credit", "Balance"], statement_rows)))
