"""Rebates as finance reads them: accrued (running totals per program and partner) vs settled.

``RebateAccrued`` carries running totals, so the latest accrual of a (program,
partner) is its accrued amount; "latest" is by stream version (rebates keeps
one stream per program and partner), then by the time it occurred. Settled is
the sum of approved settlement payouts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from libs.events import rebates
from libs.events.base import DomainEvent

Doc = dict[str, Any]


def accrual_id(program_id: str, partner_id: str) -> str:
    return f"{program_id}:{partner_id}"


def blank_accrual(program_id: str, partner_id: str) -> Doc:
    return {"program_id": program_id, "partner_id": partner_id, "basis_minor": 0,
            "accrued_minor": 0, "tier_rate_bp": 0, "stamp": None}


def evolve_accrual(doc: Doc, event: rebates.RebateAccrued, *, stamp: list[Any]) -> Doc:
    """Keep the running totals of the latest accrual (``stamp`` = [stream version, occurred_at])."""
    if doc["stamp"] is not None and list(doc["stamp"]) >= stamp:
        return doc
    return {**doc, "basis_minor": event.basis_minor, "accrued_minor": event.accrued_minor,
            "tier_rate_bp": event.tier_rate_bp, "stamp": stamp}


def blank_settlement(settlement_id: str) -> Doc:
    return {"settlement_id": settlement_id, "program_id": None, "partner_id": None,
            "payout_minor": 0, "status": None}


def evolve_settlement(doc: Doc, event: DomainEvent) -> Doc:
    doc = dict(doc)
    if isinstance(event, rebates.SettlementProposed | rebates.SettlementApproved):
        doc.update(program_id=event.program_id, partner_id=event.partner_id,
                   payout_minor=event.payout_minor)
    if isinstance(event, rebates.SettlementApproved):
        doc["status"] = "approved"
    elif doc["status"] is None:
        doc["status"] = "proposed"
    return doc


def program_doc(event: rebates.ProgramPublished) -> Doc:
    return {"program_id": event.program_id, "name": event.name,
            "starts_on": event.starts_on.isoformat(), "ends_on": event.ends_on.isoformat(),
            "basis": event.basis, "mode": event.mode, "kind": event.kind}


def totals(accruals: Iterable[Doc], settlements: Iterable[Doc]) -> dict[str, int]:
    return {
        "accrued_minor": sum(a["accrued_minor"] for a in accruals),
        "settled_minor": sum(s["payout_minor"] for s in settlements if s["status"] == "approved"),
    }


def by_program(accruals: Iterable[Doc], settlements: Iterable[Doc],
               programs: Mapping[str, Doc]) -> list[dict[str, Any]]:
    """Accrued vs settled per program, in program id order."""
    rows: dict[str, dict[str, Any]] = {}

    def row(program_id: str) -> dict[str, Any]:
        name = programs.get(program_id, {}).get("name")
        return rows.setdefault(program_id, {"program_id": program_id, "name": name,
                                            "accrued_minor": 0, "settled_minor": 0})

    for accrual in accruals:
        row(accrual["program_id"])["accrued_minor"] += accrual["accrued_minor"]
    for settlement in settlements:
        if settlement["status"] == "approved":
            row(settlement["program_id"])["settled_minor"] += settlement["payout_minor"]
    return [rows[key] for key in sorted(rows)]
