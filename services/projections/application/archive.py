"""The archive: every consumed envelope, stored as published, with the business ids it names.

``order_id`` and ``partner_id`` come from the payload. Events about an invoice
that do not name its order (a payment applied, the invoice paid) get the
order of the invoice, looked up in the archive, or filled in when the
``InvoiceIssued`` arrives later, so an order's timeline shows its money too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    Uuid,
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.chain import Chain
from libs.events.codec import parse_json
from libs.events.credit import InvoiceIssued
from libs.events.envelope import Envelope
from libs.events.orders import OrderPlaced
from libs.store.sql import Statement, driver_of, sqlite_uuid
from services.projections.domain.chain import ChainWalk
from services.projections.domain.partner_view import DEAL_STATUS_AFTER
from services.projections.domain.publishers import named_id, publisher_of

metadata = MetaData()

archive = Table(
    "archive", metadata,
    Column("received_seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("service", String(50), nullable=False),
    Column("position", BigInteger, nullable=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_type", String(100), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("occurred_at", String(32), nullable=False),
    Column("correlation_id", Uuid, nullable=False),
    Column("causation_id", Uuid, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("data", Text, nullable=False),
    Column("stream_hash", String(64), nullable=True),
    Column("order_id", String(200), nullable=True),
    Column("partner_id", String(200), nullable=True),
    Column("invoice_id", String(200), nullable=True),
)

_ENVELOPE = (
    archive.c.event_id, archive.c.event_type, archive.c.schema_version, archive.c.stream_id,
    archive.c.stream_type, archive.c.stream_version, archive.c.occurred_at,
    archive.c.correlation_id, archive.c.causation_id, archive.c.actor, archive.c.data,
    archive.c.position, archive.c.stream_hash,
)
ROW = (archive.c.received_seq, archive.c.service, *_ENVELOPE, archive.c.order_id, archive.c.partner_id)
"""Columns of an archived row: ``received_seq``, ``service``, the envelope's, its order and partner."""

PAGE = 2000

ArchivedRow = Row[*tuple[Any, ...]]
"""A row selected with ``ROW``."""


def envelope_of(row: ArchivedRow | Sequence[Any]) -> Envelope:
    """The envelope of a row selected with ``ROW``."""
    return Envelope(*row[2:15])


_RECORDED = ("service", "position", "event_id", "event_type", "schema_version", "stream_id",
             "stream_type", "stream_version", "occurred_at", "correlation_id", "causation_id", "actor",
             "data", "stream_hash", "order_id", "partner_id", "invoice_id")

# Every consumed event runs these (``libs.store.sql.Statement``): through SQLAlchemy Core the
# archive's insert alone, a new statement of 17 values per event, was the largest cost of the
# projections process (``docs/benchmarks.md``, issue 7, fourth pass).
_ARCHIVE = Statement(
    f"INSERT INTO archive ({', '.join(_RECORDED)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(_RECORDED) + 1))}) "
    "ON CONFLICT DO NOTHING RETURNING received_seq")
_ORDER_OF_INVOICE = Statement(
    "SELECT order_id FROM archive WHERE invoice_id = $1 AND event_type = $2 LIMIT 1")
_FILL_IN_ORDER = Statement(
    "UPDATE archive SET order_id = $1 WHERE invoice_id = $2 AND order_id IS NULL")


async def record(conn: AsyncConnection, envelope: Envelope) -> bool:
    """Archive one envelope; False when its event id is archived already."""
    payload = envelope.payload()
    order_id = named_id(payload, "order_id")
    invoice_id = named_id(payload, "invoice_id")
    if order_id is None and invoice_id is not None:
        found = await _ORDER_OF_INVOICE.fetch(conn, invoice_id, InvoiceIssued.TYPE)
        order_id = found[0][0] if found else None
    ids: tuple[Any, ...] = (envelope.event_id, envelope.correlation_id, envelope.causation_id)
    if conn.dialect.name != "postgresql":
        ids = tuple(sqlite_uuid(value) for value in ids)
    inserted = await _ARCHIVE.fetch(
        conn, publisher_of(envelope.event_type, envelope.stream_type), envelope.position, ids[0],
        envelope.event_type, envelope.schema_version, envelope.stream_id, envelope.stream_type,
        envelope.stream_version, envelope.occurred_at, ids[1], ids[2], envelope.actor,
        envelope.data, envelope.stream_hash, order_id, named_id(payload, "partner_id"), invoice_id)
    if inserted and envelope.event_type == InvoiceIssued.TYPE and order_id and invoice_id:
        await _FILL_IN_ORDER.execute(conn, order_id, invoice_id)
    return bool(inserted)


async def order_placed(conn: AsyncConnection, order_id: str) -> ArchivedRow | None:
    """The archived ``OrderPlaced`` of an order, if it arrived."""
    return (await conn.execute(select(*ROW).where(
        archive.c.order_id == order_id, archive.c.event_type == OrderPlaced.TYPE))).first()


async def partner_of_order(conn: AsyncConnection, order_id: str) -> str | None:
    """The partner named by any archived event of the order."""
    return (await conn.execute(select(archive.c.partner_id).where(
        archive.c.order_id == order_id, archive.c.partner_id.is_not(None)).limit(1))).scalar()


