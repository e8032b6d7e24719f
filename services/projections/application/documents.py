"""Read-model documents of the projections: their kinds, and the reads behind the views.

They are written through ``libs.runtime.documents.batch`` by the projectors.
Several partitions are consumed at once, so two events about one document
(an invoice issued and a payment applied to it) can be folded concurrently:
the unit of work creates a document if missing, then locks its row before
reading it (PostgreSQL ``FOR UPDATE``; SQLite has one writer at a time).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.codec import parse_json
from libs.runtime import documents as docs
from libs.store.schema import documents

PARTNER = "partner"
ORDER = "order"
INVOICE = "invoice"
CREDIT_NOTE = "credit-note"
DEBIT_NOTE = "debit-note"
PAYMENT = "payment"
ACCRUAL = "accrual"
SETTLEMENT = "settlement"
PROGRAM = "program"
COOP_FUND = "coop-fund"
DEAL = "deal"
KINDS = (PARTNER, ORDER, INVOICE, DEBIT_NOTE, CREDIT_NOTE, PAYMENT, ACCRUAL, SETTLEMENT, PROGRAM, COOP_FUND,
         DEAL)


async def get(conn: AsyncConnection, kind: str, doc_id: str) -> dict[str, Any] | None:
    return await docs.get(conn, kind, doc_id)


async def all_of(conn: AsyncConnection, kind: str, *, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Every document of ``kind`` (of one partner when given), in id order."""
    query = select(documents.c.body).where(documents.c.kind == kind)
    if partner_id is not None:
        query = query.where(documents.c.partner_id == partner_id)
    rows = (await conn.execute(query.order_by(documents.c.id))).scalars().all()
    return [parse_json(body) for body in rows]


async def forget_all(conn: AsyncConnection) -> None:
    """Drop every read model of the projections (before a rebuild from the archive)."""
    await conn.execute(delete(documents).where(documents.c.kind.in_(KINDS)))
