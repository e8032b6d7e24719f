"""Price-change notices (stream ``price-notice-<id>``, one per partner and version) and their
documents: sent when a price-list version is published to take effect later, acknowledged by
the partner. Sales lists who has not acknowledged (``status=pending``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select

from libs.events.base import DomainEvent
from libs.events.orders import PriceChangeAcknowledged
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.host import ServiceContext
from libs.store.schema import documents as documents_table
from services.orders.application import catalog
from services.orders.application.orders import PARTNER_COPY
from services.orders.domain.catalog import PublishPriceList
from services.orders.domain.errors import NoticeNotFound
from services.orders.domain.notices import (
    NOTIFIED_STATUSES,
    Notice,
    decide_acknowledge,
    decide_notify,
    evolve_notice,
    needs_notice,
)

PRICE_NOTICE = "price-notice"


def notice_stream(notice_id: str) -> str:
    return f"price-notice-{notice_id}"


async def _write_notice(unit: Unit, loaded: Loaded[str, Notice], events: Sequence[DomainEvent],
                        before: Notice) -> dict[str, Any]:
    notice = loaded.state
    at = loaded.stored[-1].occurred_at
    previous = await documents.get(unit.conn, PRICE_NOTICE, loaded.key) if before.notice_id else None
    status = "acknowledged" if notice.acknowledged else "pending"
    assert notice.effective_from is not None
    body = {"id": notice.notice_id, "partner_id": notice.partner_id, "tier": notice.tier,
            "version": notice.version, "effective_from": notice.effective_from.isoformat(),
            "status": status, "notified_at": previous["notified_at"] if previous else at,
            "acknowledged_at": at if any(isinstance(e, PriceChangeAcknowledged) for e in events)
            else (previous or {}).get("acknowledged_at")}
    await documents.put(unit.conn, PRICE_NOTICE, loaded.key, body, partner_id=notice.partner_id,
                        status=status, ref_id=notice.tier, version=loaded.version)
    return body


NOTICE_STREAM: Aggregate[str, Notice] = Aggregate(
    stream_type=PRICE_NOTICE, stream_id=notice_stream, initial=lambda notice_id: Notice(),
    evolve=evolve_notice, project=_write_notice)


async def partners_of_tier(unit: Unit, tier: str) -> list[str]:
    """The tier's partners to notify (every status but terminated), by the copies' indexed tier."""
    rows = await unit.conn.execute(select(documents_table.c.id).where(
        documents_table.c.kind == PARTNER_COPY, documents_table.c.ref_id == tier,
        documents_table.c.status.in_(NOTIFIED_STATUSES)).order_by(documents_table.c.id))
    return [row[0] for row in rows]


async def notify_tier(unit: Unit, tier: str, version: int, effective_from: date) -> int:
    """Send each partner of the tier a notice of a version that takes effect later; answers how many."""
    if not needs_notice(effective_from, unit.today()):
        return 0
    partners = [(unit.new_id("pn"), partner_id) for partner_id in await partners_of_tier(unit, tier)]
    for event in decide_notify(tier, version, effective_from, partners):
        await unit.save(Loaded(NOTICE_STREAM, event.notice_id, Notice(), 0), [event])
    return len(partners)


async def publish_price_list(unit: Unit, command: PublishPriceList, notice_days: int) -> dict[str, Any]:
    """Publish the version, then notify the tier's partners when it takes effect later; answers
    the version with ``notices_sent``."""
    version = await catalog.publish_price_list(unit, command, notice_days)
    sent = await notify_tier(unit, command.tier, version["version"], command.effective_from)
    return {**version, "notices_sent": sent}


async def acknowledge(unit: Unit, notice_id: str) -> dict[str, Any]:
    """The partner acknowledges its notice (a repeat answers the notice as it stands)."""
    assert unit.principal is not None
    loaded = await unit.load(NOTICE_STREAM, notice_id)
    saved = await unit.save(loaded, decide_acknowledge(loaded.state, unit.principal.partner_id))
    return saved.document or await documents.get(unit.conn, PRICE_NOTICE, notice_id) or {}


async def get_notice(ctx: ServiceContext, principal: Principal, notice_id: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        return await documents.get_visible(conn, PRICE_NOTICE, notice_id, principal,
                                           NoticeNotFound(f"no price notice {notice_id!r}"))


async def list_notices(ctx: ServiceContext, principal: Principal, *, partner_id: str | None,
                       tier: str | None, version: int | None, acknowledged: bool | None,
                       cursor: str | None, limit: int) -> dict[str, Any]:
    """Notices by partner, tier, version and acknowledgement; a partner key gets its own only."""
    status = None if acknowledged is None else ("acknowledged" if acknowledged else "pending")
    async with ctx.db.read() as conn:
        return await documents.page(
            conn, PRICE_NOTICE, partner_id=principal.scoped(partner_id), status=status, ref_id=tier,
            where=(lambda doc: doc["version"] == version) if version is not None else None,
            cursor=cursor, limit=limit)
