"""The sources each rebate counted, one row each (``rebate_sources``, migration ``rebates_0002_sources``).

The accrual document keeps totals only, so writing it costs the same at the
first source as at the thousandth; the "already counted" check is a lookup by
the unique key (program, partner, kind, ref). Rows are numbered in accrual
order per (program, partner) and read back in that order.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.values import SourceRef
from libs.store.sql import Statement, pairs_in, row_placeholders
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
    wanted = sorted({(c.kind, c.ref) for c in contributions})
    if not wanted:
        return frozenset()
    rows = await _counted(len(wanted)).fetch(conn, *key, *(part for pair in wanted for part in pair))
    return frozenset((kind, ref) for kind, ref in rows)


@functools.lru_cache(maxsize=32)
def _counted(count: int) -> Statement:
    """``counted``'s statement for ``count`` sources, built once per shape; sent on every accrual,
    straight to the driver (``libs.store.sql.Statement``). An OR of pairs: each an index search
    (``libs.store.sql.pairs_in``)."""
    pairs = " OR ".join(f"(kind = ${3 + 2 * n} AND ref = ${4 + 2 * n})" for n in range(count))
    return Statement(f"SELECT kind, ref FROM rebate_sources WHERE program_id = $1 AND partner_id = $2 "
                     f"AND ({pairs})")


async def save(conn: AsyncConnection, key: RebateKey, first_seq: int, sources: Sequence[SourceRef]) -> None:
    """The rows of newly accrued sources, numbered from ``first_seq``."""
    if not sources:
        return
    program_id, partner_id = key
    await _insert(len(sources)).execute(conn, *(
        value for n, source in enumerate(sources)
        for value in (program_id, partner_id, first_seq + n, source.kind, source.ref, source.amount_minor,
                      source.partner_id)))


@functools.lru_cache(maxsize=32)
def _insert(count: int) -> Statement:
    """``save``'s insert of ``count`` rows, built once per shape (straight to the driver)."""
    return Statement("INSERT INTO rebate_sources (program_id, partner_id, seq, kind, ref, amount_minor, "
                     f"source_partner_id) VALUES {row_placeholders(count, 7)}")


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


ACCRUING = "SELECT program_id FROM rebate_sources WHERE partner_id = {partner}"
"""The programs a partner already accrues in (index ``ix_rebate_sources_partner``), as SQL a
statement may read more through (``accruals``); ``{partner}``: its placeholder."""

_ACCRUING = Statement("SELECT DISTINCT program_id FROM rebate_sources WHERE partner_id = $1 "
                      "ORDER BY program_id")


async def accruing_programs(conn: AsyncConnection, partner_id: str) -> list[str]:
    """The programs a partner already accrues in (index ``ix_rebate_sources_partner``)."""
    return [row[0] for row in await _ACCRUING.fetch(conn, partner_id)]
