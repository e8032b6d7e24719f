"""Which programs apply to a partner, found by index (tables ``rebate_programs``, ``rebate_program_scope``).

A program's scope has one row per allowed partner id, tier and region, or one
``*`` row for an axis it does not restrict; written once when it is published
(a definition never changes). A reaction asks for the programs whose scope
admits the partner on every axis, in its currency, with a period that meets
the dates of what it accrues, instead of reading every program document.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.rebates import ProgramPublished
from libs.store.sql import Statement, insert_ignoring_duplicates
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


def _admits(axis: str, value: str) -> str:
    return (f"EXISTS (SELECT 1 FROM rebate_program_scope s WHERE s.program_id = p.program_id "
            f"AND s.axis = '{axis}' AND s.value IN ('{ANY}', {value}))")


ELIGIBLE = ("SELECT p.program_id FROM rebate_programs p WHERE p.currency = $1 AND p.starts_on <= $2 "
            f"AND p.ends_on >= $3 AND {_admits('partner', '$4')} AND {_admits('tier', '$5')} "
            f"AND {_admits('region', '$6')}")
"""The ids of the programs the partner is eligible for now (values: ``eligible_args``), as SQL a
statement may read more through in the same round trip (``accruals.programs_for``). A NULL tier
or region (not known yet) is admitted only by ``*``."""

_ELIGIBLE = Statement(ELIGIBLE + " ORDER BY p.program_id")
"""Sent on every reaction that accrues: straight to the driver (``libs.store.sql.Statement``)."""


def eligible_args(profile: PartnerProfile, currency: str, first: date, last: date
                  ) -> tuple[str | None, ...]:
    """``ELIGIBLE``'s values ``$1..$6``."""
    return (currency, last.isoformat(), first.isoformat(), profile.partner_id, profile.tier, profile.region)


async def eligible_programs(conn: AsyncConnection, profile: PartnerProfile, currency: str,
                            first: date, last: date) -> list[str]:
    """Programs the partner is eligible for now, in ``currency``, whose period meets ``first..last``."""
    return [row[0] for row in await _ELIGIBLE.fetch(conn, *eligible_args(profile, currency, first, last))]
