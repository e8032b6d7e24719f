"""Rebate rules as given events / when command / then events, and the exact arithmetic."""

from __future__ import annotations

from datetime import date
from functools import reduce

import pytest

from libs.events.base import DomainEvent
from libs.events.rebates import ProgramClosed, ProgramPublished, SettlementApproved, SettlementProposed
from libs.events.values import Eligibility, GrowthRule, RebateTier, SourceRef, TimelinessRule
from services.rebates.domain import program as programs
from services.rebates.domain import rebate
from services.rebates.domain.arithmetic import half_up, volume_rebate
from services.rebates.domain.closing import Performance, final_amount
from services.rebates.domain.eligibility import PartnerProfile, partner_eligible
from services.rebates.domain.errors import (
    InvalidProgram,
    InvalidSettlementDate,
    ProgramAlreadyPublished,
    ProgramFinal,
    ProgramNotFound,
    SameApprover,
    SettlementNotApprovable,
    SettlementNotFound,
)
from services.rebates.domain.ledger import (
    Application,
    Contribution,
    InvoiceCopy,
    ReturnCopy,
    Window,
    basis_in,
    invoice_contributions,
    period_of,
    return_contribution,
    returned_from,
    timeliness_in,
    with_application,
)
from services.rebates.domain.program import ProgramState, PublishProgram
from services.rebates.domain.rebate import RebateState

TIERS = (RebateTier(from_minor=0, rate_bp=100), RebateTier(from_minor=1_000_000, rate_bp=200),
         RebateTier(from_minor=5_000_000, rate_bp=300))
Q1 = Window(date(2026, 1, 1), date(2026, 3, 31))


def program(**changes: object) -> ProgramPublished:
    fields: dict[str, object] = dict(
        program_id="prg_1", name="Q1", starts_on=date(2026, 1, 1), ends_on=date(2026, 3, 31),
        basis="invoiced", mode="retroactive", tiers=list(TIERS), published_by="fin-1")
    fields.update(changes)
    return ProgramPublished.model_validate(fields)


def given(events: list[DomainEvent], state: RebateState | None = None) -> RebateState:
    return reduce(rebate.evolve, events, state or RebateState("prg_1", "p1"))


def contribution(ref: str, amount: int, kind: str = "invoice") -> Contribution:
    return Contribution(kind, ref, amount, date(2026, 2, 1))  # type: ignore[arg-type]


# -- arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(("basis", "retro", "incremental", "rate"), [
    (0, (0, 100), (0, 100), 100),
    (999_999, (10_000, 100), (10_000, 100), 100),       # 9_999.99 rounds half-up to 10_000
    (1_000_000, (20_000, 200), (10_000, 200), 200),
    (3_000_000, (60_000, 200), (50_000, 200), 200),     # 10_000 + 2_000_000 x 2%
    (6_000_000, (180_000, 300), (120_000, 300), 300),   # 10_000 + 80_000 + 30_000
    (-5, (0, 0), (0, 0), 0),
])
def test_retroactive_pays_the_reached_rate_on_everything_incremental_each_band_its_own(
        basis: int, retro: tuple[int, int], incremental: tuple[int, int], rate: int) -> None:
    assert volume_rebate(basis, TIERS, "retroactive") == retro
    assert volume_rebate(basis, TIERS, "incremental") == incremental
    assert retro[1] == incremental[1] == rate


def test_below_the_first_threshold_nothing_is_earned() -> None:
    tiers = (RebateTier(from_minor=1_000, rate_bp=500),)
    assert volume_rebate(999, tiers, "retroactive") == (0, 0)
    assert volume_rebate(2_000, tiers, "incremental") == (50, 500)


def test_half_up_rounds_once_on_the_total_not_per_band() -> None:
    halves = (RebateTier(from_minor=0, rate_bp=5_000), RebateTier(from_minor=1, rate_bp=5_000))
    assert volume_rebate(1, halves, "incremental") == (1, 5_000)  # 0.5 -> 1
    assert volume_rebate(2, halves, "incremental") == (1, 5_000)  # 0.5 + 0.5 = 1.0, not 1 + 1
    assert half_up(5, 10) == 1 and half_up(4, 10) == 0 and half_up(-5, 10) == -1


