"""Webhooks: the registrations, the durable outbox of pushes, and the delivery log.

When the consumer applies an event a partner may be told about, one delivery row
per matching webhook of that partner is written in the same transaction as the
event's inbox row (``DeliveryOutbox``): a crash leaves both or neither, and an
event delivered again by the broker is archived once, so it queues nothing new
(the unique ``(webhook_id, event_id)`` is the backstop). The sender
(``webhook_sender``) pushes due rows and records every attempt.

Partner scoping: a partner key sees and changes its own webhooks only; another
partner's webhook or delivery answers 404, exactly like a missing one.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.codec import canonical_json, parse_json
from libs.events.envelope import Envelope
from libs.runtime.auth import Principal
from libs.runtime.documents import MAX_LIMIT, decode_cursor, encode_cursor
from libs.runtime.errors import NotFound
from libs.runtime.ids import new_id
from libs.store.sql import Statement, insert_many_ignoring_duplicates, sqlite_in
from services.projections.domain.webhooks import WEBHOOK_TYPE_OF, webhook_data

metadata = MetaData()

webhooks = Table(
    "webhooks", metadata,
    Column("webhook_id", String(40), primary_key=True),
    Column("partner_id", String(200), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),  # kept to sign with; never answered
    Column("events", Text, nullable=False),  # JSON list of webhook event types
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("deleted_at", String(32), nullable=True),
)

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), nullable=False),
    Column("webhook_id", String(40), nullable=False),
    Column("partner_id", String(200), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(50), nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes pushed, the same on every attempt
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=True),
    Column("queued_at_ms", BigInteger, nullable=False),  # retried until a window after this
    Column("last_attempt_at", String(32), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", String(32), nullable=True),
    UniqueConstraint("delivery_id", name="uq_webhook_deliveries_delivery_id"),
    UniqueConstraint("webhook_id", "event_id", name="webhook_deliveries_once"),
    Index("webhook_deliveries_due", "status", "next_attempt_ms"),
    Index("webhook_deliveries_of_webhook", "webhook_id", "seq"),
)

webhook_attempts = Table(
    "webhook_attempts", metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("attempted_at", String(32), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
)


def now_ms() -> int:
    return int(utc_now().timestamp() * 1000)


def ms_timestamp(ms: int | None) -> str | None:
    return None if ms is None else format_timestamp(datetime.fromtimestamp(ms / 1000, UTC))


# -- registrations ---------------------------------------------------------------------------


def _webhook_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A webhook as answered: never its secret."""
    return {"id": row["webhook_id"], "partner_id": row["partner_id"], "url": row["url"],
            "events": parse_json(row["events"]), "created_at": row["created_at"]}


async def register(conn: AsyncConnection, *, partner_id: str, url: str, secret: str,
                   events: Sequence[str], actor: str) -> dict[str, Any]:
    """A new webhook of ``partner_id``; only events applied from now on are pushed to it."""
    row = {"webhook_id": new_id("whk"), "partner_id": partner_id, "url": url, "secret": secret,
           "events": canonical_json(list(dict.fromkeys(events))).decode(),
           "created_at": format_timestamp(utc_now()), "created_by": actor, "deleted_at": None}
    await conn.execute(webhooks.insert().values(**row))
    return _webhook_view(row)


async def list_webhooks(conn: AsyncConnection, partner_id: str | None, cursor: str | None,
                        limit: int) -> dict[str, Any]:
    """The live webhooks (of ``partner_id`` when given), in id order."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = select(webhooks).where(webhooks.c.deleted_at.is_(None))
    if partner_id is not None:
        query = query.where(webhooks.c.partner_id == partner_id)
    if cursor:
        query = query.where(webhooks.c.webhook_id > decode_cursor(cursor))
    rows = (await conn.execute(query.order_by(webhooks.c.webhook_id).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_webhook_view(row._mapping) for row in rows],
            "next_cursor": encode_cursor(rows[-1].webhook_id) if more else None}


async def visible_webhook(conn: AsyncConnection, webhook_id: str, principal: Principal) -> Any:
    """The live webhook, or 404 when it is unknown, deleted or another partner's."""
    row = (await conn.execute(select(webhooks).where(webhooks.c.webhook_id == webhook_id))).first()
    if row is None or row.deleted_at is not None or not principal.sees(row.partner_id):
        raise NotFound(f"no webhook {webhook_id}")
    return row


async def delete(conn: AsyncConnection, webhook_id: str, principal: Principal) -> None:
    """Stop pushing to the webhook: its pushes not yet delivered are cancelled, its secret
    is forgotten."""
    await visible_webhook(conn, webhook_id, principal)
    now = format_timestamp(utc_now())
    await conn.execute(update(webhooks).where(webhooks.c.webhook_id == webhook_id)
                       .values(deleted_at=now, secret=""))
    await conn.execute(update(webhook_deliveries).where(
        webhook_deliveries.c.webhook_id == webhook_id, webhook_deliveries.c.status == PENDING)
        .values(status=CANCELLED, next_attempt_ms=None))


# -- the delivery log ------------------------------------------------------------------------


def _delivery_view(row: Any, log: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": row.delivery_id, "webhook_id": row.webhook_id, "event_id": str(row.event_id),
            "type": row.event_type, "status": row.status, "attempts": row.attempts,
            "created_at": row.created_at, "next_attempt_at": ms_timestamp(row.next_attempt_ms),
            "last_attempt_at": row.last_attempt_at, "last_status_code": row.last_status_code,
            "last_error": row.last_error, "delivered_at": row.delivered_at,
            "payload": parse_json(row.body), "log": log}


