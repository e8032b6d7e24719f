"""A partner's channel in the 360: its sub-dealers' sales, and its co-op advertising funds.

Sub-dealers: a partner's invoice (and return credit note) counts for the
parent in effect on its date — the parent it was registered with, then each
``PartnerParentChanged`` from its ``effective_from`` on — so a change never
moves sales already made. Sales are as everywhere: invoiced less return
credit notes.

Co-op funds: one document per (program, partner), folded from the rebates
service's claim and expiry events; the accrued amount is the program's
accrual. balance = accrued - approved claims (0 once expired).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from libs.events import partners, rebates
from libs.events.base import DomainEvent
from services.projections.domain.sales import sales_minor

Doc = dict[str, Any]


def with_parent_change(doc: Doc, event: partners.PartnerParentChanged) -> Doc:
    """The partner's current parent, and the dated history a sale is attributed by."""
    change = {"effective_from": event.effective_from.isoformat(), "parent_id": event.to_parent_id}
    changes = [c for c in doc.get("parent_changes", []) if c != change]
    registered = doc.get("registered_parent_id", doc["parent_id"])
    return {**doc, "parent_id": event.to_parent_id, "registered_parent_id": registered,
            "parent_changes": [*changes, change]}


def parent_on(partner: Doc, day: str | None) -> str | None:
    """The parent in effect on ``day`` (ISO date); the registered one before any change."""
    parent = partner.get("registered_parent_id", partner["parent_id"])
    for change in sorted(partner.get("parent_changes", []), key=lambda c: c["effective_from"]):
        if day is not None and change["effective_from"] <= day:
            parent = change["parent_id"]
    return parent


def sub_dealer_sales(parent_id: str, children: Sequence[Doc], invoices: Mapping[str, Sequence[Doc]],
                     credit_notes: Mapping[str, Sequence[Doc]]) -> list[dict[str, Any]]:
    """``[{partner_id, sales_minor}]`` of each sub-dealer, counting what it sold under ``parent_id``."""
    rows = []
    for child in children:
        child_id = child["partner_id"]
        mine = [i for i in invoices.get(child_id, []) if parent_on(child, i["issued_on"]) == parent_id]
        returned = [n for n in credit_notes.get(child_id, [])
                    if parent_on(child, n["issued_on"]) == parent_id]
        if mine or returned:
            rows.append({"partner_id": child_id, "name": child["name"],
                         "sales_minor": sales_minor(mine, returned)})
    return rows


def ever_under(parent_id: str, partner: Doc) -> bool:
    """Was ``partner`` ever a sub-dealer of ``parent_id``?"""
    parents = {partner.get("registered_parent_id"), partner.get("parent_id"),
               *(c["parent_id"] for c in partner.get("parent_changes", []))}
    return parent_id in parents


def fund_id(program_id: str, partner_id: str) -> str:
    return f"{program_id}:{partner_id}"


def blank_fund(program_id: str, partner_id: str) -> Doc:
    return {"program_id": program_id, "partner_id": partner_id, "claims": {}, "paid_minor": 0,
            "expired_minor": 0, "expired_on": None}


def evolve_fund(doc: Doc, event: DomainEvent) -> Doc:
    claims = dict(doc["claims"])
    match event:
        case rebates.CoopClaimFiled():
            claims.setdefault(event.claim_id, {
                "claim_id": event.claim_id, "amount_minor": event.amount_minor, "status": "filed",
                "filed_on": event.filed_on.isoformat(), "approved_minor": 0})
            return {**doc, "claims": claims}
        case rebates.CoopClaimApproved():
            if claims.get(event.claim_id, {}).get("status") == "approved":
                return doc
            claims[event.claim_id] = {**claims.get(event.claim_id, {"claim_id": event.claim_id}),
                                      "status": "approved", "approved_minor": event.approved_minor,
                                      "amount_minor": event.claimed_minor}
            return {**doc, "claims": claims, "paid_minor": doc["paid_minor"] + event.approved_minor}
        case rebates.CoopClaimRejected():
            claims[event.claim_id] = {**claims.get(event.claim_id, {"claim_id": event.claim_id}),
                                      "status": "rejected"}
            return {**doc, "claims": claims}
        case rebates.CoopFundExpired():
            return {**doc, "expired_minor": event.expired_minor, "expired_on": event.expires_on.isoformat()}
    return doc


def coop_view(funds: Iterable[Doc], accruals: Mapping[str, Doc]) -> dict[str, Any]:
    """The partner's co-op funds: each fund's figures and claims, and the totals. ``accruals``
    (co-op accruals by program) count too where no claim or expiry has made a fund document yet."""
    by_program = {f["program_id"]: f for f in funds}
    for program_id, accrual in accruals.items():
        by_program.setdefault(program_id, blank_fund(program_id, accrual["partner_id"]))
    items = []
    for fund in sorted(by_program.values(), key=lambda f: f["program_id"]):
        accrued = accruals.get(fund["program_id"], {}).get("accrued_minor", 0)
        balance = 0 if fund["expired_on"] else accrued - fund["paid_minor"]
        items.append({
            "program_id": fund["program_id"], "accrued_minor": accrued, "paid_minor": fund["paid_minor"],
            "expired_minor": fund["expired_minor"], "expired_on": fund["expired_on"],
            "balance_minor": balance, "claims": sorted(fund["claims"].values(), key=lambda c: c["claim_id"])})
    return {"balance_minor": sum(f["balance_minor"] for f in items),
            "paid_minor": sum(f["paid_minor"] for f in items),
            "expired_minor": sum(f["expired_minor"] for f in items), "funds": items}


def coop_fund_rows(programs: Mapping[str, Doc], funds: Iterable[Doc],
                   accruals: Iterable[Doc]) -> list[dict[str, Any]]:
    """One row per (partner, co-op program) with an accrual or a fund: accrued, paid, expired,
    balance and the claims by status, ordered by partner and program."""
    coop_accruals: dict[str, dict[str, Doc]] = {}
    for accrual in accruals:
        if accrual["program_id"] in programs:
            coop_accruals.setdefault(accrual["partner_id"], {})[accrual["program_id"]] = accrual
    by_partner: dict[str, list[Doc]] = {}
    for fund in funds:
        by_partner.setdefault(fund["partner_id"], []).append(fund)
    rows = []
    for partner_id in sorted(set(coop_accruals) | set(by_partner)):
        view = coop_view(by_partner.get(partner_id, []), coop_accruals.get(partner_id, {}))
        for fund in view["funds"]:
            program = programs.get(fund["program_id"], {})
            claims = fund["claims"]
            rows.append({
                "partner_id": partner_id, "program_id": fund["program_id"],
                "program": program.get("name"), "expired_on": fund["expired_on"],
                "accrued_minor": fund["accrued_minor"], "paid_minor": fund["paid_minor"],
                "expired_minor": fund["expired_minor"], "balance_minor": fund["balance_minor"],
                "status": "expired" if fund["expired_on"] else "open",
                "claims": len(claims), "pending_claims": sum(c["status"] == "filed" for c in claims)})
    return rows
