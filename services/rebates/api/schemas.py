"""Request and response models of the rebates API (never the event classes)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from libs.events.values import (
    CoopRule,
    Eligibility,
    GrowthRule,
    ProgramKind,
    RebateTier,
    Rollup,
    SourceKind,
    TimelinessRule,
)
from libs.runtime.http import RequestModel
from libs.runtime.params import StrictDate
from services.rebates.domain.program import PublishProgram, kind_problems, rule_problems

MAX_MINOR = 10**15
"""A sanity bound on money (10 trillion in major units) so arithmetic and JSON stay exact."""

Minor = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR)]
Rate = Annotated[int, Field(strict=True, ge=0, le=10_000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TierIn(RequestModel):
    from_minor: Minor
    rate_bp: Rate


class EligibilityIn(RequestModel):
    """Empty or missing lists do not restrict."""

    tiers: list[Name] = Field(default_factory=list, max_length=100)
    regions: list[Name] = Field(default_factory=list, max_length=500)
    categories: list[Name] = Field(default_factory=list, max_length=500)
    partner_ids: list[Name] = Field(default_factory=list, max_length=5000)


class GrowthIn(RequestModel):
    baseline_from: StrictDate
    baseline_to: StrictDate
    min_growth_bp: Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
    rate_bp: Rate


class TimelinessIn(RequestModel):
    min_on_time_bp: Rate
    rate_bp: Rate


class CoopIn(RequestModel):
    """A co-op fund: ``share_bp`` of invoiced sales (net of returns) accrues; claims are matched at
    ``match_bp`` up to the balance; what is unused expires after ``expires_on`` (not before ``ends_on``)."""

    share_bp: Rate
    match_bp: Rate
    expires_on: StrictDate


class ProgramIn(RequestModel):
    """A volume program (tiers of thresholds and rates over a period, optional bonuses and cap), or
    (``kind: coop``) a co-op advertising fund, which takes ``coop`` instead of basis, mode and tiers.

    ``rollup`` says whose basis a sub-dealer's sales count toward: ``self`` (default), ``parent``
    (its parent's in effect on the sale's date; a partner without one counts for itself) or ``both``.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "2027 H1 networking volume rebate", "starts_on": "2027-01-01",
        "ends_on": "2027-06-30", "basis": "collected", "mode": "retroactive",
        "tiers": [{"from_minor": 0, "rate_bp": 200}, {"from_minor": 200000000, "rate_bp": 400}],
        "eligibility": {"tiers": ["gold", "platinum"], "regions": [], "categories": ["networking"],
        "partner_ids": []}, "growth": {"baseline_from": "2026-01-01", "baseline_to": "2026-06-30",
        "min_growth_bp": 1000, "rate_bp": 50}, "timeliness": {"min_on_time_bp": 9000, "rate_bp": 30},
        "cap_minor": 20000000, "currency": "CNY"}]})

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    starts_on: StrictDate
    ends_on: StrictDate
    kind: ProgramKind = "volume"
    basis: Literal["invoiced", "collected"] | None = None
    mode: Literal["retroactive", "incremental"] | None = None
    tiers: list[TierIn] = Field(default_factory=list, max_length=50)
    eligibility: EligibilityIn | None = None
    growth: GrowthIn | None = None
    timeliness: TimelinessIn | None = None
    cap_minor: Minor | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    rollup: Rollup = "self"
    coop: CoopIn | None = None

    @model_validator(mode="after")
    def follows_the_rules(self) -> ProgramIn:
        problems = kind_problems(self.kind, basis=self.basis, mode=self.mode, tiers=bool(self.tiers),
                                 bonuses=bool(self.growth or self.timeliness or self.cap_minor is not None),
                                 coop=self._coop(), ends_on=self.ends_on)
        problems += rule_problems(self.starts_on, self.ends_on, self._tiers(), self._growth())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _coop(self) -> CoopRule | None:
        return CoopRule(**self.coop.model_dump()) if self.coop else None

    def _tiers(self) -> tuple[RebateTier, ...]:
        if self.kind == "coop" and self.coop is not None:
            return (RebateTier(from_minor=0, rate_bp=self.coop.share_bp),)
        return tuple(RebateTier(from_minor=t.from_minor, rate_bp=t.rate_bp) for t in self.tiers)

    def _growth(self) -> GrowthRule | None:
        return GrowthRule(**self.growth.model_dump()) if self.growth else None

    def command(self, program_id: str, published_by: str) -> PublishProgram:
        coop = self.kind == "coop"
        return PublishProgram(
            program_id=program_id, name=self.name, starts_on=self.starts_on, ends_on=self.ends_on,
            basis="invoiced" if coop else self.basis or "invoiced",
            mode="retroactive" if coop else self.mode or "retroactive", tiers=self._tiers(),
            eligibility=Eligibility(**self.eligibility.model_dump()) if self.eligibility else Eligibility(),
            growth=self._growth(),
            timeliness=TimelinessRule(**self.timeliness.model_dump()) if self.timeliness else None,
            cap_minor=self.cap_minor, currency=self.currency, published_by=published_by,
            rollup=self.rollup, kind=self.kind, coop=self._coop(),
        )


class NoBody(RequestModel):
    """Close and approve take no fields (an empty JSON object is accepted)."""


