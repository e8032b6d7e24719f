"""Given account events / when the partner is suspended or reinstated / then events.

A suspended partner is held: its queued orders are held with reason ``partner_suspended``,
so is every order reaching funds review, nothing passes and finance cannot release (only
reject). Reinstatement reviews the held orders again in arrival order; one that still does
not fit is held again with its own reason.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.events import credit as ev
from services.credit.domain.errors import PartnerSuspended
from services.credit.domain.funds import (
    decide_funds_review,
    decide_reevaluation,
    decide_reinstate,
    decide_reject,
    decide_release,
    decide_suspend,
)
from services.credit.domain.position import position
from tests.credit.given import TODAY, P, given, held, issued, opened, passed, received

SUSPENDED = ev.AccountSuspended(partner_id=P, reason="audit")
REINSTATED = ev.AccountReinstated(partner_id=P)


def awaiting(order_id: str, amount: int) -> ev.OrderAwaitingPrepayment:
    return ev.OrderAwaitingPrepayment(order_id=order_id, partner_id=P, amount_minor=amount)


def released(order_id: str) -> ev.HoldReleased:
    return ev.HoldReleased(order_id=order_id, partner_id=P, reason="partner reinstated",
                           released_by="system:credit")


def test_suspending_holds_every_queued_order_and_leaves_approved_ones() -> None:
    state = given(opened(), passed("o1", 600), held("o2", 500), held("o3", 300))
    assert decide_suspend(state, "audit") == [
        SUSPENDED, held("o2", 500, "partner_suspended"), held("o3", 300, "partner_suspended")]
    prepaid = given(opened("prepaid", 0, 0), awaiting("o1", 100))
    assert decide_suspend(prepaid, "audit") == [SUSPENDED, held("o1", 100, "partner_suspended")]


def test_suspending_twice_or_without_an_account_decides_nothing() -> None:
    assert decide_suspend(given(opened(), SUSPENDED), "again") == []
    assert decide_suspend(given(), "audit") == []
    assert decide_reinstate(given(opened()), TODAY) == []


def test_a_suspended_partners_order_is_held_at_funds_review_even_when_it_fits() -> None:
    state = given(opened(), SUSPENDED)
    assert decide_funds_review(state, "o1", 1, TODAY) == [held("o1", 1, "partner_suspended")]
    prepaid = given(opened("prepaid", 0, 0), received("p1", 1_000), SUSPENDED)
    assert decide_funds_review(prepaid, "o1", 10, TODAY) == [held("o1", 10, "partner_suspended")]


def test_nothing_passes_while_suspended_and_finance_may_only_reject() -> None:
    state = given(opened(), SUSPENDED, held("o1", 100, "partner_suspended"))
    assert decide_reevaluation(state, TODAY, "payment") == []
    with pytest.raises(PartnerSuspended):
        decide_release(state, "o1", "sales asked", "finance:k1")
    [rejected] = decide_reject(state, "o1", "no", "finance:k1")
    assert isinstance(rejected, ev.OrderRejectedByFinance)


def test_reinstating_reviews_held_orders_in_arrival_order_and_reholds_the_rest_with_their_reason() -> None:
    # limit 1_000: o1 (600) fits, o2 (500) then does not, o3 (300) still does
    state = given(opened(), held("o1", 600), held("o2", 500), SUSPENDED,
                  held("o1", 600, "partner_suspended"), held("o2", 500, "partner_suspended"),
                  held("o3", 300, "partner_suspended"))
    events = decide_reinstate(state, TODAY)
    assert events == [REINSTATED, released("o1"), passed("o1", 600), released("o3"), passed("o3", 300),
                      held("o2", 500, "over_limit")]
    after = given(opened(), held("o1", 600), held("o2", 500), SUSPENDED,
                  held("o1", 600, "partner_suspended"), held("o2", 500, "partner_suspended"),
                  held("o3", 300, "partner_suspended"), *events)
    assert not after.suspended
    assert [(o.order_id, o.seq) for o in sorted(after.orders.values(), key=lambda o: o.seq)] == [
        ("o1", 1), ("o2", 2), ("o3", 3)]
    assert position(after, TODAY).exposure_minor == 900


def test_reinstating_an_overdue_or_unfunded_partner_holds_with_the_real_reason() -> None:
    overdue = given(opened(), passed("o1", 100),
                    issued("i1", "o1", 100, TODAY - timedelta(40), TODAY - timedelta(10)),
                    SUSPENDED, held("o2", 1, "partner_suspended"))
    assert decide_reinstate(overdue, TODAY) == [REINSTATED, held("o2", 1, "overdue")]
    prepaid = given(opened("prepaid", 0, 0), SUSPENDED, held("o1", 100, "partner_suspended"))
    assert decide_reinstate(prepaid, TODAY) == [REINSTATED, awaiting("o1", 100)]
    funded = given(opened("prepaid", 0, 0), received("p1", 100), SUSPENDED,
                   held("o1", 100, "partner_suspended"))
    assert decide_reinstate(funded, TODAY) == [
        REINSTATED, released("o1"), passed("o1", 100, "prepaid"),
        ev.AdvanceApplied(partner_id=P, order_id="o1", amount_minor=100)]


def test_a_cancelled_order_is_not_held_or_reviewed() -> None:
    state = given(opened(), held("o1", 100))
    assert decide_suspend(state, "audit", cancelled={"o1"}) == [SUSPENDED]
    state = given(opened(), SUSPENDED, held("o1", 100, "partner_suspended"))
    assert decide_reinstate(state, TODAY, cancelled={"o1"}) == [REINSTATED]
