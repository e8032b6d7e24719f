"""Read models as documents: one JSON body per (kind, id), written with the events that change it.

A service updates a document in the same transaction as the append that
changes it, so a read right after a write sees the write. Documents are
derived data: the events are the record, and ``o2c replay`` rebuilds them.

``batch(conn)`` is the unit of work for folding many events: it reads each
document once (``load`` fetches many in one statement), keeps the folded
bodies in memory, and writes the changed ones in one multi-row upsert when
flushed or when the block ends. The live consumers and ``o2c replay`` fold
through it alike; a rebuild flushes and forgets it page by page, so its memory
stays bounded by the page.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.events.codec import canonical_json, parse_json
from libs.runtime.auth import Principal
from libs.runtime.errors import DomainError
from libs.store.schema import documents
from libs.store.sql import Statement, row_placeholders

MAX_LIMIT = 200
LOAD_CHUNK = 500
"""Ids per ``SELECT ... IN`` (well below SQLite's bound on parameters)."""

Key = tuple[str, str]
"""(kind, id) of a document."""

Held = tuple[str, dict[str, Any], "str | None", "str | None", "str | None"]
"""A document kept by ``Documents.put`` and not written yet: (id, body, partner_id, status, ref_id)."""

_COLUMNS = ("kind", "id", "partner_id", "status", "ref_id", "body", "version", "updated_at")
_PG_SELECT_SQL = ("SELECT d.kind, d.id, d.body FROM documents d "
                  "JOIN unnest($1::text[], $2::text[]) AS k(kind, id) ON d.kind = k.kind AND d.id = k.id")
_PG_SELECT = Statement(_PG_SELECT_SQL)
_PG_SELECT_LOCKED = Statement(_PG_SELECT_SQL + " ORDER BY d.kind, d.id FOR UPDATE OF d")
_ON_CONFLICT_UPDATE = (
    " ON CONFLICT (kind, id) DO UPDATE SET partner_id = excluded.partner_id, "
    "status = excluded.status, ref_id = excluded.ref_id, body = excluded.body, "
    "version = excluded.version, updated_at = excluded.updated_at")
_PG_UPSERT = Statement(f"INSERT INTO documents ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
                       "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
                       "$7::int[], $8::text[])" + _ON_CONFLICT_UPDATE, deferrable=True,
                       rows=lambda values: zip(values[0], values[1], strict=True))
"""Deferrable: a consumer batch's documents go out with its inbox rows and heads, in one round
trip (``libs.store.sql.Statement``)."""

# Sent straight to the driver (``libs.store.sql.Statement``): every command's read and write
# of its documents runs them.
_GET = Statement("SELECT body FROM documents WHERE kind = $1 AND id = $2")
_PUT = Statement(f"INSERT INTO documents ({', '.join(_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                 + _ON_CONFLICT_UPDATE, deferrable=True, rows=lambda values: [(values[0], values[1])])
"""Deferrable: a command's document is mostly its last write, sent with the next statement
(the ``Idempotency-Key``'s answer) in one round trip on PostgreSQL."""
_CREATE = Statement(
    f"INSERT INTO documents ({', '.join(_COLUMNS)}) VALUES ($1, $2, $3, NULL, NULL, $4, 0, $5) "
    "ON CONFLICT (kind, id) DO NOTHING RETURNING id")


async def put(
    conn: AsyncConnection, kind: str, doc_id: str, body: Mapping[str, Any], *,
    partner_id: str | None = None, status: str | None = None, version: int = 0,
    ref_id: str | None = None,
) -> None:
    """Write a document; ``partner_id``, ``status`` and ``ref_id`` are the indexed columns
    its lists filter by (``ref_id``: the one other key, e.g. a shipment's order, a
    product's category)."""
    await _PUT.execute(conn, kind, doc_id, partner_id, status, ref_id,
                       canonical_json(dict(body)).decode("utf-8"), version,
                       format_timestamp(utc_now()))


async def create(conn: AsyncConnection, kind: str, doc_id: str, body: Mapping[str, Any], *,
                 partner_id: str | None = None) -> bool:
    """Write a new document unless one with its key exists; True when this call wrote it (the
    row is then this transaction's until it ends, so a concurrent creator waits, then finds it)."""
    return bool(await _CREATE.fetch(conn, kind, doc_id, partner_id,
                                    canonical_json(dict(body)).decode("utf-8"), format_timestamp(utc_now())))


async def _create_many(conn: AsyncConnection, blanks: Mapping[Key, str]) -> list[Key]:
    """``create`` of the documents ``blanks`` holds (key -> body, in key order) in one statement,
    without a partner; the keys it wrote. A unit of work's new documents of one batch are
    created together: one statement per new order, invoice or deal was projections'
    largest count of statements per consumed order after the archive's."""
    if not blanks:
        return []
    stamp = format_timestamp(utc_now())
    if conn.dialect.name == "postgresql":
        rows = await _CREATE_MANY_PG.fetch(conn, [kind for kind, _ in blanks],
                                           [doc_id for _, doc_id in blanks], list(blanks.values()), stamp)
    else:
        rows = await _create_many_sqlite(len(blanks)).fetch(conn, stamp, *(
            value for (kind, doc_id), body in blanks.items() for value in (kind, doc_id, body)))
    return [(row[0], row[1]) for row in rows]


_CREATE_MANY_PG = Statement(
    f"INSERT INTO documents ({', '.join(_COLUMNS)}) SELECT kind, id, NULL, NULL, NULL, body, 0, $4 "
    "FROM unnest($1::text[], $2::text[], $3::text[]) AS b(kind, id, body) "
    "ON CONFLICT (kind, id) DO NOTHING RETURNING kind, id")


@functools.lru_cache(maxsize=64)
def _create_many_sqlite(count: int) -> Statement:
    """``_create_many``'s insert of ``count`` documents on SQLite (``$1`` the stamp)."""
    rows = ", ".join(f"(${3 * n + 2}, ${3 * n + 3}, NULL, NULL, NULL, ${3 * n + 4}, 0, $1)"
                     for n in range(count))
    return Statement(f"INSERT INTO documents ({', '.join(_COLUMNS)}) VALUES {rows} "
                     "ON CONFLICT (kind, id) DO NOTHING RETURNING kind, id")


async def get(conn: AsyncConnection, kind: str, doc_id: str) -> dict[str, Any] | None:
    rows = await _GET.fetch(conn, kind, doc_id)
    return parse_json(rows[0][0]) if rows else None


class Documents:
    """A unit of work over documents on one connection: read once, fold in memory, write in bulk.

    With ``lock`` (the live path), documents are created blank if missing and
    row-locked before they are read (PostgreSQL ``FOR UPDATE``; SQLite has one
    writer at a time), so two transactions folding into one document take
    turns. Without it they are read plainly: a rebuild that keeps every other writer
    out, or a consumer batch whose documents are each written only under the lock
    of what they derive from (``libs.runtime.commands``, ``Unit.document``).
    """

    def __init__(self, conn: AsyncConnection, *, lock: bool = True) -> None:
        self.conn = conn
        self.lock = lock
        self._bodies: dict[Key, dict[str, Any] | None] = {}
        self._changed: dict[Key, tuple[dict[str, Any], str | None, str | None, str | None, int]] = {}

    async def load(self, wanted: Mapping[Key, Mapping[str, Any] | None]) -> None:
        """Read the documents not read yet, in a few statements; ``wanted`` maps key -> blank.

        When locking, a missing document with a blank is created from it first; one that
        insert made is the blank, locked by the insert, and is not read back.
        """
        missing = sorted(key for key in wanted if key not in self._bodies)
        if not missing:
            return
        self._bodies.update(dict.fromkeys(missing))
        if self.lock:
            blanks = {key: canonical_json(dict(blank)).decode("utf-8")
                      for key in missing if (blank := wanted[key]) is not None}
            for key in await _create_many(self.conn, blanks):
                self._bodies[key] = parse_json(blanks[key])  # as a read answers it
            missing = [key for key in missing if self._bodies[key] is None]
        for kind, doc_id, body in await self._select(missing):
            self._bodies[(kind, doc_id)] = parse_json(body)

    async def _select(self, keys: list[Key]) -> Iterable[tuple[str, str, str]]:
        """(kind, id, body) of the stored documents among ``keys`` (locked when locking)."""
        if not keys:
            return []
        if self.conn.dialect.name == "postgresql":  # one statement, straight from the driver
            select = _PG_SELECT_LOCKED if self.lock else _PG_SELECT
            return [(row[0], row[1], row[2]) for row in await select.fetch(
                self.conn, [kind for kind, _ in keys], [doc_id for _, doc_id in keys])]
        found: list[tuple[str, str, str]] = []
        for first in range(0, len(keys), LOAD_CHUNK):
            chunk = keys[first:first + LOAD_CHUNK]
            rows = await _get_many(len(chunk), False).fetch(
                self.conn, *(part for key in chunk for part in key))
            found += [(row[0], row[1], row[2]) for row in rows]
        return found

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        """The document as folded so far in this unit of work, or as stored."""
        key = (kind, doc_id)
        if key not in self._bodies:
            await self.load({key: None})
        return self._bodies[key]

    async def locked(self, kind: str, doc_id: str, blank: Mapping[str, Any]) -> dict[str, Any]:
        """The document (``blank`` when new), locked until the transaction ends when locking."""
        key = (kind, doc_id)
        if key not in self._bodies:
            await self.load({key: blank})
        body = self._bodies[key]
        return dict(blank) if body is None else body

    def put(self, kind: str, doc_id: str, body: dict[str, Any], *, partner_id: str | None = None,
            status: str | None = None, version: int = 0, ref_id: str | None = None) -> None:
        """Keep the new body (indexed columns as ``put``'s); it is written at the next ``flush``."""
        self._bodies[(kind, doc_id)] = body
        self._changed[(kind, doc_id)] = (body, partner_id, status, ref_id, version)

    def written(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        """``body`` was written to the table by someone else on this connection: answer it from
        now on (a ``put`` of it not flushed yet is superseded)."""
        self._bodies[(kind, doc_id)] = body
        self._changed.pop((kind, doc_id), None)

    def changed(self, kind: str) -> list[Held]:
        """``(id, body, partner_id, status, ref_id)`` of the documents of ``kind`` kept by ``put``
        and not written yet: a read by an index (not by key) does not find them in the table."""
        return [(doc_id, body, partner_id, status, ref_id)
                for (of_kind, doc_id), (body, partner_id, status, ref_id, _) in self._changed.items()
                if of_kind == kind]

    async def flush(self) -> int:
        """Write every changed document in one multi-row upsert; how many."""
        if not self._changed:
            return 0
        stamp = format_timestamp(utc_now())
        rows = [(kind, doc_id, partner_id, status, ref_id, canonical_json(body).decode("utf-8"), version,
                 stamp)
                for (kind, doc_id), (body, partner_id, status, ref_id, version) in self._changed.items()]
        self._changed.clear()
        if self.conn.dialect.name == "postgresql":  # one statement of arrays, straight from the driver
            await _PG_UPSERT.execute(self.conn, *(list(column) for column in zip(*rows, strict=True)))
        else:
            for first in range(0, len(rows), LOAD_CHUNK):
                chunk = rows[first:first + LOAD_CHUNK]
                await _upsert_many(len(chunk)).execute(self.conn, *(value for row in chunk for value in row))
        return len(rows)

    def forget(self) -> None:
        """Drop what was read (after a ``flush``): the next read goes to the table again."""
        assert not self._changed, "flush before forgetting"
        self._bodies.clear()


@asynccontextmanager
async def batch(conn: AsyncConnection, *, lock: bool = True) -> AsyncIterator[Documents]:
    """``async with documents.batch(conn) as docs:`` fold into ``docs``; flushed when the block ends."""
    docs = Documents(conn, lock=lock)
    yield docs
    await docs.flush()
async def get_many(
    conn: AsyncConnection, keys: Iterable[tuple[str, str]], *, follow: tuple[Key, str] | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """The documents among ``keys`` (``(kind, id)`` pairs) that exist, by key: one statement.

    ``follow=(key, kind)`` also reads, in the same statement, the document of ``kind``
    whose id is the ``ref_id`` of the document at ``key`` (orders: a partner copy's
    ``ref_id`` is its tier, and names the tier's price list). It is keyed like the others,
    under ``(kind, its id)``: a caller that finds it under the id it expects needs no
    other read; one that does not must read it itself (a ``ref_id`` is an index, not the
    record).
    """
    wanted = sorted(set(keys))
    if not wanted and follow is None:
        return {}
    args: list[str] = [part for pair in wanted for part in pair]
    if follow is not None:
        (from_kind, from_id), to_kind = follow
        args += [to_kind, from_kind, from_id]
    rows = await _get_many(len(wanted), follow is not None).fetch(conn, *args)
    return {(row[0], row[1]): parse_json(row[2]) for row in rows}


@functools.lru_cache(maxsize=64)
def _upsert_many(count: int) -> Statement:
    """``flush``'s upsert of ``count`` documents on SQLite (PostgreSQL takes arrays)."""
    return Statement(f"INSERT INTO documents ({', '.join(_COLUMNS)}) VALUES "
                     + row_placeholders(count, len(_COLUMNS)) + _ON_CONFLICT_UPDATE)


@functools.lru_cache(maxsize=64)
def _get_many(count: int, follow: bool) -> Statement:
    """The statement of ``get_many`` for ``count`` keys, built once per shape: an OR of
    ``(kind, id)`` pairs, each an index search (see ``libs.store.sql.pairs_in``)."""
    match = [f"(kind = ${2 * n + 1} AND id = ${2 * n + 2})" for n in range(count)]
    if follow:  # one index search more: the document its ref_id names
        first = 2 * count + 1
        match.append(f"(kind = ${first} AND id = (SELECT ref_id FROM documents "
                     f"WHERE kind = ${first + 1} AND id = ${first + 2}))")
    return Statement(f"SELECT kind, id, body FROM documents WHERE {' OR '.join(match)}")


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
