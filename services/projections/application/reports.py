"""The reports: scorecards, credit utilisation and DSO, rebates, aging and sales with comparisons.

Each reads the books as they stood at the end of a day (``application.books``)
and answers a flat ``items`` list of rows (money in ``*_minor`` with
``currency``), so any list layer (exports) applies to it. Filters: ``region``
and ``tier`` (the partner's at the end of the day; for sales, the ones the
invoice carries) and ``partner_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.registry import EventRegistry
from libs.events.values import DEFAULT_CURRENCY
from services.projections.application import documents as d
from services.projections.application import views
from services.projections.application.books import Books, books_at
from services.projections.domain import aging as aging_rules
from services.projections.domain import growth, rebate_report, sales, scorecards
from services.projections.domain.partner_view import partner_360
from services.projections.domain.periods import Compare, Period, compared
from services.projections.domain.utilisation import utilisation

Doc = dict[str, Any]


@dataclass(frozen=True)
class Filters:
    region: str | None = None
    tier: str | None = None
    partner_id: str | None = None

    def admits(self, partner_id: str | None, profile: Doc | None) -> bool:
        profile = profile or {}
        return ((self.partner_id is None or partner_id == self.partner_id)
                and (self.region is None or profile.get("region") == self.region)
                and (self.tier is None or profile.get("tier") == self.tier))

    def echo(self) -> dict[str, str | None]:
        return {"region": self.region, "tier": self.tier, "partner_id": self.partner_id}


def _partner_fields(partner_id: str, profile: Doc | None) -> dict[str, Any]:
    profile = profile or {}
    return {"partner_id": partner_id, "name": profile.get("name"), "region": profile.get("region"),
            "tier": profile.get("tier"), "currency": profile.get("currency") or DEFAULT_CURRENCY}


def _period(period: Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def _admitted(books: Books, filters: Filters) -> list[str]:
    return [pid for pid in sorted(books.partners) if filters.admits(pid, books.partners[pid])]


async def scorecards_report(conn: AsyncConnection, registry: EventRegistry, period: Period,
                            compare: Compare | None, filters: Filters) -> dict[str, Any]:
    books = await books_at(conn, registry, period.end, filters.partner_id)
    previous = compared(period, compare) if compare else None
    items, split = [], books.by_partner()
    for partner_id in _admitted(books, filters):
        own = split[partner_id]

        def over(window: Period, own: Books = own) -> dict[str, Any]:
            return scorecards.figures(agreements=own.agreements, invoices=own.invoices,
                                      credit_notes=own.credit_notes, orders=own.orders,
                                      violations=own.violations, period=window)

        row = over(period)
        if previous is not None:
            row = scorecards.with_previous(row, over(previous))
        items.append({**_partner_fields(partner_id, books.partners[partner_id]), **row})
    return {**_period(period), "compare": compare,
            "compare_from": previous.start.isoformat() if previous else None,
            "compare_to": previous.end.isoformat() if previous else None,
            **filters.echo(), "items": items, "next_cursor": None}


async def utilisation_report(conn: AsyncConnection, registry: EventRegistry, period: Period,
                             filters: Filters) -> dict[str, Any]:
    books = await books_at(conn, registry, period.end, filters.partner_id)
    items, split = [], books.by_partner()
    for partner_id in _admitted(books, filters):
        own = split[partner_id]
        row = utilisation(books.terms.get(partner_id), orders=own.orders, invoices=own.invoices,
                          debit_notes=own.debit_notes, period=period)
        items.append({**_partner_fields(partner_id, books.partners[partner_id]), **row})
    return {"as_of": period.end.isoformat(), **_period(period), **filters.echo(),
            "items": items, "next_cursor": None}


async def rebates_report(conn: AsyncConnection, registry: EventRegistry, as_of: date,
                         program_id: str | None, filters: Filters) -> dict[str, Any]:
    books = await books_at(conn, registry, as_of, filters.partner_id)
    admitted = set(_admitted(books, filters))
    items = [
        {**row, "currency": (books.partners.get(row["partner_id"]) or {}).get("currency") or DEFAULT_CURRENCY}
        for row in rebate_report.rows(books.accruals, books.settlements, books.programs)
        if row["partner_id"] in admitted and (program_id is None or row["program_id"] == program_id)]
    return {"as_of": as_of.isoformat(), "program_id": program_id, **filters.echo(), "items": items,
            "programs": rebate_report.program_totals(items), "next_cursor": None}


async def aging_report(conn: AsyncConnection, registry: EventRegistry, as_of: date,
                       bounds: tuple[int, ...], basis: aging_rules.Basis,
                       filters: Filters) -> dict[str, Any]:
    books = await books_at(conn, registry, as_of, filters.partner_id)
    names = aging_rules.bucket_names(bounds, basis)
    receivables = [*books.invoices, *books.debit_notes]
    on_account = aging_rules.on_account(receivables, aging_rules.balances(
        invoices=books.invoices, debit_notes=books.debit_notes, payments=books.payments,
        credit_notes=books.credit_notes), as_of)
    rows = aging_rules.aging(receivables, as_of, bounds, basis, on_account)
    items = [{**row, "name": (books.partners.get(row["partner_id"]) or {}).get("name")}
             for row in rows if filters.admits(row["partner_id"], books.partners.get(row["partner_id"]))]
    totals = {key: sum(row[key] for row in items) for key in (*names, "on_account_minor", "total_minor")}
    return {"as_of": as_of.isoformat(), "basis": basis, "buckets": names, **filters.echo(),
            "items": items, "totals": totals, "next_cursor": None}


def _sales_rows(books: Books, filters: Filters, group_by: sales.GroupBy, window: Period) -> list[Doc]:
    invoices = [i for i in books.invoices if filters.admits(i["partner_id"], i)]
    first_invoice: dict[str, Doc] = {}
    for invoice in books.invoices:
        first_invoice.setdefault(invoice["order_id"], invoice)
    notes = [n for n in books.credit_notes if filters.admits(
        n["partner_id"], first_invoice.get(n.get("order_id") or "") or books.partners.get(n["partner_id"]))]
    return sales.sales(invoices, notes, group_by=group_by, start=window.start, end=window.end,
                       partners=books.partners)


async def sales_report(conn: AsyncConnection, registry: EventRegistry, group_by: sales.GroupBy,
                       period: Period, compare: Compare | None, filters: Filters) -> dict[str, Any]:
    """Sales by group over the period; with ``compare``, against the compared period (growth)."""
    books = await books_at(conn, registry, period.end, filters.partner_id)
    rows = _sales_rows(books, filters, group_by, period)
    previous = compared(period, compare) if compare else None
    if previous is not None:
        rows = growth.against(rows, _sales_rows(books, filters, group_by, previous),
                              by_month=group_by == "month")
    total = sum(row["amount_minor"] for row in rows)
    result = {"group_by": group_by, **_period(period), "compare": compare, **filters.echo(),
              "items": [{**row, "currency": DEFAULT_CURRENCY} for row in rows], "total_minor": total,
              "next_cursor": None}
    if previous is not None:
        before = sum(row["previous_amount_minor"] for row in rows)
        result.update(compare_from=previous.start.isoformat(), compare_to=previous.end.isoformat(),
                      previous_total_minor=before, growth_bp=scorecards.growth_bp(total, before))
    return result


async def partner_view_at(conn: AsyncConnection, registry: EventRegistry, partner_id: str,
                          as_of: date) -> dict[str, Any] | None:
    """The partner 360 as the books stood at the end of ``as_of``."""
    books = await books_at(conn, registry, as_of, partner_id)
    partner = books.partners.get(partner_id)
    if partner is None:
        return None
    return {**partner_360(
        partner, orders=books.orders, invoices=books.invoices, credit_notes=books.credit_notes,
        payments=books.payments, accruals=books.accruals, settlements=books.settlements,
        today=as_of, debit_notes=books.debit_notes), "as_of": as_of.isoformat()}


async def known_partner(conn: AsyncConnection, partner_id: str) -> bool:
    return await d.get(conn, d.PARTNER, partner_id) is not None


async def coop_funds_report(conn: AsyncConnection, filters: Filters) -> dict[str, Any]:
    """Every co-op fund of the admitted partners as it stands now (``views.coop_funds``)."""
    partners = {p["partner_id"]: p for p in await d.all_of(conn, d.PARTNER)}
    items = [{**_partner_fields(row["partner_id"], partners.get(row["partner_id"])), **row}
             for row in await views.coop_funds(conn, None)
             if filters.admits(row["partner_id"], partners.get(row["partner_id"]))]
    totals = {key: sum(row[key] for row in items)
              for key in ("accrued_minor", "paid_minor", "expired_minor", "balance_minor")}
    return {**filters.echo(), "items": items, "totals": totals, "next_cursor": None}
