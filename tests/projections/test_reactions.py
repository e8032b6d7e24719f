"""Reactions: every published event is archived as published and folded into the read models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import select

from libs.events import CONTRACT_MODULES, credit, default_registry, orders
from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import Envelope
from libs.messaging.consumer import Delivery, Outcome
from libs.runtime.auth import key_handlers
from libs.store.database import Database
from services.projections.application import documents as d
from services.projections.application import replay
from services.projections.application.archive import archive
from services.projections.application.handlers import handlers
from services.projections.application.projectors import PROJECTORS
from services.projections.application.replay import rebuild_read_models
from services.projections.domain.publishers import EVENT_TYPES
from tests.libs.consumer_support import record_of
from tests.libs.test_event_contracts import sample_of
from tests.projections.support import Feed, invoice, placed, projections, registered
from tests.read_model_support import documents_of


def test_the_table_names_every_registered_type_and_keeps_the_keys() -> None:
    table = handlers()
    assert set(table) == set(EVENT_TYPES)
    assert all(event_type in default_registry() for event_type in table)
    for event_type in key_handlers():
        assert table[event_type].__name__ == "when_key_event_keep_key_and_archive"


async def test_events_are_archived_with_their_service_ids_and_hash(db: Database) -> None:
    async with projections(db) as feed:
        key_headers = await feed.key("auditor")
        [reg] = await feed.emit("partner-p1", [registered("p1")])
        [order] = await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)])],
                                  meta=EventMetadata(actor="partner:k1"))
        async with db.read() as conn:
            rows = (await conn.execute(select(archive).order_by(archive.c.received_seq))).mappings().all()
        assert [r["service"] for r in rows] == ["partners", "partners", "orders"]
        assert rows[2]["event_id"] == order.event_id
        assert (rows[2]["order_id"], rows[2]["partner_id"]) == ("o1", "p1")
        assert (rows[1]["order_id"], rows[1]["partner_id"]) == (None, "p1")
        assert rows[2]["stream_hash"] == order.stream_hash and rows[2]["data"] == order.data
        assert rows[1]["correlation_id"] == reg.correlation_id
        assert (await feed.svc.client.get("/v1/audit/events", headers=key_headers)).status_code == 200
        assert await feed.svc.consumer.handle(order) == Outcome.DUPLICATE


async def test_invoice_events_get_their_order_whatever_the_arrival_order(db: Database) -> None:
    async with projections(db) as feed:
        [applied] = await feed.emit("payment-pay1", [credit.PaymentApplied(
            payment_id="pay1", invoice_id="i1", partner_id="p1", amount_minor=400,
            applied_on=date(2025, 1, 20))])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 10),
                                               due_on=date(2025, 2, 9), lines=[("A", 1, 1000)])])
        [paid] = await feed.emit("invoice-i1", [credit.InvoicePaid(
            invoice_id="i1", partner_id="p1", paid_on=date(2025, 1, 25), on_time=True)])
        async with db.read() as conn:
            orders_of = dict((await conn.execute(
                select(archive.c.event_id, archive.c.order_id))).all())
            doc = await d.get(conn, d.INVOICE, "i1")
        assert orders_of[applied.event_id] == "o1" and orders_of[paid.event_id] == "o1"
        assert doc is not None and doc["total_minor"] == 1000 and doc["paid_on"] == "2025-01-25"
        assert list(doc["settlements"].values()) == [
            {"kind": "payment", "on": "2025-01-20", "amount_minor": 400}]


async def test_a_credit_note_applied_settles_the_invoice_and_links_to_its_order(db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 10),
                                               due_on=date(2025, 2, 9), lines=[("A", 1, 1000)])])
        [applied] = await feed.emit("account-p1", [credit.CreditNoteApplied(
            credit_note_id="cn1", invoice_id="i1", partner_id="p1", amount_minor=300,
            applied_on=date(2025, 1, 22))])
        async with db.read() as conn:
            orders_of = dict((await conn.execute(
                select(archive.c.event_id, archive.c.order_id))).all())
            doc = await d.get(conn, d.INVOICE, "i1")
        assert orders_of[applied.event_id] == "o1"
        assert doc is not None and doc["partner_id"] == "p1"
        assert list(doc["settlements"].values()) == [
            {"kind": "credit_note", "on": "2025-01-22", "amount_minor": 300}]


async def test_read_models_rebuild_from_the_archive(db: Database) -> None:
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        [order] = await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)])])
        await feed.emit("order-o1", [orders.OrderConfirmed(order_id="o1")])
        await feed.emit("order-o2", [placed("o2", "p1", [("A", 1, 500)]),
                                     orders.OrderCancelled(order_id="o2", partner_id="p1",
                                                           reason="x")])
        async with db.read() as conn:
            before = {kind: await d.all_of(conn, kind) for kind in d.KINDS}
        assert await rebuild_read_models(db, feed.svc.ctx.registry) == 5
        async with db.read() as conn:
            after = {kind: await d.all_of(conn, kind) for kind in d.KINDS}
        assert after == before
        assert [o["status"] for o in after[d.ORDER]] == ["confirmed", "cancelled"]
        assert after[d.ORDER][0]["correlation_id"] == str(order.correlation_id)


async def test_a_rebuild_of_many_pages_folds_across_them_and_one_failing_midway_changes_nothing(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of two events: an order's events fall on different pages, so a page's documents
    must be read after the previous page's were written. A rebuild failing on a later page
    leaves the read models as they were, and the archive open to the live consumer."""
    monkeypatch.setattr(replay, "PAGE", 2)
    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)])])
        await feed.emit("order-o2", [placed("o2", "p1", [("A", 1, 500)])])
        await feed.emit("order-o1", [orders.OrderConfirmed(order_id="o1")])
        await feed.emit("order-o2", [orders.OrderCancelled(order_id="o2", partner_id="p1", reason="x")])
        await feed.emit("order-o1", [orders.OrderCancelled(order_id="o1", partner_id="p1", reason="y")])
        before = await documents_of(db, d.KINDS)
        assert await rebuild_read_models(db, feed.svc.ctx.registry) == 6
        assert await documents_of(db, d.KINDS) == before

        folded = 0
        live_project = replay.project

        async def failing_on_the_third_page(*args: Any) -> None:
            nonlocal folded
            folded += 1
            if folded == 5:
                raise RuntimeError("a page failed")
            await live_project(*args)

        monkeypatch.setattr(replay, "project", failing_on_the_third_page)
        with pytest.raises(RuntimeError, match="a page failed"):
            await rebuild_read_models(db, feed.svc.ctx.registry)
        assert await documents_of(db, d.KINDS) == before
        monkeypatch.setattr(replay, "project", live_project)
        await feed.emit("order-o3", [placed("o3", "p1", [("A", 1, 500)])])  # the archive is open again
        assert len(await documents_of(db, [d.ORDER])) == 3


