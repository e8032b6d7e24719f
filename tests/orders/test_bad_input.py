"""Bad input answers a problem (never 500) and changes nothing, on SQLite and PostgreSQL.

PostgreSQL refuses NUL (U+0000) in text, even as a query parameter, so an order
id, sku, filter, cursor or ``partner_id`` carrying one used to answer 500 there.
Control characters are refused before any query runs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from libs.store.schema import documents, events
from tests.orders.support import Publisher, add_product, order_body, place
from tests.service_support import ADMIN, RunningService

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


async def counts(svc: RunningService) -> tuple[int, int]:
    async with svc.ctx.db.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
                      for table in (events, documents)])  # type: ignore[return-value]


@pytest.fixture
async def partner_key(svc: RunningService, publisher: Publisher) -> dict[str, str]:
    await publisher.partner("p1")
    await add_product(svc, "P-1", 1000)
    return await publisher.key("partner", "p1")


@pytest.mark.parametrize("bad_id", ["%00", "ord%00x", "a%1Bb", "x" * 201])
async def test_path_ids_with_control_characters_or_too_long_are_refused(
        svc: RunningService, partner_key: dict[str, str], bad_id: str) -> None:
    await place(svc, partner_key, ("P-1", 1))
    before = await counts(svc)
    for headers in (ADMIN, partner_key):
        assert_validation(await svc.client.get(f"/v1/orders/{bad_id}", headers=headers),
                          "path.order_id")
        assert_validation(await svc.client.post(f"/v1/orders/{bad_id}/cancel", json={
            "reason": "x"}, headers=headers), "path.order_id")
        assert_validation(await svc.client.get(f"/v1/products/{bad_id}", headers=headers),
                          "path.sku")
    assert await counts(svc) == before


@pytest.mark.parametrize(("path", "query"), [
    ("/v1/orders", "partner_id=%00"), ("/v1/orders", "partner_id=p1%00"),
    ("/v1/orders", "cursor=AA"), ("/v1/orders", "cursor=YQA"),
    ("/v1/products", "category=%00"), ("/v1/products", "cursor=AA"),
    ("/v1/price-lists", "cursor=AA"),
    ("/v1/deals", "partner_id=%00"), ("/v1/deals", "cursor=AA"), ("/v1/deals", "status=expired"),
    ("/v1/price-notices", "tier=%00"), ("/v1/price-notices", "cursor=YQA"),
    ("/v1/price-notices", "acknowledged=maybe"), ("/v1/price-notices", "version=0"),
])
async def test_list_filters_and_cursors_with_nul_are_refused(
        svc: RunningService, partner_key: dict[str, str], path: str, query: str) -> None:
    assert_validation(await svc.client.get(f"{path}?{query}", headers=ADMIN),
                      "query." + query.split("=")[0])


@pytest.mark.parametrize(("changes", "field"), [
    ({"partner_id": "\u0000"}, "partner_id"),
    ({"partner_id": "p1\u0000"}, "partner_id"),
    ({"partner_ref": "PO\u00001"}, "partner_ref"),
    ({"ship_to": {"region": "ea\u0000st"}}, "ship_to.region"),
    ({"ship_to": {"region": "east", "address": "1 Bund\u0000 Rd"}}, "ship_to.address"),
])
async def test_order_text_with_nul_is_refused(svc: RunningService, partner_key: dict[str, str],
                                              changes: dict[str, Any], field: str) -> None:
    before = await counts(svc)
    body = {**order_body(("P-1", 1)), "partner_id": "p1", **changes}
    assert_validation(await svc.client.post("/v1/orders", json=body, headers=ADMIN), field)
    assert await counts(svc) == before


async def test_deal_text_with_nul_is_refused(svc: RunningService, partner_key: dict[str, str]) -> None:
    before = await counts(svc)
    deal = {"end_customer": "Acme", "lines": [{"sku": "P-1", "qty": 1}], "expires_on": "2099-01-01"}
    for changes, field in (({"end_customer": "Ac\u0000me"}, "end_customer"),
                           ({"customer_code": "91310000AAAA0000\u00001"}, "customer_code")):
        assert_validation(await svc.client.post("/v1/deals", json={**deal, **changes},
                                                headers=partner_key), field)
    assert_validation(await svc.client.post("/v1/deals/deal_x/reject", json={"reason": "no\u0000"},
                                            headers=ADMIN), "reason")
    assert_validation(await svc.client.put("/v1/price-lists/gold", json={
        "effective_from": "2099-01-01", "discount_bp": 0, "override_reason": "x\u0000"},
        headers=ADMIN), "override_reason")
    assert await counts(svc) == before


async def test_catalog_and_cancel_text_with_nul_is_refused(
        svc: RunningService, partner_key: dict[str, str]) -> None:
    order = await place(svc, partner_key, ("P-1", 1))
    before = await counts(svc)
    for body, field in (({"name": "Pump\u0000"}, "name"), ({"category": "\u0000"}, "category")):
        product = {"sku": "P-2", "name": "Pump", "category": "pumps", "list_price_minor": 10, **body}
        assert_validation(await svc.client.post("/v1/products", json=product, headers=ADMIN), field)
    assert_validation(await svc.client.post(f"/v1/orders/{order['id']}/cancel", json={
        "reason": "oops\u0000"}, headers=partner_key), "reason")
    assert await counts(svc) == before
    assert (await svc.client.get(f"/v1/orders/{order['id']}", headers=ADMIN)).json()["status"] == "placed"
