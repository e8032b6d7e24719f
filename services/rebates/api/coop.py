"""Co-op fund routes: partners file claims on their own funds, finance decides them (four eyes).

A partner key files and reads only its own claims and funds; another partner's
claim answers 404. Finance files for a partner by naming it, and the key that
filed a claim may not approve or reject it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from libs.runtime import documents
from libs.runtime.auth import Principal, require
from libs.runtime.errors import DomainError
from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.params import Cursor, PathId, QueryText
from services.rebates.api.deps import Ctx, Finance, Limit, MoneyReader
from services.rebates.api.schemas import (
    CoopClaimIn,
    CoopClaimOut,
    CoopClaimPage,
    CoopFundPage,
    NoBody,
    RejectClaimIn,
)
from services.rebates.application import coop
from services.rebates.application.views import CLAIM
from services.rebates.domain.errors import ClaimNotFound, ProgramNotFound

router = APIRouter(prefix="/v1", tags=["co-op funds"])

Filer = Annotated[Principal, Depends(require("finance", "partner"))]
"""Files co-op claims (a partner key: on its own funds)."""


@router.post("/coop-claims", status_code=201, response_model=CoopClaimOut)
async def file_coop_claim(body: CoopClaimIn, principal: Filer, command: IdempotentCommand) -> Response:
    """File advertising spend against a co-op fund (status ``filed``) until the program's ``expires_on``."""
    if principal.is_partner:
        if body.partner_id not in (None, principal.partner_id):
            raise ProgramNotFound(f"no program {body.program_id}")
        partner_id = principal.partner_id or ""
    elif body.partner_id is None:
        raise DomainError("finance must give the partner_id the claim is for", slug="partner-id-required")
    else:
        partner_id = body.partner_id
    return await command.run(lambda unit: coop.file_claim(
        unit, body.program_id, partner_id, body.amount_minor, body.description, body.evidence_ref), body)


@router.get("/coop-claims", response_model=CoopClaimPage)
async def list_coop_claims(principal: MoneyReader, ctx: Ctx, partner_id: QueryText = None,
                           program_id: QueryText = None, status: QueryText = None, limit: Limit = 50,
                           cursor: Cursor = None) -> dict[str, Any]:
    """Co-op claims by partner, program and status (filed, approved, rejected); a partner key
    gets its own only."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, CLAIM, partner_id=principal.scoped(partner_id), status=status,
                                    ref_id=program_id or None, cursor=cursor, limit=limit)


@router.get("/coop-claims/{claim_id}", response_model=CoopClaimOut)
async def get_coop_claim(claim_id: PathId, principal: MoneyReader, ctx: Ctx) -> dict[str, Any]:
    """One co-op claim and its decision; another partner's answers 404."""
    async with ctx.db.read() as conn:
        body = await coop.read_claim(conn, claim_id)
    if body is None or not principal.sees(body["partner_id"]):
        raise ClaimNotFound(f"no co-op claim {claim_id}")
    return body


@router.post("/coop-claims/{claim_id}/approve", response_model=CoopClaimOut)
async def approve_coop_claim(claim_id: PathId, _: Finance, command: IdempotentCommand,
                             body: NoBody | None = None) -> Response:
    """Pay ``match_bp`` of the spend up to the fund's balance as a credit note; not by the filer's key."""
    return await command.run(lambda unit: coop.approve_claim(unit, claim_id), body or NoBody())


@router.post("/coop-claims/{claim_id}/reject", response_model=CoopClaimOut)
async def reject_coop_claim(claim_id: PathId, body: RejectClaimIn, _: Finance,
                            command: IdempotentCommand) -> Response:
    """Reject with a reason; the fund is untouched. Not by the filer's key."""
    return await command.run(lambda unit: coop.reject_claim(unit, claim_id, body.reason), body)


@router.get("/coop-funds", response_model=CoopFundPage)
async def list_coop_funds(principal: MoneyReader, ctx: Ctx, partner_id: QueryText = None,
                          program_id: QueryText = None, limit: Limit = 50,
                          cursor: Cursor = None) -> dict[str, Any]:
    """Co-op funds per program and partner: accrued, paid, expired, balance and the claims."""
    async with ctx.db.read() as conn:
        return await coop.fund_page(conn, partner_id=principal.scoped(partner_id),
                                    program_id=program_id or None, cursor=cursor, limit=limit)
