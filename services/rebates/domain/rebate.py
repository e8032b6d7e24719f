"""The rebate of one partner under one program: running accrual, proposals and approvals.

One stream per (program, partner) keeps accrual and settlement consistent:
a proposal is computed from exactly the accruals it follows, and approvals
cannot race a newer proposal.

The running accrual is the full amount a close would propose today (volume,
bonuses, cap: ``closing.final_amount``), recomputed from the whole basis with
every source.

Settlement status: ``proposed`` (positive payout, awaiting approval),
``nothing_due`` (zero payout), ``debit`` (negative payout: the partner was paid
more than the period earned, e.g. after a late return; approved like a payout,
by a key other than its proposer, it is owed back as a debit note),
``superseded`` (a later round proposed again before it was approved) and
``approved``. Only approved payouts, positive or negative, count as settled.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial

from libs.events.base import DomainEvent
from libs.events.rebates import ProgramPublished, RebateAccrued, SettlementApproved, SettlementProposed
from libs.events.values import SourceRef
from services.rebates.domain.closing import FinalAmount, Performance, final_amount
from services.rebates.domain.coop import COOP_EVENTS, Fund, evolve_fund
from services.rebates.domain.errors import SameApprover, SettlementNotApprovable, SettlementNotFound
from services.rebates.domain.ledger import Contribution

OPEN_PROPOSALS = ("proposed", "nothing_due", "debit")
APPROVABLE = ("proposed", "debit")
SYSTEM = "rebates"
"""The proposer of a true-up a late source caused: any finance key may approve it."""

AmountOf = Callable[[int], FinalAmount]
"""The amount a basis earns under the program, with the partner's bonuses and the cap."""


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
    kind: str = "final"
    through: date | None = None


@dataclass(frozen=True)
class RebateState:
    program_id: str
    partner_id: str
    currency: str = "CNY"
    basis_minor: int = 0
    accrued_minor: int = 0
    tier_rate_bp: int = 0
    volume_minor: int = 0
    growth_bonus_minor: int = 0
    timeliness_bonus_minor: int = 0
    cap_cut_minor: int = 0
    #: How many sources it counted; the sources themselves are rows the application keeps.
    accruals: int = 0
    settlements: tuple[Settlement, ...] = ()
    #: The co-op fund's claims and expiry (a ``coop`` program's rebate only).
    fund: Fund = field(default_factory=Fund)

    @property
    def exists(self) -> bool:
        return bool(self.accruals or self.settlements or self.fund.claims)

    @property
    def settled_minor(self) -> int:
        """What was actually paid: the approved payouts."""
        return sum(s.payout_minor for s in self.settlements if s.status == "approved")

    def settlement(self, settlement_id: str) -> Settlement | None:
        return next((s for s in self.settlements if s.settlement_id == settlement_id), None)

    @property
    def amount(self) -> FinalAmount:
        """The accrual as the amount a close would propose."""
        return FinalAmount(self.basis_minor, self.volume_minor, self.tier_rate_bp, self.growth_bonus_minor,
                           self.timeliness_bonus_minor, self.accrued_minor, self.cap_cut_minor)


def proposal_status(payout_minor: int) -> str:
    return "proposed" if payout_minor > 0 else "debit" if payout_minor < 0 else "nothing_due"


def evolve(state: RebateState, event: DomainEvent) -> RebateState:
    if isinstance(event, COOP_EVENTS):
        return replace(state, fund=evolve_fund(state.fund, event))
    if isinstance(event, RebateAccrued):
        volume = event.accrued_minor if event.volume_minor is None else event.volume_minor
        return replace(state, basis_minor=event.basis_minor, accrued_minor=event.accrued_minor,
                       tier_rate_bp=event.tier_rate_bp, currency=event.currency,
                       volume_minor=volume, growth_bonus_minor=event.growth_bonus_minor,
                       timeliness_bonus_minor=event.timeliness_bonus_minor,
                       cap_cut_minor=event.cap_cut_minor, accruals=state.accruals + 1)
    if isinstance(event, SettlementProposed):
        earlier = tuple(replace(s, status="superseded") if s.status in OPEN_PROPOSALS else s
                        for s in state.settlements)
        breakdown = {"basis_minor": event.basis_minor, "volume_minor": event.volume_minor,
                     "growth_bonus_minor": event.growth_bonus_minor,
                     "timeliness_bonus_minor": event.timeliness_bonus_minor,
                     "cap_cut_minor": event.cap_cut_minor}
        proposal = Settlement(event.settlement_id, event.final_minor, event.already_settled_minor,
                              event.payout_minor, proposal_status(event.payout_minor),
                              event.proposed_by, tuple(event.sources), breakdown,
                              kind=event.kind, through=event.through)
        return replace(state, settlements=(*earlier, proposal))
    if isinstance(event, SettlementApproved):
        return replace(state, settlements=tuple(
            replace(s, status="approved", approved_by=event.approved_by)
            if s.settlement_id == event.settlement_id else s for s in state.settlements))
    return state


