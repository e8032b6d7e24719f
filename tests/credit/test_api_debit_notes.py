"""Debit notes, on both databases: an approved negative rebate true-up is owed like an invoice."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.credit.support import TODAY, Feed, account, account_events, invoices, ok, pay, types
from tests.service_support import RunningService


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.fixture
async def keys(feed: Feed) -> dict[str, dict[str, str]]:
    await feed.register("p1", limit=100_000, term=30)
    await feed.register("p2", limit=100_000, term=30)
    await feed.register("p3", "prepaid")
    return {"finance": await feed.key("finance"), "auditor": await feed.key("auditor"),
            "p1": await feed.key("partner", "p1"), "p2": await feed.key("partner", "p2")}


async def debit_notes(svc: RunningService, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    return ok(await svc.client.get("/v1/debit-notes", headers=headers, params=params))["items"]


async def test_a_negative_true_up_is_a_debit_note_on_the_account(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 3_000)
    await feed.ship_all("o1", on=days_ago(20))
    await feed.settlement_approved("p1", -1_200, settlement_id="stl_neg")
    await feed.settlement_approved("p1", -1_200, settlement_id="stl_neg")  # redelivered: one note
    await feed.settlement_approved("p1", 0, settlement_id="stl_zero")
    assert (await types(svc, "p1")).count("DebitNoteIssued") == 1
    [note] = await debit_notes(svc, keys["finance"], partner_id="p1")
    assert note["id"].startswith("dn_")
    assert {k: note[k] for k in ("partner_id", "amount_minor", "settled_minor", "open_minor", "status",
                                 "issued_on", "due_on", "source_kind", "source_ref", "paid_on")} == {
        "partner_id": "p1", "amount_minor": 1_200, "settled_minor": 0, "open_minor": 1_200, "status": "open",
        "issued_on": str(TODAY), "due_on": str(TODAY + timedelta(days=30)), "source_kind": "rebate",
        "source_ref": "stl_neg", "paid_on": None}
    assert note["reason"] == "rebate settlement stl_neg (program prg_1)"
    figures = await account(svc, keys["finance"], "p1")
    assert {k: figures[k] for k in ("exposure_minor", "available_minor", "balance_minor",
                                    "open_invoices_minor", "open_debit_notes_minor", "overdue_minor")} == {
        "exposure_minor": 4_200, "available_minor": 95_800, "balance_minor": 4_200,
        "open_invoices_minor": 3_000, "open_debit_notes_minor": 1_200, "overdue_minor": 0}
    statement = ok(await svc.client.get("/v1/statements/p1", headers=keys["p1"],
                                        params={"from": str(days_ago(30)), "to": str(TODAY)}))
    assert [(x["date"], x["kind"], x["ref"], x["debit_minor"], x["credit_minor"])
            for x in statement["lines"]] == [
        (str(days_ago(20)), "invoice", (await invoices(svc, keys["finance"], "p1"))[0]["id"], 3_000, 0),
        (str(TODAY), "debit_note", note["id"], 1_200, 0)]
    assert statement["closing_minor"] == figures["balance_minor"] == 4_200
    # partner-scoped like credit notes: a partner key sees its own only, whatever it asks for
    assert [n["id"] for n in await debit_notes(svc, keys["p1"])] == [note["id"]]
    assert await debit_notes(svc, keys["p2"], partner_id="p1") == []
    assert await debit_notes(svc, keys["p2"]) == []
    assert [n["id"] for n in await debit_notes(svc, keys["auditor"], status="open")] == [note["id"]]
    assert ok(await svc.client.get(f"/v1/debit-notes/{note['id']}", headers=keys["p1"]))["id"] == note["id"]
    hidden = await svc.client.get(f"/v1/debit-notes/{note['id']}", headers=keys["p2"])
    assert hidden.status_code == 404 and hidden.json()["type"].endswith("/debit-note-not-found")


async def test_the_next_receipt_pays_invoices_and_debit_notes_oldest_first(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.order("o1", "p1", 3_000)
    await feed.ship_all("o1", on=days_ago(20))
    await feed.settlement_approved("p1", -1_200, settlement_id="stl_neg")
    await feed.order("o2", "p1", 500)
    await feed.ship_all("o2", on=TODAY)  # issued the same day as the debit note: an invoice goes first
    finance = keys["finance"]
    body = ok(await pay(svc, finance, "p1", 3_500, bank_ref="B-1"), 201)
    [older, same_day] = await invoices(svc, finance, "p1")
    [note] = await debit_notes(svc, finance)
    assert body["applications"] == [{"invoice_id": older["id"], "amount_minor": 3_000},
                                    {"invoice_id": same_day["id"], "amount_minor": 500}]
    assert body["debit_note_applications"] == []
    assert (note["open_minor"], body["advance_minor"]) == (1_200, 0)
    second = ok(await pay(svc, finance, "p1", 1_500, bank_ref="B-2"), 201)
    assert second["debit_note_applications"] == [{"debit_note_id": note["id"], "amount_minor": 1_200}]
    assert (second["applied_minor"], second["advance_minor"]) == (1_200, 300)
    [note] = await debit_notes(svc, finance)
    assert (note["status"], note["settled_minor"], note["open_minor"], note["paid_on"]) == (
        "paid", 1_200, 0, str(TODAY))
    figures = await account(svc, finance, "p1")
    assert (figures["balance_minor"], figures["exposure_minor"], figures["open_debit_notes_minor"]) == (
        -300, 0, 0)
    settled = [p for t, p in await account_events(svc, "p1") if t == "DebitNoteSettled"]
    assert [(p["amount_minor"], p["by"], p["ref"], p["settled_on"]) for p in settled] == [
        (1_200, "payment", second["id"], str(TODAY))]


async def test_a_receipt_settles_the_older_debit_note_before_a_newer_invoice(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    await feed.settlement_approved("p2", -700, settlement_id="stl_p2")
    await feed.order("o1", "p2", 1_000)
    await feed.ship_all("o1", on=TODAY)
    finance = keys["finance"]
    body = ok(await pay(svc, finance, "p2", 1_000), 201)
    [note] = await debit_notes(svc, finance, partner_id="p2")
    [invoice] = await invoices(svc, finance, "p2")
    # same issue day: the invoice first, then the debit note
    assert body["applications"] == [{"invoice_id": invoice["id"], "amount_minor": 1_000}]
    assert note["open_minor"] == 700
    fix = ok(await pay(svc, finance, "p2", 200), 201)
    assert fix["debit_note_applications"] == [{"debit_note_id": note["id"], "amount_minor": 200}]


async def test_advance_and_credit_notes_settle_debit_notes(
    svc: RunningService, feed: Feed, keys: dict[str, dict[str, str]]
) -> None:
    finance = keys["finance"]
    ok(await pay(svc, finance, "p3", 1_000), 201)
    await feed.settlement_approved("p3", -400, settlement_id="stl_a")  # the advance pays it at once
    [note] = await debit_notes(svc, finance, partner_id="p3")
    assert (note["status"], note["paid_on"], note["due_on"]) == ("paid", str(TODAY), str(TODAY))
    assert (await account(svc, finance, "p3"))["advance_minor"] == 600
    await feed.settlement_approved("p1", -900, settlement_id="stl_b")
    await feed.settlement_approved("p1", 300, settlement_id="stl_c")  # a later payout nets part of it
    [note] = await debit_notes(svc, finance, partner_id="p1")
    assert (note["settled_minor"], note["open_minor"], note["status"]) == (300, 600, "open")
    settled = [p for t, p in await account_events(svc, "p1") if t == "DebitNoteSettled"]
    assert [(p["by"], p["amount_minor"]) for p in settled] == [("credit_note", 300)]
    assert (await account(svc, finance, "p1"))["balance_minor"] == 600