class SettleIn(RequestModel):
    """An interim settlement of the period through a date (within the period, not in the future)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "through": "2027-03-31"}]})

    through: StrictDate


class SourceOut(BaseModel):
    """A document that moved the basis (``bonus``: news that moved only a bonus, amount 0).

    ``partner_id`` is present on a sub-dealer's document counted toward its parent (roll-up).
    """

    kind: SourceKind
    ref: str
    amount_minor: int
    partner_id: str | None = None

    @model_serializer(mode="wrap")
    def _own_sources_name_no_partner(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        body: dict[str, Any] = handler(self)
        if body.get("partner_id") is None:
            body.pop("partner_id", None)
        return body


class ComponentOut(BaseModel):
    """A part of a rebate amount: the parts of an accrual or settlement add up to it exactly."""

    kind: Literal["volume", "growth_bonus", "timeliness_bonus", "cap"]
    amount_minor: int


class ProgramOut(BaseModel):
    id: str
    name: str
    starts_on: date
    ends_on: date
    basis: str
    mode: str
    tiers: list[dict[str, int]]
    eligibility: dict[str, list[str]]
    growth: dict[str, Any] | None
    timeliness: dict[str, int] | None
    cap_minor: int | None
    currency: str
    status: Literal["open", "closed", "final"]
    published_by: str
    closes: int
    last_closed_by: str | None
    settled_through: date | None = None
    kind: ProgramKind = "volume"
    rollup: Rollup = "self"
    coop: dict[str, Any] | None = None


class AccrualOut(BaseModel):
    partner_id: str
    program_id: str
    basis_minor: int
    accrued_minor: int
    tier_rate_bp: int
    currency: str
    components: list[ComponentOut] = []
    sources: list[SourceOut]
    settled_minor: int


class SettlementOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "stl_01JDXA1B2C", "program_id": "prg_01JDX3M4N5", "partner_id": "ptn_01JDX4Q2M3",
        "status": "proposed", "kind": "final", "through": None, "final_minor": 1080000,
        "already_settled_minor": 140000, "payout_minor": 940000, "currency": "CNY",
        "basis_minor": 27000000, "volume_minor": 1080000, "growth_bonus_minor": 0,
        "timeliness_bonus_minor": 0, "cap_cut_minor": 0, "components": [{"kind": "volume",
        "amount_minor": 1080000}], "sources": [{"kind": "payment", "ref": "pay_01JDX8C3D4",
        "amount_minor": 27000000}], "proposed_by": "key_01JDX4F1N4", "approved_by": None,
        "credit_note_id": None}]})

    id: str
    program_id: str
    partner_id: str
    status: Literal["proposed", "nothing_due", "debit", "superseded", "approved"]
    kind: Literal["interim", "final", "true_up"] = "final"
    through: date | None = None
    final_minor: int
    already_settled_minor: int
    payout_minor: int
    currency: str
    basis_minor: int | None
    volume_minor: int | None
    growth_bonus_minor: int
    timeliness_bonus_minor: int
    cap_cut_minor: int = 0
    components: list[ComponentOut] = []
    sources: list[SourceOut]
    proposed_by: str
    approved_by: str | None
    credit_note_id: str | None


class ClosedProgramOut(ProgramOut):
    settlements: list[SettlementOut]


class ProgramPage(BaseModel):
    items: list[ProgramOut]
    next_cursor: str | None


class AccrualPage(BaseModel):
    items: list[AccrualOut]
    next_cursor: str | None


class SettlementPage(BaseModel):
    items: list[SettlementOut]
    next_cursor: str | None


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class CoopClaimIn(RequestModel):
    """Advertising spend claimed against a co-op fund, with a reference to its evidence.

    A partner key files for itself; finance names the ``partner_id`` it files for.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "program_id": "prg_01JDX3M4N5", "amount_minor": 2500000,
        "description": "Trade-show booth, Shanghai IoT Expo 2027",
        "evidence_ref": "INV-EXPO-2027-0311"}]})

    program_id: Name
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=MAX_MINOR)]
    description: Text
    evidence_ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    partner_id: Name | None = None


class RejectClaimIn(RequestModel):
    """Why the claim is rejected (finance, not the filer's key)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "no proof of the spend"}]})

    reason: Annotated[Text, Field(description="Why it is rejected.")]


class CoopClaimOut(BaseModel):
    id: str
    program_id: str
    partner_id: str
    status: Literal["filed", "approved", "rejected"]
    amount_minor: int
    currency: str
    matched_minor: int = Field(description="match_bp of the spend (set on approval)")
    approved_minor: int = Field(description="the matched share capped at the fund's balance: what is paid")
    description: str
    evidence_ref: str
    filed_by: str
    filed_on: date
    decided_by: str | None
    decided_on: date | None
    reason: str | None
    credit_note_id: str | None


class CoopClaimPage(BaseModel):
    items: list[CoopClaimOut]
    next_cursor: str | None


class CoopFundOut(BaseModel):
    program_id: str
    partner_id: str
    currency: str
    share_bp: int
    match_bp: int
    expires_on: date
    status: Literal["open", "expired"]
    accrued_minor: int
    paid_minor: int
    expired_minor: int
    balance_minor: int
    pending_claims: int
    claims: list[CoopClaimOut]


class CoopFundPage(BaseModel):
    items: list[CoopFundOut]
    next_cursor: str | None
