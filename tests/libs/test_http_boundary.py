"""The HTTP boundary answers bad characters with a problem, never a 500 (both databases)."""

from __future__ import annotations

import pytest

from libs.store.database import Database
from services.credit.app import SPEC as CREDIT
from services.orders.app import SPEC as ORDERS
from tests.service_support import ADMIN, running


@pytest.mark.parametrize("path", [
    "/v1/orders/ord_%00",
    "/v1/orders?partner_id=%00",
    "/v1/orders?cursor=AA",           # decodes to a NUL
    "/v1/orders?cursor=%25%25%25",    # not base64 at all
])
async def test_nul_in_path_query_or_cursor_is_a_422_problem(db: Database, path: str) -> None:
    async with running(ORDERS, db) as orders:
        response = await orders.client.get(path, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_nul_inside_a_json_body_is_a_422_problem(db: Database) -> None:
    async with running(CREDIT, db) as credit:
        await credit.ctx.keyring.refresh()
        from libs.events.partners import KeyIssued
        from libs.runtime.auth import hash_secret, store_key

        async with db.transaction() as conn:
            await store_key(conn, KeyIssued(key_id="k-fin", role="finance", partner_id=None,
                                            name=None, secret_sha256=hash_secret("fin")),
                            "2026-01-01T00:00:00.000000Z")
        await credit.ctx.keyring.refresh()
        response = await credit.client.post("/v1/payments", headers={"Authorization": "Bearer fin"},
                                            json={"partner_id": "ptn_\u0000", "amount_minor": 5,
                                                  "bank_ref": "B\u0000", "received_on": "2026-01-01"})
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", [
    "/v1/invoices?partner_id=a%00b",  # a NUL in a filter: the same 422 on SQLite and PostgreSQL
    "/v1/invoices?cursor=AA",
    "/v1/invoices/" + "x" * 5000,     # an id far longer than any we give out
])
async def test_credit_checks_ids_filters_and_cursors_like_every_service(db: Database,
                                                                        path: str) -> None:
    async with running(CREDIT, db) as credit:
        from libs.events.partners import KeyIssued
        from libs.runtime.auth import hash_secret, store_key

        async with db.transaction() as conn:
            await store_key(conn, KeyIssued(key_id="k-fin", role="finance", partner_id=None,
                                            name=None, secret_sha256=hash_secret("fin")),
                            "2026-01-01T00:00:00.000000Z")
        await credit.ctx.keyring.refresh()
        response = await credit.client.get(path, headers={"Authorization": "Bearer fin"})
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/validation")
