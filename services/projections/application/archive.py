"""The archive: every consumed envelope, stored as published, with the business ids it names.

``order_id`` and ``partner_id`` come from the payload. Events about an invoice
that do not name its order (a payment applied, the invoice paid) get the
order of the invoice, looked up in the archive, or filled in when the
``InvoiceIssued`` arrives later, so an order's timeline shows its money too.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Sequence
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
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.chain import Chain
from libs.events.credit import InvoiceIssued
from libs.events.envelope import Envelope
from libs.events.orders import OrderPlaced
from libs.messaging.work import BatchWork
from libs.store.sql import Statement, driver_of, row_placeholders, sqlite_in, sqlite_uuid
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

# Every consumer batch runs these (``libs.store.sql.Statement``): through SQLAlchemy Core the
# archive's insert alone, a new statement of 17 values per event, was the largest cost of the
# projections process (``docs/benchmarks.md``, issue 7, fourth pass); then, one statement per
# event, it still was (a round trip each on PostgreSQL): now it is one per batch.
_PG_TYPES = ("text", "bigint", "uuid", "text", "int", "text", "text", "int", "text", "uuid", "uuid",
             "text", "text", "text", "text", "text", "text")
_ARCHIVE_MANY_PG = Statement(
    f"INSERT INTO archive ({', '.join(_RECORDED)}) "
    f"SELECT * FROM unnest({', '.join(f'${n}::{kind}[]' for n, kind in enumerate(_PG_TYPES, 1))}) "
    "ON CONFLICT DO NOTHING RETURNING event_id")
_ORDERS_OF_INVOICES_PG = Statement(
    "SELECT invoice_id, order_id FROM archive WHERE invoice_id = ANY($1::text[]) AND event_type = $2")
_FILL_IN_ORDERS_PG = Statement(
    "UPDATE archive SET order_id = f.order_id FROM unnest($1::text[], $2::text[]) AS f(invoice_id, "
    "order_id) WHERE archive.invoice_id = f.invoice_id AND archive.order_id IS NULL",
    deferrable=True)
_FILL_IN_ORDER = Statement(
    "UPDATE archive SET order_id = $1 WHERE invoice_id = $2 AND order_id IS NULL")


@functools.lru_cache(maxsize=64)
def _archive_many(count: int) -> Statement:
    return Statement(f"INSERT INTO archive ({', '.join(_RECORDED)}) VALUES "
                     f"{row_placeholders(count, len(_RECORDED))} "
                     "ON CONFLICT DO NOTHING RETURNING event_id")


@functools.lru_cache(maxsize=64)
def _orders_of_invoices(count: int) -> Statement:
    text = "SELECT invoice_id, order_id FROM archive WHERE event_type = ?1 AND invoice_id " + sqlite_in(
        2, count)
    return Statement(text, sqlite=text)


async def record(conn: AsyncConnection, envelope: Envelope) -> bool:
    """Archive one envelope; False when its event id is archived already."""
    return bool(await record_many(conn, [envelope]))


async def record_many(conn: AsyncConnection, envelopes: Sequence[Envelope]) -> set[uuid.UUID]:
    """Archive ``envelopes`` in one statement, in their order; answers the event ids that were
    not archived already.

    An event naming an invoice but not its order gets the order of the invoice's
    ``InvoiceIssued``: among ``envelopes`` (whether before or after it), else in the
    archive (one read for all of them). A new ``InvoiceIssued`` fills its order in on the
    events of its invoice archived before it without one (one write for all of them).
    """
    if not envelopes:
        return set()
    postgres = conn.dialect.name == "postgresql"
    named = [_named_ids(envelope) for envelope in envelopes]
    issued = {invoice: order for envelope, (order, _, invoice) in zip(envelopes, named, strict=True)
              if envelope.event_type == InvoiceIssued.TYPE and order and invoice}
    missing = sorted({invoice for order, _, invoice in named
                      if order is None and invoice is not None and invoice not in issued})
    if missing:
        found = (await _ORDERS_OF_INVOICES_PG.fetch(conn, missing, InvoiceIssued.TYPE) if postgres
                 else await _orders_of_invoices(len(missing)).fetch(conn, InvoiceIssued.TYPE, *missing))
        issued = {invoice: order for invoice, order in found if order} | issued
    stored: Callable[[uuid.UUID | None], object] = _as_is if postgres else sqlite_uuid
    rows = [(publisher_of(e.event_type, e.stream_type), e.position, stored(e.event_id), e.event_type,
             e.schema_version, e.stream_id, e.stream_type, e.stream_version, e.occurred_at,
             stored(e.correlation_id), stored(e.causation_id), e.actor, e.data, e.stream_hash,
             order or issued.get(invoice or ""), partner, invoice)
            for e, (order, partner, invoice) in zip(envelopes, named, strict=True)]
    if postgres:
        inserted = {row[0] for row in await _ARCHIVE_MANY_PG.fetch(conn, *zip(*rows, strict=True))}
    else:
        answered = await _archive_many(len(rows)).fetch(conn, *(value for row in rows for value in row))
        inserted = {uuid.UUID(row[0]) for row in answered}
    fills = sorted({(invoice, order) for e, (order, _, invoice) in zip(envelopes, named, strict=True)
                    if e.event_type == InvoiceIssued.TYPE and e.event_id in inserted
                    and order and invoice})
    if postgres and fills:
        await _FILL_IN_ORDERS_PG.execute(conn, *zip(*fills, strict=True))
    elif fills:  # SQLite: no round trips to save
        for invoice, order in fills:
            await _FILL_IN_ORDER.execute(conn, order, invoice)
    return inserted


def _as_is(value: uuid.UUID | None) -> uuid.UUID | None:
    return value


def _named_ids(envelope: Envelope) -> tuple[str | None, str | None, str | None]:
    """The order, partner and invoice an envelope's payload names."""
    payload = envelope.payload()
    return (named_id(payload, "order_id"), named_id(payload, "partner_id"),
            named_id(payload, "invoice_id"))