async def events_of_order(
    conn: AsyncConnection, order_id: str, correlation_id: uuid.UUID | None
) -> Sequence[ArchivedRow]:
    """Rows naming the order, or sharing the correlation id of its placement."""
    condition = archive.c.order_id == order_id
    if correlation_id is not None:
        condition = or_(condition, archive.c.correlation_id == correlation_id)
    return (await conn.execute(select(*ROW).where(condition).order_by(archive.c.received_seq))).all()


async def partner_causes(conn: AsyncConnection, rows: Sequence[ArchivedRow]) -> Sequence[ArchivedRow]:
    """The partners' events that caused some of ``rows`` and are not among them (a partner's
    termination cancelling its order, a suspension holding it): looked up by event id."""
    known = {row.event_id for row in rows}
    causes = sorted({row.causation_id for row in rows if row.causation_id is not None} - known)
    if not causes:
        return []
    return (await conn.execute(select(*ROW).where(
        archive.c.event_id.in_(causes), archive.c.service == "partners"))).all()


async def events_of_deal(conn: AsyncConnection, partner_id: str, deal_id: str) -> list[ArchivedRow]:
    """The partner's archived events of one deal registration (the orders service keeps a
    customer's deals on one stream, so they are picked by the ``deal_id`` they carry)."""
    rows = (await conn.execute(select(*ROW).where(
        archive.c.partner_id == partner_id,
        archive.c.event_type.in_(sorted(DEAL_STATUS_AFTER)))
        .order_by(archive.c.received_seq))).all()
    return [row for row in rows if parse_json(row.data).get("deal_id") == deal_id]


async def page_events(
    conn: AsyncConnection, *, service: str | None, stream_id: str | None,
    correlation_id: uuid.UUID | None, after: int, limit: int,
) -> Sequence[ArchivedRow]:
    """Up to ``limit`` rows after the ``received_seq`` cursor ``after``, in arrival order."""
    query = select(*ROW).where(archive.c.received_seq > after)
    if service is not None:
        query = query.where(archive.c.service == service)
    if stream_id is not None:
        query = query.where(archive.c.stream_id == stream_id)
    if correlation_id is not None:
        query = query.where(archive.c.correlation_id == correlation_id)
    return (await conn.execute(query.order_by(archive.c.received_seq).limit(limit))).all()


class Archived(NamedTuple):
    """What a rebuild reads of an archived event: its place, what decodes it and what the
    projectors read of its envelope (``projectors.Stamp``). Not the whole row: a rebuild reads
    every row, and the driver's work on the other columns was nearly half of reading a page."""

    received_seq: int
    event_type: str
    schema_version: int
    data: str
    event_id: uuid.UUID
    stream_version: int
    occurred_at: str
    correlation_id: uuid.UUID


_ARCHIVED = tuple(archive.c[name] for name in Archived._fields)
_PG_ARCHIVED = (f"SELECT {', '.join(Archived._fields)} FROM archive "
                "WHERE received_seq > $1 ORDER BY received_seq LIMIT $2")


async def page_to_fold(conn: AsyncConnection, after: int, limit: int) -> Sequence[Sequence[Any]]:
    """Up to ``limit`` rows (``Archived``'s columns) after the cursor ``after``: a rebuild's pages.

    On PostgreSQL straight from the driver, in the caller's transaction: a rebuild
    reads the whole archive, and row objects cost more than the rest of its read.
    Every type is read (a filter on the types the projectors fold made PostgreSQL
    read and sort the rest of the archive for each page; the heap is read anyway).
    """
    if conn.dialect.name == "postgresql":
        return await (await driver_of(conn)).fetch(_PG_ARCHIVED, after, limit)
    return (await conn.execute(select(*_ARCHIVED).where(archive.c.received_seq > after)
                               .order_by(archive.c.received_seq).limit(limit))).all()


async def count(conn: AsyncConnection) -> int:
    """How many events the archive holds."""
    return int((await conn.execute(select(func.count()).select_from(archive))).scalar_one())


async def keep_writers_out(conn: AsyncConnection) -> None:
    """Until this transaction ends, no event is archived (PostgreSQL; reads go on).

    SQLite has one writer at a time: a write transaction keeps the others out already.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("LOCK TABLE archive IN SHARE MODE"))


async def walk_chains(conn: AsyncConnection, chain: Chain) -> ChainWalk:
    """Recompute every archived stream's chain under ``chain``'s keys (see ``domain.chain``)."""
    walk = ChainWalk(chain)
    key_columns = (archive.c.service, archive.c.stream_id, archive.c.stream_version,
                   archive.c.received_seq)
    last: tuple[Any, ...] | None = None
    while True:
        query = select(*ROW).order_by(*key_columns).limit(PAGE)
        if last is not None:
            query = query.where(tuple_(*key_columns) > tuple_(*last))
        rows = (await conn.execute(query)).all()
        for row in rows:
            walk.feed(row[0], row[1], envelope_of(row))
        if len(rows) < PAGE:
            return walk
        tail = rows[-1]
        last = (tail[1], tail[5], tail[7], tail[0])
