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
from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.rebates import ProgramPublished
from libs.runtime import documents
from libs.runtime.commands import Unit
from services.rebates.application import applicability, sources, views
from services.rebates.application.rebates import LoadedRebate, append, load_rebate
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import Contribution
from services.rebates.domain.rebate import decide_accruals

ContributionsOf = Callable[[ProgramPublished], list[Contribution]]

LEDGER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"o2c.rebates.ledger").digest()[:8], "big", signed=True)


async def lock_ledger(conn: AsyncConnection, *, alone: bool = False) -> None:
    """Hold the ledger until the transaction ends: shared by reactions, ``alone`` for a publish."""
    if conn.dialect.name == "postgresql":
        shared = "" if alone else "_shared"
        await conn.execute(text(f"SELECT pg_advisory_xact_lock{shared}(:key)"), {"key": LEDGER_LOCK_KEY})


async def accrue(unit: Unit, program: ProgramPublished, partner_id: str,
                 contributions: list[Contribution]) -> LoadedRebate | None:
    """Append the accruals of new contributions (``None`` when nothing was new)."""
    if not contributions:
        return None
    loaded = await load_rebate(unit, program.program_id, partner_id)
    counted = await sources.counted(unit.conn, loaded.key, contributions)
    accrued = decide_accruals(loaded.state, program, contributions, counted)
    if not accrued:
        return None
    return await append(unit, loaded, accrued)


async def programs_for(conn: AsyncConnection, profile: PartnerProfile, currency: str,
                       dates: Sequence[date], follow_existing: bool) -> list[ProgramPublished]:
    """The programs the partner counts for, found by index: only their documents are read.

    Eligible now (partner, tier and region) in the currency with a period that
    meets the dates, or (for cash and returns, which follow earlier sales)
    already accruing there.
    """
    found = set(await applicability.eligible_programs(conn, profile, currency, min(dates), max(dates)))
    if follow_existing:
        found.update(await sources.accruing_programs(conn, profile.partner_id))
    programs = []
    for program_id in sorted(found):
        body = await documents.get(conn, views.PROGRAM, program_id)
        assert body is not None, program_id
        programs.append(views.program_from(body))
    return programs


async def accrue_for_partner(unit: Unit, profile: PartnerProfile, contributions_of: ContributionsOf, *,
                             currency: str, dates: Sequence[date], follow_existing: bool = False) -> None:
    """Under every program the partner counts for, append the accruals and write the documents.

    A partner counts for a program while it is eligible (its current tier and
    region). Cash and returns also count where it already accrues, so a partner
    that lost eligibility (e.g. moved down a tier) still has its returns reversed.
    ``currency`` and ``dates`` (those of what may contribute) narrow the programs
    looked at; a program outside them would contribute nothing.
    """
    conn = unit.conn
    await lock_ledger(conn)
    if not dates:
        return
    for program in await programs_for(conn, profile, currency, dates, follow_existing):
        contributions = contributions_of(program)
        if contributions:
            await accrue(unit, program, profile.partner_id, contributions)
