"""Which programs apply to a partner, found by index (tables ``rebate_programs``, ``rebate_program_scope``).

A program's scope has one row per allowed partner id, tier and region, or one
``*`` row for an axis it does not restrict; written once when it is published
(a definition never changes). A reaction asks for the programs whose scope
admits the partner on every axis, in its currency, with a period that meets
the dates of what it accrues, instead of reading every program document.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Column, Exists, MetaData, String, Table, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.rebates import ProgramPublished
from libs.store.sql import insert_ignoring_duplicates
from services.rebates.domain.eligibility import PartnerProfile

ANY = "*"

metadata = MetaData()

rebate_programs = Table(
    "rebate_programs", metadata,
    Column("program_id", String(64), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
)

rebate_program_scope = Table(
    "rebate_program_scope", metadata,
    Column("program_id", String(64), primary_key=True),
    Column("axis", String(10), primary_key=True),
    Column("value", String(64), primary_key=True),
)


async def save(conn: AsyncConnection, program: ProgramPublished) -> None:
    """Index a published program (a repeated write changes nothing)."""
    await insert_ignoring_duplicates(conn, rebate_programs, {
        "program_id": program.program_id, "currency": program.currency,
        "starts_on": program.starts_on.isoformat(), "ends_on": program.ends_on.isoformat()})
    rules = program.eligibility
    for axis, values in (("partner", rules.partner_ids), ("tier", rules.tiers), ("region", rules.regions)):
        for value in sorted(set(values)) or [ANY]:
            await insert_ignoring_duplicates(conn, rebate_program_scope,
                                             {"program_id": program.program_id, "axis": axis, "value": value})


def _admits(axis: str, value: str | None) -> Exists:
    scope = rebate_program_scope.c
    values = [ANY] if value is None else [ANY, value]
    return exists().where(scope.program_id == rebate_programs.c.program_id, scope.axis == axis,
                          scope.value.in_(values))


async def eligible_programs(conn: AsyncConnection, profile: PartnerProfile, currency: str,
                            first: date, last: date) -> list[str]:
    """Programs the partner is eligible for now, in ``currency``, whose period meets ``first..last``."""
    programs = rebate_programs.c
    query = select(programs.program_id).where(and_(
        programs.currency == currency, programs.starts_on <= last.isoformat(),
        programs.ends_on >= first.isoformat(),
        _admits("partner", profile.partner_id), _admits("tier", profile.tier),
        _admits("region", profile.region),
    )).order_by(programs.program_id)
    return list((await conn.execute(query)).scalars())
