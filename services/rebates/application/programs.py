"""Program commands: publish (with accrual of what the ledger already holds), interim settle, final close.

Every round proposes, per partner with accruals, what the period earned (through
the round's date for an interim) minus what was settled before (approved payouts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.rebates import ProgramPublished
from libs.events.values import SourceRef
from libs.runtime import documents
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.ids import new_id
from libs.store.schema import documents as documents_table
from services.rebates.application import sources, views
from services.rebates.application.accruals import accrue, lock_ledger, performance
from services.rebates.application.copies import (
    INVOICE,
    RETURN,
    all_documents,
    invoice_from,
    partner_ledger,
    partner_profile,
    return_from,
)
from services.rebates.application.rebates import append, load_rebate, new_settlement_id
from services.rebates.domain import program as programs
from services.rebates.domain.closing import final_amount
from services.rebates.domain.eligibility import PartnerProfile, partner_eligible
from services.rebates.domain.ledger import (
    Contribution,
    Window,
    invoice_contributions,
    period_of,
    return_contribution,
)
from services.rebates.domain.program import ProgramState, PublishProgram
from services.rebates.domain.rebate import decide_proposal
from services.rebates.domain.rollup import attribute, parent_on

STREAM_TYPE = "program"


def new_program_id() -> str:
    return new_id("prg")


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
    return _as_of_today(unit, saved.document)


def _as_of_today(unit: Unit, body: dict[str, Any]) -> dict[str, Any]:
    """The program document with the status shown today (``closed`` once an open period has ended)."""
    ends_on = date.fromisoformat(str(body["ends_on"]))
    return {**body, "status": programs.shown_status(body["status"], ends_on, unit.today())}


async def _accrue_ledger(unit: Unit, program: ProgramPublished) -> None:
    """Accrue every document in the period, each toward whom the program's roll-up attributes it."""
    conn = unit.conn
    period = period_of(program)
    found: dict[str, list[Contribution]] = defaultdict(list)
    profiles: dict[str, PartnerProfile] = {}

    async def profile_of(partner_id: str) -> PartnerProfile:
        if partner_id not in profiles:
            profiles[partner_id] = await partner_profile(conn, partner_id)
        return profiles[partner_id]

    async def count(partner_id: str, sold_on: date | None, contributions: list[Contribution]) -> None:
        parent_id = parent_on(await profile_of(partner_id), sold_on) if sold_on else None
        for beneficiary, counted in attribute(program.rollup, partner_id, parent_id, contributions):
            found[beneficiary] += counted

    async for body in all_documents(conn, INVOICE):
        invoice = invoice_from(body)
        await count(invoice.partner_id, invoice.issued_on, invoice_contributions(program, invoice, period))
    async for body in all_documents(conn, RETURN):
        note = return_from(body)
        await count(note.partner_id, note.sold_on or note.issued_on,
                    return_contribution(program, note, period))
    for partner_id, contributions in sorted(found.items()):
        if contributions and partner_eligible(program.eligibility, await profile_of(partner_id)):
            ordered = sorted(contributions, key=lambda c: (c.on, c.ref))
            await accrue(unit, program, partner_id, ordered)


async def close(unit: Unit, program_id: str) -> dict[str, Any]:
    """Close for good (``final``): one proposal per partner with accruals (a true-up on a re-close)."""
    assert unit.principal is not None
    loaded = await unit.load(PROGRAM, program_id)
    saved = await unit.save(loaded, programs.decide_close(loaded.state, program_id, unit.principal.key_id))
    return await _propose_round(unit, saved, kind="final", through=None)


async def settle(unit: Unit, program_id: str, through: date) -> dict[str, Any]:
    """An interim round through a date: the program stays ``open`` and goes on accruing."""
    assert unit.principal is not None
    loaded = await unit.load(PROGRAM, program_id)
    saved = await unit.save(loaded, programs.decide_settle(
        loaded.state, program_id, through, unit.today(), unit.principal.key_id))
    return await _propose_round(unit, saved, kind="interim", through=through)


async def _propose_round(unit: Unit, saved: Loaded[str, ProgramState], *, kind: str,
                         through: date | None) -> dict[str, Any]:
    assert unit.principal is not None
    conn, proposer = unit.conn, unit.principal.key_id
    definition = saved.state.definition
    assert definition is not None
    program_id = definition.program_id
    body = saved.document or await views.write_program(conn, saved.state, saved.version)
    body = _as_of_today(unit, body)
    window = Window(definition.starts_on, through) if through is not None else None
    settlements = []
    for partner_id in await partners_with_accruals(conn, program_id):
        rebate = await load_rebate(unit, program_id, partner_id)
        counted = await sources.of(conn, (program_id, partner_id))
        basis = rebate.state.basis_minor
        if window is not None:
            basis, counted = await _through(conn, definition, partner_id, window, counted)
        final = final_amount(definition, basis, await performance(conn, definition, partner_id, window))
        proposal = decide_proposal(rebate.state, new_settlement_id(), final, proposer, counted,
                                   kind=kind, through=through)
        proposed = await append(unit, rebate, proposal)
        settlements.append(views.settlement_body(proposed.state, proposed.state.settlements[-1]))
    return {**body, "settlements": settlements}


async def _through(conn: AsyncConnection, program: ProgramPublished, partner_id: str, window: Window,
                   counted: list[SourceRef]) -> tuple[int, list[SourceRef]]:
    """The basis through an interim's date: the counted sources whose documents are dated in ``window``.

    Sources rolled up from sub-dealers are dated in their own ledgers.
    """
    dated: set[tuple[str, str]] = set()
    for owner in sorted({partner_id} | {s.partner_id for s in counted if s.partner_id}):
        invoices, returns = await partner_ledger(conn, owner)
        dated |= {(c.kind, c.ref) for invoice in invoices
                  for c in invoice_contributions(program, invoice, window)}
        dated |= {(c.kind, c.ref) for note in returns for c in return_contribution(program, note, window)}
    within = [source for source in counted if (source.kind, source.ref) in dated]
    return sum(source.amount_minor for source in within if source.kind != "bonus"), within


async def partners_with_accruals(conn: AsyncConnection, program_id: str) -> list[str]:
    query = select(documents_table.c.partner_id).where(
        documents_table.c.kind == views.ACCRUAL,
        documents_table.c.id.startswith(views.accrual_id(program_id, ""), autoescape=True),
    ).order_by(documents_table.c.id)
    return [row[0] for row in (await conn.execute(query)).all()]


async def read_program(conn: AsyncConnection, program_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, views.PROGRAM, program_id)
