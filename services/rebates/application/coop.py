"""Co-op fund commands and reads: file a claim, approve or reject it, expire unused funds.

A fund lives on the rebate stream of its (program, partner) with the accrual
that feeds it (``domain.coop``), so a claim's approval is decided against
exactly the balance the accruals before it left. ``expire_funds`` applies the
expiry rule for a day (tests call it); ``expire_funds_periodically`` is the
background task that applies it with the service's today.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.rebates import ProgramPublished
from libs.messaging.timing import every
from libs.runtime import commands, documents
from libs.runtime.commands import Unit
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.rebates.application import views
from services.rebates.application.copies import all_documents, partner_profile
from services.rebates.application.programs import partners_with_accruals, read_program
from services.rebates.application.rebates import append, load_rebate
from services.rebates.domain import coop
from services.rebates.domain.eligibility import partner_eligible
from services.rebates.domain.errors import ClaimNotFound, ProgramNotFound
from services.rebates.settings import RebatesSettings

log = logging.getLogger(__name__)

ACTOR = "system:rebates-coop-expiry"


def new_claim_id() -> str:
    return new_id("clm")


async def coop_program(conn: AsyncConnection, program_id: str, partner_id: str) -> ProgramPublished:
    """The program a partner's claim is filed against: it exists and the partner is eligible (else 404)."""
    body = await read_program(conn, program_id)
    program = views.program_from(body) if body is not None else None
    if program is None or not partner_eligible(program.eligibility, await partner_profile(conn, partner_id)):
        raise ProgramNotFound(f"no program {program_id} for partner {partner_id}")
    coop.rule_of(program)
    return program


async def file_claim(unit: Unit, program_id: str, partner_id: str, amount_minor: int, description: str,
                     evidence_ref: str) -> dict[str, Any]:
    assert unit.principal is not None
    program = await coop_program(unit.conn, program_id, partner_id)
    loaded = await load_rebate(unit, program_id, partner_id)
    claim_id = new_claim_id()
    filed = coop.decide_claim(loaded.state.fund, program, coop.FileClaim(
        claim_id, partner_id, amount_minor, description, evidence_ref, unit.principal.key_id, unit.today()))
    await append(unit, loaded, filed)
    return await _claim(unit.conn, claim_id)


async def read_claim(conn: AsyncConnection, claim_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, views.CLAIM, claim_id)


async def _claim(conn: AsyncConnection, claim_id: str) -> dict[str, Any]:
    body = await read_claim(conn, claim_id)
    if body is None:
        raise ClaimNotFound(f"no co-op claim {claim_id}")
    return body


async def approve_claim(unit: Unit, claim_id: str) -> dict[str, Any]:
    """A finance key other than the filer's pays the matched share, capped at the fund's balance."""
    assert unit.principal is not None
    found = await _claim(unit.conn, claim_id)
    body = await read_program(unit.conn, found["program_id"])
    assert body is not None  # a claim is filed against a published program
    program = views.program_from(body)
    loaded = await load_rebate(unit, found["program_id"], found["partner_id"])
    state = loaded.state
    approved = coop.decide_claim_approval(state.fund, program, state.partner_id, state.accrued_minor,
                                          claim_id, unit.principal.key_id, unit.today())
    await append(unit, loaded, approved)
    return await _claim(unit.conn, claim_id)


async def reject_claim(unit: Unit, claim_id: str, reason: str) -> dict[str, Any]:
    assert unit.principal is not None
    found = await _claim(unit.conn, claim_id)
    loaded = await load_rebate(unit, found["program_id"], found["partner_id"])
    rejected = coop.decide_claim_rejection(loaded.state.fund, found["program_id"], found["partner_id"],
                                           claim_id, unit.principal.key_id, reason, unit.today())
    await append(unit, loaded, rejected)
    return await _claim(unit.conn, claim_id)


async def expire_fund_if_due(unit: Unit, program: ProgramPublished, partner_id: str, today: date) -> bool:
    loaded = await load_rebate(unit, program.program_id, partner_id)
    state = loaded.state
    expired = coop.decide_expiry(state.fund, program, partner_id, state.accrued_minor, today)
    await append(unit, loaded, expired)
    return bool(expired)


async def coop_programs(conn: AsyncConnection) -> list[ProgramPublished]:
    return [views.program_from(body) async for body in all_documents(conn, views.PROGRAM)
            if body.get("kind") == "coop"]


async def expire_funds(ctx: ServiceContext, today: date) -> list[tuple[str, str]]:
    """Expire every fund whose program's ``expires_on`` is before ``today``; the (program, partner) pairs."""
    async with ctx.db.read() as conn:
        due = [(program, partner_id) for program in await coop_programs(conn)
               if program.coop is not None and program.coop.expires_on < today
               for partner_id in await partners_with_accruals(conn, program.program_id)]
    meta = EventMetadata(actor=ACTOR)
    expired = []
    for program, partner_id in due:
        if await commands.run(ctx, meta, functools.partial(
                expire_fund_if_due, program=program, partner_id=partner_id, today=today)):
            expired.append((program.program_id, partner_id))
    return expired


async def expire_funds_periodically(ctx: ServiceContext, stop: asyncio.Event) -> None:
    """Background task (``ServiceSpec.tasks``): expire due co-op funds every few seconds until ``stop``."""

    async def round_() -> None:
        expired = await expire_funds(ctx, ctx.today())
        if expired:
            log.info("co-op funds expired: %s", ", ".join(f"{p}/{q}" for p, q in expired))

    await every(stop, RebatesSettings().coop_expiry_check_seconds, round_, "expiring co-op funds")


def fund_body(program: ProgramPublished, accrual: dict[str, Any],
              claims: list[dict[str, Any]]) -> dict[str, Any]:
    """A partner's co-op fund as the API shows it: accrued, paid, expired, balance and its claims."""
    rule = program.coop
    assert rule is not None
    fund = accrual.get("fund") or {}
    accrued = accrual["accrued_minor"]
    paid, expired = fund.get("paid_minor", 0), fund.get("expired_minor", 0)
    return {
        "program_id": program.program_id, "partner_id": accrual["partner_id"], "currency": program.currency,
        "share_bp": rule.share_bp, "match_bp": rule.match_bp, "expires_on": rule.expires_on.isoformat(),
        "status": "expired" if fund.get("expired_on") else "open",
        "accrued_minor": accrued, "paid_minor": paid, "expired_minor": expired,
        "balance_minor": 0 if fund.get("expired_on") else accrued - paid,
        "pending_claims": sum(1 for claim in claims if claim["status"] == "filed"),
        "claims": claims,
    }


async def fund_page(conn: AsyncConnection, *, partner_id: str | None, program_id: str | None,
                    cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of co-op funds (one per coop program and partner with accruals or claims)."""
    programs = {program.program_id: program for program in await coop_programs(conn)}
    if program_id is not None and program_id not in programs:
        return {"items": [], "next_cursor": None}
    page = await documents.page(conn, views.ACCRUAL, partner_id=partner_id, ref_id=program_id,
                                where=lambda body: body["program_id"] in programs, cursor=cursor, limit=limit)
    items = []
    for accrual in page["items"]:
        claims = await documents.page(conn, views.CLAIM, partner_id=accrual["partner_id"],
                                      ref_id=accrual["program_id"], limit=documents.MAX_LIMIT)
        items.append(fund_body(programs[accrual["program_id"]], accrual, claims["items"]))
    return {**page, "items": items}
