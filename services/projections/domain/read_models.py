"""Read models of partners and orders, folded from the events that change them.

Each model is a plain JSON-ready dict (a document). ``evolve_*`` are pure. The
publishers' topics are consumed independently, so a model may see another
service's event before its own "creating" event: every step only sets the
fields its event owns, which makes the fold independent of arrival order
across services (within one stream, events always arrive in order).
"""

from __future__ import annotations

from typing import Any

from libs.events import credit, orders, partners
from libs.events.base import DomainEvent
from services.projections.domain import channel

Doc = dict[str, Any]

ORDER_STATUS_AFTER: dict[str, str] = {
    orders.OrderPlaced.TYPE: "placed",
    orders.OrderConfirmed.TYPE: "confirmed",
    orders.OrderBackordered.TYPE: "backordered",
    orders.OrderAwaitingFunds.TYPE: "awaiting_funds",
    orders.OrderCreditHeld.TYPE: "credit_hold",
    orders.OrderApproved.TYPE: "approved",
    orders.OrderPartiallyShipped.TYPE: "partially_shipped",
    orders.OrderShipped.TYPE: "shipped",
    orders.OrderDelivered.TYPE: "delivered",
    orders.OrderRejected.TYPE: "rejected",
    orders.OrderCancelled.TYPE: "cancelled",
}
"""The order status each orders event leads to (the orders service's statuses)."""

CLOSED_ORDER_STATUSES = frozenset({"cancelled", "rejected"})


def blank_partner(partner_id: str) -> Doc:
    return {"partner_id": partner_id, "name": None, "kind": None, "status": None, "tier": None,
            "region": None, "parent_id": None, "currency": None}


def evolve_partner(doc: Doc, event: DomainEvent) -> Doc:
    """A partner's profile and status; the status is set from ``status_after``, never re-derived."""
    doc = dict(doc)
    match event:
        case partners.PartnerRegistered():
            doc.update(name=event.name, kind=event.kind, tier=event.tier, region=event.region,
                       parent_id=event.parent_id, currency=event.currency)
            doc["status"] = doc["status"] or "applied"
        case partners.AgreementSigned() | partners.TrialEnded() | partners.PartnerReinstated():
            doc["status"] = event.status_after
        case partners.PartnerSuspended():
            doc["status"] = "suspended"
        case partners.PartnerTerminated():
            doc["status"] = "terminated"
        case partners.PartnerTierChanged():
            doc["tier"] = event.to_tier
        case partners.PartnerParentChanged():
            doc = channel.with_parent_change(doc, event)
    return doc


def blank_order(order_id: str) -> Doc:
    return {"order_id": order_id, "partner_id": None, "status": None, "total_minor": 0,
            "currency": None, "placed_at": None, "correlation_id": None,
            "funds_passed_minor": None, "funds_how": None}


def evolve_order(doc: Doc, event: DomainEvent, *, occurred_at: str, correlation_id: str) -> Doc:
    """An order's partner, total and status, and the amount its funds review secured."""
    doc = dict(doc)
    if isinstance(event, orders.OrderPlaced):
        doc.update(partner_id=event.partner_id, total_minor=event.total_minor,
                   currency=event.currency, placed_at=occurred_at, correlation_id=correlation_id)
        doc["status"] = doc["status"] or "placed"
    elif event.TYPE in ORDER_STATUS_AFTER:
        doc["status"] = ORDER_STATUS_AFTER[event.TYPE]
    if isinstance(event, credit.FundsReviewPassed):
        doc.update(partner_id=doc["partner_id"] or event.partner_id,
                   funds_passed_minor=event.amount_minor, funds_how=event.how)
    return doc
