"""The read documents of programs, accruals and settlements, written with the events that change them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.rebates import ProgramPublished
from libs.runtime import documents
from services.rebates.application import applicability, sources
from services.rebates.domain.closing import FinalAmount
from services.rebates.domain.coop import Claim
from services.rebates.domain.program import ProgramState
from services.rebates.domain.rebate import RebateState, Settlement

PROGRAM, ACCRUAL, SETTLEMENT, CLAIM = "program", "accrual", "settlement", "coop-claim"
DEFINITION_FIELDS = tuple(name for name in ProgramPublished.model_fields if name != "program_id")


def accrual_id(program_id: str, partner_id: str) -> str:
    return f"{program_id}:{partner_id}"


def program_body(state: ProgramState) -> dict[str, Any]:
    assert state.definition is not None
    definition = state.definition.payload()
    settled_through = state.settled_through.isoformat() if state.settled_through else None
    return {"id": definition.pop("program_id"), **definition, "status": state.status,
            "closes": state.closes, "last_closed_by": state.last_closed_by,
            "settled_through": settled_through}


def program_from(body: dict[str, Any]) -> ProgramPublished:
    return ProgramPublished.model_validate(
        {"program_id": body["id"], **{name: body[name] for name in DEFINITION_FIELDS if name in body}})


async def write_program(conn: AsyncConnection, state: ProgramState, version: int) -> dict[str, Any]:
    body = program_body(state)
    assert state.definition is not None
    await applicability.save(conn, state.definition)
    await documents.put(conn, PROGRAM, body["id"], body, status=state.status, version=version)
    return body


def _sources(refs: Any) -> list[dict[str, Any]]:
    """A source names its partner only when it is a sub-dealer's (roll-up)."""
    return [source.model_dump(mode="json", exclude_none=True) for source in refs]


def accrual_body(state: RebateState) -> dict[str, Any]:
    """Totals only: the sources are rows of their own (``sources``), attached when read.

    ``components`` (volume, bonuses, cap) add up to ``accrued_minor``; the sources to ``basis_minor``.
    """
    return {
        "partner_id": state.partner_id, "program_id": state.program_id,
        "basis_minor": state.basis_minor, "accrued_minor": state.accrued_minor,
        "tier_rate_bp": state.tier_rate_bp, "currency": state.currency,
        "components": state.amount.components(),
        "settled_minor": state.settled_minor,
        # A co-op program's fund (``application.coop.fund_body``); the accrual API does not show it.
        "fund": {"paid_minor": state.fund.paid_minor, "expired_minor": state.fund.expired_minor,
                 "expired_on": state.fund.expired_on.isoformat() if state.fund.expired_on else None,
                 "balance_minor": state.fund.balance(state.accrued_minor)},
    }


async def accrual_page(conn: AsyncConnection, *, partner_id: str | None, program_id: str | None,
                       cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of accrual documents, each with its sources from their rows, in accrual order."""
    page = await documents.page(conn, ACCRUAL, partner_id=partner_id, ref_id=program_id or None,
                                cursor=cursor, limit=limit)
    found = await sources.listed(conn, [(body["program_id"], body["partner_id"]) for body in page["items"]])
    items = [{**body, "sources": found.get((body["program_id"], body["partner_id"]), [])}
             for body in page["items"]]
    return {**page, "items": items}


def _components(settlement: Settlement) -> list[dict[str, int | str]]:
    """What ``final_minor`` is made of (a proposal made before the breakdown existed: one volume part)."""
    parts = settlement.breakdown
    growth, timeliness = parts.get("growth_bonus_minor") or 0, parts.get("timeliness_bonus_minor") or 0
    cap_cut = parts.get("cap_cut_minor") or 0
    volume = parts.get("volume_minor")
    if volume is None:
        volume = settlement.final_minor - growth - timeliness + cap_cut
    return FinalAmount(parts.get("basis_minor") or 0, volume, 0, growth, timeliness, settlement.final_minor,
                       cap_cut).components()


def settlement_body(state: RebateState, settlement: Settlement) -> dict[str, Any]:
    return {
        "id": settlement.settlement_id, "program_id": state.program_id,
        "partner_id": state.partner_id, "status": settlement.status, "kind": settlement.kind,
        "through": settlement.through.isoformat() if settlement.through else None,
        "final_minor": settlement.final_minor,
        "already_settled_minor": settlement.already_settled_minor,
        "payout_minor": settlement.payout_minor, "currency": state.currency,
        **settlement.breakdown,
        "components": _components(settlement),
        "sources": _sources(settlement.sources),
        "proposed_by": settlement.proposed_by, "approved_by": settlement.approved_by,
        "credit_note_id": None,
    }


def claim_body(state: RebateState, claim: Claim) -> dict[str, Any]:
    return {
        "id": claim.claim_id, "program_id": state.program_id, "partner_id": state.partner_id,
        "status": claim.status, "amount_minor": claim.amount_minor, "currency": state.currency,
        "matched_minor": claim.matched_minor, "approved_minor": claim.approved_minor,
        "description": claim.description, "evidence_ref": claim.evidence_ref,
        "filed_by": claim.filed_by, "filed_on": claim.filed_on.isoformat(),
        "decided_by": claim.decided_by,
        "decided_on": claim.decided_on.isoformat() if claim.decided_on else None,
        "reason": claim.reason, "credit_note_id": None,
    }


async def write_rebate(conn: AsyncConnection, state: RebateState, version: int) -> None:
    """The accrual document, and every settlement and co-op claim document whose status changed."""
    await documents.put(conn, ACCRUAL, accrual_id(state.program_id, state.partner_id),
                        accrual_body(state), partner_id=state.partner_id, version=version,
                        ref_id=state.program_id)
    for settlement in state.settlements:
        stored = await documents.get(conn, SETTLEMENT, settlement.settlement_id)
        if stored is not None and stored["status"] == settlement.status:
            continue
        body = settlement_body(state, settlement)
        if stored is not None:
            body["credit_note_id"] = stored.get("credit_note_id")
        await documents.put(conn, SETTLEMENT, settlement.settlement_id, body,
                            partner_id=state.partner_id, status=settlement.status, version=version,
                            ref_id=state.program_id)
    for claim in state.fund.claims:
        stored = await documents.get(conn, CLAIM, claim.claim_id)
        if stored is not None and stored["status"] == claim.status:
            continue
        await documents.put(conn, CLAIM, claim.claim_id, claim_body(state, claim),
                            partner_id=state.partner_id, status=claim.status, version=version,
                            ref_id=state.program_id)


async def note_credit_note(conn: AsyncConnection, settlement_id: str, credit_note_id: str,
                           kind: str = SETTLEMENT) -> None:
    """Credit turned an approved payout (or co-op claim) into a credit note: link it from the document."""
    body = await documents.get(conn, kind, settlement_id)
    if body is None:
        return
    body["credit_note_id"] = credit_note_id
    await documents.put(conn, kind, settlement_id, body, partner_id=body["partner_id"],
                        status=body["status"], ref_id=body["program_id"])
