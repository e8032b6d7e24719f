"""Bad input answers a problem (never 500) and changes nothing, on SQLite and PostgreSQL.

PostgreSQL refuses NUL (U+0000) in text, even as a query parameter, so an id,
filter, cursor or body field carrying one used to answer 500 there (and was
stored on SQLite). Control characters are refused before any query runs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from libs.store.schema import api_keys, documents, events
from tests.service_support import ADMIN, RunningService

from .support import issue_key, partner_body, register

PROBLEM = "https://o2c.dev/problems/"


def assert_validation(response: httpx.Response, field: str) -> None:
    """422 naming ``field``; a NUL in the path may be refused before routing (no field then)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    if problem["type"] == PROBLEM + "invalid-characters" and field.startswith("path."):
        return
    assert problem["type"] == PROBLEM + "validation", problem
    assert field in [error["field"] for error in problem["errors"]], problem


async def counts(svc: RunningService) -> tuple[int, int, int]:
    async with svc.ctx.db.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
                      for table in (events, documents, api_keys)])  # type: ignore[return-value]


@pytest.mark.parametrize("bad_id", ["%00", "ptn%00x", "a%1Bb", "x" * 201])
async def test_path_ids_with_control_characters_or_too_long_are_refused(
        svc: RunningService, bad_id: str) -> None:
    partner = await register(svc)
    partner_key = await issue_key(svc, "partner", partner["id"])
    before = await counts(svc)
    reason = {"reason": "audit"}
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/v1/partners/{bad_id}", None),
        ("PATCH", f"/v1/partners/{bad_id}", {"tier": "B"}),
        ("POST", f"/v1/partners/{bad_id}/agreements",
         {"kind": "annual", "starts_on": "2025-01-01", "ends_on": "2025-12-31"}),
        ("POST", f"/v1/partners/{bad_id}/suspend", reason),
        ("POST", f"/v1/partners/{bad_id}/reinstate", None),
        ("POST", f"/v1/partners/{bad_id}/terminate", reason),
        ("GET", f"/v1/keys/{bad_id}", None),
        ("DELETE", f"/v1/keys/{bad_id}", None),
    ]
    for method, path, body in calls:
        response = await svc.client.request(method, path, json=body, headers=ADMIN)
        field = "path.key_id" if "/keys/" in path else "path.partner_id"
        assert_validation(response, field)
    assert_validation(await svc.client.get(f"/v1/partners/{bad_id}", headers=partner_key),
                      "path.partner_id")
    assert await counts(svc) == before


@pytest.mark.parametrize("query", [
    "tier=%00", "region=a%00b", "parent_id=%00", "cursor=AA", "cursor=YQA", "cursor=a",
])
async def test_list_filters_and_cursors_with_nul_are_refused(svc: RunningService, query: str) -> None:
    await register(svc)
    field = "query." + query.split("=")[0]
    assert_validation(await svc.client.get(f"/v1/partners?{query}", headers=ADMIN), field)


@pytest.mark.parametrize("query", ["partner_id=%00", "partner_id=a%00b", "cursor=AA"])
async def test_key_list_filters_with_nul_are_refused(svc: RunningService, query: str) -> None:
    assert_validation(await svc.client.get(f"/v1/keys?{query}", headers=ADMIN),
                      "query." + query.split("=")[0])


async def test_empty_text_filters_still_match_nothing(svc: RunningService) -> None:
    await register(svc)
    response = await svc.client.get("/v1/partners?tier=", headers=ADMIN)
    assert response.status_code == 200 and response.json()["items"] == []


@pytest.mark.parametrize(("changes", "field"), [
    ({"legal_id": "\u0000"}, "legal_id"),
    ({"legal_id": "9131\u0000X"}, "legal_id"),
    ({"parent_id": "ptn\u0000"}, "parent_id"),
    ({"name": "Huadong\u0000"}, "name"),
    ({"tier": "\u001b[31mA"}, "tier"),
    ({"territories": ["east", "we\u0000st"]}, "territories.1"),
    ({"categories": ["\u0000"]}, "categories.0"),
])
async def test_registration_text_with_control_characters_is_refused(
        svc: RunningService, changes: dict[str, Any], field: str) -> None:
    before = await counts(svc)
    response = await svc.client.post("/v1/partners", json=partner_body(**changes), headers=ADMIN)
    assert_validation(response, field)
    assert await counts(svc) == before


async def test_lifecycle_and_change_bodies_with_control_characters_are_refused(
        svc: RunningService) -> None:
    partner = await register(svc)
    before = await counts(svc)
    pid = partner["id"]
    for path, body, field in (
        (f"/v1/partners/{pid}/suspend", {"reason": "late\u0000"}, "reason"),
        (f"/v1/partners/{pid}/terminate", {"reason": "\u0000"}, "reason"),
    ):
        assert_validation(await svc.client.post(path, json=body, headers=ADMIN), field)
    assert_validation(await svc.client.patch(
        f"/v1/partners/{pid}", json={"territories": ["\u0000"]}, headers=ADMIN), "territories.0")
    assert await counts(svc) == before
    assert (await svc.client.get(f"/v1/partners/{pid}", headers=ADMIN)).json() == partner


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "partner", "partner_id": "\u0000"}, "partner_id"),
    ({"role": "partner", "partner_id": "ptn\u0000abc"}, "partner_id"),
    ({"role": "sales", "name": "ops\u0000"}, "name"),
])
async def test_key_bodies_with_nul_are_refused(svc: RunningService, body: dict[str, Any],
                                               field: str) -> None:
    before = await counts(svc)
    assert_validation(await svc.client.post("/v1/keys", json=body, headers=ADMIN), field)
    assert await counts(svc) == before


async def test_tabs_and_line_breaks_stay_allowed_in_reasons(svc: RunningService) -> None:
    partner = await register(svc)
    await svc.client.post(f"/v1/partners/{partner['id']}/agreements", headers=ADMIN, json={
        "kind": "annual", "starts_on": "2025-01-01", "ends_on": "2025-12-31"})
    response = await svc.client.post(f"/v1/partners/{partner['id']}/suspend", headers=ADMIN,
                                     json={"reason": "audit:\n\tlate payments\r\n"})
    assert response.status_code == 200, response.text
