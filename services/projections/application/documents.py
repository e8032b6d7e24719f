"""Read-model documents of the projections, updated under a row lock.

Several partitions are consumed at once, so two events about one document
(an invoice issued and a payment applied to it) can be folded concurrently:
each update creates the document if missing, then locks its row before
reading it (PostgreSQL ``FOR UPDATE``; SQLite has one writer at a time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.events.codec import canonical_json, parse_json
from libs.runtime import documents as docs
from libs.store.schema import documents
from libs.store.sql import insert_ignoring_duplicates

PARTNER = "partner"
ORDER = "order"
INVOICE = "invoice"
CREDIT_NOTE = "credit-note"
PAYMENT = "payment"
ACCRUAL = "accrual"
SETTLEMENT = "settlement"
PROGRAM = "program"
KINDS = (PARTNER, ORDER, INVOICE, CREDIT_NOTE, PAYMENT, ACCRUAL, SETTLEMENT, PROGRAM)


async def locked(conn: AsyncConnection, kind: str, doc_id: str, blank: Mapping[str, Any]) -> dict[str, Any]:
    """The document (``blank`` when new), its row locked until the transaction ends."""
    await insert_ignoring_duplicates(conn, documents, {
        "kind": kind, "id": doc_id, "partner_id": None, "status": None,
        "body": canonical_json(dict(blank)).decode("utf-8"), "version": 0,
        "updated_at": format_timestamp(utc_now()),
    })
    body = (await conn.execute(select(documents.c.body).where(
        documents.c.kind == kind, documents.c.id == doc_id).with_for_update())).scalar_one()
    return parse_json(body)


async def save(conn: AsyncConnection, kind: str, doc_id: str, body: Mapping[str, Any], *,
               partner_id: str | None = None, status: str | None = None) -> None:
    await docs.put(conn, kind, doc_id, body, partner_id=partner_id, status=status)


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
