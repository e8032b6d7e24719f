"""Credit's reactions to partners, orders, delivery and rebates events, on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from libs.events.orders import OrderConfirmed
from libs.messaging.consumer import Outcome
from services.credit.domain.account import stream_id
from tests.credit.support import TODAY, Feed, account, account_events, invoices, ok, pay, types
from tests.service_support import RunningService


async def test_a_registered_partner_gets_an_account_on_its_terms(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", "credit", limit=50_000, term=45)
    await feed.register("p2", "prepaid")
    await feed.register("p1", "credit", limit=1, term=1)  # a second registration changes nothing
    finance = await feed.key("finance")
    credit = await account(svc, finance, "p1")
    assert (credit["terms"], credit["credit_limit_minor"], credit["term_days"]) == ("credit", 50_000, 45)
    assert (credit["exposure_minor"], credit["available_minor"], credit["currency"]) == (0, 50_000, "CNY")
    prepaid = await account(svc, finance, "p2")
    assert (prepaid["terms"], prepaid["credit_limit_minor"], prepaid["term_days"]) == ("prepaid", 0, 0)
    assert await types(svc, "p1") == ["AccountOpened"]


async def test_funds_review_within_and_over_the_limit(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=10_000)
    await feed.order("o1", "p1", 6_000)
    await feed.order("o2", "p1", 5_000)
    await feed.order("o3", "p1", 4_000)
    events = await account_events(svc, "p1")
    assert [(t, p.get("order_id"), p.get("how") or p.get("reason")) for t, p in events[1:]] == [
        ("FundsReviewPassed", "o1", "within_limit"),
        ("OrderPutOnHold", "o2", "over_limit"),
        ("FundsReviewPassed", "o3", "within_limit"),
    ]
    finance = await feed.key("finance")
    held = ok(await svc.client.get("/v1/holds", headers=finance, params={"status": "held"}))["items"]
    assert [(h["order_id"], h["hold_reason"], h["amount_minor"]) for h in held] == [
        ("o2", "over_limit", 5_000)
    ]


async def test_an_overdue_invoice_puts_new_orders_on_hold(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=100_000, term=10)
    await feed.order("o1", "p1", 1_000)
    await feed.ship_all("o1", on=TODAY - timedelta(days=11))
    await feed.order("o2", "p1", 10)
    _, payload = (await account_events(svc, "p1"))[-1]
    assert (payload["order_id"], payload["reason"]) == ("o2", "overdue")
    finance = await feed.key("finance")
    assert (await account(svc, finance, "p1"))["overdue_minor"] == 1_000
    ok(await pay(svc, finance, "p1", 1_000), 201)  # paying the overdue invoice releases the order
    assert (await types(svc, "p1"))[-2:] == ["HoldReleased", "FundsReviewPassed"]


async def test_prepaid_orders_wait_for_money_and_reserve_it(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", "prepaid")
    finance = await feed.key("finance")
    ok(await pay(svc, finance, "p1", 1_000), 201)
    await feed.order("o1", "p1", 800)
    await feed.order("o2", "p1", 300)
    assert (await types(svc, "p1"))[-3:] == ["FundsReviewPassed", "AdvanceApplied", "OrderAwaitingPrepayment"]
    figures = await account(svc, finance, "p1")
    assert (figures["advance_minor"], figures["reserved_minor"], figures["available_minor"]) == (
        200,
        800,
        200,
    )
    reply = ok(await pay(svc, finance, "p1", 100), 201)
    assert reply["released_orders"] == ["o2"]
    assert (await account(svc, finance, "p1"))["advance_minor"] == 0


async def test_twenty_racing_orders_never_approve_more_than_the_limit(
    svc: RunningService, feed: Feed
) -> None:
    await feed.register("p1", limit=100_000)
    for n in range(20):
        await feed.place(f"o{n:02d}", "p1", {"SKU-1": (1, 10_000)})
    envelopes = [feed.envelope(f"order-o{n:02d}", OrderConfirmed(order_id=f"o{n:02d}")) for n in range(20)]
    outcomes = await asyncio.gather(*(svc.consumer.handle(e) for e in envelopes))
    assert set(outcomes) == {Outcome.APPLIED}
    events = await account_events(svc, "p1")
    approved = [p["amount_minor"] for t, p in events if t == "FundsReviewPassed"]
    held = [p["order_id"] for t, p in events if t == "OrderPutOnHold"]
    assert sum(approved) <= 100_000
    assert (len(approved), len(held)) == (10, 10)
    finance = await feed.key("finance")
    assert (await account(svc, finance, "p1"))["exposure_minor"] == 100_000


async def test_each_dispatch_is_invoiced_at_the_order_prices(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=100_000, term=30, tier="A", region="east")
    await feed.place("o1", "p1", {"TV": (10, 9_000), "SB": (5, 2_000)})
    await feed.confirm("o1")
    await feed.change_tier("p1", "B")
    first = await feed.dispatch("o1", {"TV": 6}, on=TODAY - timedelta(days=2))
    second = await feed.dispatch("o1", {"TV": 4, "SB": 5}, on=TODAY, complete=True)
    finance = await feed.key("finance")
    issued = await invoices(svc, finance, "p1")
    assert [
        (i["total_minor"], i["issued_on"], i["due_on"], i["status"], i["tier"], i["region"]) for i in issued
    ] == [
        (54_000, str(TODAY - timedelta(days=2)), str(TODAY + timedelta(days=28)), "open", "B", "east"),
        (46_000, str(TODAY), str(TODAY + timedelta(days=30)), "open", "B", "east"),
    ]
    assert [i["dispatch_id"] for i in issued] == [first, second]
    assert issued[1]["lines"] == [
        {"sku": "TV", "category": "cat-TV", "qty": 4, "unit_price_minor": 9_000, "line_total_minor": 36_000},
        {"sku": "SB", "category": "cat-SB", "qty": 5, "unit_price_minor": 2_000, "line_total_minor": 10_000},
    ]
    assert issued[0]["id"].startswith("inv_")
    figures = await account(svc, finance, "p1")
    assert (figures["exposure_minor"], figures["balance_minor"]) == (100_000, 100_000)


async def test_a_redelivered_dispatch_invoices_once(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1")
    await feed.order("o1", "p1", 1_000)
    await feed.dispatch("o1", {"SKU-1": 10}, dispatch_id="d1")
    await feed.dispatch("o1", {"SKU-1": 10}, dispatch_id="d1")  # same dispatch, another event id
    assert (await types(svc, "p1")).count("InvoiceIssued") == 1


async def test_prepaid_flow_end_to_end(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", "prepaid")
    finance = await feed.key("finance")
    await feed.order("o1", "p1", 21_751)
    assert (await types(svc, "p1"))[-1] == "OrderAwaitingPrepayment"
    ok(await pay(svc, finance, "p1", 30_000, bank_ref="B-1"), 201)
    assert (await types(svc, "p1"))[-2:] == ["FundsReviewPassed", "AdvanceApplied"]
    await feed.dispatch("o1", {"SKU-1": 1}, complete=True)
    [invoice] = await invoices(svc, finance, "p1")
    assert (
        invoice["total_minor"],
        invoice["due_on"],
        invoice["status"],
        invoice["paid_minor"],
        invoice["on_time"],
        invoice["paid_on"],
    ) == (21_751, str(TODAY), "paid", 21_751, True, str(TODAY))
    settled = (await account_events(svc, "p1"))[-2:]
    assert settled[0] == (
        "AdvanceApplied",
        {
            "partner_id": "p1",
            "invoice_id": invoice["id"],
            "order_id": "o1",
            "amount_minor": 21_751,
            "currency": "CNY",
            "applied_on": str(TODAY),
        },
    )
    assert settled[1][0] == "InvoicePaid"
    figures = await account(svc, finance, "p1")
    assert (
        figures["advance_minor"],
        figures["reserved_minor"],
        figures["balance_minor"],
        figures["exposure_minor"],
    ) == (30_000 - 21_751, 0, -(30_000 - 21_751), 0)


async def test_refund_returns_become_credit_notes_at_the_order_prices(
    svc: RunningService, feed: Feed
) -> None:
    await feed.register("p1")
    await feed.place("o1", "p1", {"TV": (3, 9_000), "SB": (2, 2_000)})
    await feed.confirm("o1")
    await feed.ship_all("o1")
    ret = await feed.return_received("o1", {"TV": 1, "SB": 2})
    await feed.return_received("o1", {"TV": 1}, kind="exchange")
    finance = await feed.key("finance")
    [note] = ok(await svc.client.get("/v1/credit-notes", headers=finance, params={"partner_id": "p1"}))[
        "items"
    ]
    assert (note["amount_minor"], note["source"], note["source_ref"], note["order_id"]) == (
        13_000,
        "return",
        ret,
        "o1",
    )
    assert [(x["sku"], x["qty"], x["line_total_minor"]) for x in note["lines"]] == [
        ("TV", 1, 9_000),
        ("SB", 2, 4_000),
    ]
    [invoice] = await invoices(svc, finance, "p1")
    assert (invoice["total_minor"], invoice["paid_minor"]) == (31_000, 13_000)
    assert (await account(svc, finance, "p1"))["balance_minor"] == 18_000


async def test_exchange_and_repair_returns_move_no_money(svc: RunningService, feed: Feed) -> None:
    """An exchange's receipt credits nothing and its replacement is not invoiced; nor is a
    repaired unit going back. Only the sale's dispatch is invoiced."""
    await feed.register("p1")
    await feed.place("o1", "p1", {"TV": (3, 9_000)})
    await feed.confirm("o1")
    await feed.ship_all("o1")
    exchange = await feed.return_received("o1", {"TV": 1}, kind="exchange")
    await feed.dispatch("o1", {"TV": 1}, complete=True, purpose="replacement", return_id=exchange)
    repair = await feed.return_received("o1", {"TV": 1}, kind="repair")
    await feed.dispatch("o1", {"TV": 1}, complete=True, purpose="repair", return_id=repair)
    finance = await feed.key("finance")
    [invoice] = await invoices(svc, finance, "p1")
    assert (invoice["total_minor"], invoice["paid_minor"]) == (27_000, 0)
    assert ok(await svc.client.get("/v1/credit-notes", headers=finance,
                                   params={"partner_id": "p1"}))["items"] == []
    assert (await account(svc, finance, "p1"))["balance_minor"] == 27_000
    assert (await types(svc, "p1")).count("InvoiceIssued") == 1
    assert "CreditNoteIssued" not in await types(svc, "p1")


