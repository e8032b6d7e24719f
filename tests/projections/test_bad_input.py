"""Bad input answers a problem (never 500), on SQLite and PostgreSQL.

- ``/v1/audit/events?cursor=³6``: ``str.isdigit()`` admits superscript digits,
  which ``int()`` refuses (500 on both databases).
- a dashboard key or session cookie that is not ASCII, not Latin-1 or too long:
  (once, a garbage ``?token=`` was set as a cookie that could not be encoded into
  the response headers, 500 on both) is sent back to the sign-in form.
- NUL (U+0000) in an order or partner id or in ``stream_id``: PostgreSQL refuses
  it even as a query parameter (500 there).
"""

from __future__ import annotations

import httpx
import pytest

from libs.store.database import Database
from tests.projections.support import projections, registered
from tests.service_support import ADMIN

PROBLEM = "https://o2c.dev/problems/"


def assert_problem(response: httpx.Response, slug: str) -> dict:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM + slug, response.json()
    return response.json()


@pytest.mark.parametrize("cursor", ["\u00b36", "\u00b2", "\u0661\u0662", "\uff11", "1_000", " 1", "+1"])
async def test_audit_cursor_takes_ascii_digits_only(db: Database, cursor: str) -> None:
    async with projections(db) as feed:
        answer = await feed.svc.client.get("/v1/audit/events", params={"cursor": cursor},
                                           headers=ADMIN)
        assert_problem(answer, "bad-cursor")


@pytest.mark.parametrize("garbage", ["%ED%A0%80", "%FF", "\u0661\u0662", "\u540d\u524d", "a b", "a;b",
                                     "a.1.b.\u00e9", "=.=.=.=", "x" * 3000])
async def test_dashboard_refuses_a_garbage_key_or_session_without_500(db: Database, garbage: str) -> None:
    async with projections(db) as feed:
        client = feed.svc.client
        answer = await client.post("/dashboard/sign-in", content=f"key={garbage}".encode(),
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 303 and "set-cookie" not in answer.headers
        assert answer.headers["location"] == "/dashboard/sign-in?error=unknown"
        refused = await client.get("/dashboard", headers={"Cookie": f"o2c_session={garbage}".encode()})
        assert refused.status_code == 303 and refused.headers["location"] == "/dashboard/sign-in"


@pytest.mark.parametrize("bad", ["%00", "p1%00", "a%1Bb", "x" * 201])
async def test_ids_and_stream_filter_with_control_characters_are_refused(db: Database, bad: str) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        partner = await feed.key("partner", "p1")
        for headers in (ADMIN, partner):
            for path, field in ((f"/v1/views/orders/{bad}/timeline", "path.order_id"),
                                (f"/v1/views/partners/{bad}", "path.partner_id")):
                answer = await feed.svc.client.get(path, headers=headers)
                if "%00" in bad and answer.json().get("type") == PROBLEM + "invalid-characters":
                    continue  # refused before routing
                problem = assert_problem(answer, "validation")
                assert field in [e["field"] for e in problem["errors"]]
        problem = assert_problem(await feed.svc.client.get(
            f"/v1/audit/events?stream_id={bad}", headers=ADMIN), "validation")
        assert "query.stream_id" in [e["field"] for e in problem["errors"]]


@pytest.mark.parametrize("day", ["2026-W01-1", "\u0662\u0660\u0662\u0666-01-01", "2026-02-30", "20260101"])
async def test_view_days_are_calendar_dates(db: Database, day: str) -> None:
    async with projections(db) as feed:
        finance = await feed.key("finance")
        for path in (f"/v1/views/receivables/aging?as_of={day}",
                     f"/v1/views/sales?group_by=region&from={day}"):
            assert_problem(await feed.svc.client.get(path, headers=finance), "validation")
