"""Snapshots of read-model documents, to compare a rebuild with the live path."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from libs.events.codec import parse_json
from libs.store.database import Database
from libs.store.schema import documents


async def documents_of(db: Database, kinds: Collection[str]) -> list[tuple[Any, ...]]:
    """Every document of ``kinds``: kind, id, partner, status, ref, body and version (not the write time)."""
    async with db.read() as conn:
        rows = (await conn.execute(select(
            documents.c.kind, documents.c.id, documents.c.partner_id, documents.c.status,
            documents.c.ref_id, documents.c.body, documents.c.version,
        ).where(documents.c.kind.in_(list(kinds))).order_by(documents.c.kind, documents.c.id))).all()
    return [(kind, doc_id, partner_id, status, ref_id, parse_json(body), version)
            for kind, doc_id, partner_id, status, ref_id, body, version in rows]
