"""Given account events / when a funds decision / then events: funds review, queue, holds, terms."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.events import credit as ev
from services.credit.domain.account import fold
from services.credit.domain.errors import BadTerms, NotOnHold
from services.credit.domain.funds import (
    decide_funds_review,
    decide_reevaluation,
    decide_reject,
    decide_release,
    decide_terms,
)
from services.credit.domain.position import position
from tests.credit.given import TODAY, P, given, held, issued, kinds, opened, passed, received

# -- funds review ---------------------------------------------------------------------------


def test_credit_order_within_limit_passes() -> None:
    [event] = decide_funds_review(given(opened()), "o1", 1_000, TODAY)
    assert event == passed("o1", 1_000)


def test_credit_order_over_limit_is_held_counting_approved_uninvoiced_orders() -> None:
    state = given(opened(), passed("o1", 600))
    assert decide_funds_review(state, "o2", 401, TODAY) == [held("o2", 401)]
    assert decide_funds_review(state, "o2", 400, TODAY) == [passed("o2", 400)]


def test_exposure_counts_open_invoices_and_the_uninvoiced_rest_of_orders() -> None:
    state = given(
        opened(),
        passed("o1", 600),
        issued("i1", "o1", 250, TODAY, TODAY + timedelta(30)),
        received("p1", 100),
        ev.PaymentApplied(payment_id="p1", invoice_id="i1", partner_id=P, amount_minor=100, applied_on=TODAY),
    )
    figures = position(state, TODAY)
    assert figures.exposure_minor == 150 + 350
    assert figures.available_minor == 500
    assert figures.balance_minor == 150


def test_an_overdue_invoice_holds_even_a_small_order() -> None:
    state = given(
        opened(), passed("o1", 100), issued("i1", "o1", 100, TODAY - timedelta(31), TODAY - timedelta(1))
    )
    assert decide_funds_review(state, "o2", 1, TODAY) == [held("o2", 1, "overdue")]
    due_today = given(opened(), passed("o1", 100), issued("i1", "o1", 100, TODAY - timedelta(30), TODAY))
    assert decide_funds_review(due_today, "o2", 1, TODAY) == [passed("o2", 1)]


def test_prepaid_order_covered_by_advance_reserves_it() -> None:
    state = given(opened("prepaid", 0, 0), received("p1", 1_000))
    events = decide_funds_review(state, "o1", 600, TODAY)
    assert events == [
        passed("o1", 600, "prepaid"),
        ev.AdvanceApplied(partner_id=P, order_id="o1", amount_minor=600),
    ]
    after = fold(state, events)
    assert position(after, TODAY).advance_minor == 400
    assert position(after, TODAY).reserved_minor == 600
    assert kinds(decide_funds_review(after, "o2", 401, TODAY)) == ["OrderAwaitingPrepayment"]


def test_prepaid_order_not_covered_awaits_prepayment() -> None:
    assert kinds(decide_funds_review(given(opened("prepaid", 0, 0)), "o1", 1, TODAY)) == [
        "OrderAwaitingPrepayment"
    ]


def test_a_reviewed_or_cancelled_order_is_not_reviewed_again() -> None:
    state = given(opened(), held("o1", 5_000))
    assert decide_funds_review(state, "o1", 10, TODAY) == []
    assert decide_funds_review(given(opened()), "o9", 10, TODAY, cancelled={"o9"}) == []


# -- the queue ------------------------------------------------------------------------------


def test_reevaluation_releases_queued_orders_in_arrival_order_as_far_as_room_goes() -> None:
    state = given(opened(limit=1_000), passed("o1", 1_000), held("o2", 300), held("o3", 500), held("o4", 200))
    state = fold(
        state,
        [
            issued("i1", "o1", 1_000, TODAY, TODAY + timedelta(30)),
            received("p1", 600),
            ev.PaymentApplied(
                payment_id="p1", invoice_id="i1", partner_id=P, amount_minor=600, applied_on=TODAY
            ),
        ],
    )
    events = decide_reevaluation(state, TODAY, "payment p1 received")
    assert [(e.TYPE, e.order_id) for e in events] == [  # type: ignore[attr-defined]
        ("HoldReleased", "o2"),
        ("FundsReviewPassed", "o2"),
        ("HoldReleased", "o4"),
        ("FundsReviewPassed", "o4"),
    ]
    assert position(fold(state, events), TODAY).exposure_minor == 400 + 300 + 200


def test_cancelled_orders_free_room_and_leave_the_queue() -> None:
    state = given(opened(limit=1_000), passed("o1", 900), held("o2", 500), held("o3", 100))
    events = decide_reevaluation(state, TODAY, "order o1 cancelled", cancelled={"o1", "o3"})
    assert [(e.TYPE, e.order_id) for e in events] == [("HoldReleased", "o2"), ("FundsReviewPassed", "o2")]  # type: ignore[attr-defined]


def test_release_passes_even_over_the_limit_and_reject_refuses() -> None:
    state = given(opened(limit=10), held("o1", 5_000))
    released = decide_release(state, "o1", "agreed with sales", "finance:k1")
    assert released == [
        ev.HoldReleased(order_id="o1", partner_id=P, reason="agreed with sales", released_by="finance:k1"),
        passed("o1", 5_000, "released"),
    ]
    assert kinds(decide_reject(state, "o1", "no", "finance:k1")) == ["OrderRejectedByFinance"]
    approved = fold(state, released)
    with pytest.raises(NotOnHold):
        decide_release(approved, "o1", "again", "finance:k1")
    with pytest.raises(NotOnHold):
        decide_reject(approved, "o1", "late", "finance:k1")
    with pytest.raises(NotOnHold):
        decide_release(state, "o1", "x", "finance:k1", cancelled={"o1"})


def test_terms_change_re_evaluates_and_validates() -> None:
    state = given(opened(limit=100), held("o1", 500))
    events = decide_terms(state, "credit", 1_000, None, TODAY)
    assert kinds(events) == ["TermsChanged", "HoldReleased", "FundsReviewPassed"]
    assert decide_terms(state, "credit", 100, 30, TODAY) == []
    with pytest.raises(BadTerms):
        decide_terms(state, "prepaid", 100, None, TODAY)
    with pytest.raises(BadTerms):
        decide_terms(given(opened("prepaid", 0, 0)), "credit", 100, None, TODAY)
    prepaid = decide_terms(state, "prepaid", None, None, TODAY)
    assert prepaid[0] == ev.TermsChanged(partner_id=P, kind="prepaid", credit_limit_minor=0, term_days=0)
