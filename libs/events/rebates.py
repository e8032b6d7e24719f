"""Events published by the rebates service: programs, accruals and settlements.

Settlement is a true-up: ``payout_minor = final_minor - already_settled_minor``,
which stays correct across partial settlements and late returns. Every amount
lists the invoices, payments and returns (``SourceRef``) that produced it.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from libs.events.base import DomainEvent
from libs.events.values import (
    DEFAULT_CURRENCY,
    CoopRule,
    Eligibility,
    GrowthRule,
    ProgramBasis,
    ProgramKind,
    ProgramMode,
    RebateTier,
    Rollup,
    SourceRef,
    TimelinessRule,
)


class ProgramPublished(DomainEvent):
    """Finance published a rebate program: volume tiers over a period, optional bonuses and cap."""

    TYPE = "ProgramPublished"

    program_id: str
    name: str
    starts_on: date
    ends_on: date
    basis: ProgramBasis
    mode: ProgramMode
    tiers: list[RebateTier]
    eligibility: Eligibility = Field(default_factory=Eligibility)
    growth: GrowthRule | None = None
    timeliness: TimelinessRule | None = None
    cap_minor: int | None = None
    currency: str = DEFAULT_CURRENCY
    published_by: str
    # Added later (absent on programs published before): whose basis a sub-dealer's sales count
    # toward, and whether the program is a volume rebate or a co-op advertising fund.
    rollup: Rollup = "self"
    kind: ProgramKind = "volume"
    coop: CoopRule | None = None


class RebateAccrued(DomainEvent):
    """A source moved a partner's basis (or a bonus) under a program; both are running totals.

    ``accrued_minor`` is what a close would propose today: ``volume_minor +
    growth_bonus_minor + timeliness_bonus_minor - cap_cut_minor`` (the optional
    parts are absent on accruals written before bonuses and cap accrued; there
    ``accrued_minor`` is the volume rebate alone).
    """

    TYPE = "RebateAccrued"

    program_id: str
    partner_id: str
    source: SourceRef
    basis_minor: int
    accrued_minor: int
    tier_rate_bp: int
    currency: str = DEFAULT_CURRENCY
    volume_minor: int | None = None
    growth_bonus_minor: int = 0
    timeliness_bonus_minor: int = 0
    cap_cut_minor: int = 0


class ProgramClosed(DomainEvent):
    """A program's period was closed for good (``final``); its final amounts are computed and proposed."""

    TYPE = "ProgramClosed"

    program_id: str
    closed_by: str


class ProgramSettled(DomainEvent):
    """An interim settlement: the period was settled through a date and the program stays open."""

    TYPE = "ProgramSettled"

    program_id: str
    through: date
    settled_by: str


class SettlementProposed(DomainEvent):
    """A partner's payout was proposed: the final amount minus what was already settled."""

    TYPE = "SettlementProposed"

    settlement_id: str
    program_id: str
    partner_id: str
    final_minor: int
    already_settled_minor: int
    payout_minor: int
    currency: str = DEFAULT_CURRENCY
    sources: list[SourceRef]
    proposed_by: str
    # How final_minor was made (optional, added by rebates for explainability):
    # volume on the basis + growth bonus + timeliness bonus, capped at the program's cap.
    basis_minor: int | None = None
    volume_minor: int | None = None
    growth_bonus_minor: int = 0
    timeliness_bonus_minor: int = 0
    # What the cap took off (final = volume + bonuses - cap_cut), which round this is and
    # (interim) the date it settles through: ``final`` (a close), ``interim`` (a settle
    # through a date) or ``true_up`` (a late source changed a closed period).
    cap_cut_minor: int = 0
    kind: Literal["interim", "final", "true_up"] = "final"
    through: date | None = None


class SettlementApproved(DomainEvent):
    """A settlement was approved by someone other than its proposer.

    A positive payout becomes a credit note; a negative one (a true-up after the
    partner was overpaid) is owed back and becomes a debit note in credit.
    """

    TYPE = "SettlementApproved"

    settlement_id: str
    program_id: str
    partner_id: str
    payout_minor: int
    currency: str = DEFAULT_CURRENCY
    approved_by: str


class CoopClaimFiled(DomainEvent):
    """A partner (or finance for it) claimed advertising spend against its co-op fund, with evidence."""

    TYPE = "CoopClaimFiled"

    claim_id: str
    program_id: str
    partner_id: str
    amount_minor: int
    currency: str = DEFAULT_CURRENCY
    description: str
    evidence_ref: str
    filed_by: str
    filed_on: date


class CoopClaimApproved(DomainEvent):
    """Finance (a key other than the filer's) approved a co-op claim, to be paid as a credit note.

    ``matched_minor`` is ``match_bp`` of the spend; ``approved_minor`` is that capped at the fund's
    balance, and becomes a credit note on the partner's account.
    """

    TYPE = "CoopClaimApproved"

    claim_id: str
    program_id: str
    partner_id: str
    claimed_minor: int
    matched_minor: int
    approved_minor: int
    currency: str = DEFAULT_CURRENCY
    approved_by: str
    approved_on: date


class CoopClaimRejected(DomainEvent):
    """Finance rejected a claim, with a reason; the fund is untouched."""

    TYPE = "CoopClaimRejected"

    claim_id: str
    program_id: str
    partner_id: str
    reason: str
    rejected_by: str
    rejected_on: date


class CoopFundExpired(DomainEvent):
    """The program's expiry date passed: what was left in the partner's fund is forfeited."""

    TYPE = "CoopFundExpired"

    program_id: str
    partner_id: str
    expired_minor: int
    currency: str = DEFAULT_CURRENCY
    expires_on: date


EVENTS: tuple[type[DomainEvent], ...] = (
    ProgramPublished,
    RebateAccrued,
    ProgramClosed,
    ProgramSettled,
    SettlementProposed,
    SettlementApproved,
    CoopClaimFiled,
    CoopClaimApproved,
    CoopClaimRejected,
    CoopFundExpired,
)
