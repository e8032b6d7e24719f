"""The rebates HTTP routes: thin — parse, authorise, call the application, shape the answer.

A partner key sees the programs it is eligible for and its own accruals and
settlements; anything else answers 404, and its lists are forced to its own id.
In a program it sees only its own entry of the eligibility's ``partner_ids``.
A program's ``status`` is shown as of today (``domain.program.shown_status``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Response

from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.params import Cursor, PathId, QueryText
from services.rebates.api.deps import Ctx, Finance, Limit, MoneyReader, ProgramReader
from services.rebates.api.schemas import (
    AccrualPage,
    ClosedProgramOut,
    NoBody,
    ProgramIn,
    ProgramOut,
    ProgramPage,
    SettleIn,
    SettlementOut,
    SettlementPage,
)
from services.rebates.application import programs, settlements, views
from services.rebates.application.copies import partner_profile
from services.rebates.domain.eligibility import partner_eligible
from services.rebates.domain.errors import ProgramNotFound, SettlementNotFound
from services.rebates.domain.program import shown_status

router = APIRouter(prefix="/v1", tags=["rebates"])


@router.post("/programs", status_code=201, response_model=ProgramOut)
async def publish_program(body: ProgramIn, principal: Finance, command: IdempotentCommand) -> Response:
    """Publish a program (status ``open``); accrual starts at once, also for past sources in its period."""
    publication = body.command(programs.new_program_id(), principal.key_id)
    return await command.run(lambda unit: programs.publish(unit, publication), body)


def _as_seen_by(principal: Principal, program: dict[str, Any], today: date) -> dict[str, Any]:
    """The program as ``principal`` may see it today: a partner never sees which other partners it names."""
    program = {**program, "status": _status(program, today)}
    if not principal.is_partner:
        return program
    eligibility = program["eligibility"]
    own = [p for p in eligibility.get("partner_ids", []) if p == principal.partner_id]
    return {**program, "eligibility": {**eligibility, "partner_ids": own}}


def _status(program: dict[str, Any], today: date) -> str:
    return shown_status(program["status"], date.fromisoformat(program["ends_on"]), today)


async def _visible_program(ctx: Ctx, principal: Principal, program_id: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        body = await programs.read_program(conn, program_id)
        if body is not None and principal.is_partner:
            profile = await partner_profile(conn, principal.partner_id or "")
            if not partner_eligible(views.program_from(body).eligibility, profile):
                body = None
    if body is None:
        raise ProgramNotFound(f"no program {program_id}")
    return _as_seen_by(principal, body, ctx.today())


@router.get("/programs", response_model=ProgramPage)
async def list_programs(principal: ProgramReader, ctx: Ctx, status: QueryText = None,
                        limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    """``status`` filters on the status shown today: ``open``, ``closed`` (period over) or ``final``."""
    today = ctx.today()
    async with ctx.db.read() as conn:
        profile = await partner_profile(conn, principal.partner_id or "") if principal.is_partner else None

        def where(body: dict[str, Any]) -> bool:
            if profile is not None and not partner_eligible(views.program_from(body).eligibility, profile):
                return False
            return status is None or _status(body, today) == status

        stored = "final" if status == "final" else "open" if status in ("open", "closed") else status
        page = await documents.page(conn, views.PROGRAM, status=stored, where=where, cursor=cursor,
                                    limit=limit)
    return {**page, "items": [_as_seen_by(principal, program, today) for program in page["items"]]}


@router.get("/programs/{program_id}", response_model=ProgramOut)
async def get_program(program_id: PathId, principal: ProgramReader, ctx: Ctx) -> dict[str, Any]:
    """One rebate program: period, basis, tiers, eligibility, bonuses, cap and status."""
    return await _visible_program(ctx, principal, program_id)


@router.post("/programs/{program_id}/close", response_model=ClosedProgramOut)
async def close_program(program_id: PathId, _: Finance, command: IdempotentCommand,
                        body: NoBody | None = None) -> Response:
    """Final close (status ``final``): per partner with accruals, payout = final - already settled."""
    return await command.run(lambda unit: programs.close(unit, program_id), body or NoBody())


@router.post("/programs/{program_id}/settle", response_model=ClosedProgramOut)
async def settle_program(program_id: PathId, body: SettleIn, _: Finance,
                         command: IdempotentCommand) -> Response:
    """Interim settlement through a date; the program stays ``open``: payout = earned through - settled."""
    return await command.run(lambda unit: programs.settle(unit, program_id, body.through), body)


@router.get("/accruals", response_model=AccrualPage)
async def list_accruals(principal: MoneyReader, ctx: Ctx, partner_id: QueryText = None,
                        program_id: QueryText = None, limit: Limit = 50,
                        cursor: Cursor = None) -> dict[str, Any]:
    """Running accruals per (program, partner), with the sources that explain them."""
    async with ctx.db.read() as conn:
        return await views.accrual_page(conn, partner_id=principal.scoped(partner_id),
                                        program_id=program_id, cursor=cursor, limit=limit)


@router.get("/settlements", response_model=SettlementPage)
async def list_settlements(principal: MoneyReader, ctx: Ctx, partner_id: QueryText = None,
                           program_id: QueryText = None, status: QueryText = None,
                           limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    """Settlement proposals and approvals by partner, program and status."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, views.SETTLEMENT, partner_id=principal.scoped(partner_id),
                                    status=status, ref_id=program_id or None, cursor=cursor,
                                    limit=limit)


@router.get("/settlements/{settlement_id}", response_model=SettlementOut)
async def get_settlement(settlement_id: PathId, principal: MoneyReader, ctx: Ctx) -> dict[str, Any]:
    """One settlement: earned, already settled and payout, with components and sources."""
    async with ctx.db.read() as conn:
        body = await settlements.read_settlement(conn, settlement_id)
    if body is None or not principal.sees(body["partner_id"]):
        raise SettlementNotFound(f"no settlement {settlement_id}")
    return body


@router.post("/settlements/{settlement_id}/approve", response_model=SettlementOut)
async def approve_settlement(settlement_id: PathId, _: Finance, command: IdempotentCommand,
                             body: NoBody | None = None) -> Response:
    """Approve by a finance key other than the one that closed; the payout becomes a credit note."""
    return await command.run(lambda unit: settlements.approve(unit, settlement_id), body or NoBody())
