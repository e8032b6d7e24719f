"""Seal anchors: the newest seal of each publisher seen by a verification, kept here.

A publisher's seal chain only grows, and its links are keyed, but someone with
write access to that publisher's database can still *truncate* it: delete the
newest events with their seals and set the relay's seal head back. What is
left verifies. The projections' database is another database, so it keeps,
per publisher, the last seal head a verification answered; the next
verification asks the publisher whether that seal is still there, unchanged
(``rolled-back`` otherwise). An anchor only moves forward, and never past a
verification that found a rollback, so the finding stays until someone looks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.store.integrity import SealAnchor
from libs.store.sql import upsert
from services.projections.application.archive import metadata

seal_anchors = Table(
    "seal_anchors", metadata,
    Column("service", String(50), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("chain_hash", String(64), nullable=False),
    Column("anchored_at", String(32), nullable=False),
)


async def load(conn: AsyncConnection) -> dict[str, SealAnchor]:
    rows = (await conn.execute(select(seal_anchors))).mappings().all()
    return {row["service"]: SealAnchor(row["seq"], row["position"], row["chain_hash"])
            for row in rows}


def head_of(report: Mapping[str, Any]) -> SealAnchor | None:
    """The seal head a publisher's verification answered, unless it found a rollback."""
    head = report.get("seal_head")
    problems = report.get("problems") or []
    if not isinstance(head, Mapping) or any(p.get("kind") == "rolled-back" for p in problems):
        return None
    try:
        return SealAnchor(int(head["seq"]), int(head["position"]), str(head["chain_hash"]))
    except (KeyError, TypeError, ValueError):
        return None


async def advance(conn: AsyncConnection, known: Mapping[str, SealAnchor],
                  heads: Mapping[str, SealAnchor]) -> None:
    """Keep each newer head as its publisher's anchor (anchors never move back)."""
    newer = [{"service": service, **head.as_dict(), "anchored_at": format_timestamp(utc_now())}
             for service, head in heads.items()
             if service not in known or head.seq > known[service].seq]
    await upsert(conn, seal_anchors, newer, ["service"])
