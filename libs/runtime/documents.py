"""Read models as documents: one JSON body per (kind, id), written with the events that change it.

A service updates a document in the same transaction as the append that
changes it, so a read right after a write sees the write. Documents are
derived data: the events are the record. ``o2c replay`` rebuilds the finance
views (projections) from their archive; the other services have no generic
rebuild command yet.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.events.codec import canonical_json, parse_json
from libs.runtime.auth import Principal
from libs.runtime.errors import DomainError
from libs.store.schema import documents

MAX_LIMIT = 200

# Statements built once: building and cache-keying a fresh SQLAlchemy statement on every
# call cost more than running it (the orders profile, docs/benchmarks.md).
_GET = select(documents.c.body).where(documents.c.kind == bindparam("kind"),
                                      documents.c.id == bindparam("doc_id"))



def _upsert(insert: Any) -> Any:
    stmt = insert(documents)
    return stmt.on_conflict_do_update(
        index_elements=[documents.c.kind, documents.c.id],
        set_={name: stmt.excluded[name]
              for name in ("partner_id", "status", "ref_id", "body", "version", "updated_at")})


_PUT = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


async def put(
    conn: AsyncConnection, kind: str, doc_id: str, body: Mapping[str, Any], *,
    partner_id: str | None = None, status: str | None = None, version: int = 0,
    ref_id: str | None = None,
) -> None:
    """Write a document; ``partner_id``, ``status`` and ``ref_id`` are the indexed columns
    its lists filter by (``ref_id``: the one other key, e.g. a shipment's order, a
    product's category)."""
    await conn.execute(_PUT[conn.dialect.name], {
        "kind": kind, "id": doc_id, "partner_id": partner_id, "status": status, "ref_id": ref_id,
        "body": canonical_json(dict(body)).decode("utf-8"), "version": version,
        "updated_at": format_timestamp(utc_now()),
    })


async def get(conn: AsyncConnection, kind: str, doc_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(_GET, {"kind": kind, "doc_id": doc_id})).first()
    return parse_json(row[0]) if row else None


async def get_many(
    conn: AsyncConnection, keys: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The documents among ``keys`` (``(kind, id)`` pairs) that exist, by key: one statement."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    # OR of (kind, id) pairs, each an index search; SQLite scans the table for a row-value IN.
    rows = (await conn.execute(select(documents.c.kind, documents.c.id, documents.c.body).where(
        or_(*(and_(documents.c.kind == kind, documents.c.id == doc_id)
              for kind, doc_id in wanted))))).all()
    return {(row[0], row[1]): parse_json(row[2]) for row in rows}


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = "\x00"
    if "\x00" in decoded:
        raise DomainError("the cursor is not one this service gave out", slug="bad-cursor")
    return decoded


async def page(
    conn: AsyncConnection, kind: str, *, partner_id: str | None = None, status: str | None = None,
    ref_id: str | None = None, where: Callable[[dict[str, Any]], bool] | None = None,
    cursor: str | None = None, limit: int = 50,
) -> dict[str, Any]:
    """``{"items": [...], "next_cursor": ...}`` in id order.

    ``partner_id``, ``status`` and ``ref_id`` filter on indexed columns; ``where`` is for
    the rare filter no column holds (it reads every document the others leave).
    """
    limit = max(1, min(limit, MAX_LIMIT))
    after = decode_cursor(cursor) if cursor else ""
    items: list[dict[str, Any]] = []
    last_id = after
    while len(items) < limit:
        query = select(documents.c.id, documents.c.body).where(
            documents.c.kind == kind, documents.c.id > last_id)
        if partner_id is not None:
            query = query.where(documents.c.partner_id == partner_id)
        if status is not None:
            query = query.where(documents.c.status == status)
        if ref_id is not None:
            query = query.where(documents.c.ref_id == ref_id)
        rows = (await conn.execute(query.order_by(documents.c.id).limit(limit * 2))).all()
        if not rows:
            last_id = ""
            break
        for doc_id, body in rows:
            last_id = doc_id
            parsed = parse_json(body)
            if where is None or where(parsed):
                items.append(parsed)
                if len(items) == limit:
                    break
        if len(rows) < limit * 2 and len(items) < limit:
            last_id = ""
            break
    return {"items": items, "next_cursor": encode_cursor(last_id) if last_id else None}


async def get_visible(
    conn: AsyncConnection, kind: str, doc_id: str, principal: Principal, not_found: DomainError,
) -> dict[str, Any]:
    """The document, or ``not_found`` when it is unknown *or another partner's*.

    The one place the isolation promise is kept for single resources: a partner
    key gets the same 404 for another partner's resource as for a missing one,
    so it never learns that the resource exists.
    """
    body = await get(conn, kind, doc_id)
    if body is None or not principal.sees(body.get("partner_id")):
        raise not_found
    return body
