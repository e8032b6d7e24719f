"""Payments, invoices, write-offs and credit notes over HTTP, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.credit.support import TODAY, Feed, account, account_events, invoices, ok, pay, types
from tests.service_support import ADMIN, RunningService


@pytest.fixture
async def keys(feed: Feed) -> dict[str, dict[str, str]]:
    await feed.register("p1", limit=100_000, term=30)
    await feed.register("p2", limit=100_000, term=30)
    return {role: await feed.key(role) for role in ("finance", "auditor", "sales")} | {
        "p1": await feed.key("partner", "p1"),
        "p2": await feed.key("partner", "p2"),
        "admin": ADMIN,
    }


async def two_invoices(feed: Feed) -> None:
    """p1: 3_000 issued 10 days ago (due in 20), then 2_000 issued today (due in 30)."""
    await feed.order("o1", "p1", 5_000)
    await feed.dispatch("o1", {"SKU-1": 6}, on=TODAY - timedelta(days=10))
    await feed.dispatch("o1", {"SKU-1": 4}, on=TODAY, complete=True)


async def test_payment_is_applied_oldest_first_and_answers_its_applications(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await two_invoices(feed)
    old, new = await invoices(svc, keys["finance"], "p1")
    body = ok(await pay(svc, keys["finance"], "p1", 4_000, bank_ref="BANK-1"), 201)
    assert body["id"].startswith("pay_")
    assert (
        body["partner_id"],
        body["amount_minor"],
        body["currency"],
        body["bank_ref"],
        body["received_on"],
    ) == ("p1", 4_000, "CNY", "BANK-1", str(TODAY))
    assert body["applications"] == [
        {"invoice_id": old["id"], "amount_minor": 3_000},
        {"invoice_id": new["id"], "amount_minor": 1_000},
    ]
    old, new = await invoices(svc, keys["finance"], "p1")
    assert (old["status"], old["paid_minor"], old["paid_on"], old["on_time"]) == (
        "paid",
        3_000,
        str(TODAY),
        True,
    )
    assert (new["status"], new["paid_minor"], new["paid_on"]) == ("open", 1_000, None)
    stored = ok(await svc.client.get(f"/v1/payments/{body['id']}", headers=keys["auditor"]))
    answered = {k: v for k, v in body.items() if k not in ("released_orders", "account")}
    assert answered == stored  # the answer is the payment as its document was written
    more = ok(await pay(svc, keys["finance"], "p1", 1_500), 201)
    assert (more["applications"], more["advance_minor"]) == (
        [{"invoice_id": new["id"], "amount_minor": 1_000}],
        500,
    )
    figures = await account(svc, keys["finance"], "p1")
    assert (figures["advance_minor"], figures["balance_minor"], figures["exposure_minor"]) == (500, -500, 0)


async def test_late_payment_is_not_on_time(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 1_000)
    await feed.ship_all("o1", on=TODAY - timedelta(days=40))
    ok(await pay(svc, keys["finance"], "p1", 1_000), 201)
    [invoice] = await invoices(svc, keys["finance"], "p1")
    assert (invoice["status"], invoice["on_time"]) == ("paid", False)


async def test_explicit_allocations(svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]) -> None:
    await two_invoices(feed)
    old, new = await invoices(svc, keys["finance"], "p1")
    body = ok(
        await pay(
            svc, keys["finance"], "p1", 2_500, allocations=[{"invoice_id": new["id"], "amount_minor": 2_000}]
        ),
        201,
    )
    assert body["applications"] == [{"invoice_id": new["id"], "amount_minor": 2_000}]
    assert body["advance_minor"] == 500
    old, new = await invoices(svc, keys["finance"], "p1")
    assert (old["status"], new["status"]) == ("open", "paid")
    await feed.order("o9", "p2", 1_000)
    await feed.ship_all("o9")
    [foreign] = await invoices(svc, keys["finance"], "p2")
    for allocations in (
        [{"invoice_id": new["id"], "amount_minor": 1}],  # paid already
        [{"invoice_id": foreign["id"], "amount_minor": 1}],  # another partner's
        [{"invoice_id": "inv_nope", "amount_minor": 1}],
        [{"invoice_id": old["id"], "amount_minor": 3_001}],
        [{"invoice_id": old["id"], "amount_minor": 3_000}],
    ):  # more than the payment
        response = await pay(svc, keys["finance"], "p1", 2_999, allocations=allocations)
        assert response.status_code == 422, response.text
    assert (await types(svc, "p1")).count("PaymentReceived") == 1


async def test_a_payment_releases_held_orders_in_arrival_order(svc: RunningService, feed: Feed) -> None:
    await feed.register("p3", limit=10_000)
    finance = await feed.key("finance")
    await feed.order("o1", "p3", 10_000)
    await feed.ship_all("o1")
    await feed.order("o2", "p3", 3_000)
    await feed.order("o3", "p3", 4_000)
    await feed.order("o4", "p3", 2_000)
    body = ok(await pay(svc, finance, "p3", 6_000), 201)
    assert body["released_orders"] == ["o2", "o4"]
    events = await account_events(svc, "p3")
    assert [(t, p["order_id"]) for t, p in events if t == "FundsReviewPassed"][1:] == [
        ("FundsReviewPassed", "o2"),
        ("FundsReviewPassed", "o4"),
    ]
    held = ok(
        await svc.client.get("/v1/holds", headers=finance, params={"partner_id": "p3", "status": "held"})
    )
    assert [h["order_id"] for h in held["items"]] == ["o3"]


async def test_bank_ref_is_unique_across_partners(
    svc: RunningService, keys: dict[str, dict[str, str]]
) -> None:
    ok(await pay(svc, keys["finance"], "p1", 100, bank_ref="REF-1"), 201)
    for partner_id in ("p1", "p2"):
        repeat = await pay(svc, keys["finance"], partner_id, 100, bank_ref="REF-1")
        assert repeat.status_code == 409 and repeat.json()["type"].endswith("/duplicate-bank-ref")


async def test_idempotency_key_answers_the_first_payment_again(
    svc: RunningService, keys: dict[str, dict[str, str]]
) -> None:
    headers = keys["finance"] | {"Idempotency-Key": "pay-1"}
    payload = {"partner_id": "p1", "amount_minor": 100, "bank_ref": "REF-9", "received_on": str(TODAY)}
    first = await svc.client.post("/v1/payments", headers=headers, json=payload)
    again = await svc.client.post("/v1/payments", headers=headers, json=payload)
    assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
    other = await svc.client.post("/v1/payments", headers=headers, json=payload | {"amount_minor": 101})
    assert other.status_code == 409
    assert (await types(svc, "p1")).count("PaymentReceived") == 1


BAD_PAYMENTS: list[dict[str, object]] = [
    {"amount_minor": 0},
    {"amount_minor": -5},
    {"amount_minor": 10.5},
    {"amount_minor": "10"},
    {"received_on": "2026-13-45"},
    {"bank_ref": ""},
    {"currency": "cny"},
    {"tip": 1},
    {"allocations": [{"invoice_id": "x", "amount_minor": 0}]},
    {"currency": "USD"},
]


async def test_bad_payments_answer_422(svc: RunningService, keys: dict[str, dict[str, str]]) -> None:
    for changes in BAD_PAYMENTS:
        payload = {
            "partner_id": "p1",
            "amount_minor": 100,
            "bank_ref": "R",
            "received_on": str(TODAY),
        } | changes
        response = await svc.client.post("/v1/payments", headers=keys["finance"], json=payload)
        assert response.status_code == 422, f"{changes}: {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await types(svc, "p1") == ["AccountOpened"]


async def test_payments_need_finance_and_a_known_partner(
    svc: RunningService, keys: dict[str, dict[str, str]]
) -> None:
    for refused in ("auditor", "sales", "admin", "p1"):
        assert (await pay(svc, keys[refused], "p1", 100)).status_code == 403
    assert (await pay(svc, keys["finance"], "nobody", 100)).status_code == 404
    refused = await svc.client.post("/v1/payments", headers=keys["auditor"], json={"partner_id": "p1"})
    assert refused.status_code == 403  # the role is refused before the body is looked at


async def test_invoices_are_listed_filtered_and_kept_apart(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await two_invoices(feed)
    await feed.order("o9", "p2", 1_000)
    await feed.ship_all("o9")
    ok(await pay(svc, keys["finance"], "p1", 3_000), 201)
    everything = ok(await svc.client.get("/v1/invoices", headers=keys["auditor"]))["items"]
    assert len(everything) == 3
    assert set(everything[0]) >= {
        "id",
        "order_id",
        "partner_id",
        "total_minor",
        "paid_minor",
        "issued_on",
        "due_on",
        "status",
        "paid_on",
        "on_time",
    }
    paid = ok(await svc.client.get("/v1/invoices", headers=keys["finance"], params={"status": "paid"}))[
        "items"
    ]
    assert [i["total_minor"] for i in paid] == [3_000]
    own = ok(await svc.client.get("/v1/invoices", headers=keys["p2"], params={"partner_id": "p1"}))["items"]
    assert [i["partner_id"] for i in own] == ["p2"]
    page = ok(await svc.client.get("/v1/invoices", headers=keys["finance"], params={"limit": 2}))
    rest = ok(
        await svc.client.get("/v1/invoices", headers=keys["finance"], params={"cursor": page["next_cursor"]})
    )
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    p1_invoice = paid[0]["id"]
    assert ok(await svc.client.get(f"/v1/invoices/{p1_invoice}", headers=keys["p1"]))["id"] == p1_invoice
    assert (await svc.client.get(f"/v1/invoices/{p1_invoice}", headers=keys["p2"])).status_code == 404
    assert (await svc.client.get("/v1/invoices/inv_nope", headers=keys["finance"])).status_code == 404
    assert (
        await svc.client.get("/v1/invoices", headers=keys["finance"], params={"status": "lost"})
    ).status_code == 422
    for refused in ("sales", "admin"):
        assert (await svc.client.get("/v1/invoices", headers=keys[refused])).status_code == 403


async def test_write_off_closes_a_small_residue(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 1_000)
    await feed.ship_all("o1")
    ok(await pay(svc, keys["finance"], "p1", 990), 201)
    [invoice] = await invoices(svc, keys["finance"], "p1")
    url = f"/v1/invoices/{invoice['id']}/write-off"
    assert (
        await svc.client.post(url, headers=keys["finance"], json={"amount_minor": 11, "reason": "x"})
    ).status_code == 422
    assert (
        await svc.client.post(url, headers=keys["finance"], json={"amount_minor": -1, "reason": "x"})
    ).status_code == 422
    for refused in ("auditor", "admin", "p1"):
        assert (
            await svc.client.post(url, headers=keys[refused], json={"amount_minor": 1, "reason": "x"})
        ).status_code == 403
    body = ok(
        await svc.client.post(url, headers=keys["finance"], json={"amount_minor": 10, "reason": "bank fee"})
    )
    # a residue within the threshold: the invoice counts as paid on the day its money came, on time
    assert (body["status"], body["written_off_minor"], body["open_minor"], body["paid_minor"]) == (
        "paid",
        10,
        0,
        990,
    )
    assert (body["paid_on"], body["on_time"], body["write_off"]["status"]) == (str(TODAY), True, "applied")
    (_, payload), (paid, _) = (await account_events(svc, "p1"))[-2:]
    assert (payload["reason"], payload["written_off_on"], paid) == ("bank fee", str(TODAY), "InvoicePaid")
    again = await svc.client.post(url, headers=keys["finance"], json={"amount_minor": 1, "reason": "x"})
    assert again.status_code == 409
    missing = await svc.client.post(
        "/v1/invoices/inv_nope/write-off", headers=keys["finance"], json={"amount_minor": 1, "reason": "x"}
    )
    assert missing.status_code == 404
    assert (await account(svc, keys["finance"], "p1"))["balance_minor"] == 0


async def test_credit_notes_are_listed_per_partner(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.settlement_approved("p1", 700, "stl_a")
    await feed.settlement_approved("p2", 300, "stl_b")
    everything = ok(await svc.client.get("/v1/credit-notes", headers=keys["finance"]))["items"]
    assert sorted(n["amount_minor"] for n in everything) == [300, 700]
    [own] = ok(await svc.client.get("/v1/credit-notes", headers=keys["p1"], params={"partner_id": "p2"}))[
        "items"
    ]
    assert (own["partner_id"], own["amount_minor"], own["source"], own["issued_on"]) == (
        "p1",
        700,
        "rebate",
        str(TODAY),
    )
    assert {"id", "partner_id", "amount_minor", "reason", "source", "issued_on"} <= own.keys()
    assert (await svc.client.get(f"/v1/credit-notes/{own['id']}", headers=keys["p2"])).status_code == 404
    assert (await svc.client.get("/v1/credit-notes", headers=keys["sales"])).status_code == 403
    assert (await account(svc, keys["p1"], "p1"))["advance_minor"] == 700