# -- accrual ---------------------------------------------------------------------------


def test_accrual_is_recomputed_from_the_running_basis_never_summed_per_event() -> None:
    accrued = rebate.decide_accruals(given([]), program(tiers=[RebateTier(from_minor=0, rate_bp=100)]),
                                     [contribution("inv-1", 50), contribution("inv-2", 50)])
    assert [(e.basis_minor, e.accrued_minor) for e in accrued] == [(50, 1), (100, 1)]  # not 1 + 1


def test_crossing_a_tier_lifts_the_rate_and_a_return_lowers_it_again() -> None:
    state = given([])
    events = rebate.decide_accruals(state, program(), [
        contribution("inv-1", 800_000), contribution("inv-2", 400_000),
        contribution("cn-1", -300_000, "return")])
    assert [(e.basis_minor, e.accrued_minor, e.tier_rate_bp) for e in events] == [
        (800_000, 8_000, 100), (1_200_000, 24_000, 200), (900_000, 9_000, 100)]
    assert events[2].source == SourceRef(kind="return", ref="cn-1", amount_minor=-300_000)


def test_a_source_already_accrued_is_not_counted_again() -> None:
    state = given(rebate.decide_accruals(given([]), program(), [contribution("inv-1", 10_000)]))
    counted = {("invoice", "inv-1")}  # what the application looked up in the rebate's source rows
    assert rebate.decide_accruals(state, program(), [contribution("inv-1", 10_000)], counted) == []
    assert len(rebate.decide_accruals(state, program(), [contribution("inv-1", 5, "payment")], counted)) == 1
    twice = rebate.decide_accruals(state, program(), [contribution("inv-2", 7), contribution("inv-2", 7)])
    assert [e.source.ref for e in twice] == ["inv-2"]


# -- ledger ----------------------------------------------------------------------------


def invoice(**changes: object) -> InvoiceCopy:
    fields: dict[str, object] = dict(invoice_id="inv-1", partner_id="p1", issued_on=date(2026, 2, 1),
                                     total_minor=1_000, lines=(("tools", 333), ("paint", 667)))
    fields.update(changes)
    return InvoiceCopy(**fields)  # type: ignore[arg-type]


def test_invoiced_basis_counts_eligible_lines_dated_by_issue() -> None:
    tools_only = program(eligibility=Eligibility(categories=["tools"]))
    assert invoice_contributions(tools_only, invoice(), Q1) == [
        Contribution("invoice", "inv-1", 333, date(2026, 2, 1))]
    assert invoice_contributions(program(), invoice(), Q1)[0].amount_minor == 1_000
    assert invoice_contributions(program(), invoice(issued_on=date(2026, 4, 1)), Q1) == []
    assert invoice_contributions(program(), invoice(currency="USD"), Q1) == []
    assert invoice_contributions(program(eligibility=Eligibility(categories=["x"])), invoice(), Q1) == []


def test_collected_basis_takes_the_eligible_share_of_cash_on_the_running_total() -> None:
    collected = program(basis="collected", eligibility=Eligibility(categories=["tools"]))
    paid = with_application(with_application(invoice(), "pay-1/inv-1", 500, date(2026, 2, 5)),
                            "pay-2/inv-1", 500, date(2026, 4, 2))
    both = invoice_contributions(collected, paid, Window(date(2026, 1, 1), date(2026, 12, 31)))
    assert [(c.ref, c.amount_minor) for c in both] == [("pay-1/inv-1", 167), ("pay-2/inv-1", 166)]
    assert [c.ref for c in invoice_contributions(collected, paid, Q1)] == ["pay-1/inv-1"]


def test_cash_before_the_invoice_counts_once_the_invoice_is_known_and_advances_take_its_date() -> None:
    collected = program(basis="collected")
    early = with_application(InvoiceCopy("inv-1", "p1"), "advance/inv-1", 1_000, None)
    assert invoice_contributions(collected, early, Q1) == []
    known = invoice(applications=early.applications)
    assert invoice_contributions(collected, known, Q1) == [
        Contribution("payment", "advance/inv-1", 1_000, date(2026, 2, 1))]
    again = with_application(known, "advance/inv-1", 5, None)
    assert again.applications[-1].ref == "advance/inv-1#2"


