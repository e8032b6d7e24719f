"""Price-change notices and deal registration over HTTP, on SQLite and PostgreSQL.

The notice window and its override, notices sent and acknowledged, the version in effect on
the order date, deals approved, expired and in conflict; every call partner-scoped.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from libs.events.orders import DealConflictRecorded, PriceChangeNotified
from libs.events.partners import PartnerTerminated
from services.orders.application.deals import customer_deals_stream
from services.orders.domain.deals import customer_key
from tests.orders.support import Publisher, add_product, on_day, place, publish_prices
from tests.service_support import ADMIN, RunningService

TODAY = date(2026, 3, 1)


@pytest.fixture
async def channel(svc: RunningService, publisher: Publisher) -> None:
    """p1, p2 (gold), p3 (silver), p9 (gold, terminated); P-1 (min 800), V-1; gold 10% off since January."""
    for partner_id, tier in (("p1", "gold"), ("p2", "gold"), ("p3", "silver"), ("p9", "gold")):
        await publisher.partner(partner_id, tier=tier)
    await publisher.partner("p8", tier="gold", status="applied")
    await add_product(svc, "P-1", 1000, min_price_minor=800)
    await add_product(svc, "V-1", 500, category="valves")
    await publish_prices(svc, "gold", "2026-01-01", 1000)
    await publisher.emit("partner-p9", PartnerTerminated(partner_id="p9", reason="breach"))
    on_day(svc, TODAY)


async def put_prices(svc: RunningService, effective_from: str, **more: Any) -> Any:
    return await svc.client.put("/v1/price-lists/gold", headers=ADMIN, json={
        "effective_from": effective_from, "discount_bp": 2000, **more})


async def test_a_version_needs_the_notice_period_or_a_recorded_override(
        svc: RunningService, channel: None) -> None:
    short = await put_prices(svc, "2026-03-07")  # 6 days' notice, 7 required
    assert short.status_code == 422 and short.json()["type"].endswith("/short-notice")
    assert short.json()["notice_days"] == 7 and short.json()["days_given"] == 6
    read = (await svc.client.get("/v1/price-lists/gold", headers=ADMIN)).json()
    assert [v["version"] for v in read["versions"]] == [1]  # state untouched
    backdated = await put_prices(svc, "2026-02-01")
    assert backdated.status_code == 422 and backdated.json()["type"].endswith("/short-notice")
    blank = await put_prices(svc, "2026-03-02", override_reason="   ")
    assert blank.status_code == 422  # a reason must say something
    urgent = await put_prices(svc, "2026-03-02", override_reason="supplier cost shock")
    assert urgent.status_code == 200, urgent.text
    assert urgent.json()["override_reason"] == "supplier cost shock"
    on_time = await put_prices(svc, "2026-03-08")
    assert on_time.status_code == 200 and on_time.json()["override_reason"] is None


async def test_a_future_version_notifies_the_tier_and_partners_acknowledge(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    published = (await put_prices(svc, "2026-03-15")).json()
    assert published["version"] == 2 and published["notices_sent"] == 3  # p1, p2, p8; not p9, p3
    sales = await publisher.key("sales")
    p1, p2, p3 = [await publisher.key("partner", p) for p in ("p1", "p2", "p3")]
    every = (await svc.client.get("/v1/price-notices", headers=sales)).json()["items"]
    assert sorted(n["partner_id"] for n in every) == ["p1", "p2", "p8"]
    assert {(n["tier"], n["version"], n["effective_from"], n["status"]) for n in every} \
        == {("gold", 2, "2026-03-15", "pending")}

    mine = (await svc.client.get("/v1/price-notices", headers=p1)).json()["items"]
    assert [n["partner_id"] for n in mine] == ["p1"]
    assert (await svc.client.get("/v1/price-notices?partner_id=p2", headers=p1)).json()["items"] == mine
    assert (await svc.client.get("/v1/price-notices", headers=p3)).json()["items"] == []
    notice_id = mine[0]["id"]
    for intruder in (p2, sales):  # another partner's notice is not found; staff cannot acknowledge
        refused = await svc.client.post(f"/v1/price-notices/{notice_id}/acknowledge", headers=intruder)
        assert refused.status_code == (404 if intruder is p2 else 403)
    assert (await svc.client.get(f"/v1/price-notices/{notice_id}", headers=p2)).status_code == 404

    acked = await svc.client.post(f"/v1/price-notices/{notice_id}/acknowledge", headers=p1)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_at"].endswith("Z")
    again = await svc.client.post(f"/v1/price-notices/{notice_id}/acknowledge", headers=p1)
    assert again.json() == acked.json()
    events = await svc.ctx.store.load(f"price-notice-{notice_id}")
    assert [e.event_type for e in events] == [PriceChangeNotified.TYPE, "PriceChangeAcknowledged"]

    waiting = (await svc.client.get("/v1/price-notices?acknowledged=false&tier=gold&version=2",
                                    headers=sales)).json()["items"]
    assert sorted(n["partner_id"] for n in waiting) == ["p2", "p8"]
    done = (await svc.client.get("/v1/price-notices?acknowledged=true", headers=sales)).json()["items"]
    assert [n["partner_id"] for n in done] == ["p1"]
    # a version that takes effect today (overridden) notifies nobody
    assert (await put_prices(svc, "2026-03-01", override_reason="fix")).json()["notices_sent"] == 0


async def test_orders_are_priced_by_the_version_in_effect_on_the_order_date(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    assert (await put_prices(svc, "2026-03-15")).status_code == 200  # v2: 20% off
    p1 = await publisher.key("partner", "p1")
    before = await place(svc, p1, ("P-1", 1))
    assert (before["lines"][0]["unit_price_minor"], before["price_list_version"]) == (900, 1)
    on_day(svc, date(2026, 3, 15))
    after = await place(svc, p1, ("P-1", 1))
    assert (after["lines"][0]["unit_price_minor"], after["price_list_version"]) == (800, 2)
    placed = (await svc.ctx.store.load(f"order-{after['id']}"))[0]
    assert placed.payload()["price_list_version"] == 2 and placed.payload()["deal_id"] is None


def deal_body(customer: str = "Acme Water Co", *lines: tuple[str, int], expires_on: str = "2026-04-30",
              **more: Any) -> dict[str, Any]:
    return {"end_customer": customer, "lines": [{"sku": s, "qty": q} for s, q in lines or [("P-1", 50)]],
            "expires_on": expires_on, **more}


async def register(svc: RunningService, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await svc.client.post("/v1/deals", headers=headers, json=body)


async def test_an_approved_deal_prices_its_partners_orders_while_it_lasts(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    p1, p2, sales = (await publisher.key("partner", "p1"), await publisher.key("partner", "p2"),
                     await publisher.key("sales"))
    created = await register(svc, p1, deal_body("Acme Water Co", ("P-1", 50), ("V-1", 10)))
    assert created.status_code == 201, created.text
    deal = created.json()
    assert (deal["status"], deal["partner_id"], deal["customer_key"]) == ("pending", "p1", "acme water co")
    pending = await svc.client.post("/v1/orders", headers=p1, json={
        "partner_ref": "PO-D", "lines": [{"sku": "P-1", "qty": 5}], "ship_to": {"region": "east"},
        "deal_id": deal["id"]})
    assert pending.status_code == 422 and pending.json()["type"].endswith("/deal-not-approved")

    approve = f"/v1/deals/{deal['id']}/approve"
    too_low = await svc.client.post(approve, headers=sales, json={"lines": [
        {"sku": "P-1", "unit_price_minor": 799}, {"sku": "V-1", "unit_price_minor": 400}]})
    assert too_low.status_code == 422 and too_low.json()["type"].endswith("/below-minimum-price")
    partial = await svc.client.post(approve, headers=sales, json={"lines": [
        {"sku": "P-1", "unit_price_minor": 820}]})
    assert partial.status_code == 422 and partial.json()["type"].endswith("/deal-prices-mismatch")
    assert (await svc.client.post(approve, headers=p1, json={"lines": [
        {"sku": "P-1", "unit_price_minor": 820}]})).status_code == 403
    approved = await svc.client.post(approve, headers=sales, json={"lines": [
        {"sku": "P-1", "unit_price_minor": 820}, {"sku": "V-1", "unit_price_minor": 400}]})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    twice = await svc.client.post(approve, headers=sales, json={"lines": [
        {"sku": "P-1", "unit_price_minor": 820}, {"sku": "V-1", "unit_price_minor": 400}]})
    assert twice.status_code == 409 and twice.json()["type"].endswith("/deal-not-pending")

    order = await place(svc, p1, ("P-1", 5), ("V-1", 2), deal_id=deal["id"])
    assert [(ln["sku"], ln["unit_price_minor"]) for ln in order["lines"]] == [("P-1", 820), ("V-1", 400)]
    assert (order["deal_id"], order["price_list_version"], order["total_minor"]) == (deal["id"], None, 4900)
    plain = await place(svc, p1, ("P-1", 5))
    assert plain["lines"][0]["unit_price_minor"] == 900 and plain["deal_id"] is None

    def cite(headers: dict[str, str], sku: str = "P-1") -> Any:
        return svc.client.post("/v1/orders", headers=headers, json={
            "partner_ref": "PO-D", "lines": [{"sku": sku, "qty": 1}], "ship_to": {"region": "east"},
            "deal_id": deal["id"]})

    not_theirs = await cite(p2)
    assert not_theirs.status_code == 404 and not_theirs.json()["type"].endswith("/deal-not-found")
    assert (await svc.client.get(f"/v1/deals/{deal['id']}", headers=p2)).status_code == 404
    assert (await svc.client.post(f"/v1/deals/{deal['id']}/reject", headers=p2,
                                  json={"reason": "x"})).status_code == 403
    await add_product(svc, "M-1", 700, category="motors")
    outside = await cite(p1, "M-1")
    assert outside.status_code == 422 and outside.json()["type"].endswith("/sku-not-in-deal")
    on_day(svc, date(2026, 4, 30))
    assert (await cite(p1)).status_code == 201  # lasts through its expiry date
    on_day(svc, date(2026, 5, 1))
    expired = await cite(p1)
    assert expired.status_code == 422 and expired.json()["type"].endswith("/deal-expired")
    read = (await svc.client.get(f"/v1/deals/{deal['id']}", headers=p1)).json()
    assert read["expired"] is True and read["status"] == "approved"


async def test_a_second_partners_registration_is_refused_and_recorded(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    p1, p2, sales = (await publisher.key("partner", "p1"), await publisher.key("partner", "p2"),
                     await publisher.key("sales"))
    first = (await register(svc, p1, deal_body("Acme Water Co", ("P-1", 50), ("V-1", 5)))).json()
    conflict = await svc.client.post("/v1/deals", headers={**p2, "Idempotency-Key": "reg-1"},
                                     json=deal_body("  ACME   water co ", ("V-1", 9)))
    assert conflict.status_code == 409 and conflict.json()["type"].endswith("/deal-conflict")
    assert "p1" not in conflict.text and first["id"] not in conflict.text  # nothing of the other partner
    retry = await svc.client.post("/v1/deals", headers={**p2, "Idempotency-Key": "reg-1"},
                                  json=deal_body("  ACME   water co ", ("V-1", 9)))
    assert retry.status_code == 409

    refused = (await svc.client.get("/v1/deals?status=refused", headers=sales)).json()["items"]
    assert len(refused) == 1  # the retry recorded nothing new
    assert (refused[0]["partner_id"], refused[0]["status"]) == ("p2", "refused")
    assert refused[0]["conflict"] == {"deal_id": first["id"], "partner_id": "p1", "skus": ["V-1"]}
    own = (await svc.client.get("/v1/deals", headers=p2)).json()["items"]
    assert [(d["status"], d["conflict"]) for d in own] == [("refused", None)]
    assert [d["id"] for d in (await svc.client.get("/v1/deals", headers=p1)).json()["items"]] \
        == [first["id"]]
    stream = await svc.ctx.store.load(customer_deals_stream(customer_key("Acme Water Co")))
    assert [e.event_type for e in stream] == ["DealRegistered", DealConflictRecorded.TYPE]

    # other products, the same partner again, or a different credit code: no conflict
    assert (await register(svc, p2, deal_body("Acme Water Co", ("M-1", 1)))).status_code == 422
    assert (await register(svc, p1, deal_body("acme water co", ("P-1", 1)))).status_code == 201
    coded = deal_body("Acme Water Co", ("P-1", 1), customer_code="91310000AAAA00001X")
    assert (await register(svc, p2, coded)).status_code == 409  # the holder gave no code: same name
    # once the holder's deal is rejected, p2 may register it
    held = await svc.client.get("/v1/deals?partner_id=p1&status=pending", headers=sales)
    for deal in held.json()["items"]:
        rejected = await svc.client.post(f"/v1/deals/{deal['id']}/reject", headers=sales,
                                         json={"reason": "no budget"})
        assert rejected.json()["status"] == "rejected" and rejected.json()["reject_reason"] == "no budget"
    assert (await register(svc, p2, deal_body("Acme Water Co", ("V-1", 9)))).status_code == 201


async def test_an_expired_deal_no_longer_protects_its_partner(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    p1, p2 = await publisher.key("partner", "p1"), await publisher.key("partner", "p2")
    assert (await register(svc, p1, deal_body("Delta Ltd", expires_on="2026-03-10"))).status_code == 201
    assert (await register(svc, p2, deal_body("Delta Ltd"))).status_code == 409
    on_day(svc, date(2026, 3, 11))
    assert (await register(svc, p2, deal_body("Delta Ltd"))).status_code == 201
    past = await register(svc, p2, deal_body("Other", expires_on="2026-03-10"))
    assert past.status_code == 422 and past.json()["type"].endswith("/invalid-expiry")


async def test_staff_register_for_a_partner_and_bad_input_answers_422(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    sales = await publisher.key("sales")
    missing = await register(svc, sales, deal_body())
    assert missing.status_code == 422 and missing.json()["type"].endswith("/partner-id-required")
    made = await register(svc, sales, deal_body(partner_id="p1"))
    assert made.status_code == 201 and made.json()["partner_id"] == "p1"
    inactive = await register(svc, sales, deal_body("X", partner_id="p8"))
    assert inactive.status_code == 403
    for bad in (deal_body("Z", ("P-1", 0)), deal_body(customer_code="short"), {**deal_body(), "extra": 1},
                deal_body("Y", ("P-1", 1), ("P-1", 2)), deal_body(expires_on="2026-13-01")):
        assert (await register(svc, sales, {**bad, "partner_id": "p1"})).status_code == 422, bad
    unknown = await svc.client.post("/v1/deals/deal_nope/approve", headers=sales,
                                    json={"lines": [{"sku": "P-1", "unit_price_minor": 900}]})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/deal-not-found")


async def test_concurrent_registrations_for_one_customer_are_decided_one_after_the_other(
        svc: RunningService, publisher: Publisher, channel: None) -> None:
    """One customer's deals are one stream: the second append conflicts, runs again, and then
    sees the first partner's deal."""
    p1, p2 = await publisher.key("partner", "p1"), await publisher.key("partner", "p2")
    for round_ in range(3):
        answers = await asyncio.gather(*(register(svc, key, deal_body(f"Race {round_}"))
                                         for key in (p1, p2)))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    sales = await publisher.key("sales")
    refused = (await svc.client.get("/v1/deals?status=refused", headers=sales)).json()["items"]
    assert len(refused) == 3
