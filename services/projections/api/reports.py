"""The reports over HTTP: scorecards, credit utilisation, rebates, receivables aging, sales.

Every report reads the books at the end of a day: ``as_of`` (a period report's
``to``; give one or both alike), default today. ``compare`` works where the
report has a period (scorecards, sales) and answers 422 elsewhere.
Definitions and formulas: ``docs/reports.md``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from libs.runtime.auth import Authenticated
from libs.runtime.errors import DomainError, NotFound
from libs.runtime.params import EARLIEST_DATE, LATEST_DATE, MaybeDate, QueryDate, QueryText
from services.projections.api.deps import Ctx, FinanceReader, SalesReader
from services.projections.api.schemas import (
    Aging,
    CoopFundsReport,
    CreditUtilisation,
    RebatesReport,
    Sales,
    Scorecards,
)
from services.projections.application import reports
from services.projections.domain import aging as aging_rules
from services.projections.domain.periods import Compare, Period

router = APIRouter(tags=["reports"])

From = Annotated[MaybeDate, Query(alias="from")]
To = Annotated[MaybeDate, Query(alias="to")]
CompareParam = Annotated[Compare | None, Query()]
NoCompare = Annotated[str | None, Query(max_length=50,
                                        description="not applicable to this report: 422 when given")]


def _bad(field: str, message: str) -> DomainError:
    return DomainError(message, slug="validation",
                       errors=[{"field": f"query.{field}", "message": message, "type": "value_error"}])


def _end(end: date | None, as_of: date | None) -> date | None:
    if end and as_of and end != as_of:
        raise _bad("as_of", "as_of is the period's end: it must equal to when both are given")
    return end or as_of


def _period(start: date | None, end: date) -> Period:
    start = start or end.replace(month=1, day=1)
    if start > end:
        raise _bad("from", "from must not be after to")
    return Period(start, end)


def _no_compare(compare: str | None) -> None:
    if compare:
        raise _bad("compare", "compare does not apply to this report")


@router.get("/v1/views/scorecards", response_model=Scorecards,
            response_model_exclude_unset=True)
async def scorecards(
    ctx: Ctx, principal: Authenticated, start: From = None, end: To = None, as_of: QueryDate = None,
    compare: CompareParam = None, partner_id: QueryText = None, region: QueryText = None,
    tier: QueryText = None,
) -> dict[str, Any]:
    """Per partner over ``from``..``to`` (default: 1 January of ``to``'s year to today): target
    attainment, on-time payment, days to pay, returns rate, orders and violations; with
    ``compare=previous_period|previous_year`` also the compared period's figures and sales growth.
    A partner key sees its own row only (another partner's id answers 404)."""
    if principal.is_partner and partner_id not in (None, principal.partner_id):
        raise NotFound(f"no partner {partner_id}")
    period = _period(start, _end(end, as_of) or ctx.today())
    filters = reports.Filters(region, tier, principal.scoped(partner_id))
    async with ctx.db.read() as conn:
        if filters.partner_id and not await reports.known_partner(conn, filters.partner_id):
            raise NotFound(f"no partner {filters.partner_id}")
        return await reports.scorecards_report(conn, ctx.registry, period, compare, filters)


@router.get("/v1/views/credit-utilisation", response_model=CreditUtilisation,
            response_model_exclude_unset=True)
async def credit_utilisation(
    ctx: Ctx, _: FinanceReader, start: From = None, end: To = None, as_of: QueryDate = None,
    compare: NoCompare = None, partner_id: QueryText = None, region: QueryText = None,
    tier: QueryText = None,
) -> dict[str, Any]:
    """Per partner at the end of ``as_of`` (default today): exposure against the credit limit
    (utilisation) and days sales outstanding over ``from``..``as_of`` (default the 90 days
    ending ``as_of``): DSO = open receivables / invoiced in the period x days in the period."""
    _no_compare(compare)
    day = _end(end, as_of) or ctx.today()
    period = _period(start or date.fromordinal(max(day.toordinal() - 89, EARLIEST_DATE.toordinal())), day)
    async with ctx.db.read() as conn:
        return await reports.utilisation_report(
            conn, ctx.registry, period, reports.Filters(region, tier, partner_id))


@router.get("/v1/views/rebates", response_model=RebatesReport,
            response_model_exclude_unset=True)
async def rebates(
    ctx: Ctx, _: FinanceReader, as_of: QueryDate = None, program_id: QueryText = None,
    compare: NoCompare = None, partner_id: QueryText = None, region: QueryText = None,
    tier: QueryText = None,
) -> dict[str, Any]:
    """Rebates accrued against settled per program and partner at the end of ``as_of`` (default
    today), with per-program totals."""
    _no_compare(compare)
    async with ctx.db.read() as conn:
        return await reports.rebates_report(conn, ctx.registry, as_of or ctx.today(), program_id,
                                            reports.Filters(region, tier, partner_id))


@router.get("/v1/views/coop-funds", response_model=CoopFundsReport,
            response_model_exclude_unset=True)
async def coop_funds(
    ctx: Ctx, _: FinanceReader, partner_id: QueryText = None, region: QueryText = None,
    tier: QueryText = None,
) -> dict[str, Any]:
    """Every co-op advertising fund per partner and program as it stands now: accrued, paid out
    on approved claims, expired unused, the balance, and the claims (pending ones apart)."""
    async with ctx.db.read() as conn:
        return await reports.coop_funds_report(conn, reports.Filters(region, tier, partner_id))


@router.get("/v1/views/receivables/aging", response_model=Aging,
            response_model_exclude_unset=True)
async def receivables_aging(
    ctx: Ctx, _: FinanceReader, as_of: QueryDate = None,
    buckets: Annotated[str | None, Query(max_length=100, description="e.g. 30,60,90")] = None,
    basis: Annotated[aging_rules.Basis, Query()] = "due", compare: NoCompare = None,
    partner_id: QueryText = None, region: QueryText = None, tier: QueryText = None,
) -> dict[str, Any]:
    """Open invoice and debit note amounts per partner at the end of ``as_of`` (default today),
    by days past due (``basis=due``: current, 1-30, 31-60, 61-90, 90+) or since issue
    (``basis=invoice``); ``buckets`` sets the bucket limits in days. ``on_account_minor``: the
    money on account; ``total_minor`` = buckets - on account = the balance."""
    _no_compare(compare)
    try:
        bounds = aging_rules.parse_bounds(buckets) if buckets else aging_rules.DEFAULT_BOUNDS
    except ValueError as error:
        raise _bad("buckets", str(error)) from None
    async with ctx.db.read() as conn:
        return await reports.aging_report(conn, ctx.registry, as_of or ctx.today(), bounds, basis,
                                          reports.Filters(region, tier, partner_id))


@router.get("/v1/views/sales", response_model=Sales,
            response_model_exclude_unset=True)
async def sales(
    ctx: Ctx, _: SalesReader,
    group_by: Annotated[Literal["region", "tier", "sku", "month"], Query()],
    start: From = None, end: To = None, as_of: QueryDate = None, compare: CompareParam = None,
    partner_id: QueryText = None, region: QueryText = None, tier: QueryText = None,
) -> dict[str, Any]:
    """Invoiced sales net of returns between ``from`` and ``to`` (inclusive; default all;
    ``as_of`` is ``to``), grouped; with ``compare`` (``from`` and ``to`` required) each group's
    amount in the compared period and the growth (by month: ``previous_year`` only)."""
    end = _end(end, as_of)
    if start and end and start > end:
        raise _bad("from", "from must not be after to")
    if compare and not (start and end):
        raise _bad("compare", "compare needs both from and to")
    if compare == "previous_period" and group_by == "month":
        raise _bad("compare", "by month, compare with the previous year")
    period = Period(start or EARLIEST_DATE, end or LATEST_DATE)
    async with ctx.db.read() as conn:
        result = await reports.sales_report(conn, ctx.registry, group_by, period, compare,
                                            reports.Filters(region, tier, partner_id))
    return {**result, "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None}
