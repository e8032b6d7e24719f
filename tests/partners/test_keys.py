"""API keys over HTTP on SQLite and PostgreSQL: issue, list, revoke, and their effect at once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from libs.runtime.auth import hash_secret
from libs.store.schema import api_keys
from tests.service_support import ADMIN, RunningService

from .support import issue_key, register

PROBLEM = "https://o2c.dev/problems/"


async def test_issue_answers_the_secret_once_and_stores_only_its_hash(svc: RunningService) -> None:
    response = await svc.client.post("/v1/keys", json={"role": "finance", "name": "Ms. Li"},
                                     headers=ADMIN)
    assert response.status_code == 201, response.text
    issued = response.json()
    secret = issued.pop("secret")
    assert len(secret) >= 40
    assert issued == {"key_id": issued["key_id"], "role": "finance", "partner_id": None,
                      "name": "Ms. Li", "issued_at": issued["issued_at"], "revoked": False,
                      "revoked_at": None}
    [event] = await svc.ctx.store.load(f"key-{issued['key_id']}")
    assert event.event_type == "KeyIssued" and secret not in event.data
    assert event.payload()["secret_sha256"] == hash_secret(secret)
    async with svc.ctx.db.read() as conn:
        rows = (await conn.execute(select(api_keys.c.secret_sha256, api_keys.c.revoked).where(
            api_keys.c.key_id == issued["key_id"]))).all()
    assert rows == [(hash_secret(secret), 0)]
    listed = await svc.client.get("/v1/keys", headers=ADMIN)
    assert secret not in listed.text and listed.json()["items"] == [issued]
    assert (await svc.client.get(f"/v1/keys/{issued['key_id']}", headers=ADMIN)).json() == issued


async def test_a_new_key_works_at_once_and_a_revoked_one_stops_at_once(svc: RunningService) -> None:
    response = await svc.client.post("/v1/keys", json={"role": "admin"}, headers=ADMIN)
    key_id, headers = response.json()["key_id"], {
        "Authorization": f"Bearer {response.json()['secret']}"}
    assert (await svc.client.get("/v1/keys", headers=headers)).status_code == 200
    revoked = await svc.client.delete(f"/v1/keys/{key_id}", headers=ADMIN)
    assert revoked.status_code == 204 and revoked.content == b""
    refused = await svc.client.get("/v1/keys", headers=headers)
    assert refused.status_code == 401
    again = await svc.client.delete(f"/v1/keys/{key_id}", headers=ADMIN)
    assert again.status_code == 204
    assert [e.event_type for e in await svc.ctx.store.load(f"key-{key_id}")] == [
        "KeyIssued", "KeyRevoked"]
    shown = (await svc.client.get(f"/v1/keys/{key_id}", headers=ADMIN)).json()
    assert shown["revoked"] is True and shown["revoked_at"]


async def test_partner_keys_are_bound_to_an_existing_partner(svc: RunningService) -> None:
    pid = (await register(svc))["id"]
    bound = await svc.client.post("/v1/keys", json={"role": "partner", "partner_id": pid},
                                  headers=ADMIN)
    assert bound.status_code == 201 and bound.json()["partner_id"] == pid
    headers = {"Authorization": f"Bearer {bound.json()['secret']}"}
    assert (await svc.client.get(f"/v1/partners/{pid}", headers=headers)).status_code == 200
    listed = (await svc.client.get(f"/v1/keys?partner_id={pid}", headers=ADMIN)).json()["items"]
    assert [k["key_id"] for k in listed] == [bound.json()["key_id"]]


@pytest.mark.parametrize(("body", "slug"), [
    ({"role": "partner"}, "partner-id-required"),
    ({"role": "partner", "partner_id": "ptn_missing"}, "unknown-partner"),
    ({"role": "sales", "partner_id": "PID"}, "partner-id-not-allowed"),
    ({"role": "root"}, "validation"),
    ({}, "validation"),
    ({"role": "sales", "secret": "mine"}, "validation"),
])
async def test_issue_validation(svc: RunningService, body: dict[str, Any], slug: str) -> None:
    pid = (await register(svc))["id"]
    if body.get("partner_id") == "PID":
        body = {**body, "partner_id": pid}
    response = await svc.client.post("/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + slug


async def test_only_admins_manage_keys(svc: RunningService) -> None:
    pid = (await register(svc))["id"]
    target = (await svc.client.post("/v1/keys", json={"role": "auditor"},
                                    headers=ADMIN)).json()["key_id"]
    for role in ("sales", "finance", "warehouse", "auditor", "partner"):
        headers = await issue_key(svc, role, pid if role == "partner" else None)
        assert (await svc.client.post("/v1/keys", json={"role": "admin"},
                                      headers=headers)).status_code == 403
        assert (await svc.client.get("/v1/keys", headers=headers)).status_code == 403
        assert (await svc.client.delete(f"/v1/keys/{target}", headers=headers)).status_code == 403
    assert (await svc.client.get("/v1/keys")).status_code == 401


async def test_unknown_keys_are_not_found(svc: RunningService) -> None:
    for call in (svc.client.delete("/v1/keys/key_nope", headers=ADMIN),
                 svc.client.get("/v1/keys/key_nope", headers=ADMIN)):
        response = await call
        assert response.status_code == 404 and response.json()["type"] == PROBLEM + "key-not-found"


async def test_list_filters(svc: RunningService) -> None:
    await issue_key(svc, "sales")
    finance = (await svc.client.post("/v1/keys", json={"role": "finance"}, headers=ADMIN)).json()
    await svc.client.delete(f"/v1/keys/{finance['key_id']}", headers=ADMIN)

    async def roles(query: str) -> list[str]:
        response = await svc.client.get(f"/v1/keys{query}", headers=ADMIN)
        assert response.status_code == 200, response.text
        return sorted(k["role"] for k in response.json()["items"])

    assert await roles("") == ["finance", "sales"]
    assert await roles("?role=sales") == ["sales"]
    assert await roles("?revoked=true") == ["finance"]
    assert await roles("?revoked=false") == ["sales"]
    assert await roles("?role=finance&revoked=true") == ["finance"]
    assert await roles("?role=finance&revoked=false") == []
    assert await roles("?role=auditor") == []
    assert (await svc.client.get("/v1/keys?role=root", headers=ADMIN)).status_code == 422