async def _logs(conn: AsyncConnection, delivery_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return found
    rows = await conn.execute(select(webhook_attempts).where(
        webhook_attempts.c.delivery_id.in_(delivery_ids)).order_by(
        webhook_attempts.c.delivery_id, webhook_attempts.c.attempt))
    for row in rows:
        found[row.delivery_id].append({
            "attempt": row.attempt, "at": row.attempted_at, "status_code": row.status_code,
            "error": row.error, "duration_ms": row.duration_ms})
    return found


async def deliveries(conn: AsyncConnection, webhook_id: str, principal: Principal,
                     cursor: str | None, limit: int) -> dict[str, Any]:
    """The webhook's pushes, newest first, each with its attempts."""
    await visible_webhook(conn, webhook_id, principal)
    limit = max(1, min(limit, MAX_LIMIT))
    query = select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
    if cursor:
        after = decode_cursor(cursor)
        query = query.where(webhook_deliveries.c.seq < (int(after) if after.isdigit() else 0))
    rows = (await conn.execute(query.order_by(webhook_deliveries.c.seq.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    logs = await _logs(conn, [row.delivery_id for row in rows])
    return {"items": [_delivery_view(row, logs[row.delivery_id]) for row in rows],
            "next_cursor": encode_cursor(str(rows[-1].seq)) if more else None}


async def delivery(conn: AsyncConnection, delivery_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(webhook_deliveries).where(
        webhook_deliveries.c.delivery_id == delivery_id))).first()
    if row is None:
        return None
    return _delivery_view(row, (await _logs(conn, [delivery_id]))[delivery_id])


async def redeliver(conn: AsyncConnection, webhook_id: str, delivery_id: str,
                    principal: Principal) -> dict[str, Any]:
    """Push the delivery again now (the same body and event id), retried as a new push."""
    await visible_webhook(conn, webhook_id, principal)
    now = now_ms()
    changed = await conn.execute(update(webhook_deliveries).where(
        webhook_deliveries.c.webhook_id == webhook_id,
        webhook_deliveries.c.delivery_id == delivery_id).values(
        status=PENDING, next_attempt_ms=now, queued_at_ms=now))
    if not changed.rowcount:
        raise NotFound(f"no delivery {delivery_id}")
    answer = await delivery(conn, delivery_id)
    assert answer is not None
    return answer


# -- the outbox ------------------------------------------------------------------------------


# The live webhooks of a consumer batch's partners: read in the batch's transaction, once per
# batch with an event a partner may be told about, straight to the driver. Not cached: with
# two replicas, a registration on one must reach the next batch of the other, and anything
# that tells a process so (a version row, say) is itself a read per batch.
_LIVE_HOOKS = ("SELECT webhook_id, partner_id, events FROM webhooks "
               "WHERE deleted_at IS NULL AND partner_id {partners} ORDER BY webhook_id")
_LIVE_HOOKS_PG = Statement(_LIVE_HOOKS.format(partners="= ANY($1::text[])"))


@functools.lru_cache(maxsize=64)
def _live_hooks_sqlite(partners: int) -> Statement:
    text = _LIVE_HOOKS.format(partners=sqlite_in(1, partners))
    return Statement(text, sqlite=text)


class DeliveryOutbox:
    """The pushes one consumer transaction queues: collected per event, written in one go."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._queued: list[tuple[Envelope, DomainEvent, str]] = []

    def add(self, envelope: Envelope, event: DomainEvent, partner_id: str | None) -> None:
        """Queue ``event`` for its partner's webhooks when it is one a partner is told about."""
        if event.TYPE not in WEBHOOK_TYPE_OF:  # first: a model's missing attribute is slow to miss
            return
        partner_id = getattr(event, "partner_id", None) or partner_id
        if partner_id is not None:
            self._queued.append((envelope, event, partner_id))

    async def flush(self) -> None:
        queued, self._queued = self._queued, []
        if not queued:
            return
        partners = sorted({partner for _, _, partner in queued})
        if self._conn.dialect.name == "postgresql":
            hooks = await _LIVE_HOOKS_PG.fetch(self._conn, partners)
        else:
            hooks = await _live_hooks_sqlite(len(partners)).fetch(self._conn, *partners)
        if not hooks:
            return
        now, created = now_ms(), format_timestamp(utc_now())
        rows = []
        for envelope, event, partner_id in queued:
            kind = WEBHOOK_TYPE_OF[event.TYPE]
            body: str | None = None
            for webhook_id, hook_partner, hook_events in hooks:
                if hook_partner != partner_id or kind not in parse_json(hook_events):
                    continue
                body = body or canonical_json({
                    "id": str(envelope.event_id), "type": kind, "occurred_at": envelope.occurred_at,
                    "partner_id": partner_id, "data": webhook_data(event)}).decode()
                rows.append({
                    "delivery_id": new_id("whd", uuid.uuid5(envelope.event_id, webhook_id)),
                    "webhook_id": webhook_id, "partner_id": partner_id,
                    "event_id": envelope.event_id, "event_type": kind, "body": body,
                    "status": PENDING, "attempts": 0, "created_at": created, "next_attempt_ms": now,
                    "queued_at_ms": now})
        await insert_many_ignoring_duplicates(self._conn, webhook_deliveries, rows)