def _accrued(state: RebateState, program: ProgramPublished, source: SourceRef,
             amount: FinalAmount) -> RebateAccrued:
    return RebateAccrued(
        program_id=state.program_id, partner_id=state.partner_id, source=source,
        basis_minor=amount.basis_minor, accrued_minor=amount.final_minor, tier_rate_bp=amount.tier_rate_bp,
        currency=program.currency, volume_minor=amount.volume_minor,
        growth_bonus_minor=amount.growth_bonus_minor, timeliness_bonus_minor=amount.timeliness_bonus_minor,
        cap_cut_minor=amount.cap_cut_minor)


def decide_accruals(
    state: RebateState, program: ProgramPublished, contributions: Iterable[Contribution],
    counted: Collection[tuple[str, str]] = frozenset(), amount_of: AmountOf | None = None,
) -> list[RebateAccrued]:
    """One ``RebateAccrued`` per new source, with running basis and accrual (bonuses and cap included).

    ``amount_of`` earns with the partner's bonuses (default: no bonus earned, the cap applies).

    A source already ``counted`` (its ``(kind, ref)``, looked up by the caller) or
    listed twice is skipped.
    """
    if amount_of is None:
        amount_of = partial(final_amount, program, performance=Performance())
    found: list[RebateAccrued] = []
    seen = set(counted)
    for contribution in contributions:
        if (contribution.kind, contribution.ref) in seen:
            continue
        seen.add((contribution.kind, contribution.ref))
        amount = amount_of(state.basis_minor + contribution.amount_minor)
        if contribution.kind == "bonus" and (not state.exists or amount == state.amount):
            continue  # news that moved no bonus is not a source
        source = SourceRef(kind=contribution.kind, ref=contribution.ref,
                           amount_minor=contribution.amount_minor, partner_id=contribution.partner_id)
        event = _accrued(state, program, source, amount)
        found.append(event)
        state = evolve(state, event)
    return found


def decide_proposal(
    state: RebateState, settlement_id: str, final: FinalAmount, proposed_by: str,
    sources: Sequence[SourceRef] = (), *, kind: str = "final", through: date | None = None,
) -> list[SettlementProposed]:
    """Payout = earned - already settled (approved payouts): a true-up across rounds and returns.

    ``final`` is what the period earned (through ``through`` for an interim);
    ``sources`` are the rebate's counted sources, in accrual order, that explain it.
    """
    settled = state.settled_minor
    return [SettlementProposed(
        settlement_id=settlement_id, program_id=state.program_id, partner_id=state.partner_id,
        final_minor=final.final_minor, already_settled_minor=settled,
        payout_minor=final.final_minor - settled, currency=state.currency,
        sources=list(sources), proposed_by=proposed_by, basis_minor=final.basis_minor,
        volume_minor=final.volume_minor, growth_bonus_minor=final.growth_bonus_minor,
        timeliness_bonus_minor=final.timeliness_bonus_minor, cap_cut_minor=final.cap_cut_minor,
        kind=kind, through=through,
    )]


def decide_approval(state: RebateState, settlement_id: str, approved_by: str) -> list[SettlementApproved]:
    """Another finance key approves the latest proposal with a non-zero payout, once.

    A negative payout (``debit``) is approved under the same rule: it is owed back.
    """
    settlement = state.settlement(settlement_id)
    if settlement is None:
        raise SettlementNotFound(f"no settlement {settlement_id}")
    if settlement.proposed_by == approved_by:
        raise SameApprover("the key that closed the period may not approve its payout")
    if settlement.status not in APPROVABLE:
        reasons = {
            "approved": "it is already approved",
            "superseded": "a later round proposed a newer settlement; approve that one",
            "nothing_due": "its payout is zero",
        }
        raise SettlementNotApprovable(
            f"settlement {settlement_id} cannot be approved: {reasons[settlement.status]}",
            settlement_status=settlement.status)
    return [SettlementApproved(
        settlement_id=settlement_id, program_id=state.program_id, partner_id=state.partner_id,
        payout_minor=settlement.payout_minor, currency=state.currency, approved_by=approved_by)]
