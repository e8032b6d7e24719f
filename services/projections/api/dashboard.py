"""``GET /dashboard``: the finance dashboard for a browser (finance, auditor).

Sign-in: the key is posted once in a form (``POST /dashboard/sign-in``) and
exchanged for a session cookie (``services.projections.api.sessions``): HttpOnly,
Secure, SameSite=Strict, path ``/dashboard``; no secret is ever part of a URL.
``POST /dashboard/sign-out`` ends it. Every answer is ``Cache-Control: no-store``
(the ``Boundary``). ``Secure`` cookies need HTTPS, except on ``localhost``, which
browsers count as a secure context: behind the gateway, terminate TLS there.

The figures come from the public report routes, called in-process as the
signed-in key (``libs.runtime.inprocess``), so the page shows exactly what the
API answers that key. A report route that does not exist (404) shows as "not
available". Filters: ``as_of`` (aging), ``from``/``to`` (sales), ``region``,
``tier`` and ``partner`` (rows of the partner-level reports, and the region and
tier rows of sales). Export links stream the same routes as CSV or XLSX.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from libs.events.values import DEFAULT_CURRENCY
from libs.runtime import inprocess
from libs.runtime.auth import Principal
from libs.runtime.errors import DomainError, NotFound
from libs.runtime.exports import CSV, XLSX
from libs.runtime.params import MaybeDate, PathId, QueryDate, QueryText
from services.projections.api import dashboard_page as page
from services.projections.api.deps import Ctx
from services.projections.api.sessions import COOKIE, SESSION_SECONDS, Sessions
from services.projections.application import documents as d
from services.projections.domain import receivables

ROLES = ("finance", "auditor")
MAX_FORM_BYTES = 2048

router = APIRouter(tags=["dashboard"])
TO_PAGE: dict[int | str, dict[str, Any]] = {
    303: {"description": "See Other: the browser goes to the page named by Location."}}
"""The sign-in and sign-out answers: a redirect (post, redirect, get), no body."""

REPORTS: dict[str, tuple[str, dict[str, str]]] = {
    "aging": ("/v1/views/receivables/aging", {}),
    "sales-region": ("/v1/views/sales", {"group_by": "region"}),
    "sales-tier": ("/v1/views/sales", {"group_by": "tier"}),
    "sales-sku": ("/v1/views/sales", {"group_by": "sku"}),
    "sales-month": ("/v1/views/sales", {"group_by": "month"}),
    "rebates": ("/v1/views/rebates", {}),
    "credit-utilisation": ("/v1/views/credit-utilisation", {}),
    "scorecards": ("/v1/views/scorecards", {}),
    "coop-funds": ("/v1/views/coop-funds", {}),
}
"""What the dashboard shows and exports: a name, its public route and fixed query."""
SALES_SECTIONS = (("region", "Sales by region", "bars"), ("tier", "Sales by tier", "bars"),
                  ("sku", "Sales by product", "bars"), ("month", "Sales trend by month", "trend"))
PASSED_ON = ("as_of", "from", "to", "partner_id", "program_id")
"""Query parameters an export link hands on to its report route."""


def sessions(request: Request, ctx: Ctx) -> Sessions:
    state = request.app.state
    if not hasattr(state, "dashboard_sessions"):
        audit = ctx.settings.audit_keys
        state.dashboard_sessions = Sessions.derived_from(audit.get_secret_value() if audit else None)
    found: Sessions = state.dashboard_sessions
    return found


def signed_in(request: Request, found: Annotated[Sessions, Depends(sessions)]) -> Principal | None:
    """The key of a valid session, or None (the route then sends the browser to sign in)."""
    principal = found.principal(request.cookies.get(COOKIE), request.app.state.keyring)
    return principal if principal is not None and principal.role in ROLES else None


Viewer = Annotated[Principal | None, Depends(signed_in)]


def to_sign_in() -> Response:
    """No valid session: to the sign-in form, forgetting any stale cookie."""
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard", secure=True, httponly=True, samesite="strict")
    return response


SIGN_IN_ERRORS = {"unknown": "The key is unknown or revoked.",
                  "role": "Only finance and auditor keys may use the finance dashboard."}


@router.get("/dashboard/sign-in", response_class=HTMLResponse)
async def dashboard_sign_in_form(
    error: Annotated[Literal["unknown", "role"] | None, Query()] = None,
) -> HTMLResponse:
    """The sign-in form: a finance or auditor key, posted once (``error``: why the last try failed)."""
    return HTMLResponse(page.sign_in(SIGN_IN_ERRORS[error] if error else None))


@router.post("/dashboard/sign-in", status_code=303, response_class=RedirectResponse,
             responses=TO_PAGE)
async def dashboard_sign_in(request: Request, found: Annotated[Sessions, Depends(sessions)]) -> Response:
    """Exchange a key (form field ``key``) for a session cookie and go to the dashboard; an
    unknown, revoked or other role's key goes back to the form, saying why (post, redirect, get)."""
    body = await request.body()
    key = dict(parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))).get("key", "").strip()
    principal = request.app.state.keyring.authenticate(key) if key else None
    if principal is None or principal.role not in ROLES:
        error = "unknown" if principal is None else "role"
        return RedirectResponse(f"/dashboard/sign-in?error={error}", status_code=303)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(COOKIE, found.issue(principal), max_age=SESSION_SECONDS, path="/dashboard",
                        secure=True, httponly=True, samesite="strict")
    return response