async def test_approved_rebate_settlements_credit_the_account(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1")
    await feed.order("o1", "p1", 1_000)
    await feed.ship_all("o1")
    await feed.settlement_approved("p1", 1_500, "stl_1")
    await feed.settlement_approved("p1", 1_500, "stl_1")  # the same settlement again: nothing more
    await feed.settlement_approved("p1", 0, "stl_2")  # nothing to pay: no credit note
    finance = await feed.key("finance")
    [note] = ok(await svc.client.get("/v1/credit-notes", headers=finance))["items"]
    assert (note["amount_minor"], note["source"], note["source_ref"]) == (1_500, "rebate", "stl_1")
    [invoice] = await invoices(svc, finance, "p1")
    assert invoice["status"] == "paid"
    figures = await account(svc, finance, "p1")
    assert (figures["advance_minor"], figures["balance_minor"]) == (500, -500)
    settling = ("CreditNoteApplied", "AdvanceApplied")
    applied = [(t, e) for t, e in await account_events(svc, "p1") if t in settling]
    assert [(t, e["invoice_id"], e["credit_note_id"], e["amount_minor"]) for t, e in applied] == [
        ("CreditNoteApplied", invoice["id"], note["id"], 1_000)
    ]


async def test_a_cancelled_order_frees_its_room_for_held_orders(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=1_000)
    await feed.order("o1", "p1", 800)
    await feed.order("o2", "p1", 500)
    await feed.cancel("o1", "p1")
    events = await account_events(svc, "p1")
    assert [(t, p["order_id"]) for t, p in events[-2:]] == [
        ("HoldReleased", "o2"),
        ("FundsReviewPassed", "o2"),
    ]
    finance = await feed.key("finance")
    assert (await account(svc, finance, "p1"))["exposure_minor"] == 500
    review = ok(await svc.client.get("/v1/holds/o1", headers=finance))
    assert review["status"] == "cancelled"


async def test_reactions_carry_the_correlation_id_on(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1")
    await feed.place("o1", "p1", {"SKU-1": (1, 10)})
    confirmed = feed.envelope("order-o1", OrderConfirmed(order_id="o1"))
    assert await svc.consumer.handle(confirmed) == Outcome.APPLIED
    assert await svc.consumer.handle(confirmed) == Outcome.DUPLICATE
    [decided] = [e for e in await svc.ctx.store.load(stream_id("p1")) if e.event_type == "FundsReviewPassed"]
    assert (decided.correlation_id, decided.causation_id) == (confirmed.correlation_id, confirmed.event_id)
