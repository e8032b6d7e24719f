"""Accrual: every document a partner gets from credit moves its basis under each program it counts for.

Accrual is continuous and does not stop at a close: a late invoice or return
dated within a closed program's period changes the basis, and the next close
proposes the true-up. A known source is never counted twice.

Publishing a program accrues what the ledger already holds, while reactions
accrue under the programs already published: on PostgreSQL each could miss the
other's uncommitted work. So accruing reactions share a ledger lock that a
publish takes alone (SQLite already runs one writer at a time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.rebates import ProgramPublished
from libs.runtime import documents
from libs.runtime.commands import Unit
from services.rebates.application import views
from services.rebates.application.copies import all_documents
from services.rebates.application.rebates import LoadedRebate, append, load_rebate
from services.rebates.domain.eligibility import PartnerProfile, partner_eligible
from services.rebates.domain.ledger import Contribution
from services.rebates.domain.rebate import decide_accruals

ContributionsOf = Callable[[ProgramPublished], list[Contribution]]

LEDGER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"o2c.rebates.ledger").digest()[:8], "big", signed=True)


async def lock_ledger(conn: AsyncConnection, *, alone: bool = False) -> None:
    """Hold the ledger until the transaction ends: shared by reactions, ``alone`` for a publish."""
    if conn.dialect.name == "postgresql":
        shared = "" if alone else "_shared"
        await conn.execute(text(f"SELECT pg_advisory_xact_lock{shared}(:key)"), {"key": LEDGER_LOCK_KEY})


async def all_programs(conn: AsyncConnection) -> list[ProgramPublished]:
    return [views.program_from(body) async for body in all_documents(conn, views.PROGRAM)]


async def accrue(unit: Unit, program: ProgramPublished, partner_id: str,
                 contributions: list[Contribution]) -> LoadedRebate | None:
    """Append the accruals of new contributions (``None`` when nothing was new)."""
    if not contributions:
        return None
    loaded = await load_rebate(unit, program.program_id, partner_id)
    accrued = decide_accruals(loaded.state, program, contributions)
    if not accrued:
        return None
    return await append(unit, loaded, accrued)


async def counts_for(
    conn: AsyncConnection, program: ProgramPublished, profile: PartnerProfile, follow_existing: bool
) -> bool:
    """Eligible now, or (for cash and returns, which follow earlier sales) already accruing there."""
    if partner_eligible(program.eligibility, profile):
        return True
    if not follow_existing:
        return False
    return await documents.get(conn, views.ACCRUAL, views.accrual_id(program.program_id,
                                                                     profile.partner_id)) is not None


async def accrue_for_partner(unit: Unit, profile: PartnerProfile, contributions_of: ContributionsOf, *,
                             follow_existing: bool = False) -> None:
    """Under every program the partner counts for, append the accruals and write the documents.

    A partner counts for a program while it is eligible (its current tier and
    region). Cash and returns also count where it already accrues, so a partner
    that lost eligibility (e.g. moved down a tier) still has its returns reversed.
    """
    conn = unit.conn
    await lock_ledger(conn)
    for program in await all_programs(conn):
        contributions = contributions_of(program)
        if contributions and await counts_for(conn, program, profile, follow_existing):
            await accrue(unit, program, profile.partner_id, contributions)
