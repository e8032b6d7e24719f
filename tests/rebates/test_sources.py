"""Accrual sources as rows, and programs found by index (both databases).

The accrual document keeps totals only; its sources are rows read back in
accrual order; a reaction reads only the programs that can apply.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from sqlalchemy import event, select

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.messaging.consumer import Outcome
from libs.runtime import documents
from libs.store.database import Database
from libs.store.migrate import migrate
from services.rebates.app import MIGRATIONS
from services.rebates.application import applicability, copies, sources
from services.rebates.application.accruals import programs_for
from services.rebates.application.applicability import rebate_program_scope, rebate_programs
from services.rebates.application.sources import rebate_sources
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import Contribution, InvoiceCopy, Window, timeliness_in
from tests.rebates.support import Feed, accrual, issue_key, stored_events
from tests.rebates.test_reactions import publish
from tests.rebates.test_reactions import svc as svc  # the fixture
from tests.service_support import BY_KEYS, ONE_DOCUMENT, RunningService, Statements, consumer_record


async def source_rows(svc: RunningService, program_id: str) -> list[tuple[Any, ...]]:
    table = rebate_sources.c
    query = select(table.partner_id, table.seq, table.kind, table.ref, table.amount_minor).where(
        table.program_id == program_id).order_by(table.partner_id, table.seq)
    async with svc.ctx.db.read() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def test_a_repeated_invoice_is_one_row_and_one_accrual(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, finance)
    for _ in range(3):  # the same invoice under three event ids
        await feed.invoice("inv-1", "p1", [("tools", 100_000)])
    assert await source_rows(svc, program) == [("p1", 1, "invoice", "inv-1", 100_000)]
    assert len(await stored_events(svc, "RebateAccrued")) == 1
    assert (await accrual(svc, finance, program, "p1"))["basis_minor"] == 100_000


async def test_sources_are_rows_served_in_accrual_order_and_the_document_keeps_totals(
        svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1")
    await feed.partner("p2")
    program = await publish(svc, finance)
    await feed.invoice("inv-z", "p1", [("tools", 300)], issued_on="2026-03-01")
    await feed.invoice("inv-a", "p1", [("tools", 200)], issued_on="2026-01-15")
    await feed.invoice("inv-m", "p2", [("tools", 50)])
    await feed.credit_note("cn-1", "p1", [("tools", 100)])
    expected = [{"kind": "invoice", "ref": "inv-z", "amount_minor": 300},
                {"kind": "invoice", "ref": "inv-a", "amount_minor": 200},
                {"kind": "return", "ref": "cn-1", "amount_minor": -100}]
    for _ in range(2):  # the same answer each time, in accrual order (not by ref or date)
        assert (await accrual(svc, finance, program, "p1"))["sources"] == expected
    assert await source_rows(svc, program) == [
        ("p1", 1, "invoice", "inv-z", 300), ("p1", 2, "invoice", "inv-a", 200),
        ("p1", 3, "return", "cn-1", -100), ("p2", 1, "invoice", "inv-m", 50)]
    listed = (await svc.client.get("/v1/accruals", params={"program_id": program}, headers=finance)).json()
    assert [(a["partner_id"], [s["ref"] for s in a["sources"]]) for a in listed["items"]] == [
        ("p1", ["inv-z", "inv-a", "cn-1"]), ("p2", ["inv-m"])]
    async with svc.ctx.db.read() as conn:
        stored = await documents.get(conn, "accrual", f"{program}:p1")
    assert stored is not None and "sources" not in stored and stored["basis_minor"] == 400


async def test_programs_not_applying_to_a_partner_are_never_loaded(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1", tier="A", region="east")
    applies = await publish(svc, finance, eligibility={"tiers": ["A", "B"], "regions": ["east"]})
    named = await publish(svc, finance, eligibility={"partner_ids": ["p1", "p9"]})
    await publish(svc, finance, eligibility={"tiers": ["B"]})
    await publish(svc, finance, eligibility={"regions": ["west"]})
    await publish(svc, finance, eligibility={"partner_ids": ["p9"]})
    await publish(svc, finance, currency="USD")
    await publish(svc, finance, starts_on="2025-01-01", ends_on="2025-12-31")
    profile = PartnerProfile("p1", "A", "east")
    day = date(2026, 2, 10)
    async with svc.ctx.db.read() as conn:
        assert await applicability.eligible_programs(conn, profile, "CNY", day, day) == sorted(
            [applies, named])
        assert await applicability.eligible_programs(conn, PartnerProfile("p1"), "CNY", day, day) == [named]
        loaded = await programs_for(conn, profile, "CNY", [day], follow_existing=False)
    assert [(program.program_id, final) for program, final in loaded] == sorted(
        [(applies, False), (named, False)])
    await feed.invoice("inv-1", "p1", [("tools", 1_000)])
    await feed.tier_change("p1", "A", "C")  # no longer eligible, but its returns still follow its sales
    async with svc.ctx.db.read() as conn:
        assert await sources.accruing_programs(conn, "p1") == sorted([applies, named])
        following = await programs_for(conn, PartnerProfile("p1", "C", "east"), "CNY", [day],
                                       follow_existing=True)
        assert [program.program_id for program, _ in following] == sorted([applies, named])
        assert await programs_for(conn, PartnerProfile("p1", "C", "east"), "CNY", [day],
                                  follow_existing=False) == [p for p in following if p[0].program_id == named]


async def test_the_migration_moves_sources_and_scopes_out_of_earlier_documents(
        backbone_db: Database) -> None:
    """Documents written before the rows existed: their sources and programs become rows."""
    db = backbone_db
    listed = [{"kind": "invoice", "ref": "inv-9", "amount_minor": 900},
              {"kind": "return", "ref": "cn-1", "amount_minor": -100}]
    async with db.transaction() as conn:
        await documents.put(conn, "program", "prg_1", {
            "id": "prg_1", "currency": "CNY", "starts_on": "2026-01-01", "ends_on": "2026-03-31",
            "eligibility": {"partner_ids": [], "tiers": ["B", "A"], "regions": ["east"], "categories": []}})
        await documents.put(conn, "accrual", "prg_1:p1", {
            "program_id": "prg_1", "partner_id": "p1", "basis_minor": 800, "sources": listed},
            partner_id="p1")
    await migrate(db, [MIGRATIONS])
    async with db.read() as conn:
        assert await sources.listed(conn, [("prg_1", "p1")]) == {("prg_1", "p1"): listed}
        assert (await conn.execute(select(rebate_programs))).all() == [
            ("prg_1", "CNY", "2026-01-01", "2026-03-31")]
        scope = select(rebate_program_scope.c.axis, rebate_program_scope.c.value).order_by(
            rebate_program_scope.c.axis, rebate_program_scope.c.value)
        assert [tuple(row) for row in (await conn.execute(scope)).all()] == [
            ("partner", "*"), ("region", "east"), ("tier", "A"), ("tier", "B")]


async def test_source_look_ups_search_an_index_on_sqlite(tmp_path: Any) -> None:
    """SQLite plans a row-value IN as a scan of every source; these reads must search the index."""
    db = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    await migrate(db, [MIGRATIONS])
    sent: list[tuple[str, Any]] = []

    @event.listens_for(db.reader.sync_engine, "before_cursor_execute")
    def remember(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    try:
        async with db.read() as conn:
            await sources.counted(conn, ("prg_1", "p1"), [
                Contribution("invoice", "inv-1", 100, date(2026, 1, 5)),
                Contribution("payment", "pay-1", 100, date(2026, 1, 6))])
            await sources.listed(conn, [("prg_1", "p1"), ("prg_2", "p1")])
        plain = sqlite3.connect(tmp_path / "plans.db")
        try:
            reads = [s for s in sent if "rebate_sources" in s[0]]
            assert len(reads) == 2
            for statement, params in reads:
                plan = " ".join(row[-1] for row in plain.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                                 params).fetchall())
                assert "SCAN rebate_sources" not in plan, (statement, plan)
                assert "SEARCH rebate_sources USING" in plan, (statement, plan)
        finally:
            plain.close()
    finally:
        await db.dispose()


async def test_timeliness_is_counted_on_the_index_as_the_rule_counts_it_and_backfilled(
        backbone_db: Database) -> None:
    """Copies written before revision 0003 get their timeliness key; the count matches ``timeliness_in``."""
    db = backbone_db
    old = [{"invoice_id": "inv-a", "partner_id": "p1", "issued_on": "2026-01-31", "on_time": True},
           {"invoice_id": "inv-b", "partner_id": "p1", "issued_on": "2026-03-31", "on_time": None},
           {"invoice_id": "inv-c", "partner_id": "p1", "issued_on": "2026-04-01", "on_time": True},
           {"invoice_id": "inv-d", "partner_id": "p1", "issued_on": None, "on_time": None},
           {"invoice_id": "inv-e", "partner_id": "p2", "issued_on": "2026-02-01", "on_time": True}]
    async with db.transaction() as conn:
        for body in old:
            await documents.put(conn, copies.INVOICE, body["invoice_id"], body, partner_id=body["partner_id"])
    await migrate(db, [MIGRATIONS])
    async with db.transaction() as conn:
        await copies.save_invoice(conn, InvoiceCopy("inv-f", "p1", order_id="ord-f",
                                                    issued_on=date(2026, 1, 1), on_time=True))
        counted = await copies.timeliness_counts(conn, "p1", date(2026, 1, 1), date(2026, 3, 31))
        invoices, _ = await copies.partner_ledger(conn, "p1")
        by_march = await copies.issued_through(conn, "p1", date(2026, 3, 31))
    assert counted == timeliness_in(invoices, Window(date(2026, 1, 1), date(2026, 3, 31))) == (3, 2)
    assert [invoice.invoice_id for invoice in by_march] == ["inv-a", "inv-b", "inv-f"]


class _Collected(Feed):
    """Builds the events' envelopes without handing them to the consumer (one batch later)."""

    def __init__(self, svc: RunningService) -> None:
        super().__init__(svc)
        self.envelopes: list[Envelope] = []

    async def send(self, event: DomainEvent, stream_id: str | None = None) -> Outcome:
        self.envelopes.append(self.envelope(event, stream_id or f"account-{event.partner_id}"))
        return Outcome.APPLIED


