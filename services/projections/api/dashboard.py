"""``GET /dashboard``: the finance dashboard for a browser (finance, auditor).

A browser cannot easily send ``Authorization``, so the key is also accepted as
``?token=<secret>`` or the ``o2c_token`` cookie. When it comes as a query
parameter the page sets that cookie (HttpOnly, SameSite=Strict, path
``/dashboard``), so reloads work without the token in the address bar.
Query parameters: ``as_of`` (aging day, default today), ``from``/``to`` (sales).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from libs.runtime.auth import Principal
from libs.runtime.errors import Forbidden, Unauthorized
from libs.runtime.params import MaybeDate, QueryDate
from services.projections.api import dashboard_page
from services.projections.api.deps import Ctx
from services.projections.application import views

COOKIE = "o2c_token"
ROLES = ("finance", "auditor")

router = APIRouter(tags=["dashboard"])


def _browser_secret(request: Request, token: str | None) -> str | None:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return secret.strip()
    return token or request.cookies.get(COOKIE)


def _cookie_safe(secret: str) -> bool:
    """Issued secrets are URL-safe ASCII; anything else cannot travel in a Set-Cookie header."""
    return secret.isascii() and secret.isprintable() and not any(c in secret for c in ' ";,\\')


def _principal(request: Request, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized("send Authorization: Bearer <secret>, ?token=<secret> or the o2c_token cookie")
    principal = request.app.state.keyring.authenticate(secret)
    if principal is None:
        raise Unauthorized("the key is unknown or revoked")
    if principal.role not in ROLES:
        raise Forbidden(f"role {principal.role!r} may not do this")
    return principal


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request, ctx: Ctx,
    token: Annotated[str | None, Query(max_length=500)] = None,
    as_of: QueryDate = None,
    start: Annotated[MaybeDate, Query(alias="from")] = None,
    end: Annotated[MaybeDate, Query(alias="to")] = None,
) -> HTMLResponse:
    """Receivables aging, sales by region and rebates accrued vs settled, as HTML tables."""
    secret = _browser_secret(request, token)
    _principal(request, secret)
    day = as_of or ctx.today()
    async with ctx.db.read() as conn:
        aging = await views.aging_view(conn, day)
        sales = await views.sales_view(conn, "region", start, end)
        rebates = await views.rebates_view(conn)
    response = HTMLResponse(dashboard_page.render(aging, sales, rebates))
    if token and secret == token and _cookie_safe(token):  # the query token is what authenticated
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/dashboard")
    return response
