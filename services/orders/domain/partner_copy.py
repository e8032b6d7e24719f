"""The orders service's copy of what it needs to know about a partner, kept from partners' events.

Lifecycle events name the status after them (``status_after``), so the copy
sets the status and never re-derives the partners service's rules. Only
``trial`` and ``active`` partners can order. Events about a partner never
registered here leave it unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from libs.events.base import DomainEvent
from libs.events.credit import TermsChanged
from libs.events.partners import (
    AgreementSigned,
    PartnerCategoriesChanged,
    PartnerRegistered,
    PartnerReinstated,
    PartnerSuspended,
    PartnerTerminated,
    PartnerTerritoriesChanged,
    PartnerTierChanged,
    TrialEnded,
)
from services.orders.domain.errors import PartnerNotActive, PartnerNotFound

ORDERING_STATUSES = ("trial", "active")


@dataclass(frozen=True)
class PartnerCopy:
    partner_id: str
    status: str
    tier: str
    region: str
    territories: tuple[str, ...]
    categories: tuple[str, ...]
    payment_kind: str

    @property
    def can_order(self) -> bool:
        return self.status in ORDERING_STATUSES

    def sells_into(self, region: str) -> bool:
        """A territory covers itself and its sub-regions (``east`` covers ``east/shanghai``)."""
        return any(region == t or region.startswith(f"{t}/") for t in self.territories)

    def authorised_for(self, category: str) -> bool:
        """An empty categories list means every category is authorised."""
        return not self.categories or category in self.categories

    def as_document(self) -> dict[str, Any]:
        return {"partner_id": self.partner_id, "status": self.status, "tier": self.tier,
                "region": self.region, "territories": list(self.territories),
                "categories": list(self.categories), "payment_kind": self.payment_kind}

    @classmethod
    def from_document(cls, body: Mapping[str, Any]) -> PartnerCopy:
        return cls(partner_id=body["partner_id"], status=body["status"], tier=body["tier"],
                   region=body["region"], territories=tuple(body["territories"]),
                   categories=tuple(body["categories"]), payment_kind=body["payment_kind"])


def ordering_partner(partner: PartnerCopy | None, partner_id: str) -> PartnerCopy:
    """The partner, known here (404) and ``trial`` or ``active`` (403): who may order or
    register deals."""
    if partner is None:
        raise PartnerNotFound(f"partner {partner_id!r} is not known")
    if not partner.can_order:
        raise PartnerNotActive(f"partner {partner.partner_id!r} is {partner.status}; "
                               "only trial and active partners can order or register deals",
                               partner_status=partner.status)
    return partner


def evolve_partner_copy(copy: PartnerCopy | None, event: DomainEvent) -> PartnerCopy | None:
    """Total: an event this copy does not track, or about an unknown partner, changes nothing."""
    if isinstance(event, PartnerRegistered):
        return PartnerCopy(event.partner_id, "applied", event.tier, event.region,
                           tuple(event.territories), tuple(event.categories), event.payment_terms.kind)
    if copy is None:
        return None
    match event:
        case AgreementSigned() | TrialEnded() | PartnerReinstated():
            return replace(copy, status=event.status_after)
        case PartnerSuspended():
            return replace(copy, status="suspended")
        case PartnerTerminated():
            return replace(copy, status="terminated")
        case PartnerTierChanged():
            return replace(copy, tier=event.to_tier)
        case PartnerTerritoriesChanged():
            return replace(copy, territories=tuple(event.territories))
        case PartnerCategoriesChanged():
            return replace(copy, categories=tuple(event.categories))
        case TermsChanged():
            return replace(copy, payment_kind=event.kind)
    return copy