async def test_every_kind_of_read_model_rebuilds_as_the_live_path_folded_it(db: Database) -> None:
    """One event of every type a projector folds (every field set, dates, nested lines and
    rules), live, then rebuilt: the rebuild decodes the archive without validating it again
    (``EventRegistry.decode_stored``) and must leave every document as the live path did."""
    folded = [cls for module in CONTRACT_MODULES for cls in module.EVENTS if cls.TYPE in PROJECTORS]
    async with projections(db) as feed:
        for n, cls in enumerate(folded):
            await feed.emit(f"{cls.__name__.lower()}-{n}", [sample_of(cls)])
        before = await documents_of(db, d.KINDS)
        assert {kind for kind, *_ in before} == set(d.KINDS)
        assert await rebuild_read_models(db, feed.svc.ctx.registry) == len(folded)
        assert await documents_of(db, d.KINDS) == before


async def _appended(feed: Feed, stream_id: str, events: Sequence[DomainEvent]) -> list[Envelope]:
    """Appended as their publisher would, not yet consumed."""
    return await feed.store.append(stream_id, stream_id.split("-", 1)[0], None, events,
                                   EventMetadata(actor="test"))


async def _a_batch_of_each_case(feed: Feed) -> tuple[list[Envelope], Envelope, Envelope]:
    """A consumer batch: a repeat, an invoice's event before its ``InvoiceIssued``, an order,
    the invoice, its payment, and an order's second event without its first (held). Answers
    the batch's envelopes, the first event of the held one's stream and the held one."""
    [repeat] = await feed.emit("partner-p1", [registered("p1")])
    [applied] = await _appended(feed, "payment-pay1", [credit.PaymentApplied(
        payment_id="pay1", invoice_id="i1", partner_id="p1", amount_minor=400,
        applied_on=date(2025, 1, 20))])
    [order] = await _appended(feed, "order-o1", [placed("o1", "p1", [("A", 1, 1000)])])
    issued, paid = await _appended(feed, "invoice-i1", [
        invoice("i1", "o1", "p1", issued_on=date(2025, 1, 10), due_on=date(2025, 2, 9),
                lines=[("A", 1, 1000)]),
        credit.InvoicePaid(invoice_id="i1", partner_id="p1", paid_on=date(2025, 1, 25), on_time=True)])
    first, held = await _appended(feed, "order-o2", [placed("o2", "p1", [("A", 1, 500)]),
                                                     orders.OrderConfirmed(order_id="o2")])
    return [repeat, applied, order, issued, paid, held], first, held