async def newly_archived(conn: AsyncConnection, envelope: Envelope, work: BatchWork | None) -> bool:
    """Archive ``envelope``; False when it was archived already.

    In a consumer batch (``work``) the first handler archives all the batch's events to
    handle in one statement (``record_many``), before any read model is read: a rebuild
    (``keep_writers_out``) is waited for first, as before. The events are the ones the
    consumer decided to handle (none held or repeated), in order, so their
    ``received_seq`` is their order of arrival; if a handler fails, the transaction
    rolls back with these rows and the split batch archives its parts again. Each
    event is answered "new" once, as its own insert would have.
    """
    if work is None:
        return await record(conn, envelope)
    batch = await _archived_ahead(conn, work)
    if envelope.event_id not in batch.covered:
        return await record(conn, envelope)
    if envelope.event_id not in batch.unanswered:
        return False
    batch.unanswered.discard(envelope.event_id)
    return True


async def archived_new(conn: AsyncConnection, work: BatchWork) -> list[Envelope]:
    """The envelopes of ``work``'s batch that its archive insert found new (archived by the
    first handler of the batch, ``newly_archived``): the events the batch folds."""
    new = (await _archived_ahead(conn, work)).new
    return [envelope for envelope in work.envelopes if envelope.event_id in new]


async def _archived_ahead(conn: AsyncConnection, work: BatchWork) -> _BatchArchive:
    batch = work.shared(_BatchArchive, _BatchArchive)
    if not batch.archived:
        batch.archived = True
        batch.covered = frozenset(e.event_id for e in work.envelopes)
        batch.new = frozenset(await record_many(conn, work.envelopes))
        batch.unanswered = set(batch.new)
    return batch


class _BatchArchive:
    """What the first handler of a batch archived: the events it covered, those new, and those
    new not yet answered so (each is answered new once, as its own insert would have)."""

    def __init__(self) -> None:
        self.archived = False
        self.covered: frozenset[uuid.UUID] = frozenset()
        self.new: frozenset[uuid.UUID] = frozenset()
        self.unanswered: set[uuid.UUID] = set()


class Shown(NamedTuple):
    """An archived event as the views answer it: its ids as text (``8-4-4-4-12``, as answered),
    its payload as stored (canonical JSON, passed through: ``views.event_item``)."""

    received_seq: int
    service: str
    event_id: str
    event_type: str
    schema_version: int
    stream_id: str
    stream_type: str
    stream_version: int
    occurred_at: str
    correlation_id: str
    causation_id: str | None
    actor: str
    data: str
    position: int | None
    stream_hash: str | None
    order_id: str | None
    partner_id: str | None


_IDS = frozenset({"event_id", "correlation_id", "causation_id"})
_SHOWN_PG = ", ".join(f"{name}::text" if name in _IDS else name for name in Shown._fields)
_SHOWN_SQLITE = ", ".join(Shown._fields)


