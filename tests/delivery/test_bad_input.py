"""Bad input answers a problem (never 500) and changes nothing, on SQLite and PostgreSQL.

- PostgreSQL refuses NUL (U+0000) in text, even as a query parameter, so an id,
  sku, filter, cursor or ``order_id`` carrying one used to answer 500 there.
- ``delivered_at`` at the edge of the calendar (``9999-12-31T23:59:59-23:59``,
  ``0001-01-01T00:00:00+01:00``) overflowed when converted to UTC: 500 on both.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from libs.store.schema import documents, events
from tests.delivery.support import (
    DISPATCH,
    WAREHOUSE,
    FakePublisher,
    book,
    dispatch,
    problem,
    shipped_order,
)
from tests.service_support import ADMIN, RunningService


def assert_validation(response: httpx.Response, field: str) -> None:
    """422 naming ``field``; a NUL in the path may be refused before routing (no field then)."""
    if field.startswith("path.") and response.status_code == 422 and response.json()["type"].endswith(
            "/invalid-characters"):
        problem(response, 422, "invalid-characters")
        return
    assert field in [error["field"] for error in problem(response, 422, "validation")["errors"]]


async def counts(svc: RunningService) -> tuple[int, int]:
    async with svc.ctx.db.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
                      for table in (events, documents)])  # type: ignore[return-value]


@pytest.fixture
async def shipment(svc: RunningService, orders: FakePublisher) -> dict[str, Any]:
    """Order o1 of ptn_a (3 A), fully dispatched; one return of 1 A requested."""
    shipment = await shipped_order(svc, orders, "o1", {"A": 3})
    assert (await dispatch(svc, shipment["id"], {"A": 3})).status_code == 200
    returned = await svc.client.post("/v1/returns", headers=ADMIN, json={
        "order_id": "o1", "lines": [{"sku": "A", "qty": 1}], "reason": "dented", "kind": "refund"})
    assert returned.status_code == 201, returned.text
    return {**shipment, "return_id": returned.json()["id"]}


@pytest.mark.parametrize("bad_id", ["%00", "shp%00x", "a%1Bb", "x" * 201])
async def test_path_ids_with_control_characters_or_too_long_are_refused(
        svc: RunningService, orders: FakePublisher, shipment: dict[str, Any], bad_id: str) -> None:
    partner = await orders.issue_key("partner", "ptn_a")
    before = await counts(svc)
    for headers in (ADMIN, partner):
        assert_validation(await svc.client.get(f"/v1/shipments/{bad_id}", headers=headers),
                          "path.shipment_id")
        assert_validation(await svc.client.get(f"/v1/returns/{bad_id}", headers=headers),
                          "path.return_id")
    assert_validation(await svc.client.get(f"/v1/stock/{bad_id}", headers=WAREHOUSE), "path.sku")
    assert_validation(await svc.client.post(f"/v1/shipments/{bad_id}/dispatch", headers=WAREHOUSE,
                                            json={"lines": [{"sku": "A", "qty": 1}], **DISPATCH}),
                      "path.shipment_id")
    assert_validation(await svc.client.post(f"/v1/shipments/{bad_id}/deliver", headers=WAREHOUSE,
                                            json={"delivered_at": "2026-03-12T10:00:00Z",
                                                  "signed_by": "x"}), "path.shipment_id")
    assert_validation(await svc.client.post(f"/v1/returns/{bad_id}/receive", headers=WAREHOUSE,
                                            json={"lines": [{"sku": "A", "qty": 1}]}),
                      "path.return_id")
    assert await counts(svc) == before


@pytest.mark.parametrize(("path", "query"), [
    ("/v1/shipments", "partner_id=%00"), ("/v1/shipments", "order_id=o1%00"),
    ("/v1/shipments", "cursor=AA"),
    ("/v1/returns", "partner_id=a%00b"), ("/v1/returns", "order_id=%00"),
    ("/v1/returns", "cursor=YQA"),
    ("/v1/stock", "sku=%00"), ("/v1/stock", "cursor=AA"),
])
async def test_list_filters_and_cursors_with_nul_are_refused(
        svc: RunningService, shipment: dict[str, Any], path: str, query: str) -> None:
    reader = WAREHOUSE if path == "/v1/stock" else ADMIN
    assert_validation(await svc.client.get(f"{path}?{query}", headers=reader),
                      "query." + query.split("=")[0])


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/stock/receipts", {"sku": "\u0000", "qty": 1, "reference": "DN-1"}, "sku"),
    ("/v1/stock/receipts", {"sku": "A\u0000B", "qty": 1, "reference": "DN-1"}, "sku"),
    ("/v1/stock/receipts", {"sku": "A", "qty": 1, "reference": "DN\u0000"}, "reference"),
    ("/v1/returns", {"order_id": "\u0000", "lines": [{"sku": "A", "qty": 1}], "reason": "r",
                     "kind": "refund"}, "order_id"),
    ("/v1/returns", {"order_id": "o1\u0000", "lines": [{"sku": "A", "qty": 1}], "reason": "r",
                     "kind": "refund"}, "order_id"),
    ("/v1/returns", {"order_id": "o1", "lines": [{"sku": "A\u0000", "qty": 1}], "reason": "r",
                     "kind": "refund"}, "lines.0.sku"),
])
async def test_bodies_with_nul_are_refused(svc: RunningService, shipment: dict[str, Any], path: str,
                                           body: dict[str, Any], field: str) -> None:
    before = await counts(svc)
    assert_validation(await svc.client.post(path, json=body, headers=WAREHOUSE), field)
    assert await counts(svc) == before


async def test_dispatch_and_receipt_bodies_with_nul_are_refused(
        svc: RunningService, orders: FakePublisher) -> None:
    pending = await shipped_order(svc, orders, "o2", {"A": 2})
    before = await counts(svc)
    for body, field in (({"lines": [{"sku": "A\u0000", "qty": 1}], **DISPATCH}, "lines.0.sku"),
                        ({"lines": [{"sku": "A", "qty": 1}], "carrier": "SF\u0000",
                          "tracking_no": "1"}, "carrier")):
        assert_validation(await svc.client.post(f"/v1/shipments/{pending['id']}/dispatch",
                                                 headers=WAREHOUSE, json=body), field)
    assert await counts(svc) == before
    assert (await book(svc, "B", 1, reference="DN\u00001")).status_code == 422


@pytest.mark.parametrize("delivered_at", [
    "9999-12-31T23:59:59-23:59",   # past year 9999 in UTC
    "0001-01-01T00:00:00+01:00",   # before year 1 in UTC
    1773309600,                    # a number, not RFC 3339
    "1773309600",
    "2026-03-12",
    "2026-02-30T10:00:00Z",
    "2026-03-12T10:00:00+24:00",
])
async def test_delivered_at_outside_rfc3339_utc_is_refused(
        svc: RunningService, shipment: dict[str, Any], delivered_at: Any) -> None:
    before = await counts(svc)
    assert_validation(await svc.client.post(
        f"/v1/shipments/{shipment['id']}/deliver", headers=WAREHOUSE,
        json={"delivered_at": delivered_at, "signed_by": "Li Lei"}), "delivered_at")
    assert await counts(svc) == before
    doc = (await svc.client.get(f"/v1/shipments/{shipment['id']}", headers=ADMIN)).json()
    assert doc["status"] == "dispatched" and doc["delivered_at"] is None


async def test_far_but_representable_delivery_times_still_work(
        svc: RunningService, shipment: dict[str, Any]) -> None:
    response = await svc.client.post(
        f"/v1/shipments/{shipment['id']}/deliver", headers=WAREHOUSE,
        json={"delivered_at": "9999-12-31T23:59:59+08:00", "signed_by": "Li Lei"})
    assert response.status_code == 200, response.text
    assert response.json()["delivered_at"] == "9999-12-31T15:59:59Z"
