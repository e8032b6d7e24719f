"""Write-offs over HTTP, on both databases: a residue at once, anything larger under maker-checker,
and ``on_time`` decided by when the money came."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.credit.support import TODAY, Feed, account, account_events, invoices, ok, pay
from tests.service_support import RunningService


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.fixture
async def keys(feed: Feed) -> dict[str, dict[str, str]]:
    await feed.register("p1", limit=1_000_000, term=30)
    await feed.register("p2", limit=1_000_000, term=30)
    return {"k1": await feed.key("finance"), "k2": await feed.key("finance"),
            "auditor": await feed.key("auditor"), "p1": await feed.key("partner", "p1"),
            "p2": await feed.key("partner", "p2")}


async def write_off(svc: RunningService, headers: dict[str, str], invoice_id: str, amount: int,
                    reason: str = "uncollectable") -> Any:
    return await svc.client.post(f"/v1/invoices/{invoice_id}/write-off", headers=headers,
                                 json={"amount_minor": amount, "reason": reason})


async def one_invoice(svc: RunningService, feed: Feed, headers: dict[str, str], total: int,
                      on: date = TODAY, partner_id: str = "p1", order_id: str = "o1") -> dict[str, Any]:
    await feed.order(order_id, partner_id, total)
    await feed.ship_all(order_id, on=on)
    [invoice] = [i for i in await invoices(svc, headers, partner_id) if i["order_id"] == order_id]
    return invoice


async def test_writing_off_a_whole_invoice_needs_a_second_finance_key(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    invoice = await one_invoice(svc, feed, keys["k1"], 300_000)  # 3,000.00 unpaid
    proposed = ok(await write_off(svc, keys["k1"], invoice["id"], 300_000, "customer vanished"))
    proposal = proposed["write_off"]
    assert (proposed["status"], proposed["open_minor"], proposed["written_off_minor"]) == ("open", 300_000, 0)
    assert (proposal["status"], proposal["amount_minor"], proposal["invoice_id"], proposal["reason"]) == (
        "proposed", 300_000, invoice["id"], "customer vanished")
    assert proposal["id"].startswith("wo_") and proposal["proposed_by"].startswith("finance:")
    assert (await account(svc, keys["k1"], "p1"))["balance_minor"] == 300_000
    assert (await account_events(svc, "p1"))[-1][0] == "WriteOffProposed"
    url = f"/v1/write-offs/{proposal['id']}"
    own = await svc.client.post(f"{url}/approve", headers=keys["k1"])
    assert own.status_code == 403 and own.json()["type"].endswith("/same-approver"), own.text
    for refused in ("auditor", "p1"):
        assert (await svc.client.post(f"{url}/approve", headers=keys[refused])).status_code == 403
    assert (await account(svc, keys["k1"], "p1"))["balance_minor"] == 300_000
    approved = ok(await svc.client.post(f"{url}/approve", headers=keys["k2"]))
    assert (approved["status"], approved["open_minor"], approved["written_off_minor"]) == (
        "written_off", 0, 300_000)
    assert (approved["on_time"], approved["paid_on"]) == (None, None)  # written off, never paid
    decided = approved["write_off"]
    assert (decided["status"], decided["decided_on"]) == ("approved", str(TODAY))
    assert decided["decided_by"].startswith("finance:") and decided["decided_by"] != proposal["proposed_by"]
    assert [t for t, _ in (await account_events(svc, "p1"))[-2:]] == ["WriteOffApproved", "InvoiceWrittenOff"]
    figures = await account(svc, keys["k1"], "p1")
    assert (figures["balance_minor"], figures["exposure_minor"]) == (0, 0)
    statement = ok(await svc.client.get("/v1/statements/p1", headers=keys["p1"]))
    assert [(x["kind"], x["debit_minor"], x["credit_minor"]) for x in statement["lines"]] == [
        ("invoice", 300_000, 0), ("write_off", 0, 300_000)]
    again = await svc.client.post(f"{url}/approve", headers=keys["k2"])
    assert again.status_code == 409 and again.json()["type"].endswith("/write-off-decided")
    assert ok(await svc.client.get(url, headers=keys["p1"]))["status"] == "approved"
    assert (await svc.client.get(url, headers=keys["p2"])).status_code == 404


async def test_the_threshold_is_inclusive_and_one_proposal_waits_per_invoice(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    invoice = await one_invoice(svc, feed, keys["k1"], 10_000)
    at_threshold = ok(await write_off(svc, keys["k1"], invoice["id"], 100, "bank fee"))
    assert (at_threshold["written_off_minor"], at_threshold["write_off"]["status"]) == (100, "applied")
    above = ok(await write_off(svc, keys["k1"], invoice["id"], 101, "dispute"))
    assert (above["written_off_minor"], above["write_off"]["status"]) == (100, "proposed")
    second = await write_off(svc, keys["k2"], invoice["id"], 500, "another")
    assert second.status_code == 409 and second.json()["write_off_id"] == above["write_off"]["id"]
    small = ok(await write_off(svc, keys["k2"], invoice["id"], 50, "rounding"))  # residues still apply
    assert small["written_off_minor"] == 150
    listed = ok(await svc.client.get("/v1/write-offs", headers=keys["auditor"],
                                     params={"partner_id": "p1", "status": "proposed"}))["items"]
    assert [(w["id"], w["amount_minor"]) for w in listed] == [(above["write_off"]["id"], 101)]
    assert ok(await svc.client.get("/v1/write-offs", headers=keys["p2"],
                                   params={"partner_id": "p1"}))["items"] == []
    assert len(ok(await svc.client.get("/v1/write-offs", headers=keys["p1"]))["items"]) == 3
    url = f"/v1/write-offs/{above['write_off']['id']}"
    assert (await svc.client.post(f"{url}/reject", headers=keys["k1"], json={})).status_code == 422
    rejected = ok(await svc.client.post(f"{url}/reject", headers=keys["k1"], json={"reason": "collect it"}))
    assert (rejected["status"], rejected["open_minor"], rejected["written_off_minor"]) == ("open", 9_850, 150)
    assert (rejected["write_off"]["status"], rejected["write_off"]["decision_reason"]) == (
        "rejected", "collect it")
    late = await svc.client.post(f"{url}/approve", headers=keys["k2"])
    assert late.status_code == 409
    assert (await svc.client.post("/v1/write-offs/wo_nope/approve", headers=keys["k2"])).status_code == 404


async def test_an_approval_needs_the_amount_still_open(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    invoice = await one_invoice(svc, feed, keys["k1"], 1_000)
    proposal = ok(await write_off(svc, keys["k1"], invoice["id"], 500))["write_off"]
    ok(await pay(svc, keys["k1"], "p1", 800), 201)
    stale = await svc.client.post(f"/v1/write-offs/{proposal['id']}/approve", headers=keys["k2"])
    assert stale.status_code == 409 and stale.json()["open_minor"] == 200, stale.text
    [invoice] = await invoices(svc, keys["k1"], "p1")
    assert (invoice["open_minor"], invoice["written_off_minor"]) == (200, 0)


async def test_a_residue_write_off_keeps_an_on_time_invoice_on_time(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    on_time = await one_invoice(svc, feed, keys["k1"], 100_000, on=days_ago(40))  # due 10 days ago
    ok(await pay(svc, keys["k1"], "p1", 99_997, received_on=days_ago(15)), 201)
    closed = ok(await write_off(svc, keys["k1"], on_time["id"], 3, "3 fen short"))
    assert (closed["status"], closed["paid_on"], closed["on_time"], closed["written_off_minor"]) == (
        "paid", str(days_ago(15)), True, 3)
    late = await one_invoice(svc, feed, keys["k1"], 100_000, on=days_ago(40), order_id="o2")
    ok(await pay(svc, keys["k1"], "p1", 99_997, received_on=days_ago(5)), 201)
    closed = ok(await write_off(svc, keys["k1"], late["id"], 3, "3 fen short"))
    assert (closed["status"], closed["paid_on"], closed["on_time"]) == ("paid", str(days_ago(5)), False)
    paid = [p for t, p in await account_events(svc, "p1") if t == "InvoicePaid"]
    assert [(p["invoice_id"], p["paid_on"], p["on_time"]) for p in paid] == [
        (on_time["id"], str(days_ago(15)), True), (late["id"], str(days_ago(5)), False)]
    nothing_paid = await one_invoice(svc, feed, keys["k1"], 80, order_id="o3")
    closed = ok(await write_off(svc, keys["k1"], nothing_paid["id"], 80, "too small to chase"))
    assert (closed["status"], closed["on_time"], closed["paid_on"]) == ("written_off", None, None)