def test_a_return_takes_its_eligible_lines_off_the_basis() -> None:
    note = ReturnCopy("cn-1", "p1", date(2026, 3, 5), 300, lines=(("tools", 100), ("paint", 200)))
    assert return_contribution(program(), note, Q1) == [
        Contribution("return", "cn-1", -300, date(2026, 3, 5))]
    tools = program(eligibility=Eligibility(categories=["tools"]))
    assert return_contribution(tools, note, Q1)[0].amount_minor == -100
    bare = ReturnCopy("cn-2", "p1", date(2026, 3, 5), 300)
    assert return_contribution(program(), bare, Q1)[0].amount_minor == -300
    assert return_contribution(tools, bare, Q1) == []
    assert return_contribution(program(), note, Window(date(2026, 4, 1), date(2026, 6, 30))) == []


def test_baseline_basis_and_timeliness_come_from_the_dated_ledger() -> None:
    last_year = invoice(invoice_id="inv-0", issued_on=date(2025, 2, 1), on_time=True)
    this_year = [invoice(invoice_id="inv-1", on_time=True), invoice(invoice_id="inv-2", on_time=False),
                 invoice(invoice_id="inv-3")]
    notes = [ReturnCopy("cn-1", "p1", date(2025, 3, 1), 100)]
    baseline = Window(date(2025, 1, 1), date(2025, 3, 31))
    assert basis_in(program(), [last_year, *this_year], notes, baseline) == 900
    assert timeliness_in([last_year, *this_year], Q1) == (3, 1)


# -- eligibility -----------------------------------------------------------------------


def test_partner_eligibility_by_tier_region_and_id_empty_lists_do_not_restrict() -> None:
    gold_east = PartnerProfile("p1", tier="gold", region="east")
    assert partner_eligible(Eligibility(), gold_east)
    assert partner_eligible(Eligibility(tiers=["gold"], regions=["east", "west"]), gold_east)
    assert not partner_eligible(Eligibility(tiers=["silver"]), gold_east)
    assert not partner_eligible(Eligibility(regions=["west"]), gold_east)
    assert not partner_eligible(Eligibility(partner_ids=["p2"]), gold_east)
    assert not partner_eligible(Eligibility(tiers=["gold"]), PartnerProfile("p9"))


# -- close -----------------------------------------------------------------------------


def test_final_amount_adds_growth_and_timeliness_bonuses_and_caps() -> None:
    rules = program(growth=GrowthRule(baseline_from=date(2025, 1, 1), baseline_to=date(2025, 3, 31),
                                      min_growth_bp=1_000, rate_bp=50),
                    timeliness=TimelinessRule(min_on_time_bp=8_000, rate_bp=25))
    grown = final_amount(rules, 1_100_000, Performance(1_000_000, 5, 4))  # +10% and 80% on time
    assert (grown.volume_minor, grown.growth_bonus_minor, grown.timeliness_bonus_minor,
            grown.final_minor) == (22_000, 5_500, 2_750, 30_250)
    short = final_amount(rules, 1_099_999, Performance(1_000_000, 5, 3))
    assert (short.growth_bonus_minor, short.timeliness_bonus_minor) == (0, 0)
    assert final_amount(rules, 500, Performance(0, 0, 0)).growth_bonus_minor == 0  # no baseline
    capped = final_amount(program(cap_minor=20_000), 6_000_000, Performance())
    assert (capped.volume_minor, capped.final_minor) == (180_000, 20_000)
    assert final_amount(rules, -10, Performance(1, 1, 1)).final_minor == 0


# -- program ---------------------------------------------------------------------------


