"""Pure rules of the roll-up and the co-op fund: given events, when a command, then events."""

from __future__ import annotations

from datetime import date

import pytest

from libs.events.partners import PartnerParentChanged
from libs.events.rebates import CoopClaimApproved, CoopClaimFiled, ProgramPublished, RebateAccrued
from libs.events.values import CoopRule, RebateTier, SourceRef
from services.partners.domain import snapshot as partner_snapshot
from services.partners.domain.partner import Partner
from services.partners.domain.partner import evolve as evolve_partner
from services.rebates.domain import coop
from services.rebates.domain import snapshot as rebate_snapshot
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.errors import ClaimNotDecidable, FundEmpty, FundExpired, SameApprover
from services.rebates.domain.ledger import Contribution
from services.rebates.domain.rebate import RebateState, evolve
from services.rebates.domain.rollup import attribute, parent_on, with_parent_change

PROGRAM = ProgramPublished(
    program_id="prg", name="co-op", starts_on=date(2026, 1, 1), ends_on=date(2026, 3, 31), basis="invoiced",
    mode="retroactive", tiers=[RebateTier(from_minor=0, rate_bp=200)], published_by="f", kind="coop",
    coop=CoopRule(share_bp=200, match_bp=5000, expires_on=date(2026, 4, 30)))


def given(*events: object) -> RebateState:
    state = RebateState("prg", "p1")
    for event in events:
        state = evolve(state, event)  # type: ignore[arg-type]
    return state


def accrued(amount: int) -> RebateAccrued:
    return RebateAccrued(program_id="prg", partner_id="p1",
                         source=SourceRef(kind="invoice", ref="i", amount_minor=1), basis_minor=amount * 50,
                         accrued_minor=amount, tier_rate_bp=200)


def filed(claim_id: str, amount: int, by: str = "partner-key") -> CoopClaimFiled:
    return CoopClaimFiled(claim_id=claim_id, program_id="prg", partner_id="p1", amount_minor=amount,
                          description="ads", evidence_ref="e", filed_by=by, filed_on=date(2026, 2, 1))


def approve(state: RebateState, claim_id: str, by: str = "finance-key",
            today: date = date(2026, 3, 1)) -> list[CoopClaimApproved]:
    return coop.decide_claim_approval(state.fund, PROGRAM, "p1", state.accrued_minor, claim_id, by, today)


def test_a_claim_is_matched_at_match_bp_up_to_the_balance() -> None:
    state = given(accrued(6_000), filed("c1", 8_001))
    [event] = approve(state, "c1")
    assert (event.matched_minor, event.approved_minor) == (4_001, 4_001)  # 8,001 x 50% half-up
    state = given(accrued(6_000), filed("c1", 8_001), event, filed("c2", 10_000))
    [capped] = approve(state, "c2")
    assert (capped.matched_minor, capped.approved_minor) == (5_000, 1_999)
    drained = evolve(evolve(state, capped), filed("c3", 10))
    assert drained.fund.balance(drained.accrued_minor) == 0
    with pytest.raises(FundEmpty):
        approve(drained, "c3")


def test_the_filer_may_not_decide_and_a_claim_is_decided_once() -> None:
    state = given(accrued(6_000), filed("c1", 100, by="finance-1"))
    with pytest.raises(SameApprover):
        approve(state, "c1", by="finance-1")
    with pytest.raises(SameApprover):
        coop.decide_claim_rejection(state.fund, "prg", "p1", "c1", "finance-1", "no", date(2026, 3, 1))
    decided = evolve(state, approve(state, "c1", by="finance-2")[0])
    with pytest.raises(ClaimNotDecidable):
        approve(decided, "c1", by="finance-3")


def test_unused_funds_expire_once_after_the_date_and_claims_are_refused() -> None:
    state = given(accrued(6_000), filed("c1", 2_000))
    state = evolve(state, approve(state, "c1")[0])
    assert coop.decide_expiry(state.fund, PROGRAM, "p1", state.accrued_minor, date(2026, 4, 30)) == []
    [expired] = coop.decide_expiry(state.fund, PROGRAM, "p1", state.accrued_minor, date(2026, 5, 1))
    assert expired.expired_minor == 5_000
    state = evolve(state, expired)
    assert coop.decide_expiry(state.fund, PROGRAM, "p1", state.accrued_minor, date(2026, 6, 1)) == []
    assert state.fund.balance(state.accrued_minor) == 0
    with pytest.raises(FundExpired):
        coop.decide_claim(state.fund, PROGRAM, coop.FileClaim("c2", "p1", 1, "d", "e", "k", date(2026, 5, 1)))


def test_the_rebate_snapshot_keeps_the_fund() -> None:
    state = given(accrued(6_000), filed("c1", 2_000), filed("c2", 30))
    state = evolve(state, approve(state, "c1")[0])
    assert rebate_snapshot.decode(rebate_snapshot.encode(state)) == state


def test_a_sale_goes_to_the_parent_in_effect_on_its_date() -> None:
    profile = with_parent_change(PartnerProfile("sub", parent_id="old"), date(2026, 3, 1), "new")
    assert [parent_on(profile, date(2026, 2, 28)), parent_on(profile, date(2026, 3, 1))] == ["old", "new"]
    found = [Contribution("invoice", "i1", 300_000, date(2026, 2, 1))]
    assert attribute("self", "sub", "old", found) == [("sub", found)]
    [(parent, [rolled])] = attribute("parent", "sub", "old", found)
    assert (parent, rolled.partner_id) == ("old", "sub")
    assert [who for who, _ in attribute("both", "sub", "old", found)] == ["sub", "old"]
    assert attribute("parent", "top", None, found) == [("top", found)]  # no parent: counts for itself


def test_the_partner_snapshot_keeps_when_its_parent_took_effect() -> None:
    partner = evolve_partner(Partner(id="p", status="active", parent_id="a"), PartnerParentChanged(
        partner_id="p", from_parent_id="a", to_parent_id="b", effective_from=date(2026, 4, 1)))
    assert (partner.parent_id, partner.parent_since) == ("b", date(2026, 4, 1))
    assert partner_snapshot.decode(partner_snapshot.encode(partner)) == partner
