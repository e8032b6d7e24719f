"""Accrual: every document a partner gets from credit moves its basis under each program it counts for.

The accrual is what a close would propose today: the volume rebate on the
basis plus the growth and timeliness bonuses the partner's ledger earns now,
capped (``closing.final_amount``, the function a close uses). News that moves
only a bonus (an invoice paid on time, a document in a growth baseline) is
counted as a ``bonus`` source of amount 0 when it changes the accrual.

Accrual is continuous and does not stop at a close: a late invoice or a return
of goods invoiced within a final program's period changes the accrual, and a
true-up settlement (``kind`` ``true_up``, proposed by ``rebates``) is proposed at
once. A known source is never counted twice.

Publishing a program accrues what the ledger already holds, while reactions
accrue under the programs already published: on PostgreSQL each could miss the
other's uncommitted work. So accruing reactions share a ledger lock that a
publish takes alone (SQLite already runs one writer at a time).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.codec import parse_json
from libs.events.rebates import ProgramPublished
from libs.runtime.commands import Unit
from libs.store.sql import Statement, hold_once
from services.rebates.application import applicability, sources, views
from services.rebates.application.copies import partner_ledger, partner_profile, timeliness_counts
from services.rebates.application.rebates import LoadedRebate, append, load_rebate, new_settlement_id
from services.rebates.domain.closing import Performance, final_amount
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import Contribution, Window, basis_in, period_of
from services.rebates.domain.rebate import SYSTEM, AmountOf, decide_accruals, decide_proposal
from services.rebates.domain.rollup import counts_for_parent, counts_for_self, parent_on

ContributionsOf = Callable[[ProgramPublished], list[Contribution]]

LEDGER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"o2c.rebates.ledger").digest()[:8], "big", signed=True)
# Taken by every reaction (shared) and publish (alone): straight to the driver (``libs.store.sql.Statement``).
_LOCK_SHARED = Statement("SELECT pg_advisory_xact_lock_shared($1)")
_LOCK_ALONE = Statement("SELECT pg_advisory_xact_lock($1)")


async def lock_ledger(conn: AsyncConnection, *, alone: bool = False) -> None:
    """Hold the ledger until the transaction ends: shared by reactions, ``alone`` for a publish.

    Taken once per transaction (``hold_once``): a consumer batch's reactions share it."""
    if conn.dialect.name == "postgresql":
        await hold_once(conn, _LOCK_ALONE if alone else _LOCK_SHARED, LEDGER_LOCK_KEY)


async def performance(conn: AsyncConnection, program: ProgramPublished, partner_id: str,
                      window: Window | None = None) -> Performance:
    """What the bonuses look at in the partner's ledger: the growth baseline, invoices paid on time.

    ``window``: the part of the period looked at (an interim settlement's), the whole period by default.
    """
    baseline = issued = on_time = None
    if program.growth is not None:
        invoices, returns = await partner_ledger(conn, partner_id, issued_by=program.growth.baseline_to)
        baseline = basis_in(program, invoices, returns,
                            Window(program.growth.baseline_from, program.growth.baseline_to))
    if program.timeliness is not None:
        window = window or period_of(program)
        issued, on_time = await timeliness_counts(conn, partner_id, window.first, window.last)
    return Performance(baseline, issued or 0, on_time or 0)


async def amount_of(conn: AsyncConnection, program: ProgramPublished, partner_id: str) -> AmountOf:
    """What a basis earns for the partner today (bonuses from its ledger as it stands, the cap)."""
    found = await performance(conn, program, partner_id)
    return lambda basis_minor: final_amount(program, basis_minor, found)


async def accrue(unit: Unit, program: ProgramPublished, partner_id: str,
                 contributions: list[Contribution], *, final: bool = False) -> LoadedRebate | None:
    """Append the accruals of new contributions (``None`` when nothing was new).

    Under a ``final`` program a changed accrual proposes its true-up at once.
    """
    if not contributions:
        return None
    loaded = await load_rebate(unit, program.program_id, partner_id)
    counted = await sources.counted(unit.conn, loaded.key, contributions)
    earns = await amount_of(unit.conn, program, partner_id)
    accrued = decide_accruals(loaded.state, program, contributions, counted, earns)
    if not accrued:
        return None
    saved = await append(unit, loaded, accrued)
    if final:
        counted_sources = await sources.of(unit.conn, saved.key)
        proposal = decide_proposal(saved.state, new_settlement_id(), saved.state.amount, SYSTEM,
                                   counted_sources, kind="true_up")
        saved = await append(unit, saved, proposal)
    return saved


