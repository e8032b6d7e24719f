"""The sources each rebate counted, one row each (``rebate_sources``, migration ``rebates_0002_sources``).

The accrual document keeps totals only, so writing it costs the same at the
first source as at the thousandth; the "already counted" check is a lookup by
the unique key (program, partner, kind, ref). Rows are numbered in accrual
order per (program, partner) and read back in that order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.values import SourceRef
from libs.store.sql import pairs_in
from services.rebates.domain.ledger import Contribution

metadata = MetaData()

rebate_sources = Table(
    "rebate_sources", metadata,
    Column("program_id", String(64), primary_key=True),
    Column("partner_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("ref", String(200), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("source_partner_id", String(64), nullable=True),  # a sub-dealer's document (roll-up)
    UniqueConstraint("program_id", "partner_id", "kind", "ref", name="uq_rebate_sources_ref"),
)

RebateKey = tuple[str, str]
"""``(program_id, partner_id)``."""


async def counted(conn: AsyncConnection, key: RebateKey, contributions: Iterable[Contribution]
                  ) -> frozenset[tuple[str, str]]:
    """Which of these contributions' ``(kind, ref)`` the rebate already counted (an indexed lookup)."""
    wanted = {(c.kind, c.ref) for c in contributions}
    if not wanted:
        return frozenset()
    program_id, partner_id = key
    query = select(rebate_sources.c.kind, rebate_sources.c.ref).where(
        rebate_sources.c.program_id == program_id, rebate_sources.c.partner_id == partner_id,
        pairs_in(rebate_sources.c.kind, rebate_sources.c.ref, sorted(wanted)))
    return frozenset((kind, ref) for kind, ref in (await conn.execute(query)).all())


async def save(conn: AsyncConnection, key: RebateKey, first_seq: int, sources: Sequence[SourceRef]) -> None:
    """The rows of newly accrued sources, numbered from ``first_seq``."""
    if not sources:
        return
    program_id, partner_id = key
    await conn.execute(rebate_sources.insert(), [
        {"program_id": program_id, "partner_id": partner_id, "seq": first_seq + n, "kind": source.kind,
         "ref": source.ref, "amount_minor": source.amount_minor, "source_partner_id": source.partner_id}
        for n, source in enumerate(sources)])


async def of(conn: AsyncConnection, key: RebateKey) -> list[SourceRef]:
    """One rebate's sources, in accrual order."""
    return [SourceRef(**source) for source in (await listed(conn, [key])).get(key, [])]


async def listed(conn: AsyncConnection, keys: Iterable[RebateKey]) -> dict[RebateKey, list[dict[str, Any]]]:
    """The sources of several rebates as the API shows them, each in accrual order.

    A source rolled up from a sub-dealer names it (``partner_id``); the rebate's own sources do not.
    """
    wanted = sorted(set(keys))
    found: dict[RebateKey, list[dict[str, Any]]] = defaultdict(list)
    if not wanted:
        return found
    table = rebate_sources.c
    query = select(table.program_id, table.partner_id, table.kind, table.ref, table.amount_minor,
                   table.source_partner_id).where(
        pairs_in(table.program_id, table.partner_id, wanted)).order_by(
        table.program_id, table.partner_id, table.seq)
    for program_id, partner_id, kind, ref, amount_minor, owner in (await conn.execute(query)).all():
        source: dict[str, Any] = {"kind": kind, "ref": ref, "amount_minor": amount_minor}
        if owner is not None:
            source["partner_id"] = owner
        found[(program_id, partner_id)].append(source)
    return found


async def accruing_programs(conn: AsyncConnection, partner_id: str) -> list[str]:
    """The programs a partner already accrues in (index ``ix_rebate_sources_partner``)."""
    query = select(rebate_sources.c.program_id).where(
        rebate_sources.c.partner_id == partner_id).distinct().order_by(rebate_sources.c.program_id)
    return list((await conn.execute(query)).scalars())