def publish_command(**changes: object) -> PublishProgram:
    fields: dict[str, object] = dict(
        program_id="prg_1", name="Q1", starts_on=date(2026, 1, 1), ends_on=date(2026, 3, 31),
        basis="invoiced", mode="incremental", tiers=TIERS, eligibility=Eligibility(), growth=None,
        timeliness=None, cap_minor=None, currency="CNY", published_by="fin-1")
    fields.update(changes)
    return PublishProgram(**fields)  # type: ignore[arg-type]


def test_publish_then_close_again_and_again() -> None:
    published = programs.decide_publish(ProgramState(), publish_command())
    assert published[0].mode == "incremental" and published[0].tiers == list(TIERS)
    state = reduce(programs.evolve, published, ProgramState())
    assert state.status == "open"
    with pytest.raises(ProgramAlreadyPublished):
        programs.decide_publish(state, publish_command())
    closed = programs.decide_close(state, "prg_1", "fin-1")
    assert closed == [ProgramClosed(program_id="prg_1", closed_by="fin-1")]
    state = reduce(programs.evolve, closed * 2, state)
    assert (state.status, state.closes) == ("final", 2)
    with pytest.raises(ProgramNotFound):
        programs.decide_close(ProgramState(), "prg_x", "fin-1")


@pytest.mark.parametrize(("changes", "problem"), [
    ({"ends_on": date(2025, 12, 31)}, "ends_on"),
    ({"tiers": ()}, "empty"),
    ({"tiers": (RebateTier(from_minor=0, rate_bp=1), RebateTier(from_minor=0, rate_bp=2))}, "increasing"),
    ({"tiers": (RebateTier(from_minor=0, rate_bp=10_001),)}, "rate_bp"),
    ({"tiers": (RebateTier(from_minor=-1, rate_bp=1),)}, "from_minor"),
    ({"cap_minor": -1}, "cap_minor"),
    ({"growth": GrowthRule(baseline_from=date(2026, 1, 1), baseline_to=date(2026, 2, 1),
                           min_growth_bp=0, rate_bp=1)}, "before the program starts"),
])
def test_publish_refuses_a_broken_definition(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidProgram, match=problem):
        programs.decide_publish(ProgramState(), publish_command(**changes))


# -- settlement ------------------------------------------------------------------------


def proposed(settlement_id: str, final: int, settled: int, by: str = "fin-1") -> SettlementProposed:
    return SettlementProposed(settlement_id=settlement_id, program_id="prg_1", partner_id="p1",
                              final_minor=final, already_settled_minor=settled,
                              payout_minor=final - settled, sources=[], proposed_by=by)


def approved(settlement_id: str, payout: int) -> SettlementApproved:
    return SettlementApproved(settlement_id=settlement_id, program_id="prg_1", partner_id="p1",
                              payout_minor=payout, approved_by="fin-2")


def test_payout_is_final_minus_what_approved_settlements_paid() -> None:
    state = given(rebate.decide_accruals(given([]), program(), [contribution("inv-1", 2_000_000)]))
    final = final_amount(program(), state.basis_minor, Performance())
    counted = [SourceRef(kind="invoice", ref="inv-1", amount_minor=2_000_000)]
    first = rebate.decide_proposal(state, "stl_1", final, "fin-1", counted)
    assert (first[0].final_minor, first[0].already_settled_minor, first[0].payout_minor) == (
        40_000, 0, 40_000)
    assert first[0].sources == counted
    state = given([*first, approved("stl_1", 40_000)], state)
    lower = final_amount(program(), 900_000, Performance())
    true_up = rebate.decide_proposal(state, "stl_2", lower, "fin-1")[0]
    assert (true_up.final_minor, true_up.already_settled_minor, true_up.payout_minor) == (
        9_000, 40_000, -31_000)
    assert rebate.proposal_status(true_up.payout_minor) == "debit"


def test_approval_needs_another_key_the_latest_positive_proposal_and_happens_once() -> None:
    state = given([proposed("stl_1", 100, 0)])
    with pytest.raises(SameApprover):
        rebate.decide_approval(state, "stl_1", "fin-1")
    with pytest.raises(SettlementNotFound):
        rebate.decide_approval(state, "stl_9", "fin-2")
    assert rebate.decide_approval(state, "stl_1", "fin-2") == [approved("stl_1", 100)]
    done = given([approved("stl_1", 100)], state)
    with pytest.raises(SettlementNotApprovable, match="already approved"):
        rebate.decide_approval(done, "stl_1", "fin-2")


