"""The co-op advertising fund of one partner under a ``coop`` program.

The fund accrues ``share_bp`` of the partner's invoiced sales net of returns:
the program's accrual (a single retroactive tier at ``share_bp`` on the
invoiced basis), so it is the rebate's running ``accrued_minor``.

balance = accrued - approved claims - expired (never below zero once expired).

A claim is the partner's advertising spend with a reference to its evidence,
filed by the partner (or by finance for it) until the program's ``expires_on``.
A finance key other than the one that filed it decides it: approval pays the
matched share (``match_bp`` of the spend, half-up) capped at the balance, as a
credit note on the partner's account; a rejection pays nothing. After
``expires_on`` the unused balance expires (``CoopFundExpired``, once), and
neither filing nor approving is possible any more: a claim still ``filed`` then
can only be rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from libs.events.base import DomainEvent
from libs.events.rebates import (
    CoopClaimApproved,
    CoopClaimFiled,
    CoopClaimRejected,
    CoopFundExpired,
    ProgramPublished,
)
from libs.events.values import CoopRule
from services.rebates.domain.arithmetic import of_bp
from services.rebates.domain.errors import (
    ClaimNotDecidable,
    ClaimNotFound,
    FundEmpty,
    FundExpired,
    NotCoopProgram,
    SameApprover,
)

COOP_EVENTS = (CoopClaimFiled, CoopClaimApproved, CoopClaimRejected, CoopFundExpired)


@dataclass(frozen=True)
class Claim:
    claim_id: str
    amount_minor: int
    description: str
    evidence_ref: str
    filed_by: str
    filed_on: date
    status: str = "filed"
    """``filed``, ``approved`` or ``rejected``."""
    matched_minor: int = 0
    approved_minor: int = 0
    decided_by: str | None = None
    decided_on: date | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Fund:
    claims: tuple[Claim, ...] = ()
    expired_minor: int = 0
    expired_on: date | None = None
    """The program's ``expires_on`` once the fund expired."""

    @property
    def paid_minor(self) -> int:
        return sum(claim.approved_minor for claim in self.claims if claim.status == "approved")

    def balance(self, accrued_minor: int) -> int:
        """What is left to pay out: accrued - paid - expired (0 once expired)."""
        if self.expired_on is not None:
            return 0
        return accrued_minor - self.paid_minor

    def claim(self, claim_id: str) -> Claim | None:
        return next((c for c in self.claims if c.claim_id == claim_id), None)


def evolve_fund(fund: Fund, event: DomainEvent) -> Fund:
    if isinstance(event, CoopClaimFiled):
        claim = Claim(event.claim_id, event.amount_minor, event.description, event.evidence_ref,
                      event.filed_by, event.filed_on)
        return replace(fund, claims=(*fund.claims, claim))
    if isinstance(event, CoopClaimApproved):
        return _decided(fund, event.claim_id, status="approved", matched_minor=event.matched_minor,
                        approved_minor=event.approved_minor, decided_by=event.approved_by,
                        decided_on=event.approved_on)
    if isinstance(event, CoopClaimRejected):
        return _decided(fund, event.claim_id, status="rejected", decided_by=event.rejected_by,
                        decided_on=event.rejected_on, reason=event.reason)
    if isinstance(event, CoopFundExpired):
        return replace(fund, expired_minor=event.expired_minor, expired_on=event.expires_on)
    return fund


def _decided(fund: Fund, claim_id: str, **changes: object) -> Fund:
    return replace(fund, claims=tuple(replace(c, **changes) if c.claim_id == claim_id else c  # type: ignore[arg-type]
                                      for c in fund.claims))


def rule_of(program: ProgramPublished) -> CoopRule:
    if program.kind != "coop" or program.coop is None:
        raise NotCoopProgram(f"program {program.program_id} is not a co-op fund")
    return program.coop


def _open(rule: CoopRule, program_id: str, today: date) -> None:
    if today > rule.expires_on:
        raise FundExpired(f"the co-op fund of program {program_id} expired on {rule.expires_on}")


@dataclass(frozen=True)
class FileClaim:
    claim_id: str
    partner_id: str
    amount_minor: int
    description: str
    evidence_ref: str
    filed_by: str
    filed_on: date


def decide_claim(fund: Fund, program: ProgramPublished, command: FileClaim) -> list[CoopClaimFiled]:
    """A claim on a co-op program, filed on or before the day its fund expires."""
    rule = rule_of(program)
    _open(rule, program.program_id, command.filed_on)
    return [CoopClaimFiled(
        claim_id=command.claim_id, program_id=program.program_id, partner_id=command.partner_id,
        amount_minor=command.amount_minor, currency=program.currency, description=command.description,
        evidence_ref=command.evidence_ref, filed_by=command.filed_by, filed_on=command.filed_on)]


def _decidable(fund: Fund, claim_id: str, decided_by: str) -> Claim:
    claim = fund.claim(claim_id)
    if claim is None:
        raise ClaimNotFound(f"no co-op claim {claim_id}")
    if claim.status != "filed":
        raise ClaimNotDecidable(f"co-op claim {claim_id} is already {claim.status}",
                                claim_status=claim.status)
    if claim.filed_by == decided_by:
        raise SameApprover("the key that filed a co-op claim may not decide it")
    return claim


def decide_claim_approval(fund: Fund, program: ProgramPublished, partner_id: str, accrued_minor: int,
                          claim_id: str, approved_by: str, today: date) -> list[CoopClaimApproved]:
    """Pay ``match_bp`` of the spend, capped at the fund's balance; an empty fund pays nothing (409)."""
    rule = rule_of(program)
    claim = _decidable(fund, claim_id, approved_by)
    _open(rule, program.program_id, today)
    matched = of_bp(claim.amount_minor, rule.match_bp)
    approved = min(matched, max(0, fund.balance(accrued_minor)))
    if approved <= 0:
        raise FundEmpty(f"the co-op fund of program {program.program_id} has no balance to pay claim "
                        f"{claim_id}; reject it or wait for sales to accrue")
    return [CoopClaimApproved(
        claim_id=claim_id, program_id=program.program_id, partner_id=partner_id,
        claimed_minor=claim.amount_minor, matched_minor=matched, approved_minor=approved,
        currency=program.currency, approved_by=approved_by, approved_on=today)]


def decide_claim_rejection(fund: Fund, program_id: str, partner_id: str, claim_id: str, rejected_by: str,
                           reason: str, today: date) -> list[CoopClaimRejected]:
    _decidable(fund, claim_id, rejected_by)
    return [CoopClaimRejected(claim_id=claim_id, program_id=program_id, partner_id=partner_id,
                              reason=reason, rejected_by=rejected_by, rejected_on=today)]


def decide_expiry(fund: Fund, program: ProgramPublished, partner_id: str, accrued_minor: int,
                  today: date) -> list[CoopFundExpired]:
    """After ``expires_on`` the unused balance expires, once."""
    rule = rule_of(program)
    if today <= rule.expires_on or fund.expired_on is not None:
        return []
    return [CoopFundExpired(program_id=program.program_id, partner_id=partner_id,
                            expired_minor=max(0, fund.balance(accrued_minor)), currency=program.currency,
                            expires_on=rule.expires_on)]
