"""The partner as JSON for snapshots, and back: integers stay integers, dates are ISO strings.

Change ``SHAPE`` with any change to ``Partner``, ``Agreement`` or this codec:
snapshots of another shape are then ignored, never misread.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from libs.events.values import PaymentTerms
from services.partners.domain.partner import Agreement, Partner

SHAPE = "partners.partner/2"


def _agreement(a: Agreement) -> dict[str, Any]:
    return {"id": a.id, "kind": a.kind, "starts_on": a.starts_on.isoformat(),
            "ends_on": a.ends_on.isoformat(),
            "annual_target_minor": a.annual_target_minor, "currency": a.currency, "state": a.state}


def encode(state: Partner) -> dict[str, Any]:
    return {
        "id": state.id, "name": state.name, "legal_id": state.legal_id, "kind": state.kind,
        "tier": state.tier, "region": state.region, "territories": list(state.territories),
        "categories": list(state.categories), "parent_id": state.parent_id,
        "parent_since": state.parent_since.isoformat() if state.parent_since else None,
        "payment_terms": state.payment_terms.model_dump(mode="json") if state.payment_terms else None,
        "currency": state.currency, "status": state.status,
        "status_before_suspension": state.status_before_suspension,
        "agreements": [_agreement(a) for a in state.agreements],
        "suspension_reason": state.suspension_reason, "termination_reason": state.termination_reason,
    }


def decode(body: dict[str, Any]) -> Partner:
    terms = body["payment_terms"]
    return Partner(**{
        **body, "territories": tuple(body["territories"]), "categories": tuple(body["categories"]),
        "payment_terms": PaymentTerms.model_validate(terms) if terms is not None else None,
        "parent_since": date.fromisoformat(body["parent_since"]) if body["parent_since"] else None,
        "agreements": tuple(Agreement(**{**a, "starts_on": date.fromisoformat(a["starts_on"]),
                                         "ends_on": date.fromisoformat(a["ends_on"])})
                            for a in body["agreements"]),
    })