_PROGRAMS = f"SELECT body FROM documents WHERE kind = '{views.PROGRAM}' AND id IN ({{ids}}) ORDER BY id"
# Each reads the programs' documents through the lookup, in one round trip (straight to the driver).
# Only a program's commands write its document, never a reaction: a reaction's held-back write
# of another document (an invoice copy, an accrual) rides along (``Statement(apart=True)``).
_ELIGIBLE = Statement(_PROGRAMS.format(ids=applicability.ELIGIBLE), apart=True)
_ELIGIBLE_OR_ACCRUING = Statement(_PROGRAMS.format(
    ids=f"{applicability.ELIGIBLE} UNION {sources.ACCRUING.format(partner='$4')}"), apart=True)
_ACCRUING = Statement(_PROGRAMS.format(ids=sources.ACCRUING.format(partner="$1")), apart=True)


async def programs_for(conn: AsyncConnection, profile: PartnerProfile, currency: str,
                       dates: Sequence[date], follow_existing: bool) -> list[tuple[ProgramPublished, bool]]:
    """The programs the partner counts for, found by index: only their documents are read.

    Eligible now (partner, tier and region) in the currency with a period that
    meets the dates, or (for cash and returns, which follow earlier sales)
    already accruing there. Each comes with whether it is ``final``.
    """
    found = applicability.eligible_args(profile, currency, min(dates), max(dates))
    statement = _ELIGIBLE_OR_ACCRUING if follow_existing else _ELIGIBLE
    return [_program(row[0]) for row in await statement.fetch(conn, *found)]


async def accruing_programs(conn: AsyncConnection, partner_id: str) -> list[tuple[ProgramPublished, bool]]:
    """The programs the partner already accrues in, each with whether it is ``final``."""
    return [_program(row[0]) for row in await _ACCRUING.fetch(conn, partner_id)]


@functools.lru_cache(maxsize=256)
def _program(body: str) -> tuple[ProgramPublished, bool]:
    """A program document's definition and whether it is ``final``, validated once per text
    (every reaction reads the same few programs; a definition never changes)."""
    parsed = parse_json(body)
    return views.program_from(parsed), parsed["status"] == "final"


async def accrue_for_partner(unit: Unit, profile: PartnerProfile, contributions_of: ContributionsOf, *,
                             currency: str, dates: Sequence[date], follow_existing: bool = False,
                             sold_on: date | None = None) -> None:
    """Under every program the partner counts for, append the accruals and write the documents.

    A partner counts for a program while it is eligible (its current tier and
    region). Cash and returns also count where it already accrues, so a partner
    that lost eligibility (e.g. moved down a tier) still has its returns reversed.
    ``currency`` and ``dates`` (those of what may contribute) narrow the programs
    looked at; a program outside them would contribute nothing.

    Roll-up (``domain.rollup``): the parent in effect on ``sold_on`` (the date of
    the sale) also counts the contributions, under its own programs whose
    ``rollup`` is ``parent`` or ``both``, each source naming the sub-dealer; under
    ``parent`` the sub-dealer's own basis does not count them.
    """
    conn = unit.conn
    await lock_ledger(conn)
    if not dates:
        return
    parent_id = parent_on(profile, sold_on) if sold_on is not None else None
    for program, final in await programs_for(conn, profile, currency, dates, follow_existing):
        contributions = contributions_of(program) if counts_for_self(program.rollup, parent_id) else []
        if contributions:
            await accrue(unit, program, profile.partner_id, contributions, final=final)
    if parent_id is None:
        return
    parent = await partner_profile(conn, parent_id)
    for program, final in await programs_for(conn, parent, currency, dates, follow_existing):
        if not counts_for_parent(program.rollup, parent_id):
            continue
        rolled = [replace(c, partner_id=profile.partner_id) for c in contributions_of(program)]
        if rolled:
            await accrue(unit, program, parent_id, rolled, final=final)


async def reassess(unit: Unit, partner_id: str, ref: str, on: date,
                   moves: Callable[[ProgramPublished], bool]) -> None:
    """News ``ref`` dated ``on`` may move a bonus of the programs the partner accrues in that it ``moves``."""
    conn = unit.conn
    await lock_ledger(conn)
    for program, final in await accruing_programs(conn, partner_id):
        if moves(program):
            await accrue(unit, program, partner_id, [Contribution("bonus", ref, 0, on)], final=final)
