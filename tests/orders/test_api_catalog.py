"""Catalog and price lists over HTTP, on both databases."""

from __future__ import annotations

from datetime import date

from tests.orders.support import Publisher, add_product, on_day, publish_prices
from tests.service_support import ADMIN, RunningService


async def test_a_product_is_created_and_read_back(svc: RunningService, publisher: Publisher) -> None:
    created = await add_product(svc, "P-1", 999, min_price_minor=800)
    assert {k: created[k] for k in ("sku", "name", "category", "list_price_minor", "min_price_minor",
                                    "currency")} == {
        "sku": "P-1", "name": "Product P-1", "category": "pumps", "list_price_minor": 999,
        "min_price_minor": 800, "currency": "CNY"}
    await add_product(svc, "V-1", 500, category="valves", currency="USD")
    partner = await publisher.key("partner", "p1")
    assert (await svc.client.get("/v1/products/P-1", headers=partner)).json() == created
    listed = (await svc.client.get("/v1/products", headers=ADMIN)).json()
    assert [p["sku"] for p in listed["items"]] == ["P-1", "V-1"]
    valves = (await svc.client.get("/v1/products?category=valves", headers=ADMIN)).json()
    assert [p["sku"] for p in valves["items"]] == ["V-1"] and valves["items"][0]["currency"] == "USD"
    pumps = (await svc.client.get("/v1/products?category=pumps", headers=ADMIN)).json()
    assert [p["sku"] for p in pumps["items"]] == ["P-1"]
    assert (await svc.client.get("/v1/products?category=hoses", headers=ADMIN)).json()["items"] == []
    first = (await svc.client.get("/v1/products?limit=1", headers=ADMIN)).json()
    second = (await svc.client.get(f"/v1/products?limit=1&cursor={first['next_cursor']}",
                                   headers=ADMIN)).json()
    assert [p["sku"] for p in first["items"] + second["items"]] == ["P-1", "V-1"]
    missing = await svc.client.get("/v1/products/NOPE", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/product-not-found")


async def test_a_sku_is_unique(svc: RunningService) -> None:
    await add_product(svc, "P-1", 999)
    again = await svc.client.post("/v1/products", headers=ADMIN, json={
        "sku": "P-1", "name": "Other", "category": "x", "list_price_minor": 5})
    assert again.status_code == 409 and again.json()["type"].endswith("/sku-exists")


BAD_PRODUCTS = [
    {"list_price_minor": 0}, {"list_price_minor": -1}, {"list_price_minor": 10.5},
    {"list_price_minor": "100"}, {"list_price_minor": True}, {"min_price_minor": 1000},
    {"min_price_minor": -1}, {"sku": ""}, {"sku": "has space"}, {"sku": "x/y"}, {"name": " "},
    {"currency": "cny"}, {"colour": "red"}, {"list_price_minor": 10**30},
]


async def test_a_bad_product_is_refused_with_422(svc: RunningService) -> None:
    valid = {"sku": "P-1", "name": "Pump", "category": "pumps", "list_price_minor": 999}
    for body in BAD_PRODUCTS:
        response = await svc.client.post("/v1/products", json={**valid, **body}, headers=ADMIN)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/validation") and response.json()["errors"]
    assert (await svc.client.get("/v1/products", headers=ADMIN)).json()["items"] == []


async def test_only_admin_and_sales_keep_the_catalog(svc: RunningService, publisher: Publisher) -> None:
    prices = {"effective_from": "2026-01-01", "discount_bp": 100, "override_reason": "test catalog"}
    for role in ("finance", "warehouse", "auditor", "partner", "sales"):
        headers = await publisher.key(role, "p1" if role == "partner" else None)
        body = {"sku": f"P-{role}", "name": "Pump", "category": "pumps", "list_price_minor": 999}
        created = await svc.client.post("/v1/products", json=body, headers=headers)
        published = await svc.client.put("/v1/price-lists/gold", json=prices, headers=headers)
        expected = (201, 200) if role == "sales" else (403, 403)
        assert (created.status_code, published.status_code) == expected, role


async def test_calls_need_a_known_key(svc: RunningService) -> None:
    assert (await svc.client.get("/v1/products")).status_code == 401
    bad = await svc.client.get("/v1/products", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["type"].endswith("/unauthorized")


async def test_creating_a_product_is_idempotent(svc: RunningService) -> None:
    body = {"sku": "P-1", "name": "Pump", "category": "pumps", "list_price_minor": 999}
    headers = {**ADMIN, "Idempotency-Key": "k-1"}
    first = await svc.client.post("/v1/products", json=body, headers=headers)
    again = await svc.client.post("/v1/products", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    other = await svc.client.post("/v1/products", json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 409 and other.json()["type"].endswith("/idempotency-key-reused")


async def test_each_publication_is_a_new_version_of_the_tier(svc: RunningService) -> None:
    await add_product(svc, "P-1", 999)
    first = await publish_prices(svc, "gold", "2026-01-01", 1000)
    second = await publish_prices(svc, "gold", "2026-06-01", 1500, {"P-1": 850})
    other_tier = await publish_prices(svc, "silver", "2026-01-01", 500)
    assert (first["version"], second["version"], other_tier["version"]) == (1, 2, 1)
    assert second == {"tier": "gold", "version": 2, "effective_from": "2026-06-01",
                      "discount_bp": 1500, "overrides": [{"sku": "P-1", "unit_price_minor": 850}],
                      "currency": "CNY", "published_at": second["published_at"],
                      "override_reason": "test catalog", "notices_sent": 0}
    on_day(svc, date(2026, 3, 1))
    read = (await svc.client.get("/v1/price-lists/gold", headers=ADMIN)).json()
    assert [v["version"] for v in read["versions"]] == [1, 2] and read["in_force"]["version"] == 1
    on_day(svc, date(2026, 6, 1))
    read = (await svc.client.get("/v1/price-lists/gold", headers=ADMIN)).json()
    assert {**read["in_force"], "notices_sent": 0} == second
    on_day(svc, date(2025, 12, 31))
    assert (await svc.client.get("/v1/price-lists/gold", headers=ADMIN)).json()["in_force"] is None
    tiers = (await svc.client.get("/v1/price-lists", headers=ADMIN)).json()["items"]
    assert [t["tier"] for t in tiers] == ["gold", "silver"]
    missing = await svc.client.get("/v1/price-lists/bronze", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/price-list-not-found")


BAD_PRICE_LISTS = [
    ({"effective_from": "2026-01-01", "discount_bp": 10_001}, "validation"),
    ({"effective_from": "2026-01-01", "discount_bp": -1}, "validation"),
    ({"effective_from": "2026-02-30", "discount_bp": 0}, "validation"),
    ({"effective_from": "01/02/2026", "discount_bp": 0}, "validation"),
    ({"effective_from": 20260101, "discount_bp": 0}, "validation"),
    ({"discount_bp": 0}, "validation"),
    ({"effective_from": "2026-01-01", "discount_bp": 0, "extra": 1}, "validation"),
    ({"effective_from": "2026-01-01", "discount_bp": 0,
      "overrides": [{"sku": "P-1", "unit_price_minor": 0}]}, "validation"),
    ({"effective_from": "2026-01-01", "discount_bp": 0,
      "overrides": [{"sku": "NOPE", "unit_price_minor": 5}]}, "unknown-sku"),
    ({"effective_from": "2026-01-01", "discount_bp": 0,
      "overrides": [{"sku": "P-1", "unit_price_minor": 5}, {"sku": "P-1", "unit_price_minor": 6}]},
     "duplicate-sku"),
]


async def test_a_bad_price_list_is_refused_with_422(svc: RunningService) -> None:
    await add_product(svc, "P-1", 999)
    for body, slug in BAD_PRICE_LISTS:
        response = await svc.client.put("/v1/price-lists/gold", json=body, headers=ADMIN)
        assert response.status_code == 422 and response.json()["type"].endswith(f"/{slug}"), body
    assert (await svc.client.get("/v1/price-lists/gold", headers=ADMIN)).status_code == 404


async def test_a_partner_reads_its_own_tier_price_list_only(svc: RunningService,
                                                            publisher: Publisher) -> None:
    await publisher.partner("p1", tier="gold")
    await publish_prices(svc, "gold", "2026-01-01", 1000)
    await publish_prices(svc, "silver", "2026-01-01", 500)
    partner = await publisher.key("partner", "p1")
    assert (await svc.client.get("/v1/price-lists/gold", headers=partner)).status_code == 200
    assert (await svc.client.get("/v1/price-lists/silver", headers=partner)).status_code == 404
    mine = (await svc.client.get("/v1/price-lists", headers=partner)).json()["items"]
    assert [t["tier"] for t in mine] == ["gold"]
    bad_tier = await svc.client.put("/v1/price-lists/go%20ld", headers=ADMIN,
                                    json={"effective_from": "2026-01-01", "discount_bp": 0})
    assert bad_tier.status_code == 422