async def _archived(db: Database) -> list[tuple[Any, Any]]:
    async with db.read() as conn:
        return [tuple(row) for row in (await conn.execute(
            select(archive.c.event_id, archive.c.order_id).order_by(archive.c.received_seq))).all()]


async def _invoice_and_orders(db: Database) -> tuple[Any, list[str]]:
    async with db.read() as conn:
        return (await d.get(conn, d.INVOICE, "i1"),
                [o["status"] for o in await d.all_of(conn, d.ORDER)])


async def test_a_batch_archives_the_events_it_handles_in_one_insert_in_arrival_order(
        db: Database) -> None:
    """The first handler of a consumer batch archives all the events the batch handles in one
    statement: not the repeat, not the event held (archived when its turn comes, after the
    event it waited for); the invoice's events get its order, wherever it is in the batch.
    The documents the batch's events create (the order, the invoice) are created in one."""
    async with projections(db) as feed:
        batch, first, held = await _a_batch_of_each_case(feed)
        repeat, applied, order, issued, paid, _ = batch
        inserts: list[str] = []
        creates: list[str] = []

        def count(_conn, _cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
            if "INSERT INTO archive" in statement:
                inserts.append(statement)
            if "INSERT INTO documents" in statement and "DO NOTHING" in statement:
                creates.append(statement)

        engine = db.engine.sync_engine
        sqlalchemy.event.listen(engine, "before_cursor_execute", count)
        try:
            await feed.svc.consumer.apply_records(
                [record_of("t", offset, envelope) for offset, envelope in enumerate(batch)])
        finally:
            sqlalchemy.event.remove(engine, "before_cursor_execute", count)
        assert len(inserts) == 1 and len(creates) == 1
        assert (await _archived(db))[-5:] == [
            (repeat.event_id, None), (applied.event_id, "o1"), (order.event_id, "o1"),
            (issued.event_id, "o1"), (paid.event_id, "o1")]
        await feed.svc.consumer.apply_records([record_of("t", 9, first)])
        assert [event_id for event_id, _ in (await _archived(db))[-2:]] == [
            first.event_id, held.event_id]
        doc, statuses = await _invoice_and_orders(db)
        assert doc is not None and doc["paid_on"] == "2025-01-25"
        assert list(doc["settlements"].values()) == [
            {"kind": "payment", "on": "2025-01-20", "amount_minor": 400}]
        assert statuses == ["placed", "confirmed"]


async def test_a_handler_failing_in_a_batch_takes_the_batch_archive_back_and_each_event_folds_once(
        db: Database) -> None:
    """The batch's archive rows are written before its handlers run; a handler failing rolls
    them back with everything else. The batch, split at the failing event, archives and folds
    each event once (a row left over would make the events before it look archived already,
    and they would not fold), in arrival order."""
    async with projections(db) as feed:
        batch, first, _ = await _a_batch_of_each_case(feed)
        consumer = feed.svc.consumer
        live = consumer.handlers[credit.InvoiceIssued.TYPE]
        failures = []

        async def failing_once(delivery: Delivery) -> None:
            if not failures:
                failures.append(delivery.envelope.event_id)
                raise RuntimeError("the invoice's handler failed once")
            await live(delivery)

        consumer.handlers[credit.InvoiceIssued.TYPE] = failing_once
        await consumer.apply_records(
            [record_of("t", offset, envelope) for offset, envelope in enumerate([*batch, first])])
        assert failures == [batch[3].event_id]
        assert await _archived(db) == [
            (batch[0].event_id, None), *((e.event_id, "o1") for e in batch[1:5]),
            (first.event_id, "o2"), (batch[5].event_id, "o2")]
        doc, statuses = await _invoice_and_orders(db)
        assert doc is not None and doc["total_minor"] == 1000 and doc["paid_on"] == "2025-01-25"
        assert list(doc["settlements"].values()) == [
            {"kind": "payment", "on": "2025-01-20", "amount_minor": 400}]
        assert statuses == ["placed", "confirmed"]
