"""Program commands: publish (with accrual of what the ledger already holds) and period close."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.rebates import ProgramPublished
from libs.runtime import documents
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.ids import new_id
from libs.store.schema import documents as documents_table
from services.rebates.application import sources, views
from services.rebates.application.accruals import accrue, lock_ledger
from services.rebates.application.copies import (
    INVOICE,
    RETURN,
    all_documents,
    invoice_from,
    partner_ledger,
    partner_profile,
    return_from,
)
from services.rebates.application.rebates import append, load_rebate
from services.rebates.domain import program as programs
from services.rebates.domain.closing import Performance, final_amount
from services.rebates.domain.eligibility import partner_eligible
from services.rebates.domain.ledger import (
    Contribution,
    Window,
    basis_in,
    invoice_contributions,
    period_of,
    return_contribution,
    timeliness_in,
)
from services.rebates.domain.program import ProgramState, PublishProgram
from services.rebates.domain.rebate import decide_proposal

STREAM_TYPE = "program"


def new_program_id() -> str:
    return new_id("prg")


def new_settlement_id() -> str:
    return new_id("stl")


def stream_of(program_id: str) -> str:
    return f"program-{program_id}"


async def _write_document(unit: Unit, loaded: Loaded[str, ProgramState], events: Sequence[DomainEvent],
                          before: ProgramState) -> dict[str, Any]:
    return await views.write_program(unit.conn, loaded.state, loaded.version)


PROGRAM: Aggregate[str, ProgramState] = Aggregate(
    stream_type=STREAM_TYPE, stream_id=stream_of, initial=lambda program_id: ProgramState(),
    evolve=programs.evolve, project=_write_document)


async def publish(unit: Unit, command: PublishProgram) -> dict[str, Any]:
    """Publish, then accrue what the ledger already holds in the period (a program may start in the past)."""
    await lock_ledger(unit.conn, alone=True)
    loaded = await unit.load(PROGRAM, command.program_id)
    published = programs.decide_publish(loaded.state, command)
    saved = await unit.save(loaded, published)
    await _accrue_ledger(unit, published[0])
    assert saved.document is not None
    return saved.document


async def _accrue_ledger(unit: Unit, program: ProgramPublished) -> None:
    conn = unit.conn
    period = period_of(program)
    found: dict[str, list[Contribution]] = defaultdict(list)
    async for body in all_documents(conn, INVOICE):
        found[body["partner_id"]] += invoice_contributions(program, invoice_from(body), period)
    async for body in all_documents(conn, RETURN):
        found[body["partner_id"]] += return_contribution(program, return_from(body), period)
    for partner_id, contributions in sorted(found.items()):
        if contributions and partner_eligible(program.eligibility, await partner_profile(conn, partner_id)):
            ordered = sorted(contributions, key=lambda c: (c.on, c.ref))
            await accrue(unit, program, partner_id, ordered)


async def close(unit: Unit, program_id: str) -> dict[str, Any]:
    """Close the period: one settlement proposal per partner with accruals (a true-up on a re-close)."""
    assert unit.principal is not None
    conn, closer = unit.conn, unit.principal.key_id
    loaded = await unit.load(PROGRAM, program_id)
    saved = await unit.save(loaded, programs.decide_close(loaded.state, program_id, closer))
    definition = saved.state.definition
    assert definition is not None
    body = saved.document or await views.write_program(conn, saved.state, saved.version)
    settlements = []
    for partner_id in await partners_with_accruals(conn, program_id):
        rebate = await load_rebate(unit, program_id, partner_id)
        performance = await _performance(conn, definition, partner_id)
        final = final_amount(definition, rebate.state.basis_minor, performance)
        counted = await sources.of(conn, (program_id, partner_id))
        proposal = decide_proposal(rebate.state, new_settlement_id(), final, closer, counted)
        proposed = await append(unit, rebate, proposal)
        settlements.append(views.settlement_body(proposed.state, proposed.state.settlements[-1]))
    return {**body, "settlements": settlements}


async def _performance(conn: AsyncConnection, program: ProgramPublished, partner_id: str) -> Performance:
    if program.growth is None and program.timeliness is None:
        return Performance()
    invoices, returns = await partner_ledger(conn, partner_id)
    baseline = None
    if program.growth is not None:
        window = Window(program.growth.baseline_from, program.growth.baseline_to)
        baseline = basis_in(program, invoices, returns, window)
    issued, on_time = timeliness_in(invoices, period_of(program))
    return Performance(baseline, issued, on_time)


async def partners_with_accruals(conn: AsyncConnection, program_id: str) -> list[str]:
    query = select(documents_table.c.partner_id).where(
        documents_table.c.kind == views.ACCRUAL,
        documents_table.c.id.startswith(views.accrual_id(program_id, ""), autoescape=True),
    ).order_by(documents_table.c.id)
    return [row[0] for row in (await conn.execute(query)).all()]


async def read_program(conn: AsyncConnection, program_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, views.PROGRAM, program_id)
