"""Accounts, terms, holds and statements over HTTP, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.credit.support import TODAY, Feed, account, account_events, ok, pay, types
from tests.service_support import ADMIN, RunningService


@pytest.fixture
async def keys(feed: Feed) -> dict[str, dict[str, str]]:
    await feed.register("p1", limit=10_000, term=30)
    await feed.register("p2", "prepaid")
    return {role: await feed.key(role) for role in ("finance", "auditor", "sales", "warehouse")} | {
        "p1": await feed.key("partner", "p1"),
        "p2": await feed.key("partner", "p2"),
        "admin": ADMIN,
    }


async def test_account_is_read_by_finance_auditors_and_its_own_partner(
    svc: RunningService, keys: dict[str, dict[str, str]]
) -> None:
    for reader in ("finance", "auditor", "p1"):
        body = await account(svc, keys[reader], "p1")
        assert {
            "partner_id",
            "terms",
            "credit_limit_minor",
            "term_days",
            "exposure_minor",
            "available_minor",
            "balance_minor",
            "advance_minor",
            "overdue_minor",
            "currency",
        } <= body.keys()
    for refused in ("sales", "warehouse", "admin"):
        assert (await svc.client.get("/v1/accounts/p1", headers=keys[refused])).status_code == 403
    other = await svc.client.get("/v1/accounts/p1", headers=keys["p2"])
    assert other.status_code == 404 and "p1" not in other.json().get("errors", "")
    assert (await svc.client.get("/v1/accounts/nobody", headers=keys["finance"])).status_code == 404
    assert (await svc.client.get("/v1/accounts/p1")).status_code == 401


async def test_terms_change_re_evaluates_held_orders(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 8_000)
    await feed.order("o2", "p1", 5_000)
    body = ok(
        await svc.client.put(
            "/v1/accounts/p1/terms",
            headers=keys["finance"],
            json={"kind": "credit", "credit_limit_minor": 20_000},
        )
    )
    assert (body["credit_limit_minor"], body["term_days"], body["exposure_minor"]) == (20_000, 30, 13_000)
    assert (await types(svc, "p1"))[-3:] == ["TermsChanged", "HoldReleased", "FundsReviewPassed"]
    same = ok(
        await svc.client.put(
            "/v1/accounts/p1/terms",
            headers=keys["finance"],
            json={"kind": "credit", "credit_limit_minor": 20_000, "term_days": 30},
        )
    )
    assert same == body and (await types(svc, "p1")).count("TermsChanged") == 1
    prepaid = ok(
        await svc.client.put("/v1/accounts/p1/terms", headers=keys["finance"], json={"kind": "prepaid"})
    )
    assert (prepaid["terms"], prepaid["credit_limit_minor"], prepaid["term_days"]) == ("prepaid", 0, 0)


BAD_TERMS: list[dict[str, object]] = [
    {"kind": "bogus"},
    {"kind": "credit", "credit_limit_minor": -1},
    {"kind": "credit", "term_days": 5000},
    {"kind": "credit", "credit_limit_minor": 1.5},
    {"kind": "prepaid", "credit_limit_minor": 100},
    {"kind": "credit", "credit_limit_minor": 1, "colour": "red"},
    {},
]


async def test_bad_terms_answer_422(svc: RunningService, keys: dict[str, dict[str, str]]) -> None:
    for payload in BAD_TERMS:
        response = await svc.client.put("/v1/accounts/p1/terms", headers=keys["finance"], json=payload)
        assert response.status_code == 422, f"{payload}: {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")
    switched = await svc.client.put(
        "/v1/accounts/p2/terms", headers=keys["finance"], json={"kind": "credit", "credit_limit_minor": 100}
    )
    assert switched.status_code == 422  # from prepaid, credit terms name the limit and the term


async def test_terms_need_finance_and_an_account(
    svc: RunningService, keys: dict[str, dict[str, str]]
) -> None:
    for refused in ("auditor", "sales", "admin", "p1"):
        response = await svc.client.put(
            "/v1/accounts/p1/terms", headers=keys[refused], json={"kind": "prepaid"}
        )
        assert response.status_code == 403
    missing = await svc.client.put(
        "/v1/accounts/nobody/terms", headers=keys["finance"], json={"kind": "prepaid"}
    )
    assert missing.status_code == 404


async def test_release_and_reject_held_orders(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 9_000)
    await feed.order("o2", "p1", 5_000)
    await feed.order("o3", "p1", 4_000)
    finance = keys["finance"]
    released = ok(
        await svc.client.post("/v1/holds/o2/release", headers=finance, json={"reason": "CFO agreed"})
    )
    assert (released["status"], released["how"], released["decision_reason"]) == (
        "approved",
        "released",
        "CFO agreed",
    )
    events = await account_events(svc, "p1")
    assert events[-2][0] == "HoldReleased" and events[-2][1]["released_by"].startswith("finance:")
    assert (await account(svc, finance, "p1"))["exposure_minor"] == 14_000  # over the limit: finance's call
    rejected = ok(await svc.client.post("/v1/holds/o3/reject", headers=finance, json={"reason": "risk"}))
    assert rejected["status"] == "rejected"
    assert (await types(svc, "p1"))[-1] == "OrderRejectedByFinance"
    for order_id in ("o1", "o2", "o3"):
        for action in ("release", "reject"):
            again = await svc.client.post(
                f"/v1/holds/{order_id}/{action}", headers=finance, json={"reason": "x"}
            )
            assert again.status_code == 409, again.text
    missing = await svc.client.post("/v1/holds/nope/release", headers=finance, json={"reason": "x"})
    assert missing.status_code == 404
    await feed.place("o4", "p1", {"SKU-1": (1, 1)})  # placed, never confirmed: not held
    assert (
        await svc.client.post("/v1/holds/o4/reject", headers=finance, json={"reason": "x"})
    ).status_code == 409


async def test_holds_need_finance_and_a_reason(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 20_000)
    for refused in ("auditor", "sales", "warehouse", "admin", "p1"):
        response = await svc.client.post("/v1/holds/o1/release", headers=keys[refused], json={"reason": "x"})
        assert response.status_code == 403
    for bad in ({}, {"reason": ""}, {"reason": "x", "extra": 1}):
        assert (
            await svc.client.post("/v1/holds/o1/release", headers=keys["finance"], json=bad)
        ).status_code == 422
    first = await svc.client.post(
        "/v1/holds/o1/release", headers=keys["finance"] | {"Idempotency-Key": "k1"}, json={"reason": "ok"}
    )
    repeat = await svc.client.post(
        "/v1/holds/o1/release", headers=keys["finance"] | {"Idempotency-Key": "k1"}, json={"reason": "ok"}
    )
    assert (first.status_code, repeat.status_code, repeat.json()) == (200, 200, first.json())
    listed = ok(await svc.client.get("/v1/holds", headers=keys["p2"], params={"partner_id": "p1"}))
    assert listed["items"] == []


async def test_statement_arithmetic(svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]) -> None:
    finance = keys["finance"]
    await feed.order("o1", "p1", 6_000)
    await feed.dispatch("o1", {"SKU-1": 5}, on=TODAY - timedelta(days=40))  # 3_000
    ok(await pay(svc, finance, "p1", 1_000, bank_ref="B-1", received_on=TODAY - timedelta(days=25)), 201)
    await feed.dispatch("o1", {"SKU-1": 5}, on=TODAY - timedelta(days=5))  # 3_000
    await feed.settlement_approved("p1", 200)
    invoice_id = ok(await svc.client.get("/v1/invoices", headers=finance, params={"status": "open"}))[
        "items"
    ][0]["id"]
    ok(
        await svc.client.post(
            f"/v1/invoices/{invoice_id}/write-off",
            headers=finance,
            json={"amount_minor": 50, "reason": "bank charges"},
        )
    )
    period = {"from": str(TODAY - timedelta(days=10)), "to": str(TODAY)}
    body = ok(await svc.client.get("/v1/statements/p1", headers=keys["p1"], params=period))
    assert (body["partner_id"], body["from"], body["to"]) == ("p1", period["from"], period["to"])
    assert body["opening_minor"] == 3_000 - 1_000
    assert [(x["kind"], x["debit_minor"], x["credit_minor"]) for x in body["lines"]] == [
        ("invoice", 3_000, 0),
        ("credit_note", 0, 200),
        ("write_off", 0, 50),
    ]
    assert body["closing_minor"] == 2_000 + 3_000 - 250
    assert (await account(svc, finance, "p1"))["balance_minor"] == body["closing_minor"]
    whole = ok(
        await svc.client.get(
            "/v1/statements/p1",
            headers=finance,
            params={"from": str(TODAY - timedelta(days=60)), "to": str(TODAY)},
        )
    )
    assert [x["kind"] for x in whole["lines"]] == [
        "invoice",
        "payment",
        "invoice",
        "credit_note",
        "write_off",
    ]
    assert (whole["opening_minor"], whole["closing_minor"]) == (0, 4_750)
    default = ok(await svc.client.get("/v1/statements/p1", headers=keys["auditor"]))
    assert (default["from"], default["to"]) == (str(TODAY.replace(day=1)), str(TODAY))
    backwards = await svc.client.get(
        "/v1/statements/p1",
        headers=finance,
        params={"from": str(TODAY), "to": str(TODAY - timedelta(days=1))},
    )
    assert backwards.status_code == 422
    assert (
        await svc.client.get("/v1/statements/p1", headers=finance, params={"to": "2026-02-30"})
    ).status_code == 422
    assert (await svc.client.get("/v1/statements/p1", headers=keys["p2"])).status_code == 404
    assert (await svc.client.get("/v1/statements/p1", headers=keys["sales"])).status_code == 403


async def test_partners_confirm_or_dispute_their_statements(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 1_000)
    await feed.ship_all("o1", on=TODAY - timedelta(days=3))
    url = "/v1/statements/p1"
    wrong = await svc.client.post(
        f"{url}/confirm", headers=keys["p1"], json={"to": str(TODAY), "closing_minor": 1}
    )
    assert wrong.status_code == 409 and wrong.json()["closing_minor"] == 1_000
    before = await svc.client.post(
        f"{url}/confirm", headers=keys["p1"], json={"to": str(TODAY - timedelta(days=4)), "closing_minor": 0}
    )
    assert before.status_code == 201
    confirmed = ok(
        await svc.client.post(
            f"{url}/confirm", headers=keys["p1"], json={"to": str(TODAY), "closing_minor": 1_000}
        ),
        201,
    )
    assert (confirmed["status"], confirmed["closing_minor"]) == ("confirmed", 1_000)
    assert ok(await svc.client.get(url, headers=keys["p1"]))["status"] == "confirmed"
    disputed = ok(
        await svc.client.post(
            f"{url}/dispute", headers=keys["p1"], json={"to": str(TODAY), "reason": "invoice 2 is not ours"}
        ),
        201,
    )
    assert disputed["status"] == "disputed"
    assert (await types(svc, "p1"))[-3:] == ["StatementConfirmed", "StatementConfirmed", "StatementDisputed"]
    for refused in ("finance", "auditor", "admin"):
        response = await svc.client.post(
            f"{url}/dispute", headers=keys[refused], json={"to": str(TODAY), "reason": "x"}
        )
        assert response.status_code == 403
    other = await svc.client.post(
        f"{url}/confirm", headers=keys["p2"], json={"to": str(TODAY), "closing_minor": 0}
    )
    assert other.status_code == 404
    bad = await svc.client.post(f"{url}/dispute", headers=keys["p1"], json={"to": str(TODAY), "reason": ""})
    assert bad.status_code == 422
