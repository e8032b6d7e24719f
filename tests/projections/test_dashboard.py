"""The finance dashboard over HTTP: sign-in with a key, a session cookie, figures from the API."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import date

import httpx

from libs.events import partners
from libs.store.database import Database
from services.projections.api import dashboard_page as page
from services.projections.api.dashboard_page import money
from services.projections.api.sessions import COOKIE, SESSION_SECONDS
from tests.projections.support import Feed, credit_note, invoice, projections, registered


def test_money_is_formatted_exactly() -> None:
    assert [money(v) for v in (0, 5, 123456, -100050)] == ["0.00", "0.05", "1,234.56", "-1,000.50"]
    assert money(123456, "JPY") == "123,456"


def test_a_report_section_shows_what_its_route_answers_or_not_available() -> None:
    body = {"items": [{"partner_id": "p1", "on_time_bp": 9000, "overdue_minor": 123456, "currency": "JPY",
                       "target": {"attained_minor": 500}, "lines": [1, 2]}], "next_cursor": None}
    html = page.report_section("Scorecards", "scorecards", body, "CNY", {"partner_id": "p<1>"})
    for expected in ('data-figure="scorecards-p1-overdue_minor">123,456<', "<th>overdue</th>",
                     'data-figure="scorecards-p1-target.attained_minor">500<', "<th>on_time_bp</th>",
                     'href="/dashboard/export/scorecards.csv?partner_id=p%3C1%3E"'):
        assert expected in html, expected
    assert "lines" not in html
    missing = page.report_section("Scorecards", "scorecards", None, "CNY", {})
    assert "not available" in missing and "export" not in missing


async def _secret(feed: Feed, role: str, partner_id: str | None = None) -> tuple[str, str]:
    secret, key_id = f"secret-{uuid.uuid4().hex}", uuid.uuid4().hex[:12]
    from libs.runtime.auth import hash_secret

    await feed.emit(f"key-{key_id}", [partners.KeyIssued(
        key_id=key_id, role=role, partner_id=partner_id, secret_sha256=hash_secret(secret))])  # type: ignore[arg-type]
    await feed.svc.ctx.keyring.refresh()
    return secret, key_id


async def _sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.post("/dashboard/sign-in", data={"key": secret})


def _cookie(answer: httpx.Response) -> dict[str, str]:
    """The session as the browser would send it back (httpx keeps ``Secure`` cookies off http)."""
    value = answer.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    return {"Cookie": f"{COOKIE}={value}"}


async def test_signing_in_gives_a_session_cookie_and_the_page_shows_the_api_figures(db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1", region="north<east>")])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 1),
                                               due_on=date(2025, 1, 31),
                                               lines=[("A", 1, 123456)], region="north<east>")])
        await feed.emit("credit-note-c1", [credit_note("c1", "p1", 4321, kind="rebate",  # on account
                                                       issued_on=date(2025, 2, 1))])
        secret, _ = await _secret(feed, "finance")
        client = feed.svc.client
        assert (await client.get("/dashboard")).headers["location"] == "/dashboard/sign-in"
        form = await client.get("/dashboard/sign-in")
        assert form.status_code == 200 and 'type="password"' in form.text
        signed = await _sign_in(client, secret)
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
        cookie = signed.headers["set-cookie"]
        for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/dashboard",
                          f"Max-Age={SESSION_SECONDS}"):
            assert attribute.lower() in cookie.lower(), cookie
        assert secret not in cookie
        session = _cookie(signed)
        answer = await client.get("/dashboard?as_of=2025-03-01", headers=session)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        page = answer.text
        aging = (await client.get("/v1/views/receivables/aging?as_of=2025-03-01",
                                  headers={"Authorization": f"Bearer {secret}"})).json()
        total, on_account = aging["totals"]["total_minor"], aging["totals"]["on_account_minor"]
        assert (total, on_account) == (123456 - 4321, 4321)  # the total is the balance
        assert f'data-figure="aging-total-total_minor">{money(total)}<' in page
        assert f'data-figure="aging-total-on_account_minor">{money(on_account)}<' in page
        for expected in ("Receivables aging (CNY", "Sales by region", "Sales by tier", "Sales by product",
                         "Sales trend by month", 'data-chart="sales-month"', "north&lt;east&gt;",
                         'href="/dashboard/partners/p1"', "/dashboard/export/aging.csv?as_of=2025-03-01",
                         'data-figure="scorecards-p1-tier">gold<'):
            assert expected in page, expected
        assert "not-available" not in page  # every report section answered
        assert "<script" not in page and "http://" not in page and "https://" not in page
        assert "token" not in page and secret not in page

        drill = await client.get("/dashboard/partners/p1", headers=session)
        assert drill.status_code == 200 and 'data-figure="invoice-i1-total">1,234.56<' in drill.text
        assert 'data-figure="statement-i1-balance">1,234.56<' in drill.text

        export = await client.get("/dashboard/export/aging.csv?as_of=2025-03-01", headers=session)
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert [(r["partner_id"], r["total"], r["currency"]) for r in rows] == [("p1", "1191.35", "CNY")]
        assert (await client.get("/dashboard/export/nothing.csv", headers=session)).status_code == 404

        out = await client.post("/dashboard/sign-out", headers=session)
        assert out.status_code == 303 and 'o2c_session=""' in out.headers["set-cookie"]


async def test_only_finance_and_auditor_keys_sign_in_and_no_secret_in_a_url_works(db: Database) -> None:
    async with projections(db) as feed:
        client = feed.svc.client
        auditor, _ = await _secret(feed, "auditor")
        assert (await _sign_in(client, auditor)).status_code == 303
        for role, partner in (("sales", None), ("partner", "p1"), ("admin", None)):
            refused = await _sign_in(client, (await _secret(feed, role, partner))[0])
            assert refused.status_code == 303 and "set-cookie" not in refused.headers
            assert refused.headers["location"] == "/dashboard/sign-in?error=role"
        assert "Only finance and auditor" in (await client.get("/dashboard/sign-in?error=role")).text
        for wrong in ((await _sign_in(client, "wrong")),
                      (await client.post("/dashboard/sign-in", content=b""))):
            assert wrong.status_code == 303 and "set-cookie" not in wrong.headers
            assert wrong.headers["location"] == "/dashboard/sign-in?error=unknown"
        assert "unknown or revoked" in (await client.get("/dashboard/sign-in?error=unknown")).text
        assert (await client.get("/dashboard/sign-in?error=x")).status_code == 422
        assert (await client.get(f"/dashboard?token={auditor}")).status_code == 303
        for refused in ({"Authorization": f"Bearer {auditor}"}, {"Cookie": f"{COOKIE}=forged.1.2.3"}):
            assert (await client.get("/dashboard", headers=refused)).status_code == 303


async def test_a_session_ends_when_it_expires_or_its_key_is_revoked(db: Database) -> None:
    async with projections(db) as feed:
        client = feed.svc.client
        secret, key_id = await _secret(feed, "finance")
        session = _cookie(await _sign_in(client, secret))
        assert (await client.get("/dashboard", headers=session)).status_code == 200
        sessions = feed.svc.client._transport.app.state.dashboard_sessions  # type: ignore[attr-defined]
        token = session["Cookie"].split("=", 1)[1]
        keyring = feed.svc.ctx.keyring
        assert sessions.principal(token, keyring) is not None
        assert sessions.principal(token, keyring, now=time.time() + SESSION_SECONDS + 1) is None
        await feed.emit(f"key-{key_id}", [partners.KeyRevoked(key_id=key_id, )])
        await keyring.refresh()
        answer = await client.get("/dashboard", headers=session)
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/sign-in"


async def test_dashboard_answers_are_never_cached_nor_sent_as_referer(db: Database) -> None:
    async with projections(db) as feed:
        secret, _ = await _secret(feed, "finance")
        client = feed.svc.client
        signed = await _sign_in(client, secret)
        session = _cookie(signed)
        answers = [await client.get("/dashboard"), await client.get("/dashboard/sign-in"), signed,
                   await _sign_in(client, "wrong"),
                   await client.get("/dashboard", headers=session),
                   await client.get("/dashboard?as_of=0", headers=session),
                   await client.get("/dashboard/partners/nobody", headers=session),
                   await client.get("/dashboard/export/aging.xlsx", headers=session),
                   await client.post("/dashboard/sign-out", headers=session)]
        assert [a.status_code for a in answers] == [303, 200, 303, 303, 200, 422, 404, 200, 303]
        for answer in answers:
            assert answer.headers["cache-control"] == "no-store", answer.request.url
            assert answer.headers["referrer-policy"] == "no-referrer", answer.request.url