@router.post("/dashboard/sign-out", status_code=303, response_class=RedirectResponse,
             responses=TO_PAGE)
async def dashboard_sign_out() -> Response:
    """End the session: the cookie is cleared and the browser sent to the sign-in form."""
    return to_sign_in()


async def _report(request: Request, who: Principal, name: str,
                  query: dict[str, str | None]) -> dict[str, Any] | None:
    """A report as its route answers ``who``; None when the route does not exist (404)."""
    path, fixed = REPORTS[name]
    params = [(k, v) for k, v in {**fixed, **query}.items() if v]
    answer = await inprocess.get(request.app, inprocess.child_scope(
        request.scope, path=path, query=params, **{inprocess.CALLER: who}))
    if answer.status == 404:
        return None
    if answer.status != 200:
        problem = answer.json() if answer.body.startswith(b"{") else {}
        error = DomainError(str(problem.get("detail", f"{path} answered {answer.status}")),
                            slug=str(problem.get("type", "")).rsplit("/", 1)[-1] or None,
                            **({"errors": problem["errors"]} if "errors" in problem else {}))
        error.status = answer.status
        raise error
    body: dict[str, Any] = answer.json()
    return body


def _keep(row: dict[str, Any], partners: dict[str, dict[str, Any]], region: str | None,
          tier: str | None, partner: str | None) -> bool:
    pid = row.get("partner_id")
    if pid is None:
        return True
    if partner and pid != partner:
        return False
    info = partners.get(pid, {})
    return (not region or info.get("region") == region) and (not tier or info.get("tier") == tier)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request, ctx: Ctx, who: Viewer,
    as_of: QueryDate = None,
    start: Annotated[MaybeDate, Query(alias="from")] = None,
    end: Annotated[MaybeDate, Query(alias="to")] = None,
    region: QueryText = None, tier: QueryText = None, partner: QueryText = None,
) -> Response:
    """Aging, sales by region, tier, product and month, rebates, credit utilisation, scorecards,
    co-op funds."""
    if who is None:
        return to_sign_in()
    day = as_of or ctx.today()
    dates = {"from": _iso(start), "to": _iso(end)}
    async with ctx.db.read() as conn:
        partners = {p["partner_id"]: p for p in await d.all_of(conn, d.PARTNER)}

    def kept(body: dict[str, Any] | None) -> dict[str, Any] | None:
        if body is not None and isinstance(body.get("items"), list):
            body = {**body, "items": [r for r in body["items"] if not isinstance(r, dict)
                                      or _keep(r, partners, region, tier, partner)]}
        return body

    aging = kept(await _report(request, who, "aging", {"as_of": day.isoformat()}))
    assert aging is not None  # a route of this service
    sections = [page.aging_section(aging, DEFAULT_CURRENCY, {"as_of": day.isoformat()})]
    sales_parts = []
    for group_by, title, chart in SALES_SECTIONS:
        sales = await _report(request, who, f"sales-{group_by}", dates)
        assert sales is not None
        chosen = {"region": region, "tier": tier}.get(group_by)
        if chosen:
            sales = {**sales, "items": [r for r in sales["items"] if r["key"] == chosen]}
        sales_parts.append(page.sales_section(group_by, title, sales, DEFAULT_CURRENCY, dates, chart=chart))
    sections.append('<div class="grid">' + "".join(sales_parts) + "</div>")
    rebates = await _report(request, who, "rebates", {})
    sections.append(page.report_section("Rebates accrued vs settled", "rebates", kept(rebates),
                                        DEFAULT_CURRENCY, {}))
    sections.append(page.report_section("Credit utilisation", "credit-utilisation",
                                        kept(await _report(request, who, "credit-utilisation", {})),
                                        DEFAULT_CURRENCY, {}))
    score_query = {**dates, "partner_id": partner}
    sections.append(page.report_section("Scorecards", "scorecards",
                                        kept(await _report(request, who, "scorecards", score_query)),
                                        DEFAULT_CURRENCY, score_query))
    sections.append(page.report_section("Co-op advertising funds", "coop-funds",
                                        kept(await _report(request, who, "coop-funds", {})),
                                        DEFAULT_CURRENCY, {}))
    form = {"as_of": day.isoformat(), **dates, "region": region, "tier": tier, "partner": partner}
    return HTMLResponse(page.dashboard(who=f"{who.role} key {who.key_id}", form=form,
                                       partners=list(partners.values()), currency=DEFAULT_CURRENCY,
                                       sections=sections))


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


