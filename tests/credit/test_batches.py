"""Credit's reactions in consumer batches (``Feed.batch``: one poll, one transaction per batch).

A batch locks each account once, reads the order and partner copies it needs in one
statement, keeps the documents it writes and writes them in one upsert before it commits
(``Unit.document``, ``Unit.put_document``). It must decide exactly as the same events
handled one at a time, and a reaction failing in it must leave nothing of the batch behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy

from libs.messaging.consumer import Delivery
from libs.runtime import documents
from services.credit.application import copies
from services.credit.application import read_models as rm
from tests.credit.support import Feed, types
from tests.service_support import RunningService


async def _story(feed: Feed, p: str) -> None:
    """Orders of partner ``p`` (limit 10,000): one cancelled, which frees room for a held one;
    a tier change, then invoices at the new tier; a refund return."""
    await feed.order(f"{p}-a", p, 3_000)  # approved
    await feed.order(f"{p}-b", p, 8_000)  # held: over the limit
    await feed.cancel(f"{p}-a", p)  # frees room: b is approved
    await feed.ship_all(f"{p}-b")
    await feed.change_tier(p, "B")
    await feed.order(f"{p}-c", p, 1_000)
    await feed.ship_all(f"{p}-c")  # invoiced at tier B
    await feed.return_received(f"{p}-b", {"SKU-1": 1}, return_id=f"ret-{p}")


async def _documents(svc: RunningService, p: str) -> dict[str, list[Any]]:
    """The partner's documents, ids of the partner's own things made comparable."""
    found: dict[str, list[Any]] = {}
    async with svc.ctx.db.read() as conn:
        for kind in (copies.ORDER, rm.REVIEW, rm.INVOICE, rm.CREDIT_NOTE, copies.PARTNER):
            items = (await documents.page(conn, kind, partner_id=p, limit=200))["items"]
            found[kind] = sorted(str({k: v for k, v in item.items() if k not in ("id", "dispatch_id")}
                                     ).replace(p, "P") for item in items)
    return found


async def test_a_batch_decides_as_the_same_events_one_at_a_time(svc: RunningService, feed: Feed) -> None:
    await feed.register("solo", limit=10_000)
    await feed.register("bulk", limit=10_000)
    await _story(feed, "solo")
    async with feed.batch() as batch:
        await _story(feed, "bulk")
    assert len(batch) == 11
    assert "OrderPutOnHold" in await types(svc, "bulk")  # the story holds and releases b
    assert await types(svc, "bulk") == await types(svc, "solo")
    assert await _documents(svc, "bulk") == await _documents(svc, "solo")
    assert sum(invoice.count("'tier': 'B'") for invoice in (await _documents(svc, "bulk"))[rm.INVOICE]) == 1


@contextmanager
def _statements(svc: RunningService) -> Iterator[list[str]]:
    """The statements sent while the block runs (those of ``Statement`` included), in
    PostgreSQL's placeholders."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(re.sub(r"\?(\d+)", r"$\1", " ".join(statement.split())))  # SQLite's ?1 as $1

    engine = svc.ctx.db.engine.sync_engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)


async def test_a_batch_locks_each_account_once_and_writes_its_documents_together(
    svc: RunningService, feed: Feed,
) -> None:
    await feed.register("p1", limit=100_000)
    await feed.register("p2", limit=100_000)
    with _statements(svc) as sent:
        async with feed.batch():
            for n in range(4):
                for p in ("p1", "p2"):
                    await feed.order(f"{p}-{n}", p, 1_000)
                    await feed.ship_all(f"{p}-{n}")
    assert (await types(svc, "p1")).count("InvoiceIssued") == 4

    def count(start: str) -> int:
        return sum(1 for statement in sent if statement.startswith(start))

    postgres = svc.ctx.db.engine.dialect.name == "postgresql"
    assert count("SELECT pg_advisory_xact_lock") == (2 if postgres else 0)  # once per account
    assert count("SELECT id FROM documents WHERE kind") == 2  # the cancelled orders, once per account
    assert count("SELECT body FROM documents WHERE kind = $1 AND id") == 0  # the copies are read ahead
    assert count("SELECT body, partner_id FROM documents WHERE kind = $1 AND ref_id") == 8  # invoiced?
    # One upsert of every document at the end, one read ahead; none one at a time. (On
    # PostgreSQL the upsert rides with the inbox rows and heads, as a WITH of that statement.)
    assert sum(1 for statement in sent if "INSERT INTO documents" in statement) == 1
    assert count("SELECT kind, id, body FROM documents" if not postgres
                 else "SELECT d.kind, d.id, d.body FROM documents d") == 1


@pytest.mark.parametrize("failing", ["OrderConfirmed", "ShipmentDispatched"])
async def test_a_reaction_failing_in_a_batch_leaves_nothing_of_it_and_all_is_applied_once(
    svc: RunningService, feed: Feed, failing: str,
) -> None:
    """The batch is rolled back whole (its held documents, lock and cancelled orders with it),
    the events before the failing one are applied again as a batch, it alone (passing the
    second time), the rest as a batch: the same as one at a time."""
    await feed.register("solo", limit=10_000)
    await feed.register("bulk", limit=10_000)
    await _story(feed, "solo")
    handler = svc.consumer.handlers[failing]
    failed: list[str] = []

    async def once_failing(delivery: Delivery) -> None:
        if not failed and getattr(delivery.event, "order_id", "").startswith("bulk-c"):
            failed.append(delivery.event.TYPE)
            raise RuntimeError("fails once")
        await handler(delivery)

    svc.consumer.handlers[failing] = once_failing
    async with feed.batch():
        await _story(feed, "bulk")
    assert failed == [failing]
    assert await types(svc, "bulk") == await types(svc, "solo")
    assert await _documents(svc, "bulk") == await _documents(svc, "solo")
