"""``documents.create`` and the unit of work's reads: a document created blank is not read back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from libs.runtime import documents
from libs.store.database import Database


async def test_create_writes_a_document_once_and_says_whether_it_did(db: Database) -> None:
    async with db.transaction() as conn:
        assert await documents.create(conn, "bank-ref", "R-1", {"payment_id": "pay_1"}, partner_id="p1")
        assert not await documents.create(conn, "bank-ref", "R-1", {"payment_id": "pay_2"})
    async with db.read() as conn:
        assert await documents.get(conn, "bank-ref", "R-1") == {"payment_id": "pay_1"}
        assert (await documents.page(conn, "bank-ref", partner_id="p1"))["items"] == [{"payment_id": "pay_1"}]


async def test_a_unit_of_work_reads_only_the_documents_it_did_not_create(db: Database) -> None:
    async with db.transaction() as conn:
        await documents.put(conn, "order", "o1", {"id": "o1", "lines": 1})
    sent: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "SELECT pg_notify", "SELECT 1")):
            sent.append(statement.split()[0])

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        async with db.transaction() as conn, documents.batch(conn) as docs:
            new = await docs.locked("order", "o2", {"id": "o2", "lines": 0})
            old = await docs.locked("order", "o1", {"id": "o1", "lines": 0})
            docs.put("order", "o2", {**new, "lines": 2})
            docs.put("order", "o1", {**old, "lines": old["lines"] + 1})
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    # o2: created (no read back); o1: its create finds it, then one read; one upsert of both.
    assert sent == ["INSERT", "INSERT", "SELECT", "INSERT"], sent
    async with db.read() as conn:
        assert await documents.get_many(conn, [("order", "o1"), ("order", "o2")]) == {
            ("order", "o1"): {"id": "o1", "lines": 2}, ("order", "o2"): {"id": "o2", "lines": 2}}