def test_a_newer_proposal_supersedes_an_unapproved_one_and_a_debit_is_approved_like_a_payout() -> None:
    state = given([proposed("stl_1", 100, 0), proposed("stl_2", 120, 0)])
    assert [s.status for s in state.settlements] == ["superseded", "proposed"]
    with pytest.raises(SettlementNotApprovable, match="newer"):
        rebate.decide_approval(state, "stl_1", "fin-2")
    state = given([approved("stl_2", 120), proposed("stl_3", 90, 120), proposed("stl_4", 120, 120)], state)
    assert [s.status for s in state.settlements] == ["superseded", "approved", "superseded", "nothing_due"]
    assert state.settled_minor == 120
    debit = given([proposed("stl_5", 90, 120)], state)
    assert debit.settlements[-1].status == "debit"
    with pytest.raises(SameApprover):
        rebate.decide_approval(debit, "stl_5", "fin-1")
    assert rebate.decide_approval(debit, "stl_5", "fin-2") == [approved("stl_5", -30)]
    assert given(rebate.decide_approval(debit, "stl_5", "fin-2"), debit).settled_minor == 90
    with pytest.raises(SettlementNotApprovable, match="zero"):
        rebate.decide_approval(state, "stl_4", "fin-2")


def test_an_interim_settles_within_the_period_up_to_today_and_never_a_final_program() -> None:
    published = programs.decide_publish(ProgramState(), publish_command())
    state = reduce(programs.evolve, published, ProgramState())
    today = date(2026, 2, 15)
    [settled] = programs.decide_settle(state, "prg_1", date(2026, 2, 1), today, "fin-1")
    state = programs.evolve(state, settled)
    assert (state.status, state.settled_through) == ("open", date(2026, 2, 1))
    for through, problem in ((date(2025, 12, 31), "before the period starts"),
                             (date(2026, 4, 1), "after the period ends"),
                             (date(2026, 2, 16), "in the future"),
                             (date(2026, 1, 31), "before the last interim")):
        with pytest.raises(InvalidSettlementDate, match=problem):
            programs.decide_settle(state, "prg_1", through, today, "fin-1")
    state = programs.evolve(state, programs.decide_close(state, "prg_1", "fin-1")[0])
    assert state.status == "final"
    with pytest.raises(ProgramFinal):
        programs.decide_settle(state, "prg_1", today, today, "fin-1")
    assert programs.shown_status("open", date(2026, 3, 31), date(2026, 4, 1)) == "closed"
    assert programs.shown_status("open", date(2026, 3, 31), date(2026, 3, 31)) == "open"
    assert programs.shown_status("final", date(2026, 3, 31), date(2026, 4, 1)) == "final"


def test_a_return_is_dated_by_the_sale_it_reverses() -> None:
    invoice = InvoiceCopy("inv-1", "p1", order_id="ord-1", issued_on=date(2025, 11, 20), total_minor=1_000,
                          lines=(("tools", 1_000),),
                          applications=(Application("pay-1/inv-1", 1_000, date(2026, 1, 5)),))
    note = returned_from(ReturnCopy("cn-1", "p1", date(2026, 3, 5), 400, lines=(("tools", 400),)), invoice)
    last_year = program(starts_on=date(2025, 1, 1), ends_on=date(2025, 12, 31))
    this_year = program(starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    assert return_contribution(last_year, note, period_of(last_year)) == [
        Contribution("return", "cn-1", -400, date(2025, 11, 20))]
    assert return_contribution(this_year, note, period_of(this_year)) == []
    collected = program(basis="collected", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    assert return_contribution(collected, note, period_of(collected))[0].on == date(2026, 1, 5)
    unknown = returned_from(ReturnCopy("cn-2", "p1", date(2026, 3, 5), 400), None)
    assert return_contribution(this_year, unknown, period_of(this_year))[0].on == date(2026, 3, 5)
