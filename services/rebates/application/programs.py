"""Program commands: publish (with accrual of what the ledger already holds) and period close."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.rebates import ProgramPublished
from libs.runtime import documents
from libs.runtime.aggregate import load
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from libs.store.schema import documents as documents_table
from services.rebates.application import views
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
from services.rebates.application.rebates import Loaded, append, load_rebate, write
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


async def load_program(
    conn: AsyncConnection, ctx: ServiceContext, program_id: str
) -> tuple[ProgramState, int]:
    return await load(conn, ctx.store, ctx.registry, stream_of(program_id), ProgramState(),
                      programs.evolve)


async def publish(conn: AsyncConnection, ctx: ServiceContext, principal: Principal,
                  command: PublishProgram) -> dict[str, Any]:
    """Publish, then accrue what the ledger already holds in the period (a program may start in the past)."""
    meta = EventMetadata(actor=principal.actor)
    await lock_ledger(conn, alone=True)
    state, version = await load_program(conn, ctx, command.program_id)
    published = programs.decide_publish(state, command)
    await ctx.store.append(stream_of(command.program_id), STREAM_TYPE, version, published, meta, conn=conn)
    for event in published:
        state = programs.evolve(state, event)
    for loaded in await _accrue_ledger(conn, ctx, published[0], meta):
        await write(conn, loaded)
    return await views.write_program(conn, state, version + len(published))


async def _accrue_ledger(
    conn: AsyncConnection, ctx: ServiceContext, program: ProgramPublished, meta: EventMetadata
) -> list[Loaded]:
    period = period_of(program)
    found: dict[str, list[Contribution]] = defaultdict(list)
    async for body in all_documents(conn, INVOICE):
        found[body["partner_id"]] += invoice_contributions(program, invoice_from(body), period)
    async for body in all_documents(conn, RETURN):
        found[body["partner_id"]] += return_contribution(program, return_from(body), period)
    changed = []
    for partner_id, contributions in sorted(found.items()):
        if contributions and partner_eligible(program.eligibility, await partner_profile(conn, partner_id)):
            ordered = sorted(contributions, key=lambda c: (c.on, c.ref))
            loaded = await accrue(conn, ctx, program, partner_id, ordered, meta)
            if loaded is not None:
                changed.append(loaded)
    return changed


async def close(conn: AsyncConnection, ctx: ServiceContext, principal: Principal,
                program_id: str) -> dict[str, Any]:
    """Close the period: one settlement proposal per partner with accruals (a true-up on a re-close)."""
    meta = EventMetadata(actor=principal.actor)
    state, version = await load_program(conn, ctx, program_id)
    closed = programs.decide_close(state, program_id, principal.key_id)
    await ctx.store.append(stream_of(program_id), STREAM_TYPE, version, closed, meta, conn=conn)
    for event in closed:
        state = programs.evolve(state, event)
    assert state.definition is not None
    proposed = []
    for partner_id in await partners_with_accruals(conn, program_id):
        loaded = await load_rebate(conn, ctx, program_id, partner_id)
        performance = await _performance(conn, state.definition, partner_id)
        final = final_amount(state.definition, loaded.state.basis_minor, performance)
        proposal = decide_proposal(loaded.state, new_settlement_id(), final, principal.key_id)
        proposed.append(await append(conn, ctx, loaded, proposal, meta))
    settlements = []
    for loaded in proposed:
        await write(conn, loaded)
        settlements.append(views.settlement_body(loaded.state, loaded.state.settlements[-1]))
    body = await views.write_program(conn, state, version + len(closed))
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