def _dashed(h: str) -> str:
    """A ``Uuid`` column's text on SQLite (32 hex digits) in the answered ``8-4-4-4-12`` form
    (here: done in SQL, by ``substr`` and ``||``, it cost SQLite twice as much CPU)."""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _shown_rows(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> list[Shown]:
    """``Shown`` rows of what a statement of ``_shown`` answered (ids dashed on SQLite)."""
    if conn.dialect.name == "postgresql":
        return [Shown._make(row) for row in rows]
    return [Shown(row[0], row[1], _dashed(row[2]), row[3], row[4], row[5], row[6], row[7], row[8],
                  _dashed(row[9]), None if row[10] is None else _dashed(row[10]), row[11], row[12],
                  row[13], row[14], row[15], row[16]) for row in rows]


def _shown(postgresql: str, sqlite: str | None = None) -> Statement:
    """A read of ``Shown`` rows: ``{shown}`` in the texts is its columns (``$n`` placeholders;
    ``sqlite``: that dialect's text where it differs)."""
    return Statement(postgresql.format(shown=_SHOWN_PG), sqlite=re.sub(
        r"\$(\d+)", r"?\1", (sqlite or postgresql).format(shown=_SHOWN_SQLITE)))


_ORDER_TIMELINE_ROWS = (
    "WITH mine AS (SELECT * FROM archive WHERE order_id = $1 OR correlation_id = ("
    "SELECT correlation_id FROM archive WHERE order_id = $1 AND event_type = $2 "
    "ORDER BY received_seq LIMIT 1)), "
    "placement AS (SELECT {partner_id} AS partner_id, {deal_id} AS deal_id FROM mine "
    "WHERE order_id = $1 AND event_type = $2 ORDER BY received_seq LIMIT 1), "
    "causes AS (SELECT * FROM archive WHERE event_id IN (SELECT causation_id FROM mine) "
    "AND {service} = $3 AND event_id NOT IN (SELECT event_id FROM mine)), "
    "deal AS (SELECT archive.* FROM archive JOIN placement ON archive.partner_id = placement.partner_id "
    "WHERE placement.deal_id <> '' AND archive.event_type {deal_types} "
    "AND {archive_deal_id} = placement.deal_id) "
    "SELECT {{shown}} FROM mine UNION ALL SELECT {{shown}} FROM causes "
    "UNION ALL SELECT {{shown}} FROM deal")
_OF_ORDER = _shown(
    _ORDER_TIMELINE_ROWS.format(
        partner_id="data::jsonb ->> 'partner_id'", deal_id="data::jsonb ->> 'deal_id'",
        service="service", deal_types="= ANY($4::text[])",
        archive_deal_id="archive.data::jsonb ->> 'deal_id'"),
    sqlite=_ORDER_TIMELINE_ROWS.format(
        partner_id="json_extract(data, '$.partner_id')", deal_id="json_extract(data, '$.deal_id')",
        # ``+``: SQLite finds the causes by their event id, not among every partner event
        service="+service", deal_types="IN ($4, $5, $6, $7)",
        archive_deal_id="json_extract(archive.data, '$.deal_id')"))
_DEAL_TYPES = sorted(DEAL_STATUS_AFTER)


async def events_of_order(conn: AsyncConnection, order_id: str) -> list[Shown]:
    """In one statement (one snapshot), in no particular order:

    - the rows naming the order, or sharing the correlation id of its placement (its
      ``OrderPlaced``);
    - the partners' events that caused some of those and are not among them (a partner's
      termination cancelling its order, a suspension holding it), looked up by event id;
    - the events of the deal registration the placement cites, of its partner (the orders
      service keeps a customer's deals on one stream, so they are picked by the
      ``deal_id`` they carry).
    """
    types: list[Any] = [_DEAL_TYPES] if conn.dialect.name == "postgresql" else _DEAL_TYPES
    return _shown_rows(conn, await _OF_ORDER.fetch(conn, order_id, OrderPlaced.TYPE, "partners", *types))


@functools.lru_cache(maxsize=8)
def _page(service: bool, stream_id: bool, correlation_id: bool) -> Statement:
    """A page of the feed with those filters: ``$1`` the cursor, ``$2`` the limit, then theirs."""
    named = [name for name, used in (("service", service), ("stream_id", stream_id),
                                     ("correlation_id", correlation_id)) if used]
    where = "".join(f" AND {name} = ${n}" for n, name in enumerate(named, 3))
    return _shown(f"SELECT {{shown}} FROM archive WHERE received_seq > $1{where} "
                  "ORDER BY received_seq LIMIT $2")


async def page_events(
    conn: AsyncConnection, *, service: str | None, stream_id: str | None,
    correlation_id: uuid.UUID | None, after: int, limit: int,
) -> list[Shown]:
    """Up to ``limit`` rows after the ``received_seq`` cursor ``after``, in arrival order."""
    if correlation_id is not None and conn.dialect.name != "postgresql":
        filters: list[object] = [service, stream_id, sqlite_uuid(correlation_id)]
    else:
        filters = [service, stream_id, correlation_id]
    statement = _page(service is not None, stream_id is not None, correlation_id is not None)
    return _shown_rows(conn, await statement.fetch(
        conn, after, limit, *(value for value in filters if value is not None)))


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
