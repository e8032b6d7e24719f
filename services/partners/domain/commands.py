"""Commands: requests to change a partner or a key, validated in shape by the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from libs.events.values import DEFAULT_CURRENCY, AgreementKind, PartnerKind, PaymentTerms, Role


@dataclass(frozen=True)
class RegisterPartner:
    partner_id: str
    name: str
    legal_id: str
    kind: PartnerKind
    tier: str
    region: str
    territories: tuple[str, ...]
    categories: tuple[str, ...]
    payment_terms: PaymentTerms
    parent_id: str | None = None
    currency: str = DEFAULT_CURRENCY


@dataclass(frozen=True)
class SignAgreement:
    agreement_id: str
    kind: AgreementKind
    starts_on: date
    ends_on: date
    annual_target_minor: int | None = None


@dataclass(frozen=True)
class ChangeParent:
    """Move a partner under ``parent_id`` (``None``: no parent) from ``effective_from`` on."""

    parent_id: str | None
    effective_from: date


@dataclass(frozen=True)
class ChangePartner:
    """``None`` leaves a field as it is."""

    tier: str | None = None
    territories: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    parent: ChangeParent | None = None


@dataclass(frozen=True)
class IssueKey:
    key_id: str
    role: Role
    secret_sha256: str
    partner_id: str | None = None
    name: str | None = None
