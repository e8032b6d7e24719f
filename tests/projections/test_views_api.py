"""The views over HTTP on both databases: timeline, partner 360, aging, sales; roles and isolation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from libs.events import credit, delivery, orders, partners, rebates
from libs.events.base import EventMetadata
from libs.events.values import SkuPrice, SkuQty
from libs.store.database import Database
from services.projections.api.schemas import OrderTimeline
from tests.projections.support import (
    ArchiveReads,
    Feed,
    accrued,
    caused_by,
    credit_note,
    invoice,
    placed,
    projections,
    registered,
    rendered,
)
from tests.service_support import ADMIN


def at(day: int, hour: int, second: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, 0, second, tzinfo=UTC)


async def order_chain(feed: Feed) -> None:
    """o1 of p1 through stock, funds, shipment, invoice and payment; o2 of p2 placed."""
    await feed.emit("partner-p1", [registered("p1")])
    await feed.emit("partner-p2", [registered("p2", region="west")])
    [placement] = await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)])],
                                  meta=EventMetadata(actor="partner:k1"), at=at(2, 9))
    # delivery's clock runs a second behind: its reaction still shows after the placement
    [allocated] = await feed.emit("stock-o1", [delivery.StockAllocated(
        order_id="o1", lines=[SkuQty(sku="A", qty=2)])], meta=caused_by(placement), at=at(2, 8, 59))
    # the same conversation touching another partner's order: that event is o2's, not o1's
    await feed.emit("stock-o2", [delivery.StockAllocated(
        order_id="o2", lines=[SkuQty(sku="B", qty=1)])], meta=caused_by(placement), at=at(2, 9, 2))
    [confirmed] = await feed.emit("order-o1", [orders.OrderConfirmed(order_id="o1")],
                                  meta=caused_by(allocated), at=at(2, 9, 2))
    [funds] = await feed.emit("review-o1", [credit.FundsReviewPassed(
        order_id="o1", partner_id="p1", amount_minor=1000, how="within_limit")],
        meta=caused_by(confirmed), at=at(2, 9, 3))
    [approved] = await feed.emit("order-o1", [orders.OrderApproved(order_id="o1")],
                                 meta=caused_by(funds), at=at(2, 9, 4))
    await feed.emit("shipment-s1", [delivery.ShipmentCreated(
        shipment_id="s1", order_id="o1", partner_id="p1", lines=[SkuQty(sku="A", qty=2)])],
        meta=caused_by(approved), at=at(2, 9, 5))
    [dispatched] = await feed.emit("shipment-s1", [delivery.ShipmentDispatched(
        shipment_id="s1", order_id="o1", partner_id="p1", dispatch_id="d1",
        lines=[SkuQty(sku="A", qty=2)], carrier="c", tracking_no="t", dispatched_on=date(2025, 1, 3),
        remaining=[], complete=True)], meta=EventMetadata(actor="warehouse:w1"), at=at(3, 10))
    await feed.emit("order-o1", [orders.OrderShipped(order_id="o1")],
                    meta=caused_by(dispatched), at=at(3, 10, 1))
    [issued] = await feed.emit("invoice-i1", [invoice(
        "i1", "o1", "p1", issued_on=date(2025, 1, 3), due_on=date(2025, 2, 2),
        lines=[("A", 2, 500)])], meta=caused_by(dispatched), at=at(3, 10, 2))
    await feed.emit("accrual-r1-p1", [accrued("r1", "p1", 50)], meta=caused_by(issued))
    payment = EventMetadata(actor="finance:f1")
    await feed.emit("account-p1", [credit.PaymentReceived(
        payment_id="pay1", partner_id="p1", amount_minor=1000, bank_ref="b1",
        received_on=date(2025, 1, 5)), credit.PaymentApplied(
        payment_id="pay1", invoice_id="i1", partner_id="p1", amount_minor=1000,
        applied_on=date(2025, 1, 5))], meta=payment, at=at(5, 11))
    await feed.emit("invoice-i1", [credit.InvoicePaid(
        invoice_id="i1", partner_id="p1", paid_on=date(2025, 1, 5), on_time=True)],
        meta=payment, at=at(5, 11, 1))
    await feed.emit("order-o2", [placed("o2", "p2", [("B", 1, 700)])], at=at(2, 9, 1))


async def test_timeline_in_causal_order_across_services(db: Database) -> None:
    async with projections(db) as feed:
        await order_chain(feed)
        answer = await feed.svc.client.get("/v1/views/orders/o1/timeline", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["order_id"] == "o1"
        assert [(e["service"], e["type"]) for e in body["events"]] == [
            ("orders", "OrderPlaced"), ("delivery", "StockAllocated"),
            ("orders", "OrderConfirmed"), ("credit", "FundsReviewPassed"),
            ("orders", "OrderApproved"), ("delivery", "ShipmentCreated"),
            ("delivery", "ShipmentDispatched"), ("orders", "OrderShipped"),
            ("credit", "InvoiceIssued"), ("credit", "PaymentApplied"), ("credit", "InvoicePaid")]
        first, second = body["events"][:2]
        assert first["actor"] == "partner:k1" and first["data"]["total_minor"] == 1000
        assert second["causation_id"] == first["event_id"]
        assert second["correlation_id"] == first["correlation_id"]
        assert set(body["events"][0]) >= {"service", "type", "occurred_at", "actor", "data",
                                          "event_id", "causation_id", "correlation_id"}


async def test_a_partners_termination_shows_on_the_timeline_of_the_orders_it_cancelled(
        db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)])], at=at(2, 9))
        await feed.emit("order-o2", [placed("o2", "p1", [("A", 1, 500)])], at=at(2, 9, 1))
        [terminated] = await feed.emit("partner-p1", [partners.PartnerTerminated(
            partner_id="p1", reason="breach")], meta=EventMetadata(actor="sales:s1"), at=at(4, 9))
        for order_id in ("o1", "o2"):
            await feed.emit(f"order-{order_id}", [orders.OrderCancelled(
                order_id=order_id, partner_id="p1", reason="partner terminated: breach")],
                meta=caused_by(terminated), at=at(4, 9, 1))
        for order_id in ("o1", "o2"):
            answer = await feed.svc.client.get(f"/v1/views/orders/{order_id}/timeline", headers=ADMIN)
            events = answer.json()["events"]
            assert [(e["service"], e["type"]) for e in events] == [
                ("orders", "OrderPlaced"), ("partners", "PartnerTerminated"), ("orders", "OrderCancelled")]
            assert events[1]["data"]["reason"] == "breach"
            assert events[2]["causation_id"] == events[1]["event_id"]


async def test_a_timeline_is_read_in_one_statement_and_answered_as_its_model_renders(
        db: Database) -> None:
    """The order's events, its placing conversation's and the partner's that caused one of
    them come in one statement; the answer is what ``OrderTimeline`` renders, byte for byte,
    with the ids as published."""
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        [placement] = await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)])], at=at(2, 9))
        [allocated] = await feed.emit("stock-o1", [delivery.StockAllocated(
            order_id="o1", lines=[SkuQty(sku="A", qty=2)])], meta=caused_by(placement), at=at(2, 9, 1))
        [terminated] = await feed.emit("partner-p1", [partners.PartnerTerminated(
            partner_id="p1", reason="breach")], meta=EventMetadata(actor="sales:s1"), at=at(3, 9))
        [cancelled] = await feed.emit("order-o1", [orders.OrderCancelled(
            order_id="o1", partner_id="p1", reason="partner terminated: breach")],
            meta=caused_by(terminated), at=at(3, 9, 1))
        with ArchiveReads(db) as reads:
            answer = await feed.svc.client.get("/v1/views/orders/o1/timeline", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert len(reads.sent) == 1, reads.sent
        events = answer.json()["events"]
        assert [(e["type"], e["event_id"], e["causation_id"]) for e in events] == [
            ("OrderPlaced", str(placement.event_id), None),
            ("StockAllocated", str(allocated.event_id), str(placement.event_id)),
            ("PartnerTerminated", str(terminated.event_id), None),
            ("OrderCancelled", str(cancelled.event_id), str(terminated.event_id))]
        assert {e["correlation_id"] for e in events[:2]} == {str(placement.correlation_id)}
        assert events[0]["data"] == placement.payload()
        assert answer.content == rendered(OrderTimeline, answer)


async def test_a_timeline_before_its_placement_arrived_belongs_to_the_partner_its_events_name(
        db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("order-o9", [orders.OrderConfirmed(order_id="o9")], at=at(2, 9))
        await feed.emit("review-o9", [credit.FundsReviewPassed(
            order_id="o9", partner_id="p1", amount_minor=100, how="within_limit")], at=at(2, 9, 1))
        client = feed.svc.client
        answer = await client.get("/v1/views/orders/o9/timeline", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert answer.json()["partner_id"] == "p1"
        assert [e["type"] for e in answer.json()["events"]] == ["OrderConfirmed", "FundsReviewPassed"]
        p1 = await feed.key("partner", "p1")
        p2 = await feed.key("partner", "p2")
        assert (await client.get("/v1/views/orders/o9/timeline", headers=p1)).status_code == 200
        assert (await client.get("/v1/views/orders/o9/timeline", headers=p2)).status_code == 404


async def test_the_deal_that_priced_an_order_shows_on_its_timeline_and_in_the_360(db: Database) -> None:
    def registration(deal_id: str, partner_id: str) -> orders.DealRegistered:
        return orders.DealRegistered(
            deal_id=deal_id, partner_id=partner_id, end_customer="Acme", customer_key="acme",
            lines=[SkuQty(sku="A", qty=5)], expires_on=date(2025, 3, 1))

    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        await feed.emit("partner-p2", [registered("p2")])
        await feed.emit("deals-acme", [registration("dl1", "p1")], at=at(1, 9))
        await feed.emit("deals-acme", [registration("dl0", "p1")], at=at(1, 9, 1))  # not cited
        await feed.emit("deals-acme", [orders.DealApproved(
            deal_id="dl1", partner_id="p1", prices=[SkuPrice(sku="A", unit_price_minor=450)])],
            at=at(1, 10))
        await feed.emit("deals-acme", [orders.DealConflictRecorded(
            deal_id="dl2", partner_id="p2", end_customer="ACME", customer_key="acme",
            lines=[SkuQty(sku="A", qty=1)], expires_on=date(2025, 3, 1), conflicting_deal_id="dl1",
            conflicting_partner_id="p1", skus=["A"])], at=at(1, 11))
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 450)]).model_copy(
            update={"deal_id": "dl1"})], at=at(2, 9))
        with ArchiveReads(db) as reads:  # the deal's events too
            timeline = (await feed.svc.client.get("/v1/views/orders/o1/timeline", headers=ADMIN)).json()
        assert len(reads.sent) == 1, reads.sent
        assert [(e["type"], e["data"].get("deal_id")) for e in timeline["events"]] == [
            ("DealRegistered", "dl1"), ("DealApproved", "dl1"), ("OrderPlaced", "dl1")]
        first = (await feed.svc.client.get("/v1/views/partners/p1", headers=ADMIN)).json()
        assert first["deals"] == {"count": 2, "by_status": {"approved": 1, "pending": 1}}
        second = (await feed.svc.client.get("/v1/views/partners/p2", headers=ADMIN)).json()
        assert second["deals"] == {"count": 1, "by_status": {"refused": 1}}


async def test_timeline_and_360_are_isolated_per_partner(db: Database) -> None:
    async with projections(db) as feed:
        await order_chain(feed)
        p1 = await feed.key("partner", "p1")
        p2 = await feed.key("partner", "p2")
        sales = await feed.key("sales")
        client = feed.svc.client
        assert (await client.get("/v1/views/orders/o1/timeline", headers=p1)).status_code == 200
        assert (await client.get("/v1/views/orders/o1/timeline", headers=p2)).status_code == 404
        other = await client.get("/v1/views/orders/o2/timeline", headers=sales)
        assert [e["type"] for e in other.json()["events"]] == ["OrderPlaced", "StockAllocated"]
        assert (await client.get("/v1/views/orders/nope/timeline", headers=ADMIN)).status_code == 404
        assert (await client.get("/v1/views/partners/p1", headers=p1)).status_code == 200
        missing = await client.get("/v1/views/partners/p1", headers=p2)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/v1/views/partners/p2", headers=sales)).status_code == 200
        assert (await client.get("/v1/views/partners/zz", headers=ADMIN)).status_code == 404
        assert (await client.get("/v1/views/partners/p1")).status_code == 401
        bad_key = {"Authorization": "Bearer nope"}
        assert (await client.get("/v1/views/orders/o1/timeline", headers=bad_key)).status_code == 401


async def test_partner_360_figures(db: Database) -> None:
    async with projections(db) as feed:
        feed.svc.ctx.clock = lambda: datetime(2025, 3, 1, tzinfo=UTC)
        await feed.emit("partner-p1", [registered("p1"), partners.AgreementSigned(
            partner_id="p1", agreement_id="a1", kind="annual", starts_on=date(2025, 1, 1),
            ends_on=date(2025, 12, 31), status_after="active")])
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 10, 1000)]),
                                     orders.OrderConfirmed(order_id="o1")])
        await feed.emit("review-o1", [credit.FundsReviewPassed(
            order_id="o1", partner_id="p1", amount_minor=10_000, how="within_limit")])
        await feed.emit("order-o1", [orders.OrderApproved(order_id="o1"),
                                     orders.OrderPartiallyShipped(order_id="o1")])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 10),
                                               due_on=date(2025, 2, 9), lines=[("A", 6, 1000)])])
        await feed.emit("order-o2", [placed("o2", "p1", [("A", 5, 1000)]), orders.OrderCancelled(
            order_id="o2", partner_id="p1", reason="changed mind")])
        await feed.emit("order-o3", [placed("o3", "p1", [("A", 2, 1000)])])
        await feed.emit("review-o3", [credit.FundsReviewPassed(
            order_id="o3", partner_id="p1", amount_minor=2000, how="prepaid")])
        await feed.emit("order-o3", [orders.OrderApproved(order_id="o3")])
        await feed.emit("account-p1", [credit.PaymentReceived(
            payment_id="pay1", partner_id="p1", amount_minor=4000, bank_ref="b1",
            received_on=date(2025, 1, 20)), credit.PaymentApplied(
            payment_id="pay1", invoice_id="i1", partner_id="p1", amount_minor=2500,
            applied_on=date(2025, 1, 20))])
        await feed.emit("credit-note-c1", [credit_note("c1", "p1", 1000, order_id="o1",
                                                       lines=[("A", 1, 1000)])])
        await feed.emit("credit-note-c2", [credit_note("c2", "p1", 300, kind="rebate")])
        await feed.emit("accrual-r1-p1", [accrued("r1", "p1", 300), accrued("r1", "p1", 450)])
        await feed.emit("settlement-s1", [rebates.SettlementProposed(
            settlement_id="s1", program_id="r1", partner_id="p1", final_minor=300,
            already_settled_minor=0, payout_minor=300, sources=[], proposed_by="f1"),
            rebates.SettlementApproved(settlement_id="s1", program_id="r1", partner_id="p1",
                                       payout_minor=300, approved_by="f2")])
        answer = await feed.svc.client.get("/v1/views/partners/p1", headers=await feed.key("finance"))
        assert answer.status_code == 200, answer.text
        view = answer.json()
        assert {k: view[k] for k in ("partner_id", "name", "status", "tier", "region")} == {
            "partner_id": "p1", "name": "Partner p1", "status": "active", "tier": "gold",
            "region": "east"}
        assert view["orders"] == {"count": 3, "by_status": {
            "approved": 1, "cancelled": 1, "partially_shipped": 1}}
        assert view["sales_minor"] == 6000 - 1000
        assert view["exposure_minor"] == 3500 + 4000 + 2000  # o1 open + o1 uninvoiced + o3
        assert view["balance_minor"] == 6000 - 4000 - 1000 - 300
        assert view["overdue_minor"] == 3500
        assert view["rebates"] == {"accrued_minor": 450, "settled_minor": 300}


AS_OF = date(2025, 6, 30)


def received(payment_id: str, invoice_id: str, partner_id: str, amount: int,
             on: date = date(2025, 6, 15)) -> list[credit.PaymentReceived | credit.PaymentApplied]:
    """A receipt that pays the invoice on its date."""
    return [credit.PaymentReceived(payment_id=payment_id, partner_id=partner_id, amount_minor=amount,
                                   bank_ref=payment_id, received_on=on),
            credit.PaymentApplied(payment_id=payment_id, invoice_id=invoice_id, partner_id=partner_id,
                                  amount_minor=amount, applied_on=on)]
BOUNDARIES = {-5: 256, 0: 1, 1: 2, 30: 4, 31: 8, 60: 16, 61: 32, 90: 64, 91: 128}


async def test_aging_buckets_at_exact_day_boundaries(db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        for days, amount in BOUNDARIES.items():
            await feed.emit(f"invoice-i{days}", [invoice(
                f"i{days}", "o1", "p1", issued_on=date(2025, 1, 1),
                due_on=AS_OF - timedelta(days=days), lines=[("A", 1, amount)])])
        await feed.emit("invoice-late", [invoice("late", "o1", "p1", issued_on=date(2025, 7, 1),
                                                 due_on=date(2025, 7, 31))])
        await feed.emit("invoice-paid", [invoice("paid", "o1", "p1", issued_on=date(2025, 1, 1),
                                                 due_on=AS_OF), *received("pay-p1", "paid", "p1", 1000),
                                         credit.InvoicePaid(invoice_id="paid", partner_id="p1",
                                                            paid_on=date(2025, 6, 15), on_time=True)])
        await feed.emit("invoice-p3", [invoice("p3i", "o9", "p3", issued_on=date(2025, 5, 1),
                                               due_on=date(2025, 6, 20), lines=[("A", 1, 700)]),
                                       *received("pay-p3", "p3i", "p3", 700, on=date(2025, 7, 2)),
                                       credit.InvoicePaid(invoice_id="p3i", partner_id="p3",
                                                          paid_on=date(2025, 7, 2), on_time=False)])
        finance = await feed.key("finance")
        answer = await feed.svc.client.get("/v1/views/receivables/aging?as_of=2025-06-30",
                                           headers=finance)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["as_of"] == "2025-06-30"
        p1, p3 = body["items"]
        assert {k: v for k, v in p1.items() if k.endswith("_minor")} == {
            "current_minor": 257, "d1_30_minor": 6, "d31_60_minor": 24, "d61_90_minor": 96,
            "d90_plus_minor": 128, "on_account_minor": 0, "total_minor": 511}
        assert (p1["partner_id"], p1["name"]) == ("p1", "Partner p1")
        assert (p3["partner_id"], p3["d1_30_minor"], p3["total_minor"]) == ("p3", 700, 700)
        assert body["totals"]["total_minor"] == 1211
        later = await feed.svc.client.get("/v1/views/receivables/aging?as_of=2025-07-02",
                                          headers=finance)
        assert [row["partner_id"] for row in later.json()["items"]] == ["p1"]
        auditor = await feed.key("auditor")
        client = feed.svc.client
        assert (await client.get("/v1/views/receivables/aging", headers=auditor)).status_code == 200
        for refused in (await feed.key("sales"), await feed.key("partner", "p1"), ADMIN):
            assert (await client.get("/v1/views/receivables/aging", headers=refused)).status_code == 403
        for bad in ("2025-02-30", "20250101", "yesterday", "2025-1-01"):
            answer = await client.get(f"/v1/views/receivables/aging?as_of={bad}", headers=finance)
            assert answer.status_code == 422, bad
            assert answer.json()["errors"][0]["field"] == "query.as_of"


async def test_sales_grouped_and_filtered(db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        await feed.emit("partner-p2", [registered("p2", tier="silver", region="west")])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 5),
                                               due_on=AS_OF, lines=[("A", 2, 100), ("B", 1, 50)])])
        await feed.emit("invoice-i2", [invoice("i2", "o1", "p1", issued_on=date(2025, 2, 5),
                                               due_on=AS_OF, lines=[("A", 1, 100)])])
        await feed.emit("invoice-i3", [invoice("i3", "o2", "p2", issued_on=date(2025, 2, 9),
                                               due_on=AS_OF, lines=[("B", 4, 50)], region="west",
                                               tier="silver")])
        await feed.emit("credit-note-c1", [credit_note("c1", "p1", 100, order_id="o1",
                                                       issued_on=date(2025, 2, 10),
                                                       lines=[("A", 1, 100)])])
        await feed.emit("credit-note-c2", [credit_note("c2", "p2", 999, kind="rebate",
                                                       issued_on=date(2025, 2, 10))])
        sales = await feed.key("sales")

        async def rows(query: str) -> list[tuple]:
            answer = await feed.svc.client.get(f"/v1/views/sales?{query}", headers=sales)
            assert answer.status_code == 200, answer.text
            return [(r["key"], r["amount_minor"], r["orders"]) for r in answer.json()["items"]]

        assert await rows("group_by=region") == [("east", 250, 1), ("west", 200, 1)]
        assert await rows("group_by=tier") == [("gold", 250, 1), ("silver", 200, 1)]
        assert await rows("group_by=sku") == [("A", 200, 1), ("B", 250, 2)]
        assert await rows("group_by=month") == [("2025-01", 250, 1), ("2025-02", 200, 2)]
        assert await rows("group_by=month&from=2025-02-01&to=2025-02-09") == [("2025-02", 300, 2)]
        client = feed.svc.client
        window = (await client.get("/v1/views/sales?group_by=sku&from=2025-02-01&to=2025-02-28",
                                   headers=sales)).json()
        assert (window["from"], window["to"], window["group_by"]) == ("2025-02-01", "2025-02-28", "sku")
        assert window["total_minor"] == 200
        for query in ("", "group_by=partner", "group_by=month&from=2025-03-01&to=2025-02-01",
                      "group_by=sku&from=2025-13-01"):
            assert (await client.get(f"/v1/views/sales?{query}", headers=sales)).status_code == 422
        for allowed in ("finance", "auditor"):
            headers = await feed.key(allowed)
            assert (await client.get("/v1/views/sales?group_by=sku", headers=headers)).status_code == 200
        for refused in (await feed.key("warehouse"), await feed.key("partner", "p1")):
            assert (await client.get("/v1/views/sales?group_by=sku", headers=refused)).status_code == 403


async def test_a_debit_note_is_owed_in_the_360_and_aged_like_an_invoice(db: Database) -> None:
    async with projections(db) as feed:
        feed.svc.ctx.clock = lambda: datetime(2025, 3, 10, tzinfo=UTC)
        await feed.emit("partner-p1", [registered("p1")])
        await feed.emit("account-p1", [
            invoice("i1", "o1", "p1", issued_on=date(2025, 1, 10), due_on=date(2025, 2, 9),
                    lines=[("A", 1, 1000)]),
            credit.DebitNoteIssued(debit_note_id="dn1", partner_id="p1", amount_minor=500,
                                   reason="rebate settlement s1", source_ref="s1",
                                   issued_on=date(2025, 2, 1), due_on=date(2025, 3, 3)),
            credit.PaymentReceived(payment_id="pay1", partner_id="p1", amount_minor=1200, bank_ref="b1",
                                   received_on=date(2025, 2, 15)),
            credit.PaymentApplied(payment_id="pay1", invoice_id="i1", partner_id="p1", amount_minor=1000,
                                  applied_on=date(2025, 2, 15)),
            credit.InvoicePaid(invoice_id="i1", partner_id="p1", paid_on=date(2025, 2, 15), on_time=False),
            credit.DebitNoteSettled(debit_note_id="dn1", partner_id="p1", amount_minor=200,
                                    settled_on=date(2025, 2, 15), by="payment", ref="pay1")])
        finance = await feed.key("finance")
        view = (await feed.svc.client.get("/v1/views/partners/p1", headers=finance)).json()
        assert (view["balance_minor"], view["exposure_minor"], view["overdue_minor"]) == (300, 300, 300)
        assert (view["debit_notes_minor"], view["open_debit_notes_minor"], view["sales_minor"]) == (
            500, 300, 1000)
        aging = (await feed.svc.client.get("/v1/views/receivables/aging?as_of=2025-03-10",
                                           headers=finance)).json()
        [row] = aging["items"]
        assert (row["d1_30_minor"], row["total_minor"]) == (300, 300)
        before = (await feed.svc.client.get("/v1/views/receivables/aging?as_of=2025-02-10",
                                            headers=finance)).json()
        [row] = before["items"]
        assert (row["current_minor"], row["d1_30_minor"], row["total_minor"]) == (500, 1000, 1500)
