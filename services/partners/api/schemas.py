"""Request and response models of the partners API (never the event classes)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from libs.events.values import AgreementKind, PartnerKind, PartnerStatus, Role, TermsKind
from libs.runtime.http import RequestModel
from libs.runtime.params import StrictDate, no_control_characters

MAX_MINOR = 10**15
Clean = AfterValidator(no_control_characters)
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Clean]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), Clean]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Minor = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR)]


def _unique(values: list[str]) -> list[str]:
    """Drop repeated labels, keeping the first order."""
    return list(dict.fromkeys(values))


Labels = Annotated[list[Label], AfterValidator(_unique)]


class PaymentTermsIn(RequestModel):
    """``prepaid`` carries neither limit nor term; ``credit`` needs both (>= 0)."""

    kind: TermsKind
    credit_limit_minor: Minor | None = None
    term_days: Annotated[int, Field(strict=True, ge=0, le=3650)] | None = None


class RegisterPartnerIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Shanghai Huatong Networks Co., Ltd.", "legal_id": "91310115MA1K3YJ12X",
        "kind": "distributor", "tier": "gold", "region": "east", "territories": ["east/shanghai",
        "east/jiangsu"], "categories": ["networking", "security"], "payment_terms": {"kind": "credit",
        "credit_limit_minor": 50000000, "term_days": 30}, "currency": "CNY"}]})

    name: Text
    legal_id: Label
    kind: PartnerKind
    tier: Label
    region: Label
    territories: Labels = Field(min_length=1, max_length=500)
    categories: Labels = Field(default_factory=list, max_length=500)
    parent_id: Label | None = None
    payment_terms: PaymentTermsIn
    currency: Currency = "CNY"


class SignAgreementIn(RequestModel):
    """An agreement ends after it starts; a trial ends by itself on ``ends_on``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "annual", "starts_on": "2027-01-01", "ends_on": "2027-12-31",
        "annual_target_minor": 1200000000}]})

    kind: AgreementKind
    starts_on: StrictDate
    ends_on: StrictDate
    annual_target_minor: Minor | None = None


class ReasonIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "reason": "overdue receivables under review"}]})

    reason: Reason


class ChangePartnerIn(RequestModel):
    """Only the fields given change, each as its own event; equal values change nothing."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tier": "platinum", "territories": ["east/shanghai", "east/jiangsu", "east/zhejiang"]}]})

    tier: Label | None = None
    territories: Labels | None = Field(None, min_length=1, max_length=500)
    categories: Labels | None = Field(None, max_length=500)
    parent_id: Label | None = Field(None, description="the new parent; an explicit null removes it")
    effective_from: StrictDate | None = Field(
        None, description="when the parent change takes effect (today by default; never in the past)")

    @property
    def changes_parent(self) -> bool:
        return "parent_id" in self.model_fields_set

    @model_validator(mode="after")
    def dated_parent_change(self) -> ChangePartnerIn:
        if self.effective_from is not None and not self.changes_parent:
            raise ValueError("effective_from applies only to a parent change (give parent_id)")
        return self


class IssueKeyIn(RequestModel):
    """A ``partner`` key needs the ``partner_id`` of a registered partner; staff keys have none."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "role": "partner", "partner_id": "ptn_01JDX4Q2M3", "name": "Huatong ERP integration"}]})

    role: Role
    partner_id: Label | None = None
    name: Text | None = None


# -- responses ---------------------------------------------------------------------


class PaymentTermsOut(BaseModel):
    kind: TermsKind
    credit_limit_minor: int | None
    term_days: int | None


class AgreementOut(BaseModel):
    id: str
    kind: AgreementKind
    starts_on: date
    ends_on: date
    annual_target_minor: int | None
    currency: str
    state: str = Field(description="in_force, ended, superseded or terminated")


class ViolationOut(BaseModel):
    event_id: str
    kind: Literal["territory", "deal_conflict"] = Field(
        "territory", description="cross-territory order, or a deal registration refused as a "
                                 "channel conflict")
    partner_ref: str | None = None
    region: str | None = None
    territories: list[str] = []
    end_customer: str | None = Field(None, description="deal conflicts: the end customer")
    skus: list[str] = Field([], description="deal conflicts: the products another partner holds")
    recorded_at: str
    correlation_id: str


class PartnerOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "ptn_01JDX4Q2M3", "name": "Shanghai Huatong Networks Co., Ltd.",
        "legal_id": "91310115MA1K3YJ12X", "kind": "distributor", "tier": "gold", "region": "east",
        "territories": ["east/shanghai", "east/jiangsu"], "categories": ["networking", "security"],
        "parent_id": None, "payment_terms": {"kind": "credit", "credit_limit_minor": 50000000,
        "term_days": 30}, "currency": "CNY", "status": "active", "status_before_suspension": None,
        "suspension_reason": None, "termination_reason": None, "agreement_id": "agr_01JDX4R5T6",
        "trial_ends_on": None, "agreements": [{"id": "agr_01JDX4R5T6", "kind": "annual",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "annual_target_minor": 1200000000,
        "currency": "CNY", "state": "in_force"}], "violations": [], "violation_count": 0}]})

    id: str
    name: str
    legal_id: str
    kind: PartnerKind
    tier: str
    region: str
    territories: list[str]
    categories: list[str]
    parent_id: str | None
    parent_since: date | None = Field(None, description="from when parent_id is in effect")
    payment_terms: PaymentTermsOut
    currency: str
    status: PartnerStatus
    status_before_suspension: str | None
    suspension_reason: str | None
    termination_reason: str | None
    agreement_id: str | None = Field(description="the agreement in force, if any")
    trial_ends_on: date | None = Field(description="end of the running trial, if any")
    agreements: list[AgreementOut]
    violations: list[ViolationOut]
    violation_count: int


class PartnerPage(BaseModel):
    items: list[PartnerOut]
    next_cursor: str | None


class KeyOut(BaseModel):
    key_id: str
    role: Role
    partner_id: str | None
    name: str | None
    issued_at: str
    revoked: bool
    revoked_at: str | None


class IssuedKeyOut(KeyOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "key_id": "key_01JDX4S7U8", "role": "partner", "partner_id": "ptn_01JDX4Q2M3",
        "name": "Huatong ERP integration", "issued_at": "2026-11-27T09:00:00.000000Z", "revoked": False,
        "revoked_at": None, "secret": "o2c_8kQ1vY3pZ0rT6wN2mX9cB4hL7sD5fG1a"}]})

    secret: str = Field(description="shown once; only its sha256 is stored")


class KeyPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None
