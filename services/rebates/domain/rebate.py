"""The rebate of one partner under one program: running accrual, proposals and approvals.

One stream per (program, partner) keeps accrual and settlement consistent:
a proposal is computed from exactly the accruals it follows, and approvals
cannot race a newer proposal.

Settlement status: ``proposed`` (positive payout, awaiting approval),
``nothing_due`` (zero payout), ``debit`` (negative payout: the partner was paid
more than its final amount, e.g. after a late return; it is not paid as a
credit note and not approvable — the next true-up nets it, since only approved
payouts count as settled), ``superseded`` (a later close proposed again before
it was approved) and ``approved``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from libs.events.base import DomainEvent
from libs.events.rebates import ProgramPublished, RebateAccrued, SettlementApproved, SettlementProposed
from libs.events.values import SourceRef
from services.rebates.domain.arithmetic import volume_rebate
from services.rebates.domain.closing import FinalAmount
from services.rebates.domain.errors import SameApprover, SettlementNotApprovable, SettlementNotFound
from services.rebates.domain.ledger import Contribution

OPEN_PROPOSALS = ("proposed", "nothing_due", "debit")


@dataclass(frozen=True)
class Settlement:
    settlement_id: str
    final_minor: int
    already_settled_minor: int
    payout_minor: int
    status: str
    proposed_by: str
    sources: tuple[SourceRef, ...]
    breakdown: dict[str, int | None]
    approved_by: str | None = None


@dataclass(frozen=True)
class RebateState:
    program_id: str
    partner_id: str
    currency: str = "CNY"
    basis_minor: int = 0
    accrued_minor: int = 0
    tier_rate_bp: int = 0
    #: How many sources it counted; the sources themselves are rows the application keeps.
    accruals: int = 0
    settlements: tuple[Settlement, ...] = ()

    @property
    def exists(self) -> bool:
        return bool(self.accruals or self.settlements)

    @property
    def settled_minor(self) -> int:
        """What was actually paid: the approved payouts."""
        return sum(s.payout_minor for s in self.settlements if s.status == "approved")

    def settlement(self, settlement_id: str) -> Settlement | None:
        return next((s for s in self.settlements if s.settlement_id == settlement_id), None)


def proposal_status(payout_minor: int) -> str:
    return "proposed" if payout_minor > 0 else "debit" if payout_minor < 0 else "nothing_due"


def evolve(state: RebateState, event: DomainEvent) -> RebateState:
    if isinstance(event, RebateAccrued):
        return replace(state, basis_minor=event.basis_minor, accrued_minor=event.accrued_minor,
                       tier_rate_bp=event.tier_rate_bp, currency=event.currency,
                       accruals=state.accruals + 1)
    if isinstance(event, SettlementProposed):
        earlier = tuple(replace(s, status="superseded") if s.status in OPEN_PROPOSALS else s
                        for s in state.settlements)
        breakdown = {"basis_minor": event.basis_minor, "volume_minor": event.volume_minor,
                     "growth_bonus_minor": event.growth_bonus_minor,
                     "timeliness_bonus_minor": event.timeliness_bonus_minor}
        proposal = Settlement(event.settlement_id, event.final_minor, event.already_settled_minor,
                              event.payout_minor, proposal_status(event.payout_minor),
                              event.proposed_by, tuple(event.sources), breakdown)
        return replace(state, settlements=(*earlier, proposal))
    if isinstance(event, SettlementApproved):
        return replace(state, settlements=tuple(
            replace(s, status="approved", approved_by=event.approved_by)
            if s.settlement_id == event.settlement_id else s for s in state.settlements))
    return state


def decide_accruals(
    state: RebateState, program: ProgramPublished, contributions: Iterable[Contribution],
    counted: Collection[tuple[str, str]] = frozenset(),
) -> list[RebateAccrued]:
    """One ``RebateAccrued`` per new source, with running basis and accrual.

    A source already ``counted`` (its ``(kind, ref)``, looked up by the caller) or
    listed twice is skipped.
    """
    found: list[RebateAccrued] = []
    seen = set(counted)
    for contribution in contributions:
        if (contribution.kind, contribution.ref) in seen:
            continue
        seen.add((contribution.kind, contribution.ref))
        basis = state.basis_minor + contribution.amount_minor
        accrued, rate = volume_rebate(basis, program.tiers, program.mode)
        event = RebateAccrued(
            program_id=state.program_id, partner_id=state.partner_id,
            source=SourceRef(kind=contribution.kind, ref=contribution.ref,
                             amount_minor=contribution.amount_minor),
            basis_minor=basis, accrued_minor=accrued, tier_rate_bp=rate, currency=program.currency)
        found.append(event)
        state = evolve(state, event)
    return found


def decide_proposal(
    state: RebateState, settlement_id: str, final: FinalAmount, proposed_by: str,
    sources: Sequence[SourceRef] = (),
) -> list[SettlementProposed]:
    """Payout = final - already settled (approved payouts): a true-up across closes and returns.

    ``sources`` are the rebate's counted sources, in accrual order, that explain it.
    """
    settled = state.settled_minor
    return [SettlementProposed(
        settlement_id=settlement_id, program_id=state.program_id, partner_id=state.partner_id,
        final_minor=final.final_minor, already_settled_minor=settled,
        payout_minor=final.final_minor - settled, currency=state.currency,
        sources=list(sources), proposed_by=proposed_by, basis_minor=final.basis_minor,
        volume_minor=final.volume_minor, growth_bonus_minor=final.growth_bonus_minor,
        timeliness_bonus_minor=final.timeliness_bonus_minor,
    )]


def decide_approval(state: RebateState, settlement_id: str, approved_by: str) -> list[SettlementApproved]:
    """Another finance key approves the latest proposal with a positive payout, once."""
    settlement = state.settlement(settlement_id)
    if settlement is None:
        raise SettlementNotFound(f"no settlement {settlement_id}")
    if settlement.proposed_by == approved_by:
        raise SameApprover("the key that closed the period may not approve its payout")
    if settlement.status != "proposed":
        reasons = {
            "approved": "it is already approved",
            "superseded": "a later close proposed a newer settlement; approve that one",
            "debit": "its payout is negative: the partner owes it back and a later true-up nets it",
            "nothing_due": "its payout is zero",
        }
        raise SettlementNotApprovable(
            f"settlement {settlement_id} cannot be approved: {reasons[settlement.status]}",
            settlement_status=settlement.status)
    return [SettlementApproved(
        settlement_id=settlement_id, program_id=state.program_id, partner_id=state.partner_id,
        payout_minor=settlement.payout_minor, currency=state.currency, approved_by=approved_by)]
