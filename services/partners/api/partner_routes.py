"""Partner routes: register, agreements, lifecycle, changes, reads. Thin: parse, authorise, call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.values import PartnerStatus, PaymentTerms
from libs.runtime.aggregate import retry_on_conflict
from libs.runtime.auth import Principal
from libs.runtime.documents import MAX_LIMIT
from libs.runtime.host import ServiceContext
from libs.runtime.idempotency import respond_once
from libs.runtime.params import Cursor, PathId, QueryText
from services.partners.api.deps import Ctx, Editor, IdempotencyKey, Reader
from services.partners.api.schemas import (
    ChangePartnerIn,
    PartnerOut,
    PartnerPage,
    ReasonIn,
    RegisterPartnerIn,
    SignAgreementIn,
)
from services.partners.application import partners as commands
from services.partners.application.read_models import partner_page, partner_view
from services.partners.domain.commands import ChangePartner, RegisterPartner, SignAgreement
from services.partners.domain.errors import PartnerNotFound

router = APIRouter(prefix="/v1/partners", tags=["partners"])

Command = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


def _meta(principal: Principal) -> EventMetadata:
    return EventMetadata(actor=principal.actor)


async def _in_transaction(ctx: ServiceContext, command: Command) -> dict[str, Any]:
    """Run a command in its own transaction, again from a fresh load if the partner moved on."""

    async def attempt() -> dict[str, Any]:
        async with ctx.db.transaction() as conn:
            return await command(conn)

    return await retry_on_conflict(attempt)


@router.post("", status_code=201, response_model=PartnerOut)
async def register(body: RegisterPartnerIn, principal: Editor, ctx: Ctx,
                   idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Register a partner with status ``applied``. A legal id registered already answers 409."""

    async def run(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        command = RegisterPartner(
            partner_id=commands.new_partner_id(), name=body.name, legal_id=body.legal_id,
            kind=body.kind, tier=body.tier, region=body.region,
            territories=tuple(body.territories), categories=tuple(body.categories),
            parent_id=body.parent_id, currency=body.currency,
            payment_terms=PaymentTerms(**body.payment_terms.model_dump()))
        return 201, await commands.register_partner(conn, ctx, command, _meta(principal))

    return await respond_once(ctx.db, principal, "POST /v1/partners", idempotency_key, body, run)


@router.post("/{partner_id}/agreements", status_code=201, response_model=PartnerOut)
async def sign_agreement(partner_id: PathId, body: SignAgreementIn, principal: Editor, ctx: Ctx,
                         idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Sign an agreement: ``trial`` makes the partner ``trial``, ``annual`` makes it ``active``."""

    async def run(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        command = SignAgreement(agreement_id=commands.new_agreement_id(), kind=body.kind,
                                starts_on=body.starts_on, ends_on=body.ends_on,
                                annual_target_minor=body.annual_target_minor)
        return 201, await commands.sign_agreement(conn, ctx, partner_id, command, _meta(principal))

    return await retry_on_conflict(lambda: respond_once(
        ctx.db, principal, f"POST /v1/partners/{partner_id}/agreements", idempotency_key, body, run))


@router.post("/{partner_id}/suspend", response_model=PartnerOut)
async def suspend(partner_id: PathId, body: ReasonIn, principal: Editor, ctx: Ctx) -> dict[str, Any]:
    """Suspend a ``trial`` or ``active`` partner for remediation (409 otherwise)."""
    return await _in_transaction(ctx, lambda conn: commands.suspend_partner(
        conn, ctx, partner_id, body.reason, _meta(principal)))


@router.post("/{partner_id}/reinstate", response_model=PartnerOut)
async def reinstate(partner_id: PathId, principal: Editor, ctx: Ctx) -> dict[str, Any]:
    """Reinstate a suspended partner to the status it had before (409 if not suspended)."""
    return await _in_transaction(ctx, lambda conn: commands.reinstate_partner(
        conn, ctx, partner_id, _meta(principal)))


@router.post("/{partner_id}/terminate", response_model=PartnerOut)
async def terminate(partner_id: PathId, body: ReasonIn, principal: Editor, ctx: Ctx) -> dict[str, Any]:
    """Terminate a partner for good, with its agreement in force (409 if terminated already)."""
    return await _in_transaction(ctx, lambda conn: commands.terminate_partner(
        conn, ctx, partner_id, body.reason, _meta(principal)))


@router.patch("/{partner_id}", response_model=PartnerOut)
async def change(partner_id: PathId, body: ChangePartnerIn, principal: Editor, ctx: Ctx) -> dict[str, Any]:
    """Change tier, territories or categories: each real change is its own event."""
    command = ChangePartner(
        tier=body.tier,
        territories=tuple(body.territories) if body.territories is not None else None,
        categories=tuple(body.categories) if body.categories is not None else None)
    return await _in_transaction(ctx, lambda conn: commands.change_partner(
        conn, ctx, partner_id, command, _meta(principal)))


@router.get("/{partner_id}", response_model=PartnerOut)
async def get_partner(partner_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """One partner; a partner key sees only its own (another partner's id answers 404)."""
    if not principal.sees(partner_id):
        raise PartnerNotFound(partner_id)
    async with ctx.db.read() as conn:
        view = await partner_view(conn, partner_id)
    if view is None:
        raise PartnerNotFound(partner_id)
    return view


@router.get("", response_model=PartnerPage)
async def list_partners(
    principal: Reader, ctx: Ctx, status: PartnerStatus | None = None, tier: QueryText = None,
    region: QueryText = None, parent_id: QueryText = None,
    limit: int = Query(50, ge=1, le=MAX_LIMIT), cursor: Cursor = None,
) -> dict[str, Any]:
    """Partners in id order, filtered; a partner key lists only itself."""

    def matches(body: dict[str, Any]) -> bool:
        return (tier is None or body["tier"] == tier) and (region is None or body["region"] == region)

    async with ctx.db.read() as conn:
        return await partner_page(
            conn, partner_id=principal.scoped(None), status=status, ref_id=parent_id,
            where=matches if tier is not None or region is not None else None,
            cursor=cursor, limit=limit)
