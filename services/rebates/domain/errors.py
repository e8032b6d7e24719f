"""The rebate rules' refusals; each maps to an HTTP problem in ``libs.runtime.http``."""

from __future__ import annotations

from libs.runtime.errors import Conflict, DomainError, Forbidden, NotFound


class InvalidProgram(DomainError):
    """A program's definition breaks a rule (dates, tiers, rates, baseline)."""

    slug = "invalid-program"


class ProgramNotFound(NotFound):
    slug = "program-not-found"


class ProgramAlreadyPublished(Conflict):
    slug = "program-exists"


class SettlementNotFound(NotFound):
    slug = "settlement-not-found"


class SameApprover(Forbidden):
    """Four eyes: the key that closed the period (and so proposed the payout) may not approve it,
    nor may the key that filed a co-op claim decide it."""

    slug = "same-approver"


class SettlementNotApprovable(Conflict):
    """Only the latest proposal with a non-zero payout can be approved, and only once."""

    slug = "settlement-not-approvable"


class InvalidSettlementDate(DomainError):
    """An interim settlement's ``through`` must lie in the program's period and not in the future."""

    slug = "invalid-settlement-date"


class ProgramFinal(Conflict):
    """A final program settles no more interims: a late source proposes its true-up, or close again."""

    slug = "program-final"


class NotCoopProgram(Conflict):
    """Co-op claims are filed only against a program of kind ``coop``; a co-op program is not settled."""

    slug = "not-coop-program"


class ClaimNotFound(NotFound):
    slug = "coop-claim-not-found"


class ClaimNotDecidable(Conflict):
    """A co-op claim is approved or rejected once."""

    slug = "coop-claim-not-decidable"


class FundExpired(Conflict):
    """After the program's ``expires_on`` its co-op fund takes no claims and pays none."""

    slug = "coop-fund-expired"


class FundEmpty(Conflict):
    """Nothing is left in the co-op fund to pay the matched share."""

    slug = "coop-fund-empty"