async def test_a_batch_of_reactions_reads_its_copies_ahead_and_locks_the_ledger_once(
        svc: RunningService) -> None:
    """Invoices, cash and payment news of a partner in one consumer batch: its copies are read
    in one statement, the ledger lock is taken once; the accrual is the one-at-a-time one."""
    finance = await issue_key(svc, "finance")
    await Feed(svc).partner("p1")
    program = await publish(svc, finance)
    batch = _Collected(svc)
    await batch.invoice("inv-1", "p1", [("tools", 100_000)])
    await batch.invoice("inv-2", "p1", [("tools", 50_000)])
    await batch.payment("pay-1", "inv-1", "p1", 100_000)
    await batch.paid("inv-1", "p1", on_time=True)
    await batch.invoice("inv-1", "p1", [("tools", 100_000)])  # news seen again: counted once
    with Statements(svc.ctx.db) as statements:
        await svc.consumer.apply_records([consumer_record(n, e) for n, e in enumerate(batch.envelopes)])
    assert await source_rows(svc, program) == [("p1", 1, "invoice", "inv-1", 100_000),
                                               ("p1", 2, "invoice", "inv-2", 50_000)]
    assert (await accrual(svc, finance, program, "p1"))["basis_minor"] == 150_000
    async with svc.ctx.db.read() as conn:
        paid = await copies.invoice_copy(conn, "inv-1", "p1")
    assert (paid.on_time, [a.amount_minor for a in paid.applications]) == (True, [100_000])
    assert statements.having(*ONE_DOCUMENT) == []
    assert len(statements.having(*BY_KEYS)) == 1
    assert len(statements.having("pg_advisory_xact_lock")) == (1 if svc.ctx.db.is_postgres else 0)
