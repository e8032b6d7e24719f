"""Placing orders over HTTP: exact prices, every refusal, who may place, idempotency."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import update

from libs.events.partners import PartnerSuspended, PartnerTerminated, PartnerTierChanged
from libs.store.schema import documents
from services.orders.application.orders import PARTNER_COPY, violation_stream
from tests.orders.support import Publisher, add_product, on_day, order_body, place, publish_prices
from tests.service_support import ADMIN, RunningService


@pytest.fixture
async def catalog(svc: RunningService, publisher: Publisher) -> None:
    """Partner p1 (gold, east, pumps+valves); gold: 12.5% off from 2026-01-01, V-1 fixed at 1500."""
    await publisher.partner("p1", tier="gold", territories=("east", "north"),
                            categories=("pumps", "valves"))
    await add_product(svc, "P-1", 999, min_price_minor=800)
    await add_product(svc, "V-1", 2001, category="valves")
    await add_product(svc, "M-1", 5000, category="motors")
    await publish_prices(svc, "gold", "2026-01-01", 1250, {"V-1": 1500})
    on_day(svc, date(2026, 4, 1))


async def test_a_partner_places_an_order_at_its_tier_prices(svc: RunningService, publisher: Publisher,
                                                            catalog: None) -> None:
    partner = await publisher.key("partner", "p1")
    order = await place(svc, partner, ("P-1", 3), ("V-1", 2))
    assert order["id"].startswith("ord_") and order["status"] == "placed"
    assert {k: order[k] for k in ("partner_id", "partner_ref", "total_minor", "currency", "ship_to")} \
        == {"partner_id": "p1", "partner_ref": "PO-1", "total_minor": 2622 + 3000, "currency": "CNY",
            "ship_to": {"region": "east", "address": "1 Bund Rd"}}
    assert [(line["sku"], line["qty"], line["unit_price_minor"], line["line_total_minor"])
            for line in order["lines"]] == [("P-1", 3, 874, 2622), ("V-1", 2, 1500, 3000)]
    assert order["placed_at"].endswith("Z") and order["history"][0]["status"] == "placed"
    assert (await svc.client.get(f"/v1/orders/{order['id']}", headers=partner)).json() == order
    (placed,) = [e for e in await svc.ctx.store.load(f"order-{order['id']}")]
    assert placed.event_type == "OrderPlaced" and placed.actor.startswith("partner:")


async def test_prices_follow_the_version_in_force_on_the_day(svc: RunningService,
                                                             publisher: Publisher, catalog: None) -> None:
    await add_product(svc, "Q-1", 5000)
    await publish_prices(svc, "gold", "2026-05-01", 3333)
    partner = await publisher.key("partner", "p1")
    before = await place(svc, partner, ("Q-1", 1))
    on_day(svc, date(2026, 5, 1))
    after = await place(svc, partner, ("Q-1", 7))
    assert before["lines"][0]["unit_price_minor"] == 5000 - 625       # 12.5% of 5000
    assert after["lines"][0]["unit_price_minor"] == 5000 - 1667       # 1666.5 -> 1667
    assert after["total_minor"] == 3333 * 7


async def test_a_tier_without_a_price_list_pays_list_price(svc: RunningService,
                                                           publisher: Publisher, catalog: None) -> None:
    await publisher.partner("p2", tier="bronze")
    order = await place(svc, ADMIN, ("P-1", 2), partner_id="p2")
    assert (order["lines"][0]["unit_price_minor"], order["total_minor"]) == (999, 1998)


async def test_a_tier_change_moves_the_partner_to_its_new_price_list(
        svc: RunningService, publisher: Publisher, catalog: None) -> None:
    await publish_prices(svc, "silver", "2026-01-01", 500)
    partner = await publisher.key("partner", "p1")
    await publisher.emit("partner-p1", PartnerTierChanged(partner_id="p1", from_tier="gold",
                                                          to_tier="silver"))
    order = await place(svc, partner, ("P-1", 1))
    assert order["lines"][0]["unit_price_minor"] == 999 - 50          # silver: 5% off


async def test_a_partner_copy_written_before_tier_refs_still_gets_its_tier_prices(
        svc: RunningService, publisher: Publisher, catalog: None) -> None:
    """The price list read along with the partner copy follows the copy's ``ref_id``; a copy
    without one (as written before that column named its tier) is priced all the same."""
    async with svc.ctx.db.transaction() as conn:
        await conn.execute(update(documents).where(documents.c.kind == PARTNER_COPY)
                           .values(ref_id=None))
    order = await place(svc, ADMIN, ("P-1", 3), partner_id="p1")
    assert order["lines"][0]["unit_price_minor"] == 874                # gold: 12.5% off 999


async def test_staff_place_for_a_partner_they_name(svc: RunningService, publisher: Publisher,
                                                   catalog: None) -> None:
    sales = await publisher.key("sales")
    assert (await place(svc, sales, ("P-1", 1), partner_id="p1"))["partner_id"] == "p1"
    missing = await svc.client.post("/v1/orders", json=order_body(("P-1", 1)), headers=sales)
    assert missing.status_code == 422 and missing.json()["type"].endswith("/partner-id-required")
    for role in ("finance", "warehouse", "auditor"):
        headers = await publisher.key(role)
        refused = await svc.client.post("/v1/orders", json=order_body(("P-1", 1), partner_id="p1"),
                                        headers=headers)
        assert refused.status_code == 403, role


async def test_a_partner_never_orders_for_another(svc: RunningService, publisher: Publisher,
                                                  catalog: None) -> None:
    await publisher.partner("p2")
    partner = await publisher.key("partner", "p1")
    response = await svc.client.post("/v1/orders", json=order_body(("P-1", 1), partner_id="p2"),
                                     headers=partner)
    assert response.status_code == 404 and response.json()["type"].endswith("/partner-not-found")
    same = await place(svc, partner, ("P-1", 1), partner_id="p1")
    assert same["partner_id"] == "p1"
    assert (await svc.client.get("/v1/orders?partner_id=p2", headers=ADMIN)).json()["items"] == []


REFUSALS = [
    ((("P-1", 1),), {"partner_id": "ghost"}, 404, "partner-not-found"),
    ((("X-9", 1),), {}, 422, "unknown-sku"),
    ((("P-1", 1),), {"region": "west"}, 422, "territory-violation"),
    ((("M-1", 1),), {}, 422, "category-not-authorised"),
    ((("P-1", 1), ("M-1", 1), ("X-9", 1)), {"region": "west"}, 422, "unknown-sku"),
    ((("P-1", 1), ("M-1", 1)), {"region": "west"}, 422, "territory-violation"),
]


async def test_placement_is_refused_with_its_problem_type(svc: RunningService, catalog: None) -> None:
    for lines, more, status, slug in REFUSALS:
        body = order_body(*lines, **{"partner_id": "p1", **more})
        response = await svc.client.post("/v1/orders", json=body, headers=ADMIN)
        assert response.status_code == status and response.json()["type"].endswith(f"/{slug}"), body
        assert response.headers["content-type"] == "application/problem+json"
    assert (await svc.client.get("/v1/orders", headers=ADMIN)).json()["items"] == []


async def test_below_the_minimum_price_is_refused(svc: RunningService, catalog: None) -> None:
    await publish_prices(svc, "gold", "2026-02-01", 2000)  # 999 - 200 = 799 < 800
    response = await svc.client.post("/v1/orders", json=order_body(("P-1", 1), partner_id="p1"),
                                     headers=ADMIN)
    assert response.status_code == 422 and response.json()["type"].endswith("/below-minimum-price")
    assert response.json()["unit_price_minor"] == 799


async def test_a_partner_that_is_not_active_cannot_order(svc: RunningService, publisher: Publisher,
                                                         catalog: None) -> None:
    await publisher.partner("p3", status="applied")
    for step in (None, PartnerSuspended(partner_id="p3", reason="audit"),
                 PartnerTerminated(partner_id="p3", reason="breach")):
        if step is not None:
            await publisher.emit("partner-p3", step)
        response = await svc.client.post("/v1/orders", json=order_body(("X-9", 1), partner_id="p3"),
                                         headers=ADMIN)
        assert response.status_code == 403 and response.json()["type"].endswith("/partner-not-active")
        assert response.json()["partner_status"] in ("applied", "suspended", "terminated")


async def test_a_trial_partner_can_order(svc: RunningService, publisher: Publisher,
                                         catalog: None) -> None:
    await publisher.partner("p4", status="trial")
    assert (await place(svc, ADMIN, ("P-1", 1), partner_id="p4"))["partner_id"] == "p4"


async def test_a_territory_violation_is_recorded_though_the_order_is_refused(
        svc: RunningService, publisher: Publisher, catalog: None) -> None:
    partner = await publisher.key("partner", "p1")
    body = order_body(("P-1", 1), region="west")
    headers = {**partner, "Idempotency-Key": "v-1"}
    for _ in range(2):  # a retried request is recorded once
        response = await svc.client.post("/v1/orders", json=body, headers=headers)
        assert response.status_code == 422
    assert response.json()["region"] == "west" and response.json()["territories"] == ["east", "north"]
    await svc.client.post("/v1/orders", json=body, headers=partner)
    recorded = await svc.ctx.store.load(violation_stream("p1"))
    assert [e.event_type for e in recorded] == ["TerritoryViolationRecorded"] * 2
    assert recorded[0].payload() == {"partner_id": "p1", "partner_ref": "PO-1", "region": "west",
                                     "territories": ["east", "north"]}
    sub_region = await place(svc, partner, ("P-1", 1), region="north/harbin")
    assert sub_region["ship_to"]["region"] == "north/harbin"


MALFORMED = [
    {"lines": []}, {"lines": [{"sku": "P-1", "qty": 0}]}, {"lines": [{"sku": "P-1", "qty": -2}]},
    {"lines": [{"sku": "P-1", "qty": 1.5}]}, {"lines": [{"sku": "P-1", "qty": "2"}]},
    {"lines": [{"sku": "P-1", "qty": 1}, {"sku": "P-1", "qty": 2}]},
    {"lines": [{"sku": "P-1", "qty": 1, "price": 1}]}, {"ship_to": {}}, {"ship_to": {"region": ""}},
    {"partner_ref": ""}, {"partner_ref": None}, {"discount": 5}, {"lines": [{"sku": "P-1"}]},
    {"lines": [{"sku": "P-1", "qty": 10**7}]}, {"lines": "P-1"}, {"ship_to": "east"},
]


async def test_a_malformed_order_is_refused_with_422(svc: RunningService, catalog: None) -> None:
    for body in MALFORMED:
        response = await svc.client.post("/v1/orders", json={
            **order_body(("P-1", 1), partner_id="p1"), **body}, headers=ADMIN)
        assert response.status_code == 422 and response.json()["type"].endswith("/validation"), body
        assert response.json()["errors"]
    broken = await svc.client.post("/v1/orders", content=b"{not json", headers=ADMIN)
    assert broken.status_code == 422


async def test_a_repeat_with_the_same_key_answers_the_first_response(
        svc: RunningService, publisher: Publisher, catalog: None) -> None:
    partner = await publisher.key("partner", "p1")
    headers = {**partner, "Idempotency-Key": "order-42"}
    first = await svc.client.post("/v1/orders", json=order_body(("P-1", 2)), headers=headers)
    again = await svc.client.post("/v1/orders", json=order_body(("P-1", 2)), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    assert len((await svc.client.get("/v1/orders", headers=partner)).json()["items"]) == 1
    changed = await svc.client.post("/v1/orders", json=order_body(("P-1", 3)), headers=headers)
    assert changed.status_code == 409 and changed.json()["type"].endswith("/idempotency-key-reused")
    other_caller = await svc.client.post("/v1/orders", json=order_body(("P-1", 3), partner_id="p1"),
                                         headers={**ADMIN, "Idempotency-Key": "order-42"})
    assert other_caller.status_code == 201 and other_caller.json()["id"] != first.json()["id"]
