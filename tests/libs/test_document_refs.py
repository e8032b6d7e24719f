"""Lists filter by ``documents.ref_id`` (indexed); a service's migration fills it for old documents."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event

from libs.runtime import documents
from libs.store.database import Database
from libs.store.migrate import migrate, run_alembic
from services.delivery.app import MIGRATIONS as DELIVERY
from services.rebates.app import MIGRATIONS as REBATES


async def _ids(db: Database, kind: str, ref_id: str) -> list[str]:
    async with db.read() as conn:
        return [item["id"] for item in (await documents.page(conn, kind, ref_id=ref_id))["items"]]


async def test_page_filters_by_ref_id_on_the_indexed_column(db: Database) -> None:
    async with db.transaction() as conn:
        for doc_id, order_id in (("shp_1", "o1"), ("shp_2", "o2"), ("shp_3", "o1")):
            await documents.put(conn, "shipment", doc_id, {"id": doc_id, "order_id": order_id},
                                ref_id=order_id)
        await documents.put(conn, "return", "ret_1", {"id": "ret_1", "order_id": "o1"}, ref_id="o1")
    assert await _ids(db, "shipment", "o1") == ["shp_1", "shp_3"]
    assert await _ids(db, "shipment", "o2") == ["shp_2"]
    assert await _ids(db, "return", "o1") == ["ret_1"]
    assert await _ids(db, "shipment", "o9") == []


async def test_service_migrations_fill_the_ref_of_documents_written_before_it(db: Database) -> None:
    async with db.transaction() as conn:  # written as before the column existed: no ref_id
        await documents.put(conn, "shipment", "shp_1", {"id": "shp_1", "order_id": "o1"})
        await documents.put(conn, "accrual", "prg_1:p1", {"id": "prg_1:p1", "program_id": "prg_1"})
        await documents.put(conn, "order-copy", "o1", {"id": "o1", "order_id": "o1"})
    assert await _ids(db, "shipment", "o1") == []
    await run_alembic(db, "upgrade", "heads", [DELIVERY, REBATES])
    assert await _ids(db, "shipment", "o1") == ["shp_1"]
    assert await _ids(db, "accrual", "prg_1") == ["prg_1:p1"]
    assert await _ids(db, "order-copy", "o1") == []  # a kind no migration names keeps no ref
    await run_alembic(db, "downgrade", "delivery@base", [DELIVERY, REBATES])
    assert await _ids(db, "shipment", "o1") == []
    assert await _ids(db, "accrual", "prg_1") == ["prg_1:p1"]


async def test_get_many_reads_several_kinds_at_once(db: Database) -> None:
    async with db.transaction() as conn:
        await documents.put(conn, "partner-copy", "p1", {"id": "p1"})
        await documents.put(conn, "product", "A", {"sku": "A"})
        await documents.put(conn, "product", "B", {"sku": "B"})
        found = await documents.get_many(conn, [("partner-copy", "p1"), ("product", "A"),
                                                ("product", "Z"), ("partner-copy", "A")])
    assert found == {("partner-copy", "p1"): {"id": "p1"}, ("product", "A"): {"sku": "A"}}


async def test_lists_and_look_ups_search_an_index_on_sqlite(tmp_path: Path) -> None:
    """SQLite's plan is deterministic: no statement of these reads scans the documents table."""
    db = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    await migrate(db)
    sent: list[tuple[str, Any]] = []

    @event.listens_for(db.reader.sync_engine, "before_cursor_execute")
    def remember(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    try:
        async with db.read() as conn:
            await documents.get_many(conn, [("partner-copy", "p1"), ("product", "A")])
            await documents.page(conn, "shipment", ref_id="o1")
            await documents.page(conn, "shipment", ref_id="o1", partner_id="p1", status="pending")
            await documents.page(conn, "order", partner_id="p1")
        plain = sqlite3.connect(tmp_path / "plans.db")
        try:
            reads = [s for s in sent if "documents" in s[0]]
            searched = ["(kind=? AND id=?)", "ref_id=?", "ref_id=?", "partner_id=?"]
            assert len(reads) == len(searched)
            for (statement, params), column in zip(reads, searched, strict=True):
                plan = " ".join(row[-1] for row in plain.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                                 params).fetchall())
                assert "SCAN documents" not in plan, (statement, plan)
                assert "SEARCH documents USING" in plan and column in plan, (statement, plan)
        finally:
            plain.close()
    finally:
        await db.dispose()
