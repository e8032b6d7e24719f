"""Partner routes: register, agreements, lifecycle, changes, reads. Thin: parse, authorise, call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from libs.events.values import PartnerStatus, PaymentTerms
from libs.runtime.documents import MAX_LIMIT
from libs.runtime.idempotency import Command, IdempotentCommand
from libs.runtime.params import Cursor, PathId, QueryText
from services.partners.api.deps import Ctx, Editor, Reader
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
from services.partners.domain.commands import ChangeParent, ChangePartner, RegisterPartner, SignAgreement
from services.partners.domain.errors import PartnerNotFound

router = APIRouter(prefix="/v1/partners", tags=["partners"])


@router.post("", status_code=201, response_model=PartnerOut)
async def register(body: RegisterPartnerIn, _: Editor, command: IdempotentCommand) -> Response:
    """Register a partner with status ``applied``. A legal id registered already answers 409."""
    registration = RegisterPartner(
        partner_id=commands.new_partner_id(), name=body.name, legal_id=body.legal_id,
        kind=body.kind, tier=body.tier, region=body.region,
        territories=tuple(body.territories), categories=tuple(body.categories),
        parent_id=body.parent_id, currency=body.currency,
        payment_terms=PaymentTerms(**body.payment_terms.model_dump()))
    return await command.run(lambda unit: commands.register_partner(unit, registration), body)


@router.post("/{partner_id}/agreements", status_code=201, response_model=PartnerOut)
async def sign_agreement(partner_id: PathId, body: SignAgreementIn, _: Editor,
                         command: IdempotentCommand) -> Response:
    """Sign an agreement: ``trial`` makes the partner ``trial``, ``annual`` makes it ``active``."""
    signing = SignAgreement(agreement_id=commands.new_agreement_id(), kind=body.kind,
                            starts_on=body.starts_on, ends_on=body.ends_on,
                            annual_target_minor=body.annual_target_minor)
    return await command.run(lambda unit: commands.sign_agreement(unit, partner_id, signing), body)


@router.post("/{partner_id}/suspend", response_model=PartnerOut)
async def suspend(partner_id: PathId, body: ReasonIn, _: Editor, command: Command) -> Response:
    """Suspend a ``trial`` or ``active`` partner for remediation (409 otherwise)."""
    return await command.run(lambda unit: commands.suspend_partner(unit, partner_id, body.reason), body)


@router.post("/{partner_id}/reinstate", response_model=PartnerOut)
async def reinstate(partner_id: PathId, _: Editor, command: Command) -> Response:
    """Reinstate a suspended partner to the status it had before (409 if not suspended)."""
    return await command.run(lambda unit: commands.reinstate_partner(unit, partner_id))


@router.post("/{partner_id}/terminate", response_model=PartnerOut)
async def terminate(partner_id: PathId, body: ReasonIn, _: Editor, command: Command) -> Response:
    """Terminate a partner for good, with its agreement in force (409 if terminated already)."""
    return await command.run(lambda unit: commands.terminate_partner(unit, partner_id, body.reason), body)


@router.patch("/{partner_id}", response_model=PartnerOut)
async def change(partner_id: PathId, body: ChangePartnerIn, _: Editor, command: Command,
                 ctx: Ctx) -> Response:
    """Change tier, territories, categories or parent: each real change is its own event.

    A parent change (``parent_id``, null for none) takes effect on ``effective_from`` (today
    by default, never in the past): sales dated before it stay with the former parent.
    """
    parent = None
    if body.changes_parent:
        parent = ChangeParent(body.parent_id, body.effective_from or ctx.today())
    changes = ChangePartner(
        tier=body.tier,
        territories=tuple(body.territories) if body.territories is not None else None,
        categories=tuple(body.categories) if body.categories is not None else None, parent=parent)
    return await command.run(lambda unit: commands.change_partner(unit, partner_id, changes), body)


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
