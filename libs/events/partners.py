"""Events published by the partners service: API keys, partner records and their lifecycle.

Every lifecycle event that can land in more than one status names the status
after it (``status_after``), so a consumer keeps a partner's status by
setting, never by re-deriving the partners service's rules. Only ``trial`` and
``active`` partners can order.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from libs.events.base import DomainEvent
from libs.events.values import (
    DEFAULT_CURRENCY,
    AgreementKind,
    PartnerKind,
    PaymentTerms,
    Role,
)


class KeyIssued(DomainEvent):
    """An API key was issued; only the lowercase hex sha256 of its secret is ever recorded."""

    TYPE = "KeyIssued"

    key_id: str
    role: Role
    partner_id: str | None = None
    name: str | None = None
    secret_sha256: str


class KeyRevoked(DomainEvent):
    """An API key was revoked; every service refuses it from then on."""

    TYPE = "KeyRevoked"

    key_id: str


class PartnerRegistered(DomainEvent):
    """A partner applied and was registered with status ``applied``; it cannot order yet."""

    TYPE = "PartnerRegistered"

    partner_id: str
    name: str
    legal_id: str
    kind: PartnerKind
    tier: str
    region: str
    territories: list[str]
    categories: list[str]
    parent_id: str | None = None
    payment_terms: PaymentTerms
    currency: str = DEFAULT_CURRENCY


class AgreementSigned(DomainEvent):
    """A partner signed an agreement: a trial makes it ``trial``, an annual one ``active``."""

    TYPE = "AgreementSigned"

    partner_id: str
    agreement_id: str
    kind: AgreementKind
    starts_on: date
    ends_on: date
    annual_target_minor: int | None = None
    currency: str = DEFAULT_CURRENCY
    status_after: Literal["trial", "active"]


class TrialEnded(DomainEvent):
    """A trial agreement reached its end date; unless promoted, the partner is ``applied`` again."""

    TYPE = "TrialEnded"

    partner_id: str
    agreement_id: str
    ended_on: date
    status_after: Literal["applied", "active", "suspended", "terminated"]


class PartnerSuspended(DomainEvent):
    """A partner was suspended for remediation; it cannot order until reinstated."""

    TYPE = "PartnerSuspended"

    partner_id: str
    reason: str


class PartnerReinstated(DomainEvent):
    """A suspended partner was reinstated to the status its agreement gives it."""

    TYPE = "PartnerReinstated"

    partner_id: str
    status_after: Literal["applied", "trial", "active"]


class PartnerTerminated(DomainEvent):
    """A partner's relationship (and agreement, when it has one) was terminated for good."""

    TYPE = "PartnerTerminated"

    partner_id: str
    reason: str
    agreement_id: str | None = None


class PartnerTierChanged(DomainEvent):
    """A partner moved to another tier, which drives its prices and rebate eligibility."""

    TYPE = "PartnerTierChanged"

    partner_id: str
    from_tier: str
    to_tier: str


class PartnerTerritoriesChanged(DomainEvent):
    """A partner's territories were replaced; orders shipping outside them are refused."""

    TYPE = "PartnerTerritoriesChanged"

    partner_id: str
    territories: list[str]


class PartnerCategoriesChanged(DomainEvent):
    """A partner's authorised product categories were replaced."""

    TYPE = "PartnerCategoriesChanged"

    partner_id: str
    categories: list[str]


class PartnerParentChanged(DomainEvent):
    """A partner moved under another parent (or none) from ``effective_from`` on.

    Sales dated before that day stay with the former parent: nothing settled is rewritten.
    """

    TYPE = "PartnerParentChanged"

    partner_id: str
    from_parent_id: str | None = None
    to_parent_id: str | None = None
    effective_from: date


EVENTS: tuple[type[DomainEvent], ...] = (
    KeyIssued,
    KeyRevoked,
    PartnerRegistered,
    AgreementSigned,
    TrialEnded,
    PartnerSuspended,
    PartnerReinstated,
    PartnerTerminated,
    PartnerTierChanged,
    PartnerTerritoriesChanged,
    PartnerCategoriesChanged,
    PartnerParentChanged,
)
