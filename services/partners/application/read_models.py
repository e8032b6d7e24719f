"""Read models of the partners service, written in the same transaction as the events.

- ``partner``: one document per partner (status and partner id as columns for
  filtering); rebuilt from the aggregate state after each command.
- ``partner-violation``: one document per territory violation recorded by
  orders, so concurrent violations never overwrite each other; joined into
  the partner at read time.
- ``partner-legal-id``: the unique claim on a legal id (inserted, never upserted).
- ``api-key``: the keys, without their secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.events.codec import parse_json
from libs.runtime import documents
from libs.store.schema import documents as documents_table
from libs.store.sql import insert_ignoring_duplicates
from services.partners.domain.key import ApiKey
from services.partners.domain.partner import Partner

PARTNER = "partner"
VIOLATION = "partner-violation"
LEGAL_ID = "partner-legal-id"
KEY = "api-key"


def legal_id_key(legal_id: str) -> str:
    """Legal ids (unified social credit codes) compare without case or surrounding blanks."""
    return legal_id.strip().upper()


def partner_body(state: Partner) -> dict[str, Any]:
    terms = state.payment_terms
    trial = state.open_trial
    in_force = state.agreement_in_force
    return {
        "id": state.id, "name": state.name, "legal_id": state.legal_id, "kind": state.kind,
        "tier": state.tier, "region": state.region, "territories": list(state.territories),
        "categories": list(state.categories), "parent_id": state.parent_id,
        "parent_since": state.parent_since.isoformat() if state.parent_since else None,
        "payment_terms": {
            "kind": terms.kind if terms else None,
            "credit_limit_minor": terms.credit_limit_minor if terms else None,
            "term_days": terms.term_days if terms else None,
        },
        "currency": state.currency, "status": state.status,
        "status_before_suspension": state.status_before_suspension,
        "suspension_reason": state.suspension_reason,
        "termination_reason": state.termination_reason,
        "agreement_id": in_force.id if in_force else None,
        "trial_ends_on": trial.ends_on.isoformat() if trial else None,
        "agreements": [
            {"id": a.id, "kind": a.kind, "starts_on": a.starts_on.isoformat(),
             "ends_on": a.ends_on.isoformat(), "annual_target_minor": a.annual_target_minor,
             "currency": a.currency, "state": a.state}
            for a in state.agreements
        ],
    }


async def save_partner(conn: AsyncConnection, state: Partner, version: int) -> None:
    await documents.put(conn, PARTNER, state.id, partner_body(state), partner_id=state.id,
                        status=state.status, version=version, ref_id=state.parent_id)


async def partner_exists(conn: AsyncConnection, partner_id: str) -> bool:
    return await documents.get(conn, PARTNER, partner_id) is not None


async def claim_legal_id(conn: AsyncConnection, legal_id: str, partner_id: str) -> bool:
    """Claim a legal id for a partner; False when another registration holds it already."""
    return await insert_ignoring_duplicates(conn, documents_table, {
        "kind": LEGAL_ID, "id": legal_id_key(legal_id), "partner_id": partner_id,
        "status": None, "body": "{}", "version": 0,
        "updated_at": format_timestamp(utc_now()),
    })


async def record_violation(conn: AsyncConnection, partner_id: str, violation: dict[str, Any]) -> None:
    await documents.put(conn, VIOLATION, violation["event_id"], violation, partner_id=partner_id)


async def violations_of(conn: AsyncConnection, partner_ids: Sequence[str]) -> dict[str, list[Any]]:
    """The violations of each partner, oldest first."""
    found: dict[str, list[Any]] = {pid: [] for pid in partner_ids}
    if not partner_ids:
        return found
    rows = (await conn.execute(select(documents_table.c.partner_id, documents_table.c.body).where(
        documents_table.c.kind == VIOLATION,
        documents_table.c.partner_id.in_(list(partner_ids))))).all()
    for partner_id, body in rows:
        found[partner_id].append(parse_json(body))
    for items in found.values():
        items.sort(key=lambda v: (v["recorded_at"], v["event_id"]))
    return found


def with_violations(body: dict[str, Any], violations: list[Any]) -> dict[str, Any]:
    return {**body, "violations": violations, "violation_count": len(violations)}


async def partner_view(conn: AsyncConnection, partner_id: str) -> dict[str, Any] | None:
    """The partner as the API answers it (record, status, agreements, violations)."""
    body = await documents.get(conn, PARTNER, partner_id)
    if body is None:
        return None
    return with_violations(body, (await violations_of(conn, [partner_id]))[partner_id])


async def partner_page(conn: AsyncConnection, **filters: Any) -> dict[str, Any]:
    page = await documents.page(conn, PARTNER, **filters)
    violations = await violations_of(conn, [item["id"] for item in page["items"]])
    page["items"] = [with_violations(item, violations[item["id"]]) for item in page["items"]]
    return page


def key_body(state: ApiKey, issued_at: str, revoked_at: str | None = None) -> dict[str, Any]:
    return {"key_id": state.key_id, "role": state.role, "partner_id": state.partner_id,
            "name": state.name, "issued_at": issued_at, "revoked": state.revoked,
            "revoked_at": revoked_at}


async def save_key(conn: AsyncConnection, body: dict[str, Any]) -> None:
    await documents.put(conn, KEY, body["key_id"], body, partner_id=body["partner_id"],
                        status="revoked" if body["revoked"] else "active", ref_id=body["role"])