@router.get("/dashboard/partners/{partner_id}", response_class=HTMLResponse)
async def dashboard_partner(request: Request, ctx: Ctx, who: Viewer, partner_id: PathId) -> Response:
    """Drill-down: a partner's 360 figures, its invoices and its statement lines."""
    if who is None:
        return to_sign_in()
    answer = await inprocess.get(request.app, inprocess.child_scope(
        request.scope, path=f"/v1/views/partners/{partner_id}", query=[], **{inprocess.CALLER: who}))
    if answer.status != 200:
        raise NotFound(f"no partner {partner_id}")
    view = answer.json()
    async with ctx.db.read() as conn:
        invoices = await d.all_of(conn, d.INVOICE, partner_id=partner_id)
        debit_notes = await d.all_of(conn, d.DEBIT_NOTE, partner_id=partner_id)
        payments = await d.all_of(conn, d.PAYMENT, partner_id=partner_id)
        credit_notes = await d.all_of(conn, d.CREDIT_NOTE, partner_id=partner_id)
    shown = sorted(({**i, "open_minor": receivables.open_minor(i), "status": receivables.status_of(i)}
                    for i in invoices if i.get("total_minor") is not None),
                   key=lambda i: (i.get("issued_on") or "", i["invoice_id"]))
    return HTMLResponse(page.partner_page(view, shown, receivables.statement_lines(
        invoices, debit_notes, payments, credit_notes)))


@router.get("/dashboard/export/{file_name}", response_class=StreamingResponse, responses={200: {
    "description": "The report's rows as CSV or XLSX (a download, by Content-Disposition).",
    "content": {CSV: {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
async def dashboard_export(request: Request, who: Viewer, file_name: PathId) -> Response:
    """A report of the dashboard as ``<report>.csv`` or ``<report>.xlsx``, streamed from its route
    as the signed-in key (the report's own ``?format=`` export)."""
    if who is None:
        return to_sign_in()
    report, _, export_format = file_name.rpartition(".")
    if report not in REPORTS or export_format not in ("csv", "xlsx"):
        raise NotFound(f"no export {file_name}")
    path, fixed = REPORTS[report]
    given = [(k, v) for k, v in request.query_params.multi_items() if k in PASSED_ON and v]
    status, headers, body = await inprocess.stream(request.app, inprocess.child_scope(
        request.scope, path=path, query=[*fixed.items(), *given, ("format", export_format)],
        **{inprocess.CALLER: who}))
    kept = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers
            if k.lower() in (b"content-type", b"content-disposition")}
    return StreamingResponse(body, status_code=status, headers=kept)
